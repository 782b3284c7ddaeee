"""The reward of reward-free exploration, as a part of the online loop (seed 001: Walker et al. 2023).

:class:`ExplorationReward` is a :class:`xfer.rewards.RewardPart`: self-play stores its rewards in
replay, so the value-prefix and value targets (:mod:`xfer.replay.targets`) are built from the
intrinsic reward and the world model's reward head learns to predict it: the search then plans
towards novelty. Per transition it

1. counts the next observation's cell (:class:`xfer.exploration.coverage.Coverage`: the exploration
   measure, computed on every transition the agent sees, as for the uniform-random agent);
2. asks the bonus (:class:`xfer.exploration.rnd.RND` or :class:`xfer.exploration.disagreement.Disagreement`)
   for ``r_int`` on it, which also trains the bonus's networks on the step;
3. divides ``r_int`` by the running std of its discounted return
   (:class:`xfer.exploration.running.ReturnNormaliser`), multiplies by ``scale`` and adds
   ``extrinsic_scale`` times the protocol's extrinsic reward (0 in reward-free exploration).

Rewards are computed once, when the transition is collected, and stored (as RND does with PPO);
reanalyse refreshes policy and value targets, not stored rewards, so the oldest transitions keep
the novelty they had when visited. ``metrics/exploration.tsv`` logs, every ``coverage.every``
agent steps: distinct cells, the mean raw bonus, the bonus networks' loss, the return std and the
raw extrinsic reward collected so far (never optimised when ``extrinsic_scale = 0``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from xfer.envs.spec import EnvSpec
from xfer.exploration.config import CoverageConfig, IntrinsicConfig
from xfer.exploration.coverage import Coverage
from xfer.exploration.running import ReturnNormaliser
from xfer.metrics import TsvLog
from xfer.rewards import RewardHook, StepRewards

EXPLORATION_COLUMNS = ["env_steps", "cells", "bonus_mean", "bonus_loss", "return_std", "extrinsic_total"]


class Bonus(Protocol):
    """An intrinsic bonus that learns as it goes: ``bonus(step) -> [N]`` float32 raw ``r_int`` on
    ``step.next_obs`` (then trains on the step), with tensors for resume and its last training loss."""

    last_loss: float

    def __call__(self, step: StepRewards) -> np.ndarray: ...

    def state(self) -> dict[str, torch.Tensor]: ...

    def load(self, state: dict[str, torch.Tensor]) -> None: ...


def build_bonus(spec: EnvSpec, cfg: IntrinsicConfig, seed: int, device: str = "cpu") -> Bonus:
    """The bonus ``cfg.kind`` names for an environment ``spec``, its networks seeded with ``seed`` (from
    their own generator: torch's global RNG is not drawn from)."""
    if cfg.kind == "rnd":
        from xfer.exploration.rnd import RND

        return RND(spec, cfg, seed, device)
    from xfer.exploration.disagreement import Disagreement

    return Disagreement(spec, cfg, seed, device)


class ExplorationReward:
    """``scale * r_int / sigma_R + extrinsic_scale * extrinsic(step)`` per transition (module docstring).

    Args:
        spec: the environment's spec (observation kind and shape, action space).
        cfg: the intrinsic reward's settings; coverage: how cells are counted and how often logged.
        extrinsic: the suite protocol's reward hook (:func:`xfer.rewards.protocol_reward`), counted when
            ``cfg.extrinsic_scale > 0``.
        num_envs: environments per self-play step (the return normaliser keeps one return each).
        seed: seeds the bonus's networks and sampling.

    Raises:
        ValueError: a step of another number of environments than ``num_envs`` (at call time).
    """

    def __init__(self, spec: EnvSpec, cfg: IntrinsicConfig, coverage: CoverageConfig, extrinsic: RewardHook,
                 num_envs: int, seed: int, device: str = "cpu") -> None:
        self.cfg, self.coverage_cfg, self.extrinsic, self.num_envs = cfg, coverage, extrinsic, num_envs
        self.bonus = build_bonus(spec, cfg, seed, device)
        self.normaliser = ReturnNormaliser(cfg.return_discount, num_envs)
        self.coverage = Coverage(spec.observation, coverage)
        # running sums since the start of the run: [bonus sum, bonus count, raw extrinsic sum, next log step]
        self.totals = np.array([0.0, 0.0, 0.0, float(coverage.every)])
        self.log: TsvLog | None = None

    def __call__(self, step: StepRewards) -> np.ndarray:
        if np.shape(step.raw) != (self.num_envs,):
            raise ValueError(f"exploration reward expects {self.num_envs} environments per step, got {np.shape(step.raw)}")
        self.coverage.observe(step.next_obs)
        raw = np.asarray(self.bonus(step), dtype=np.float32)
        self.totals[:3] += (float(raw.sum()), len(raw), float(np.sum(step.raw)))
        r = self.normaliser(raw) if self.cfg.normalise_returns else raw
        out = np.float32(self.cfg.scale) * np.asarray(r, dtype=np.float32)
        if self.cfg.extrinsic_scale > 0.0:
            out = out + np.float32(self.cfg.extrinsic_scale) * self.extrinsic(step)
        return out.astype(np.float32)

    def open(self, out_dir: Path, keep: int) -> None:
        """Open ``metrics/exploration.tsv`` under ``out_dir`` (rows up to agent step ``keep`` survive)."""
        self.log = TsvLog(Path(out_dir) / "metrics" / "exploration.tsv", EXPLORATION_COLUMNS, "env_steps", keep)

    def record(self, env_steps: int) -> None:
        """Append a row once ``env_steps`` reached the next multiple of ``coverage.every``."""
        if self.log is None or env_steps < self.totals[3]:
            return
        self.log.append(self.row(env_steps))
        self.totals[3] = (env_steps // self.coverage_cfg.every + 1) * self.coverage_cfg.every

    def row(self, env_steps: int) -> dict[str, float | int]:
        """The figures so far: distinct cells, mean raw bonus, last bonus loss, return std, extrinsic total."""
        return {"env_steps": env_steps, "cells": self.coverage.count,
                "bonus_mean": self.totals[0] / max(1.0, self.totals[1]), "bonus_loss": float(self.bonus.last_loss),
                "return_std": float(self.normaliser.rms.std), "extrinsic_total": self.totals[2]}

    def state(self) -> dict[str, torch.Tensor]:
        out = {f"bonus.{k}": v for k, v in self.bonus.state().items()}
        out.update({f"normaliser.{k}": v for k, v in self.normaliser.state().items()})
        out.update({f"coverage.{k}": v for k, v in self.coverage.state().items()})
        out["totals"] = torch.from_numpy(self.totals.copy())
        return out

    def load(self, state: dict[str, torch.Tensor]) -> None:
        def sub(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

        self.bonus.load(sub("bonus."))
        self.normaliser.load(sub("normaliser."))
        self.coverage.load(sub("coverage."))
        self.totals = state["totals"].numpy().astype(np.float64).copy()
