"""Learning check (slow, run on purpose: `python -m pytest -m slow`; about 17 minutes on 2 cores).

Tiny EfficientZero on real Qbert with the CPU preset for 5,000 agent steps (about 1,000 training
steps of batch 32). What it reliably does at this budget, and what this test asserts: the model
learns (value-prefix loss falls more than 2x) and its greedy policy improves on its untrained self
(untrained greedy Qbert jumps off the pyramid and scores 0). Whether it beats a uniform-random agent
under the same capped protocol is *not* asserted: at this budget it lands at about random level
(benchmarks/results/learning.md records the runs); the figure is printed for the record.
"""

import json

import pytest

from xfer.cli import main
from xfer.metrics import read_tsv


@pytest.mark.slow
def test_tiny_efficientzero_learns_qbert(tmp_path):
    out = tmp_path / "qbert"
    args = ["train", "--game", "Qbert", "--env-steps", "5000", "--size", "tiny", "--preset", "cpu",
            "--out", str(out), "--no-progress", "--set", "eval_every=2500", "--set", "eval_episodes=8",
            "--set", "eval_max_steps=1500"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    losses = [float(r["loss_value_prefix"]) for r in read_tsv(out / "metrics" / "train.tsv")
              if r["loss_value_prefix"] not in ("", None) and not r["episode_return"]]
    assert len(losses) >= 10
    assert losses[-1] < 0.5 * losses[0], losses
    assert summary["final_eval_score"] > summary["first_eval_score"], summary
    print(f"Qbert after 5000 agent steps: {summary['final_eval_score']:.1f}; "
          f"uniform random, same protocol: {summary['random_eval_score']:.1f}")
