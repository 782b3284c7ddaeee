"""What the agent needs to know about an environment, and nothing of how it is simulated.

An :class:`EnvSpec` describes one task of one suite: what an observation is (pixels ``[C, H, W]``
uint8 stacked frame-major, or a state vector ``[D]`` float32), the action space (:class:`Discrete`
with the task's legal actions, or :class:`Box`), the episode protocol and the score normaliser.
Networks, the search, replay and checkpoints are built from a spec (:func:`xfer.agent.build_agent`),
so no action count, frame size or channel count needs to appear outside ``xfer/envs/``.

Multi-task runs (XTRA's pretraining games) share one observation shape and one action space:
their specs differ only in the task, the legal actions and the normaliser
(:func:`shared_spaces` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Discrete:
    """``n`` actions with ids ``0 .. n - 1`` (for Atari the full 18-action space)."""

    n: int

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"Discrete(n) needs n >= 1, got {self.n}")


@dataclass(frozen=True)
class Box:
    """Continuous actions: a vector of ``shape`` with each entry in ``[low, high]`` (Meta-World)."""

    low: float
    high: float
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"Box needs low < high, got [{self.low}, {self.high}]")
        if not self.shape or any(d < 1 for d in self.shape):
            raise ValueError(f"Box needs a non-empty shape of positive sizes, got {self.shape}")


ActionSpace = Discrete | Box


@dataclass(frozen=True)
class ObservationSpec:
    """One agent observation.

    ``kind = "pixels"``: ``shape = (stack * channels, H, W)`` uint8, ``stack`` frames of
    ``channels`` each, oldest first, frame-major. ``kind = "state"``: ``shape = (D,)`` float32,
    ``stack = 1``.
    """

    kind: Literal["pixels", "state"]
    shape: tuple[int, ...]
    stack: int = 1

    def __post_init__(self) -> None:
        if self.kind == "pixels":
            if len(self.shape) != 3 or self.shape[0] % self.stack:
                raise ValueError(f"pixel observations are [stack * C, H, W] with C whole; got {self.shape}, "
                                 f"stack {self.stack}")
        elif self.kind == "state":
            if len(self.shape) != 1 or self.stack != 1:
                raise ValueError(f"state observations are [D] with stack 1; got {self.shape}, stack {self.stack}")
        else:
            raise ValueError(f"observation kind must be 'pixels' or 'state', got {self.kind!r}")

    @property
    def dtype(self) -> np.dtype:
        """uint8 for pixels, float32 for states."""
        return np.dtype(np.uint8 if self.kind == "pixels" else np.float32)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """One frame: ``(C, H, W)`` for pixels, the whole ``(D,)`` for states."""
        return (self.shape[0] // self.stack, *self.shape[1:]) if self.kind == "pixels" else self.shape


@dataclass(frozen=True)
class EnvSpec:
    """One task of one suite, as the agent sees it.

    Attributes:
        suite: suite name, a key of :data:`xfer.envs.suites.SUITES` (``"atari"``).
        task: the game or task name (``"UpNDown"``).
        observation: see :class:`ObservationSpec`.
        action_space: :class:`Discrete` or :class:`Box`.
        legal_actions: for :class:`Discrete`, the distinct action ids legal in this task, in the
            suite's order (ALE's minimal action set for Atari); XTRA slices the shared head to them at
            every node. ``None`` for :class:`Box`.
        max_episode_steps: episode cap in agent steps.
        score_range: ``(low, high)`` raw scores that normalise to 0 and 1 (random and human for
            Atari), ``None`` where the suite has none.
        reports_success: the suite's environments say whether each episode succeeded
            (``VectorStep.episode_success``; Meta-World), so runs log success rates beside scores.
    """

    suite: str
    task: str
    observation: ObservationSpec
    action_space: ActionSpace
    legal_actions: tuple[int, ...] | None
    max_episode_steps: int
    score_range: tuple[float, float] | None = None
    reports_success: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.action_space, Discrete):
            legal = self.legal_actions
            if not legal or len(set(legal)) != len(legal) or min(legal) < 0 or max(legal) >= self.action_space.n:
                raise ValueError(f"{self.suite}/{self.task}: legal_actions must be distinct ids in "
                                 f"0..{self.action_space.n - 1}, got {legal}")
        elif self.legal_actions is not None:
            raise ValueError(f"{self.suite}/{self.task}: a Box action space has no legal_actions")

    @property
    def num_actions(self) -> int:
        """Width of the policy head: ``n`` of the discrete space.

        Raises:
            ValueError: a :class:`Box` space (continuous control needs a sampled search, e.g.
                Sampled MuZero; set ``mcts.backend`` to one that supports it).
        """
        if not isinstance(self.action_space, Discrete):
            raise ValueError(f"{self.suite}/{self.task} has continuous actions {self.action_space}: no discrete "
                             "policy head width; its network has a Gaussian policy over action_dim entries and its "
                             "search samples actions (Sampled MuZero, mcts.num_samples)")
        return self.action_space.n

    @property
    def action_dim(self) -> int:
        """``D``, the entries of one action of a :class:`Box` space (its shape's product); 0 for
        :class:`Discrete` (the network is then built with ``num_actions`` instead)."""
        return int(np.prod(self.action_space.shape)) if isinstance(self.action_space, Box) else 0

    @property
    def policy_actions(self) -> int:
        """The network's ``num_actions``: :attr:`num_actions` for a :class:`Discrete` space, 0 for a
        :class:`Box` (whose network is sized by :attr:`action_dim`)."""
        return self.num_actions if isinstance(self.action_space, Discrete) else 0

    def action_mask(self) -> np.ndarray:
        """``[num_actions]`` bool, True at :attr:`legal_actions`; ``[0]`` for a :class:`Box` (no action
        ids, nothing illegal)."""
        if isinstance(self.action_space, Box):
            return np.zeros(0, dtype=bool)
        mask = np.zeros(self.num_actions, dtype=bool)
        mask[list(self.legal_actions or ())] = True
        return mask


def shared_spaces(specs: list[EnvSpec]) -> EnvSpec:
    """The first of ``specs`` after checking that all share suite, observation and action space (one
    network serves them all: XTRA's multi-game student, the finetuning's offline tasks).

    Raises:
        ValueError: no specs, or two that differ in suite, observation or action space.
    """
    if not specs:
        raise ValueError("no tasks given")
    first = specs[0]
    for s in specs[1:]:
        if (s.suite, s.observation, s.action_space) != (first.suite, first.observation, first.action_space):
            raise ValueError(f"tasks {first.task} and {s.task} cannot share one network: "
                             f"{first.suite} {first.observation} {first.action_space} vs "
                             f"{s.suite} {s.observation} {s.action_space}")
    return first
