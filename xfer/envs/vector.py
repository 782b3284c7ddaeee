"""The environment protocol: what self-play and evaluation need from any suite's simulator.

A suite gives, beside its :class:`~xfer.envs.spec.EnvSpec`, a vectorised environment of ``N``
copies of one task that resets finished episodes in the same step and reports each step as a
:class:`VectorStep`. :class:`xfer.envs.atari.VectorAtari` is the Atari one; the suite table
(:mod:`xfer.envs.suites`) says which class serves which env config.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np


class VectorStep(NamedTuple):
    """Batched result of :meth:`VectorEnv.step` (N = number of envs).

    For an env whose episode ended this step (``terminated | truncated``), ``obs``/``frame`` already
    belong to the next episode (same-step auto-reset), ``final_frame`` is the finished episode's last
    frame, and ``episode_return``/``episode_length`` describe the finished episode. Suites without
    lives report ``life_loss`` all False and ``lives`` zeros. Suites with a success signal
    (Meta-World) report ``episode_success``; the others leave it ``None``.
    """

    obs: np.ndarray
    """The agent's observation ``[N, *observation.shape]`` (pixels: uint8 ``[N, stack*C, H, W]``). The
    env may write into it (and into ``frame``) again two steps later (Procgen double-buffers its
    history): copy what must outlive the next step. Every other field is a fresh array."""
    reward: np.ndarray
    """float32 ``[N]``, raw (unclipped) reward of this step."""
    terminated: np.ndarray
    """bool ``[N]``, the episode ended this step."""
    truncated: np.ndarray
    """bool ``[N]``, the step cap was reached this step."""
    life_loss: np.ndarray
    """bool ``[N]``, a life was lost this step (learning-only terminal; Atari)."""
    frame: np.ndarray
    """``[N, *frame_shape]``, newest frame of ``obs`` (pixels ``[N, C, H, W]`` uint8); may be a view of
    ``obs`` (then valid as long as it)."""
    final_frame: np.ndarray
    """``[N, *frame_shape]``, last frame of a finished episode; zeros where none finished."""
    episode_return: np.ndarray
    """float64 ``[N]``, raw return of the episode finished this step; NaN where none finished."""
    episode_length: np.ndarray
    """int64 ``[N]``, agent steps of the episode finished this step; -1 where none finished."""
    lives: np.ndarray
    """int64 ``[N]``, lives after this step (after the reset for finished envs)."""
    episode_success: np.ndarray | None = None
    """float64 ``[N]`` where the suite has a success signal (Meta-World's ``info["success"]``): 1.0
    where the episode finished this step and succeeded at any of its steps, 0.0 where it finished
    without, NaN where none finished. ``None`` for suites without one (Atari, Procgen)."""


class VectorEnv(Protocol):
    """``num_envs`` copies of one task, stepped together (env ``i`` seeded with ``seed + i``).

    ``action_mask``: ``[A]`` bool, the task's legal actions in the suite's action ids (the
    :class:`~xfer.envs.spec.EnvSpec`'s ``action_mask()``). Suites with a
    :class:`~xfer.envs.spec.Box` action space (Meta-World) have no legal-action mask:
    ``action_mask = None``, and :meth:`step` takes float32 ``[N, *shape]`` actions inside the Box.
    """

    num_envs: int
    action_mask: np.ndarray | None

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every env; returns ``(obs [N, ...], info)`` with ``info["frame"]`` the newest frames."""
        ...

    def step(self, actions: np.ndarray) -> VectorStep:
        """Step env ``i`` with action id ``actions[i]`` (``[N]`` int; Box suites: the action vector
        ``actions[i]``, float32 ``[N, *shape]``); finished episodes auto-reset.

        Raises:
            ValueError: wrong number of actions or an action outside the action space.
        """
        ...

    def close(self) -> None:
        """Release the simulators."""
        ...

    def __enter__(self) -> VectorEnv: ...

    def __exit__(self, *exc: object) -> None: ...
