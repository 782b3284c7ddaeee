"""Learning check (slow, run on purpose: `python -m pytest -m slow`): tiny EfficientZero on a real
Atari game on the CPU must end clearly above both its untrained start and the random agent."""

import json

import pytest

from xfer.cli import main
from xfer.envs.scores import REFERENCE_SCORES


@pytest.mark.slow
def test_tiny_efficientzero_learns_demon_attack(tmp_path):
    out = tmp_path / "demon"
    args = ["train", "--game", "DemonAttack", "--env-steps", "5000", "--size", "tiny", "--preset", "cpu",
            "--out", str(out), "--no-progress", "--set", "eval_episodes=8"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    random_score = REFERENCE_SCORES["DemonAttack"][0]
    assert summary["final_eval_score"] > 1.5 * max(summary["first_eval_score"], random_score)
