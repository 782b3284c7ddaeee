"""Procgen (Cobbe et al. 2020) as the procedural-generalisation suite of seed 000 (sec 4, appendix A).

The 16 games run through ``procgen`` (the ``procgen-mirror`` wheel on Python 3.11) and gym3's own
batching: one :class:`procgen.ProcgenGym3Env` steps all ``N`` copies in C++, so there is no Python
loop over environments. The protocol (reference.md section 4):

* 64x64 RGB frames, 15 actions (all legal in every game), hard mode by default (``easy`` as an option).
* ``split: train`` plays the ``num_levels`` levels from ``start_level``; ``split: test`` the full
  level distribution (``num_levels=0``), the paper's zero-shot test.
* The observation is the last ``stack`` frames, oldest first, frame-major ``[3 * stack, 64, 64]``
  uint8 (the paper's agent sees 15); a new episode's stack is its first frame repeated.
* An episode ends where Procgen ends it (the level is completed or failed, or its own timeout of
  1,000 steps: reported as ``truncated``). gym3 resets in the same step and shows no terminal
  frame, so ``final_frame`` is the last frame seen before the final action (see :class:`VectorProcgen`).
* Scores are min-max normalised ``(R - R_min) / (R_max - R_min)`` with the constants of the mode
  (:data:`SCORE_RANGES`, Cobbe et al. 2020).
"""

from __future__ import annotations

import contextlib
import difflib
import io
from typing import Any

import cv2
import numpy as np

from xfer.config import ProcgenConfig, ProcgenProtocol
from xfer.envs.spec import Discrete, EnvSpec, ObservationSpec
from xfer.envs.vector import VectorStep

NUM_ACTIONS = 15
FRAME_SIZE = 64
EPISODE_STEPS = 1000
"""Procgen's own episode timeout, in agent steps."""

SCORE_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    # (R_min, R_max) per game, Cobbe et al. 2020 (reference.md section 4 for hard mode)
    "hard": {
        "bigfish": (0.0, 40.0), "bossfight": (0.5, 13.0), "caveflyer": (2.0, 13.4), "chaser": (0.5, 14.2),
        "climber": (1.0, 12.6), "coinrun": (5.0, 10.0), "dodgeball": (1.5, 19.0), "fruitbot": (-0.5, 27.2),
        "heist": (2.0, 10.0), "jumper": (1.0, 10.0), "leaper": (1.5, 10.0), "maze": (4.0, 10.0),
        "miner": (1.5, 20.0), "ninja": (2.0, 10.0), "plunder": (3.0, 30.0), "starpilot": (1.5, 35.0),
    },
    "easy": {
        "bigfish": (1.0, 40.0), "bossfight": (0.5, 13.0), "caveflyer": (3.5, 12.0), "chaser": (0.5, 13.0),
        "climber": (2.0, 12.6), "coinrun": (5.0, 10.0), "dodgeball": (1.5, 19.0), "fruitbot": (-1.5, 32.4),
        "heist": (3.5, 10.0), "jumper": (3.0, 10.0), "leaper": (3.0, 10.0), "maze": (5.0, 10.0),
        "miner": (1.5, 13.0), "ninja": (3.5, 10.0), "plunder": (4.5, 30.0), "starpilot": (2.5, 64.0),
    },
}

GAMES: tuple[str, ...] = tuple(sorted(SCORE_RANGES["hard"]))


