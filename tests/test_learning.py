"""Learning check (slow, run on purpose: `python -m pytest -m slow`; about 13 minutes on 2 cores).

Tiny EfficientZero on real UpNDown with the `cpu` preset (16 simulations, completed-Q targets and
acting, root actions all tried once, Q range floor of one clipped reward, zero-initialised heads,
one training step of batch 32 per agent step) for 2,500 agent steps. Evaluation: 32 greedy
episodes capped at 500 agent steps, against a uniform-random agent under the same cap.

Asserted, as held in every recorded run of this preset on UpNDown (benchmarks/results/learning.md,
seventh round): the world model learns (value-prefix loss falls more than 2x), and the greedy agent
ends above both its untrained self (which, with zero-initialised heads, plays like the random
agent) and the uniform-random agent. Evaluated on the preset's schedule (0, 1,252, 2,500 agent
steps, 32 episodes each).
"""

import json

import pytest

from xfer.cli import main
from xfer.metrics import read_tsv


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_tiny_efficientzero_learns_upndown(tmp_path):
    out = tmp_path / "upndown"
    args = ["train", "--game", "UpNDown", "--env-steps", "2500", "--size", "tiny", "--preset", "cpu",
            "--out", str(out), "--no-progress"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    losses = [float(r["loss_value_prefix"]) for r in read_tsv(out / "metrics" / "train.tsv")
              if r["loss_value_prefix"] not in ("", None) and not r["episode_return"]]
    assert len(losses) >= 10
    assert losses[-1] < 0.5 * losses[0], losses
    evals = read_tsv(out / "metrics" / "eval.tsv")
    assert [int(r["env_steps"]) for r in evals] == [0, 1252, 2500] and all(int(r["episodes"]) == 32 for r in evals)
    first, final, rnd = summary["first_eval_score"], summary["final_eval_score"], summary["random_eval_score"]
    print(f"UpNDown: untrained {first:.1f}, after 2500 agent steps {final:.1f}; uniform random, same protocol: {rnd:.1f}")
    assert final > first and final > rnd, (first, final, rnd)
