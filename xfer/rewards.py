"""The reward an agent learns from, as a composable hook of the self-play actor.

A :class:`RewardHook` maps one vectorised step (:class:`StepRewards`: the environment's raw rewards,
the observations before and after, the actions) to the ``[N]`` float32 rewards stored in replay for
learning; the raw rewards are stored beside them for reporting. The hooks here:

* :func:`extrinsic`: the environment's reward as it is;
* :func:`clipped`: ``sign(r)`` (the Atari protocol, EfficientZero and XTRA);
* :func:`intrinsic`: a bonus computed from the transition (exploration pretraining, e.g. a
  disagreement or novelty bonus) times a scale, optionally plus another hook's reward, so
  reward-free pretraining (``extrinsic_scale = 0``) and mixed rewards need no fork of the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class StepRewards:
    """One vectorised step of ``N`` environments.

    ``raw [N]`` float32 environment rewards (units: game score per agent step); ``obs`` and
    ``next_obs`` ``[N, *observation.shape]`` (uint8 pixels or float32 states; where an episode ended
    this step, ``next_obs`` is already the first observation of the next episode); ``actions [N]``
    int64.
    """

    raw: np.ndarray
    obs: np.ndarray
    next_obs: np.ndarray
    actions: np.ndarray


class RewardHook(Protocol):
    """``hook(step) -> [N]`` float32 rewards to learn from."""

    def __call__(self, step: StepRewards) -> np.ndarray: ...


class RewardPart(Protocol):
    """A reward hook with a life of its own in a run (an intrinsic reward that learns as the agent
    explores, e.g. :class:`xfer.exploration.reward.ExplorationReward`): the online loop
    (:class:`xfer.train.Trainer`) passes it to self-play, lets it log, and saves and restores it with
    the resume state, so a resumed run continues it exactly."""

    def __call__(self, step: StepRewards) -> np.ndarray:
        """``[N]`` float32 rewards to learn from (and learn from the step)."""
        ...

    def open(self, out_dir: Path, keep: int) -> None:
        """Open its logs under ``out_dir``; rows up to agent step ``keep`` survive (-1: none)."""
        ...

    def record(self, env_steps: int) -> None:
        """Called after each agent step with the run's agent steps: log what is due."""
        ...

    def state(self) -> dict[str, torch.Tensor]:
        """Everything a resumed run needs, as tensors."""
        ...

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state` returned."""
        ...


def extrinsic(step: StepRewards) -> np.ndarray:
    """The environment's reward, unchanged: ``[N]`` float32."""
    return np.asarray(step.raw, dtype=np.float32)


def clipped(step: StepRewards) -> np.ndarray:
    """``sign(r)`` in {-1, 0, 1}: ``[N]`` float32 (Atari protocol; reference.md section 1)."""
    return np.sign(np.asarray(step.raw, dtype=np.float32))


def intrinsic(bonus: Callable[[StepRewards], np.ndarray], scale: float = 1.0,
              extrinsic_part: RewardHook | None = None, extrinsic_scale: float = 0.0) -> RewardHook:
    """``scale * bonus(step) + extrinsic_scale * extrinsic_part(step)``.

    ``bonus`` returns ``[N]`` float rewards for the transitions (an exploration bonus);
    ``extrinsic_part`` is another hook (e.g. :func:`clipped`), counted only when
    ``extrinsic_scale != 0`` (reward-free pretraining leaves it at 0).

    Raises:
        ValueError: a bonus of another shape than ``[N]`` (at call time).
    """

    def hook(step: StepRewards) -> np.ndarray:
        r = scale * np.asarray(bonus(step), dtype=np.float32)
        if r.shape != np.shape(step.raw):
            raise ValueError(f"intrinsic bonus has shape {r.shape}, expected {np.shape(step.raw)} (one per env)")
        if extrinsic_part is not None and extrinsic_scale != 0.0:
            r = r + np.float32(extrinsic_scale) * extrinsic_part(step)
        return r.astype(np.float32)

    return hook


def protocol_reward(clip_rewards: bool) -> RewardHook:
    """The hook of a suite's protocol switch: :func:`clipped` when ``clip_rewards`` (Atari), else
    :func:`extrinsic`."""
    return clipped if clip_rewards else extrinsic
