"""``xfer train`` on Meta-World (the real package): Sampled MuZero self-play, training and evaluation on
ML1 ``reach-v3`` (state vectors, 4-dim Box actions) with a tiny network and tiny budgets, and a rerun that
resumes from the run's state (Box segments with their sampled sets back from the replay arrays)."""

import json
import logging
import math

from xfer.presets import build_train_config
from xfer.train import run_training

TINY_METAWORLD = {
    "env": {"suite": "metaworld", "benchmark": "ML1", "task": "reach-v3"},
    "net": {"size": "tiny", "precision": "fp32"},
    "mcts": {"num_simulations": 4, "num_samples": 4, "policy_target": "visits", "root_expand_all": False},
    "replay": {"segment_length": 10},
    "env_steps": 120,
    "start_transitions": 20,
    "num_envs": 2,
    "batch_size": 8,
    "train_ratio": 0.5,  # 50 gradient steps: train.tsv logs the metrics every 50 (episodes last 500 steps)
    "eval_episodes": 1,
    "eval_max_steps": 10,
    "eval_every": 1_000,
    "checkpoint_every": 30,
}


def test_a_metaworld_run_trains_evaluates_and_resumes(tmp_path, caplog):
    cfg = build_train_config("cpu", TINY_METAWORLD)
    out = tmp_path / "run"
    summary = run_training(cfg, out, progress=False)
    # training starts once whole segments hold start_transitions: about (120 - 20) * 0.5 gradient steps
    assert summary["env_steps"] == 120 and 50 <= summary["train_steps"] <= 51
    assert math.isfinite(summary["final_eval_score"]) and math.isfinite(summary["first_eval_score"])
    assert 0.0 <= summary["final_eval_success"] <= 1.0
    header, *rows = (out / "metrics" / "train.tsv").read_text().splitlines()
    last = dict(zip(header.split("\t"), rows[-1].split("\t")))
    assert math.isfinite(float(last["loss"])) and math.isfinite(float(last["loss_policy"]))
    evals = (out / "metrics" / "eval.tsv").read_text().splitlines()
    assert "success_rate" in evals[0] and [r.split("\t")[0] for r in evals[1:]] == ["0", "120"]

    # the same command again: resumes from the saved state (its replay holds Box segments) and adds nothing
    with caplog.at_level(logging.INFO, logger="xfer.train"):
        again = run_training(cfg, out, progress=False)
    assert f"resumed from {out / 'state'} at 120 agent steps" in caplog.text
    assert (again["env_steps"], again["train_steps"]) == (120, summary["train_steps"])
    assert (out / "metrics" / "eval.tsv").read_text().splitlines()[:3] == evals
    assert json.loads((out / "summary.json").read_text())["train_steps"] == summary["train_steps"]


def test_the_q_learning_baseline_trains_on_metaworld_over_sampled_actions(tmp_path):
    """Seed 000 A.2 adapted to continuous actions: epsilon-greedy on one-step Q over a uniform sample of
    ``mcts.num_samples`` actions, Eq. 2 targets bootstrapped on the sample's max Q."""
    from xfer.config import deep_merge

    cfg = build_train_config("cpu", deep_merge(TINY_METAWORLD, {
        "agent": {"kind": "ql"}, "loss": {"policy": 0.0}, "replay": {"unroll_steps": 1}}))
    summary = run_training(cfg, tmp_path / "ql", progress=False)
    assert summary["train_steps"] > 0 and math.isfinite(summary["final_eval_score"])
