"""End-to-end checks of ``xfer train`` on a real ALE game with a tiny network and tiny budgets."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.specs import ATARI_INPUT
from xfer import checkpoint as ckpt
from xfer import training_state
from xfer.cli import main
from xfer.config import AtariConfig

TINY = [
    "--size", "tiny", "--preset", "cpu", "--no-progress",
    "--set", "mcts.num_simulations=4", "--set", "batch_size=8", "--set", "start_transitions=40",
    "--set", "num_envs=2", "--set", "eval_episodes=1", "--set", "eval_max_steps=20",
    "--set", "replay.segment_length=20", "--set", "checkpoint_every=40", "--set", "eval_every=100",
    "--set", "train_ratio=0.25",
]


def test_train_smoke_writes_model_metrics_and_curve(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--game", "Breakout", "--env-steps", "120", "--out", str(out), *TINY,
                 "--set", "keep_eval_models=true"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_steps"] == 120 and summary["train_steps"] > 0
    net, meta = ckpt.load_model(out / "model.safetensors", expected_size="tiny")
    assert meta.games == ["Breakout"] and meta.action_maps["Breakout"] == [0, 1, 3, 4]
    assert (out / "learning_curve.png").stat().st_size > 1000
    rows = (out / "metrics" / "eval.tsv").read_text().splitlines()
    assert rows[0].startswith("env_steps") and len(rows) >= 3  # header + initial + final evaluation
    # keep_eval_models: the weights of every evaluation, loadable, named by agent steps
    kept = {p.name for p in (out / "evals").glob("*.safetensors")}
    assert kept == {f"model_{r.split()[0]}.safetensors" for r in rows[1:]} and len(kept) == len(rows) - 1
    assert ckpt.load_model(out / "evals" / "model_0.safetensors")[1].env_steps == 0
    # the uniform-random floor under the same protocol (1 episode, 20-step cap)
    rnd = json.loads((out / "metrics" / "random.json").read_text())
    assert rnd["protocol"] == {"game": "Breakout", "env": AtariConfig(game="Breakout").model_dump(mode="json"),
                               "episodes": 1, "max_steps": 20}
    assert len(rnd["scores"]) == 1 and summary["random_eval_score"] == rnd["mean_score"] >= 0.0


def test_extra_steps_at_a_tenth_of_the_learning_rate(tmp_path):
    # XTRA appendix I / EfficientZero: more gradient steps after the last agent step, at lr / 10
    out = tmp_path / "run"
    assert main(["train", "--game", "Breakout", "--env-steps", "120", "--out", str(out), *TINY,
                 "--set", "extra_train_steps=5"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_steps"] == (120 - 40) * 0.25 + 5
    last = (out / "metrics" / "eval.tsv").read_text().splitlines()[-1].split("\t")
    assert last[:2] == ["120", "25"]  # the final evaluation is of the model after the extra steps
    # resuming a finished run does not repeat them
    assert main(["train", "--game", "Breakout", "--env-steps", "120", "--out", str(out), *TINY,
                 "--set", "extra_train_steps=5"]) == 0
    assert json.loads((out / "summary.json").read_text())["train_steps"] == 25


def test_without_initial_and_final_evaluation(tmp_path):
    # pipeline stages: collect skips the untrained policy, finetune leaves its last step to `evaluate`
    from xfer.train import Trainer

    cfg = _tiny_cfg(120)
    out = tmp_path / "run"
    summary = Trainer(cfg, out, progress=False, initial_eval=False, final_eval=False).run()
    rows = (out / "metrics" / "eval.tsv").read_text().splitlines()
    assert [r.split()[0] for r in rows[1:]] == ["100"]  # only the in-run evaluation at eval_every
    assert summary["final_eval_score"] is None and summary["first_eval_score"] is not None
    _, meta = ckpt.load_model(out / "model.safetensors")
    assert (meta.env_steps, meta.step) == (120, summary["train_steps"])  # the final weights, saved at the end


class CountingTasks:
    """A :class:`xfer.train.StepTasks` part that learns the replay batch twice as two tasks (weights 1, 0.5)
    and counts its steps; the count is its resumable state."""

    def __init__(self):
        self.steps, self.opened = 0, None

    def num_tasks(self):
        return 2

    def learn(self, learner, online, rng):
        self.steps += 1
        return learner.step_tasks([online, online], [1.0, 0.5])

    def open(self, out_dir, keep):
        self.opened = keep

    def state(self):
        return {"counted": self.steps}

    def load(self, extra):
        self.steps = extra["counted"]


def _tiny_cfg(env_steps: int):
    from xfer.presets import build_train_config, parse_overrides

    overrides = parse_overrides([a for a in TINY[TINY.index("--set"):] if a != "--set"] + ["env.game=Breakout",
                                                                                          f"env_steps={env_steps}"])
    return build_train_config("cpu", {**overrides, "net": {**overrides.get("net", {}), "size": "tiny"}})


def test_a_step_tasks_part_decides_each_gradient_step_and_resumes_with_the_run(tmp_path):
    # composition, not subclassing: the finetune stage's offline tasks plug in the same way
    from xfer.train import Trainer

    out = tmp_path / "run"
    tasks = CountingTasks()
    first = Trainer(_tiny_cfg(80), out, progress=False, initial_eval=False, random_baseline=False, tasks=tasks)
    assert tasks.opened == -1  # a fresh run starts its logs empty
    summary = first.run()
    assert tasks.steps == summary["train_steps"] == (80 - 40) * 0.25
    header = (out / "metrics" / "train.tsv").read_text().splitlines()[0].split("\t")
    assert "loss_task1" in header and "loss_task2" not in header  # the columns of two tasks
    assert summary["random_eval_score"] is None and not (out / "metrics" / "random.json").exists()

    again = CountingTasks()
    second = Trainer(_tiny_cfg(120), out, progress=False, initial_eval=False, random_baseline=False, tasks=again,
                     restart_stale=False, resume_key=first.state_hash())
    assert second.resumed and again.steps == tasks.steps and again.opened == summary["train_steps"]
    assert second.run()["train_steps"] == again.steps == (120 - 40) * 0.25


def test_how_often_a_run_evaluates_does_not_change_what_it_learns(tmp_path):
    import torch

    def final_weights(eval_every: str) -> dict:
        out = tmp_path / f"every{eval_every}"
        assert main(["train", "--game", "Breakout", "--env-steps", "120", "--out", str(out), *TINY,
                     "--set", f"eval_every={eval_every}", "--set", "self_play_refresh=1000"]) == 0
        net, _ = ckpt.load_model(out / "model.safetensors")
        return net.state_dict()

    often, rarely = final_weights("20"), final_weights("1000")
    assert all(torch.equal(often[k], rarely[k]) for k in often)


def test_unknown_game_fails_before_work(tmp_path, capsys):
    assert main(["train", "--game", "Pongg", "--out", str(tmp_path / "x"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "Pongg" in err and "Pong" in err
    assert not (tmp_path / "x").exists()


def test_bad_size_is_rejected():
    with pytest.raises(SystemExit):
        main(["train", "--game", "Pong", "--size", "huge"])


def test_bad_override_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--game", "Pong", "--out", str(tmp_path / "x"), *TINY, "--set", "mcts.num_sims=3"]) == 2
    assert "num_sims" in capsys.readouterr().err


def test_init_checkpoint_errors(tmp_path, capsys):
    missing = tmp_path / "nope.safetensors"
    assert main(["train", "--game", "Pong", "--init", str(missing), "--out", str(tmp_path / "x"), *TINY]) == 2
    assert "nope" in capsys.readouterr().err
    from xfer.nets.efficientzero import build_network
    from xfer.nets.sizes import net_spec
    from xfer.presets import build_train_config
    from xfer.train import Counters, model_meta

    cfg = build_train_config("paper", {"env": {"game": "Pong"}, "net": {"size": "ez"}})
    path = tmp_path / "ez.safetensors"
    ckpt.save_model(path, build_network(net_spec("ez"), *ATARI_INPUT), model_meta(cfg, Counters()))
    assert main(["train", "--game", "Pong", "--init", str(path), "--out", str(tmp_path / "y"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "ez" in err and "tiny" in err
    assert not (tmp_path / "y").exists()
    # same size, other action encoding: the dynamics' first convolution would not fit
    path = tmp_path / "tiny.safetensors"
    cfg = build_train_config("cpu", {"env": {"game": "Pong"}})
    ckpt.save_model(path, build_network(cfg.net.spec(), *ATARI_INPUT), model_meta(cfg, Counters()))
    assert main(["train", "--game", "Pong", "--init", str(path), "--out", str(tmp_path / "z"), *TINY,
                 "--set", "net.action_encoding=one_hot"]) == 2
    assert "pass --set net.action_encoding=plane" in capsys.readouterr().err
    assert not (tmp_path / "z").exists()


def test_killed_run_resumes_where_it_stopped(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "xfer.cli", "train", "--game", "Breakout", "--env-steps", "400",
           "--out", str(out), *TINY]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    deadline = time.time() + 240
    while time.time() < deadline and not training_state.has_training_state(out / "state"):
        time.sleep(0.2)
    assert training_state.has_training_state(out / "state"), "no checkpoint appeared"
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, _, meta = training_state.load_training_state(out / "state")  # not corrupt
    killed_at = meta["counters"]["env_steps"]
    assert 0 < killed_at < 400
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resumed from {out / 'state'} at {killed_at} agent steps" in done.stderr
    summary = json.loads((out / "summary.json").read_text())
    _, _, final = training_state.load_training_state(out / "state")
    assert summary["env_steps"] == final["counters"]["env_steps"] == 400
    assert final["counters"]["train_steps"] == final["learner_steps"] > meta["counters"]["train_steps"]
    steps = [int(line.split("\t")[0]) for line in (out / "metrics" / "eval.tsv").read_text().splitlines()[1:]]
    assert steps == sorted(steps) and steps[-1] == 400


def test_stale_resume_state_is_discarded_only_when_asked(tmp_path):
    from xfer.resume import discard_stale_state

    state = tmp_path / "state"
    training_state.save_training_state(state, {}, {}, {"config_hash": "abc"})
    assert not discard_stale_state(state, "abc") and state.exists()
    assert discard_stale_state(state, "def") and not state.exists()
