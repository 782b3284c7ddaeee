"""The uniform-random agent's coverage on a real Atari game."""

from __future__ import annotations

import pytest

from xfer.config import AtariConfig
from xfer.exploration.config import CoverageConfig
from xfer.exploration.random_agent import RandomExploration, random_exploration

BREAKOUT = AtariConfig(game="Breakout")


def test_random_exploration_counts_cells_along_a_monotone_curve():
    cov = CoverageConfig(every=50)
    run = random_exploration(BREAKOUT, cov, steps=200, num_envs=2, seed=0)
    assert isinstance(run, RandomExploration)
    assert run.steps == 200
    assert [s for s, _ in run.curve] == [50, 100, 150, 200]
    cells = [c for _, c in run.curve]
    assert cells == sorted(cells) and run.curve[-1] == (200, run.cells)
    assert 1 < run.cells <= 200
    assert run.extrinsic_total >= sum(run.episode_returns) >= 0.0
    assert run == random_exploration(BREAKOUT, cov, steps=200, num_envs=2, seed=0)


def test_the_budget_rounds_up_to_whole_vector_steps():
    run = random_exploration(BREAKOUT, CoverageConfig(every=4), steps=9, num_envs=3, seed=1)
    assert run.steps == 9 and [s for s, _ in run.curve] == [6, 9]
    run = random_exploration(BREAKOUT, CoverageConfig(every=100), steps=7, num_envs=2, seed=1)
    assert run.steps == 8 and run.curve == [(8, run.cells)]
    with pytest.raises(ValueError, match="steps >= 1"):
        random_exploration(BREAKOUT, CoverageConfig(), steps=0, num_envs=2, seed=0)
