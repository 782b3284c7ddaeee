"""The whole XTRA pipeline under DVC on real Atari games with micro params, plus its faults.

One module-scoped run of `dvc repro` in a throwaway git+dvc checkout (a copy of dvc.yaml,
presets/ and the xfer/ sources the stages depend on); the tests then check its outputs, that a
second `dvc repro` does nothing, that a finetune param change reruns only what depends on it,
and how stages handle corrupt data, missing teachers and being killed.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from tests import golden
from tests.pipeline_repo import make_pipeline_repo, sh
from xfer import checkpoint as ckpt
from xfer import training_state


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    d = make_pipeline_repo(tmp_path_factory.mktemp("pipeline"))
    res = sh("dvc repro", d)
    sh("git add -A && git commit -qm pipeline", d)
    return d, res.stdout + res.stderr


def test_repro_runs_every_stage_and_reports(repo):
    d, log = repo
    for stage in ["code", "collect@Assault", "collect@Phoenix", "teacher@Assault", "teacher@Phoenix", "distill",
                  "bc", "offline_rl", "init@xtra", "init@scratch",
                  "finetune@DemonAttack-xtra-0", "finetune@DemonAttack-scratch-0",
                  "finetune@DemonAttack-xtra-1", "finetune@DemonAttack-scratch-1", "evaluate", "report"]:
        assert f"Running stage '{stage}'" in log
    report = (d / "reports" / "report.md").read_text()
    assert "DemonAttack" in report and "| xtra |" in report.replace("DemonAttack | ", "| ")
    assert "| DemonAttack | *uniform random, same protocol* |" in report
    assert "| DemonAttack | *student, zero-shot (no finetuning)* |" in report  # XTRA section 4
    assert "| multi-game behaviour cloning (policy head (no search)) |" in report
    assert "| multi-game offline RL (search) |" in report
    bc = json.loads((d / "metrics" / "baselines" / "bc.json").read_text())
    assert bc["train_steps"] == 4 and set(bc["zero_shot_targets"]) == {"DemonAttack"}
    evaluation = json.loads((d / "metrics" / "evaluate.json").read_text())
    assert evaluation["student_zero_shot_targets"]["DemonAttack"]["episodes"] == 1
    assert len(evaluation["random_episode_scores"]["DemonAttack"]) == 3  # evaluate.random_episodes
    summary = json.loads((d / "metrics" / "summary.json").read_text())
    assert set(summary["runs"]) == {"DemonAttack-xtra", "DemonAttack-scratch"}
    assert summary["runs"]["DemonAttack-scratch"]["improvement_pct"] in (0.0, None)
    assert set(summary["seeds"]) == {f"DemonAttack-{r}-{s}" for r in ("xtra", "scratch") for s in (0, 1)}
    assert summary["runs"]["DemonAttack-xtra"]["seeds"] == [0, 1]
    assert "mean" in summary["aggregate"]["xtra"]["hns"]  # rliable's interval estimates
    assert (d / "reports" / "learning_curves_DemonAttack.png").exists()
    # the teacher-relabelled data and the student carry the right metadata
    from xfer.data import DatasetReader

    teacher_data = DatasetReader(d / "data" / "teacher_targets" / "Assault")
    assert teacher_data.manifest.annotation.startswith("teacher:")
    _, meta = ckpt.load_model(d / "models" / "student" / "model.safetensors")
    assert meta.games == ["Assault", "Phoenix"] and set(meta.action_maps) == {"Assault", "Phoenix"}
    ft = json.loads((d / "runs" / "finetune" / "DemonAttack-xtra-1" / "summary.json").read_text())
    assert ft["env_steps"] == 240 and ft["cross_task"] and ft["seed"] == 1
    host = json.loads((d / ".xfer-work" / "finetune" / "DemonAttack-xtra-1" / "host.json").read_text())
    assert host["peak_rss_mb"] > 0 and host["wall_seconds_this_session"] > 0
    weights = (d / "runs" / "finetune" / "DemonAttack-xtra-0" / "metrics" / "task_weights.tsv").read_text().splitlines()
    assert weights[0].split("\t") == ["train_steps", "Assault", "Phoenix"] and len(weights) >= 2
    for run in ("xtra-0", "scratch-1"):
        rows = (d / "metrics" / "curves" / f"DemonAttack-{run}.tsv").read_text().splitlines()[1:]
        steps = [int(r.split("\t")[0]) for r in rows]
        assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == 240
    shown = sh("dvc metrics show", d).stdout
    assert "metrics/summary.json" in shown or "summary.json" in shown


def test_golden_figures_are_unchanged(repo):
    # issue 14: every model's weights, the datasets, every metric column and the evaluation scores
    # of the micro pipeline, as recorded before the redesign (`python -m tests.golden --record --pipeline`)
    d, _ = repo
    rec = golden.load("pipeline")
    assert rec is not None, "record tests/golden/pipeline.json: python -m tests.golden --record --pipeline"
    if rec["host"] != golden.host():
        pytest.skip(f"figures recorded on {rec['host']}, this host is {golden.host()}")
    assert golden.compare(rec["figures"], golden.pipeline_figures(d)) == []


def test_second_repro_does_nothing_and_param_change_is_local(repo):
    d, _ = repo
    again = sh("dvc repro", d)
    assert "Running stage" not in again.stdout
    params = yaml.safe_load((d / "params.yaml").read_text())
    assert params["finetune"]["runs"]["xtra"]["task_weights"] is True
    params["finetune"]["runs"]["xtra"]["task_weights"] = False
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dry = sh("dvc repro --dry", d).stdout
    ran = {line.split("'")[1] for line in dry.splitlines() if line.startswith("Running stage")}
    # --dry lists the stages whose own deps/params changed; report follows once evaluate's output does
    assert {"finetune@DemonAttack-xtra-0", "finetune@DemonAttack-xtra-1"} <= ran
    assert ran <= {"finetune@DemonAttack-xtra-0", "finetune@DemonAttack-xtra-1", "evaluate", "report"}
    sh("git checkout params.yaml", d)


def _output_bytes(d, paths):
    """Every file under ``paths`` (relative to ``d``) -> its bytes."""
    out = {}
    for rel in paths:
        root = d / rel
        for f in sorted([root] if root.is_file() else root.rglob("*")):
            if not f.is_file():
                continue
            out[str(f.relative_to(d))] = f.read_bytes()
    return out


def test_rerunning_stages_reproduces_their_outputs_byte_for_byte(repo):
    # issue 13 item 8: the offline stages built their networks from an unseeded RNG, so a rerun
    # gave other teachers, another student and another xtra run; dataset manifests held a time
    d, _ = repo
    stages = ["collect@Assault", "teacher@Assault", "distill", "bc", "offline_rl", "finetune@DemonAttack-xtra-0"]
    outputs = ["data/datasets/Assault", "metrics/collect/Assault.json", "models/teachers/Assault",
               "data/teacher_targets/Assault", "metrics/teacher/Assault.json", "metrics/teacher/Assault.tsv",
               "models/student", "metrics/distill.json", "metrics/distill.tsv", "models/baselines/bc",
               "metrics/baselines/bc.json", "models/baselines/offline_rl", "metrics/baselines/offline_rl.json",
               "runs/finetune/DemonAttack-xtra-0"]
    before = _output_bytes(d, outputs)
    assert len(before) >= 15
    shutil.rmtree(d / ".xfer-work")  # no resume state: every stage recomputes from its inputs
    sh(["dvc", "repro", "-f", "-s", *stages], d)
    after = _output_bytes(d, outputs)
    assert sorted(after) == sorted(before)
    changed = [name for name in before if before[name] != after[name]]
    assert changed == []
    assert sh("git status --porcelain dvc.lock", d).stdout == ""


def test_a_run_can_start_from_a_baseline_and_only_its_stages_rerun(repo):
    # finetune.runs.<run>.init names any pretraining model; init@<run> copies it, finetune depends on the copy
    d, _ = repo
    params = yaml.safe_load((d / "params.yaml").read_text())
    params["finetune"]["runs"]["scratch"]["init"] = "bc"
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        dry = sh("dvc repro --dry", d).stdout
        ran = {line.split("'")[1] for line in dry.splitlines() if line.startswith("Running stage")}
        assert "init@scratch" in ran and "init@xtra" not in ran and not any(s.startswith("collect") for s in ran)
        sh("dvc repro init@scratch", d)
        copy = d / "runs" / "init" / "scratch"
        assert (copy / "model.safetensors").read_bytes() == (d / "models/baselines/bc/model.safetensors").read_bytes()
        assert json.loads((copy / "init.json").read_text())["source"] == "models/baselines/bc/model.safetensors"
        status = sh("dvc status finetune@DemonAttack-xtra-0 finetune@DemonAttack-scratch-0", d).stdout
        assert "finetune@DemonAttack-scratch-0" in status and "finetune@DemonAttack-xtra-0" not in status
    finally:
        sh("git checkout params.yaml dvc.lock && dvc checkout -q init@scratch", d)
    assert "Running stage" not in sh("dvc repro --dry", d).stdout


def test_disk_full_while_relabelling_keeps_the_teacher_and_its_data_together(repo, monkeypatch):
    # issue 13 item 2: the teacher replaced its model, then failed writing the relabelled data
    from xfer.data import writer as data_writer
    from xfer.stages import teacher
    from xfer.stages.common import load_params

    d, _ = repo
    outputs = ["models/teachers/Phoenix", "data/teacher_targets/Phoenix"]
    before = _output_bytes(d, outputs)
    monkeypatch.chdir(d)
    p = load_params(d / "params.yaml").model_copy(update={"seed": 1})  # another model than the one on disk

    def disk_full(self, segment):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data_writer.DatasetWriter, "add", disk_full)
    with pytest.raises(OSError, match="No space"):
        teacher.run(p, "Phoenix", d / "data" / "datasets" / "Phoenix", d / "models" / "teachers" / "Phoenix" /
                    "model.safetensors", d / "data" / "teacher_targets" / "Phoenix", d / ".xfer-work" / "t-fault",
                    progress=False)
    assert _output_bytes(d, outputs) == before
    leftovers = [x.name for x in (d / "models" / "teachers").iterdir()] + [
        x.name for x in (d / "data" / "teacher_targets").iterdir()]
    assert sorted(x for x in leftovers if not x.startswith(".")) == ["Assault", "Assault", "Phoenix", "Phoenix"]


def test_corrupt_shard_fails_cleanly_and_keeps_outputs(repo):
    d, _ = repo
    shard = sorted((d / "data" / "datasets" / "Assault").glob("shard-*.npz"))[0]
    original = shard.read_bytes()
    teacher_before = (d / "models" / "teachers" / "Assault" / "model.safetensors").read_bytes()
    try:
        shard.write_bytes(original[: len(original) // 2])
        res = sh([sys.executable, "-m", "xfer.cli", "stage", "teacher", "--game", "Assault", "--no-progress"],
                 d, check=False)
        assert res.returncode == 2
        assert shard.name in res.stderr and "Traceback" not in res.stderr
        assert (d / "models" / "teachers" / "Assault" / "model.safetensors").read_bytes() == teacher_before
    finally:
        shard.write_bytes(original)


def test_corrupt_teacher_targets_stop_distill_before_training(repo):
    d, _ = repo
    shard = sorted((d / "data" / "teacher_targets" / "Phoenix").glob("shard-*.npz"))[-1]
    original = shard.read_bytes()
    student_before = (d / "models" / "student" / "model.safetensors").read_bytes()
    try:
        shard.write_bytes(original[:-100])
        res = sh([sys.executable, "-m", "xfer.cli", "stage", "distill", "--no-progress"], d, check=False)
        assert res.returncode == 2
        assert shard.name in res.stderr and "Traceback" not in res.stderr
        assert (d / "models" / "student" / "model.safetensors").read_bytes() == student_before
    finally:
        shard.write_bytes(original)


def test_missing_teacher_is_named(repo, tmp_path):
    d, _ = repo
    target = d / "data" / "teacher_targets" / "Phoenix"
    moved = tmp_path / "Phoenix"
    shutil.move(target, moved)
    try:
        res = sh([sys.executable, "-m", "xfer.cli", "stage", "distill", "--no-progress"], d, check=False)
        assert res.returncode == 2
        assert "Phoenix" in res.stderr and "teacher@Phoenix" in res.stderr
    finally:
        shutil.move(moved, target)


def test_killed_stage_resumes_from_its_checkpoint(repo):
    d, _ = repo
    work = d / ".xfer-work" / "teacher" / "Phoenix"
    shutil.rmtree(work, ignore_errors=True)
    args = [sys.executable, "-m", "xfer.cli", "stage", "teacher", "--game", "Phoenix", "--no-progress",
            "--params", "params-long.yaml"]
    long = (d / "params.yaml").read_text().replace("train_steps: 6\n  batch_size: 8\n  reanalyse_fraction: 0.25",
                                                    "train_steps: 60\n  batch_size: 8\n  reanalyse_fraction: 0.25")
    assert "train_steps: 60" in long
    (d / "params-long.yaml").write_text(long)
    proc = subprocess.Popen(args, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    deadline = time.time() + 300
    while time.time() < deadline and not training_state.has_training_state(work / "state"):
        time.sleep(0.1)
    assert training_state.has_training_state(work / "state")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, _, meta = training_state.load_training_state(work / "state")  # the checkpoint is intact
    killed_at = meta["counters"]["train_steps"]
    assert 0 < killed_at < 60
    res = sh(args, d)
    assert f"at {killed_at} training steps" in res.stderr and "resumed" in res.stderr
    _, _, final = training_state.load_training_state(work / "state")
    assert final["counters"]["train_steps"] == 60


def test_killed_frozen_representation_run_resumes_and_keeps_h(repo):
    # XTRA Fig. 7b (frozen h): resuming used to crash (the optimiser was rebuilt for the frozen
    # parameters after the resume state, saved without them, was loaded into the full one), and the
    # frozen network's batch-norm statistics kept moving.
    d, _ = repo
    params = yaml.safe_load((d / "params.yaml").read_text())
    params["finetune"]["runs"]["frozen_h"] = {"init": "student", "cross_task": True, "task_weights": True,
                                              "freeze_representation": True}
    params["finetune"]["env_steps"] = 400
    params["finetune"]["train"]["checkpoint_every"] = 40
    (d / "params-frozen.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    work = d / ".xfer-work" / "finetune" / "DemonAttack-frozen_h-0"
    shutil.rmtree(work, ignore_errors=True)
    # what dvc repro runs first: init@frozen_h copies the student
    sh([sys.executable, "-m", "xfer.cli", "stage", "init", "--run", "frozen_h", "--params", "params-frozen.yaml"], d)
    args = [sys.executable, "-m", "xfer.cli", "stage", "finetune", "--target", "DemonAttack", "--run", "frozen_h",
            "--seed", "0", "--no-progress", "--params", "params-frozen.yaml"]
    proc = subprocess.Popen(args, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    deadline = time.time() + 300
    killed_at = 0
    while time.time() < deadline and killed_at == 0:  # wait for a checkpoint with training steps in it
        time.sleep(0.2)
        if training_state.has_training_state(work / "state"):
            try:
                killed_at = training_state.load_training_state(work / "state")[2]["counters"]["train_steps"]
            except ckpt.CheckpointError:
                pass  # being replaced right now
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed_at > 0
    res = sh(args, d)
    assert "resumed" in res.stderr
    summary = json.loads((d / "runs" / "finetune" / "DemonAttack-frozen_h-0" / "summary.json").read_text())
    assert summary["env_steps"] == 400 and summary["freeze_representation"]
    student, _ = ckpt.load_model(d / "models" / "student" / "model.safetensors")
    tuned, _ = ckpt.load_model(d / "runs" / "finetune" / "DemonAttack-frozen_h-0" / "model.safetensors")
    for (k, a), b in zip(tuned.representation_net.state_dict().items(), student.representation_net.state_dict().values()):
        assert torch.equal(a, b), f"frozen h changed: {k}"
    assert any(not torch.equal(a, b) for a, b in zip(tuned.prediction_net.parameters(), student.prediction_net.parameters()))
