"""Game segments: the unit of storage for replay and offline datasets.

A segment is a contiguous piece of one episode with ``T`` transitions. It keeps single RGB frames
(stacks are rebuilt on read) or state vectors, actions (ids in the suite's full discrete space, e.g.
Atari's 18, or vectors of a Box), raw and clipped rewards, learning-only terminals (life loss) and
true terminals, and the behaviour search statistics (root visit distribution and root value)
recorded when each action was chosen; for Box actions (Sampled MuZero) also the sampled actions
the visit distribution is over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Segment:
    """One stored piece of an episode.

    Attributes:
        frames: ``[T + stack, C, H, W]`` uint8; ``frames[t : t + stack]`` stacks to observation
            ``o_t`` for ``t = 0..T`` (the first ``stack - 1`` frames are history before ``o_0``).
            State observations: ``[T + 1, D]`` float32 with ``stack = 1``, ``o_t = frames[t]``.
        actions: ``[T]`` int64 full-space action ids, ``a_t`` taken at ``o_t``; Box actions ``[T, D]``
            float32 in the normalised box ``[-1, 1]^D`` (what the dynamics network takes).
        rewards: ``[T]`` float32 learning rewards (clipped to sign(r) for Atari).
        raw_rewards: ``[T]`` float32 unclipped rewards (for reporting).
        cuts: ``[T]`` bool, True when step ``t`` ends the learning episode (life loss or true
            terminal): value targets stop there and do not bootstrap.
        terminal: True if the episode really ended after the last step (no valid ``o_T``).
        root_values: ``[T]`` float32 search value at ``o_t`` from the behaviour policy.
        visit_dist: ``[T, A]`` float32 normalised root visit counts (behaviour policy targets); Box
            actions: ``[T, S]`` over the ``S`` sampled actions of each root.
        action_mask: ``[A]`` bool legal actions of the game (its minimal set in full-space ids); empty
            ``[0]`` for Box actions (nothing is illegal).
        game: game/task name.
        first_step: global transition counter of ``t = 0`` (for off-policy age).
        stack: frames per observation stack.
        final_value: search/teacher value of the last observation ``o_T`` when known, else NaN.
        sampled: Box actions: ``[T, S, D]`` float32 pre-squash sampled actions of each root search
            (:mod:`xfer.mcts.gaussian`), the set ``visit_dist`` is over; ``None`` for discrete actions.
    """

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    raw_rewards: np.ndarray
    cuts: np.ndarray
    terminal: bool
    root_values: np.ndarray
    visit_dist: np.ndarray
    action_mask: np.ndarray
    game: str = ""
    first_step: int = 0
    stack: int = field(default=4)
    final_value: float = float("nan")
    sampled: np.ndarray | None = None

    def __post_init__(self) -> None:
        t = len(self.actions)
        checks = {
            "frames": (self.frames.shape[0], t + self.stack),
            "rewards": (len(self.rewards), t),
            "raw_rewards": (len(self.raw_rewards), t),
            "cuts": (len(self.cuts), t),
            "root_values": (len(self.root_values), t),
            "visit_dist": (len(self.visit_dist), t),
        }
        for name, (got, want) in checks.items():
            if got != want:
                raise ValueError(f"segment field {name!r} has length {got}, expected {want} (T={t})")
        if self.sampled is not None and self.sampled.shape[:2] != self.visit_dist.shape:
            raise ValueError(f"segment sampled actions {self.sampled.shape} do not match visit_dist "
                             f"{self.visit_dist.shape}: expected [T, S, D] over the same S samples")
        pixels = self.frames.dtype == np.uint8 and self.frames.ndim == 4
        states = self.frames.dtype == np.float32 and self.frames.ndim == 2 and self.stack == 1
        if not (pixels or states):
            raise ValueError(f"segment frames must be [T+stack, C, H, W] uint8 or [T+1, D] float32 states, got "
                             f"{self.frames.dtype} {self.frames.shape} (stack {self.stack})")
        if t == 0:
            raise ValueError("a segment needs at least one transition")

    def __len__(self) -> int:
        return len(self.actions)

    def obs(self, t: int) -> np.ndarray:
        """Stacked observation ``o_t`` as ``[stack * C, H, W]`` uint8, or the state ``[D]`` float32
        (``0 <= t <= T``)."""
        f = self.frames[t : t + self.stack]
        return f.reshape(-1, *f.shape[2:])

    def nbytes(self) -> int:
        """Bytes held by the arrays of this segment."""
        arrays = (self.frames, self.actions, self.rewards, self.raw_rewards, self.cuts, self.root_values,
                  self.visit_dist, self.sampled)
        return sum(a.nbytes for a in arrays if a is not None)


def _action_array(actions: list) -> np.ndarray:
    """``[T]`` int64 action ids, or ``[T, D]`` float32 Box actions (what the builder was given)."""
    a = np.asarray(actions)
    return a.astype(np.float32) if a.dtype.kind == "f" else a.astype(np.int64)


class SegmentBuilder:
    """Accumulates one environment's steps into :class:`Segment` objects.

    Start it with the current stacked observation ``[stack*C, H, W]`` (or state ``[D]``); call
    :meth:`add` once per agent step with the *next* observation's newest frame (the next state). :meth:`add` returns a finished segment
    when ``segment_length`` steps were collected or the episode ended (then the builder restarts
    from the given next observation).
    """

    def __init__(self, stack: int, segment_length: int, action_mask: np.ndarray, game: str) -> None:
        self.stack = stack
        self.segment_length = segment_length
        self.action_mask = action_mask
        self.game = game
        self._reset_lists()

    def _reset_lists(self) -> None:
        self.frames = np.empty((0, 0, 0, 0), np.uint8)  # [segment_length + stack, C, H, W] once started
        self.num_frames = 0
        self.actions: list[int | np.ndarray] = []
        self.sampled: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.raw: list[float] = []
        self.cuts: list[bool] = []
        self.values: list[float] = []
        self.dists: list[np.ndarray] = []

    def start(self, obs_stack: np.ndarray, first_step: int) -> None:
        """Begin a segment at stacked observation ``[stack*3, H, W]`` uint8. Every frame is copied once,
        into this segment's own buffer (an environment may reuse its observation buffers,
        :class:`xfer.envs.vector.VectorStep`)."""
        self._reset_lists()
        history = obs_stack.reshape(self.stack, -1, *obs_stack.shape[1:])
        self.frames = np.empty((self.segment_length + self.stack, *history.shape[1:]), obs_stack.dtype)
        self.frames[:self.stack] = history
        self.num_frames = self.stack
        self.first_step = first_step

    def add(
        self,
        action: int | np.ndarray,
        reward: float,
        raw_reward: float,
        cut: bool,
        root_value: float,
        visit_dist: np.ndarray,
        next_frame: np.ndarray,
        episode_over: bool,
        terminal: bool,
        next_obs_stack: np.ndarray,
        step_counter: int,
        sampled: np.ndarray | None = None,
    ) -> Segment | None:
        """Record one transition; returns a finished :class:`Segment` or ``None``.

        ``next_frame`` ``[3, H, W]`` is the newest frame of ``o_{t+1}`` (for a true terminal without
        a final observation, pass the last frame again: ``o_T`` is then never trained on).
        ``next_obs_stack`` is the observation the env continues from (the first observation of a
        new episode after a reset); ``step_counter`` the global transition count after this step.
        Box actions: ``action [D]`` float32 and ``sampled [S, D]``, the root's sampled actions.
        """
        self.actions.append(action)
        if sampled is not None:
            self.sampled.append(np.asarray(sampled, np.float32))
        self.rewards.append(reward)
        self.raw.append(raw_reward)
        self.cuts.append(cut or terminal)
        self.values.append(root_value)
        self.dists.append(visit_dist.astype(np.float32))
        self.frames[self.num_frames] = next_frame
        self.num_frames += 1
        if len(self.actions) < self.segment_length and not episode_over:
            return None
        seg = Segment(
            # a full segment keeps its buffer; a shorter one (the episode ended) a copy of what it used
            frames=self.frames if self.num_frames == len(self.frames) else self.frames[:self.num_frames].copy(),
            actions=_action_array(self.actions),
            rewards=np.asarray(self.rewards, dtype=np.float32),
            raw_rewards=np.asarray(self.raw, dtype=np.float32),
            cuts=np.asarray(self.cuts, dtype=bool),
            terminal=bool(terminal),
            root_values=np.asarray(self.values, dtype=np.float32),
            visit_dist=np.stack(self.dists),
            action_mask=self.action_mask,
            game=self.game,
            first_step=self.first_step,
            stack=self.stack,
            sampled=np.stack(self.sampled) if self.sampled else None,
        )
        self.start(next_obs_stack, step_counter)
        return seg