def validate_game(game: str) -> str:
    """``game`` if it is one of the 16 Procgen games (lower case, as Procgen names them).

    Raises:
        ValueError: an unknown game; the message names the closest game and lists them all.
    """
    if game in GAMES:
        return game
    close = difflib.get_close_matches(game.lower(), GAMES, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown Procgen game {game!r}{hint}; games: {', '.join(GAMES)}")


def score_range(game: str, mode: str) -> tuple[float, float]:
    """``(R_min, R_max)`` of ``game`` in distribution mode ``mode``.

    Raises:
        ValueError: an unknown game, or a mode without constants (the message lists the modes).
    """
    validate_game(game)
    if mode not in SCORE_RANGES:
        raise ValueError(f"no Procgen score constants for mode {mode!r}; modes: {', '.join(SCORE_RANGES)}")
    return SCORE_RANGES[mode][game]


def normalised_score(game: str, mode: str, score: float | np.ndarray) -> float | np.ndarray:
    """Min-max normalised score ``(R - R_min) / (R_max - R_min)`` (0: R_min, 1: R_max; may leave [0, 1])."""
    lo, hi = score_range(game, mode)
    return (score - lo) / (hi - lo)


def procgen_spec(protocol: ProcgenProtocol, game: str) -> EnvSpec:
    """The :class:`~xfer.envs.spec.EnvSpec` of ``game``: pixels ``[3 * stack, 64, 64]`` uint8,
    ``Discrete(15)`` all legal, 1,000 agent steps per episode, the mode's min-max score constants.

    Raises:
        ValueError: an unknown game or mode, before any environment is created.
    """
    return EnvSpec(
        suite="procgen",
        task=validate_game(game),
        observation=ObservationSpec("pixels", (3 * protocol.stack, FRAME_SIZE, FRAME_SIZE), protocol.stack),
        action_space=Discrete(NUM_ACTIONS),
        legal_actions=tuple(range(NUM_ACTIONS)),
        max_episode_steps=EPISODE_STEPS,
        score_range=score_range(game, protocol.distribution_mode),
    )


def hwc_to_chw(rgb: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write frames ``[N, H, W, 3]`` uint8 into ``out`` ``[N, 3, H, W]`` (a view is fine) and return it.

    OpenCV's channel split: about 10x faster than numpy's strided transpose at 64 envs
    (``benchmarks/results/env.md``), which alone cost a quarter of a gym3 step.
    """
    n, h, w, c = rgb.shape
    for i, plane in enumerate(cv2.split(np.ascontiguousarray(rgb).reshape(n * h, w, c))):
        out[:, i] = plane.reshape(n, h, w)
    return out


def level_split(cfg: ProcgenConfig) -> tuple[int, int]:
    """``(num_levels, start_level)`` that Procgen gets for ``cfg.split`` (test: every level)."""
    return (cfg.num_levels, cfg.start_level) if cfg.split == "train" else (0, 0)


class VectorProcgen:
    """``num_envs`` copies of one Procgen game as a :class:`~xfer.envs.vector.VectorEnv`, batched by
    gym3 (one C++ environment of ``num`` copies).

    Seeding: gym3 seeds the whole batch at once; ``seed`` is Procgen's ``rand_seed`` (which levels
    of the split each copy plays, in order), so a run is reproducible from ``seed``, but copy ``i``
    is not the same as a single environment seeded ``seed + i``. :meth:`reset` starts a new batch.

    ``final_frame`` of a finished episode is the last frame seen before the final action: gym3 resets
    inside the step and returns the next episode's first frame, so the frame after the final action
    is never observed.

    Raises (constructor):
        ValueError: an unknown game or ``num_envs < 1``, before any environment is created.
    """

    def __init__(self, cfg: ProcgenConfig, num_envs: int, seed: int) -> None:
        self.spec = procgen_spec(cfg, cfg.game)
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.cfg, self.num_envs, self.seed = cfg, num_envs, seed
        self.action_mask = self.spec.action_mask()
        self.stack = cfg.stack
        self.frame_shape = (3, FRAME_SIZE, FRAME_SIZE)
        self.obs_shape = self.spec.observation.shape
        self._env: Any = None

    def _make(self, seed: int) -> Any:
        with contextlib.redirect_stderr(io.StringIO()):  # procgen imports the old gym, which prints a notice
            from procgen import ProcgenGym3Env

        num_levels, start_level = level_split(self.cfg)
        env = ProcgenGym3Env(num=self.num_envs, env_name=self.cfg.game, distribution_mode=self.cfg.distribution_mode,
                             num_levels=num_levels, start_level=start_level, rand_seed=seed)
        # gym3's own switch (libenv.CEnv(reuse_arrays=...), which ProcgenGym3Env does not pass on):
        # observe() returns its buffers instead of fresh copies; _observe copies what it keeps
        env._reuse_arrays = True
        return env

    def _observe(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(reward [N] float32, frames [N, 64, 64, 3] uint8 (HWC), first [N] bool)`` of the current
        step; the frames are gym3's buffer (valid until the next ``act``), reward and first are copies."""
        reward, obs, first = self._env.observe()
        return np.array(reward, np.float32), obs["rgb"], np.array(first, bool)

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start ``num_envs`` new episodes (a new gym3 batch seeded ``seed``, default the constructor's).

        Returns:
            ``(obs, info)``: obs uint8 ``[N, 3 * stack, 64, 64]``; info ``"frame"`` uint8
            ``[N, 3, 64, 64]``, ``"level_seed"`` int64 ``[N]`` (the level each copy plays).
        """
        self.close()
        self._env = self._make(self.seed if seed is None else seed)
        _, rgb, _ = self._observe()
        frames = hwc_to_chw(rgb, np.empty((self.num_envs, *self.frame_shape), np.uint8))
        self._buffers = [np.empty((self.num_envs, self.stack, *self.frame_shape), np.uint8) for _ in range(2)]
        self._flip = 0
        self._frames = self._buffers[0]  # [N, stack, 3, 64, 64]
        self._frames[:] = frames[:, None]
        self._return = np.zeros(self.num_envs, np.float64)
        self._length = np.zeros(self.num_envs, np.int64)
        return self._stacked(), {"frame": frames, "level_seed": self.level_seeds()}

    def level_seeds(self) -> np.ndarray:
        """``[N]`` int64: the level seed each copy plays now (Procgen's ``info["level_seed"]``)."""
        return np.asarray([i["level_seed"] for i in self._env.get_info()], np.int64)

    def _stacked(self) -> np.ndarray:
        return self._frames.reshape(self.num_envs, *self.obs_shape).copy()

    def step(self, actions: np.ndarray) -> VectorStep:
        """Step copy ``i`` with action ``actions[i]`` in ``[0, 15)``; finished episodes auto-reset.

        Raises:
            ValueError: wrong number of actions or an action outside ``[0, 15)``.
            RuntimeError: :meth:`reset` was never called.
        """
        if self._env is None:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"expected actions of shape ({self.num_envs},), got {actions.shape}")
        if actions.min() < 0 or actions.max() >= NUM_ACTIONS:
            raise ValueError(f"Procgen actions are ids in [0, {NUM_ACTIONS}), got {actions}")
        self._env.act(actions.astype(np.int32))  # gym3 steps in its own threads until observe()
        # The history alternates between two buffers: the step writes the one it handed out two steps
        # ago (a fresh 3 MB array per step cost more than the gym3 step itself in page faults at 64
        # envs; benchmarks/results/env.md). ``obs`` and ``frame`` are views of that buffer, valid
        # until the next-but-one step (VectorStep); ``final_frame`` is fresh. What needs no new frame
        # is done while gym3 steps.
        n = self.num_envs
        old = self._frames
        self._flip ^= 1
        new = self._buffers[self._flip]
        new[:, :-1] = old[:, 1:]
        final_frame = np.zeros((n, *self.frame_shape), np.uint8)
        reward, rgb, over = self._observe()
        self._return += reward
        self._length += 1
        truncated = over & (self._length >= EPISODE_STEPS)
        terminated = over & ~truncated
        episode_return = np.where(over, self._return, np.nan)
        episode_length = np.where(over, self._length, -1)
        hwc_to_chw(rgb, new[:, -1])
        frames = new[:, -1]
        if over.any():  # a new episode's history is its first frame
            final_frame[over] = old[over, -1]
            new[over] = new[over, -1][:, None]
            self._return[over], self._length[over] = 0.0, 0
        self._frames = new
        return VectorStep(new.reshape(n, *self.obs_shape), reward, terminated, truncated, np.zeros(n, bool), frames,
                          final_frame, episode_return, episode_length, np.zeros(n, np.int64))

    def close(self) -> None:
        """Release the gym3 batch (a later :meth:`reset` starts a new one)."""
        if self._env is not None:
            self._env.close()
            self._env = None

    def __enter__(self) -> VectorProcgen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
