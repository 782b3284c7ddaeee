"""The uniform-random agent's coverage: the floor an exploring agent's coverage is compared with
(reward-free exploration, Walker et al. 2023; reference.md section 6)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xfer.actor import random_actions
from xfer.config import EnvConfig
from xfer.envs.suites import env_spec, make_vector_env
from xfer.exploration.config import CoverageConfig
from xfer.exploration.coverage import Coverage


@dataclass(frozen=True)
class RandomExploration:
    """What a uniform-random agent visited within its budget.

    Attributes:
        steps: agent steps taken (all environments together; the first multiple of ``num_envs`` at
            or above the budget).
        cells: distinct cells among the observations after every step (:class:`Coverage`).
        curve: ``(agent steps, distinct cells)`` at the first vector step reaching each multiple of
            ``CoverageConfig.every``, and at the end; agent steps strictly increasing, cells
            non-decreasing, the last point ``(steps, cells)``.
        episode_returns: raw extrinsic returns (game score) of the episodes finished within the budget,
            in the order they finished.
        extrinsic_total: sum of the raw extrinsic rewards of every step of the budget (game score).
    """

    steps: int
    cells: int
    curve: list[tuple[int, int]]
    episode_returns: list[float]
    extrinsic_total: float


def random_exploration(env_cfg: EnvConfig, cov: CoverageConfig, steps: int, num_envs: int,
                       seed: int) -> RandomExploration:
    """Run uniformly random actions (:func:`xfer.actor.random_actions`: legal action ids, or uniform in a
    ``Box``) in ``num_envs`` environments of ``env_cfg`` (:func:`~xfer.envs.suites.make_vector_env`,
    env ``i`` seeded ``seed + i``; actions from ``np.random.default_rng(seed)``) for at least ``steps``
    agent steps, counting the cells it visits.

    Cells are counted on the next observation of every transition (where an episode ended, the next
    episode's first observation) and never on the observation of the first reset: the exploring agent's
    reward hook (:class:`~xfer.rewards.StepRewards`) sees only next observations, so both count the
    same way. Each vector step takes ``num_envs`` agent steps; the run stops at the first step count
    ``>= steps``.

    Raises:
        ValueError: ``steps < 1`` or ``num_envs < 1``; an unknown game (from the suite).
        TypeError: ``env_cfg`` is no suite's env config.
    """
    if steps < 1 or num_envs < 1:
        raise ValueError(f"random_exploration needs steps >= 1 and num_envs >= 1, got {steps} and {num_envs}")
    observation = env_spec(env_cfg.suite, env_cfg, env_cfg.game).observation
    coverage = Coverage(observation, cov)
    rng = np.random.default_rng(seed)
    taken, next_point = 0, cov.every
    curve: list[tuple[int, int]] = []
    episode_returns: list[float] = []
    extrinsic_total = 0.0
    with make_vector_env(env_cfg, num_envs, seed) as envs:
        envs.reset(seed=seed)
        while taken < steps:
            res = envs.step(random_actions(envs, num_envs, rng))
            coverage.observe(res.obs)
            extrinsic_total += float(np.sum(res.reward, dtype=np.float64))
            over = np.asarray(res.terminated) | np.asarray(res.truncated)
            episode_returns.extend(float(r) for r in np.asarray(res.episode_return)[over])
            taken += num_envs
            if taken >= next_point:
                curve.append((taken, coverage.count))
                next_point = (taken // cov.every + 1) * cov.every
    if not curve or curve[-1][0] != taken:
        curve.append((taken, coverage.count))
    return RandomExploration(steps=taken, cells=coverage.count, curve=curve, episode_returns=episode_returns,
                             extrinsic_total=extrinsic_total)
