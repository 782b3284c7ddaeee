"""Atari environments under the Atari100k protocol (reference.md section 1).

Protocol, as EfficientZero and XTRA run it:

* ``ALE/{game}-v5`` with ``repeat_action_probability=0`` and ``frameskip=1`` in the base env, i.e.
  ``{game}NoFrameskip-v4`` dynamics; ROMs come bundled with ``ale-py``.
* ``gymnasium.wrappers.AtariPreprocessing``: 1..``noop_max`` uniformly random no-ops at reset (drawn
  from the env's seeded ``np_random``), ``frame_skip`` frames per agent step with the reward summed
  and the frame max-pooled over the last two frames, RGB resized to ``screen_size`` with INTER_AREA.
* ``terminal_on_life_loss`` stays off: a lost life is reported in ``info["life_loss"]`` as a
  learning-only terminal (bootstrap cut) while the game itself continues.
* The episode is truncated by ALE after ``max_episode_frames`` emulator frames (no-op frames at reset
  count too), i.e. ``max_episode_frames / frame_skip`` agent steps.
* The agent always acts in the full 18-action space (XTRA's multi-game heads). ``action_mask`` marks
  the game's minimal action set; any of the 18 actions can still be stepped.
* Rewards are returned raw; :func:`clip_reward` gives ``sign(r)`` for learning.

Units: a *step* is one agent step (``frame_skip`` emulator frames); *frames* are emulator frames.
Observations are uint8 CHW. A single frame is ``[3, S, S]``; the agent's observation stacks the last
``stack`` frames oldest first, frame-major: channels ``[3*k, 3*k+3)`` hold frame ``t - (stack-1) + k``.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from typing import Any

import ale_py
import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AtariPreprocessing

from xfer.config import AtariConfig, AtariProtocol
from xfer.envs.scores import REFERENCE_SCORES
from xfer.envs.spec import Discrete, EnvSpec, ObservationSpec
from xfer.envs.vector import VectorStep

gym.register_envs(ale_py)

NUM_FULL_ACTIONS = 18
"""Size of the full ALE action space; full-action ids are ``0..17`` (``ale_py.Action`` values)."""

ATARI_GAMES: tuple[str, ...] = tuple(
    sorted(
        key[len("ALE/") : -len("-v5")]
        for key in gym.envs.registry
        if key.startswith("ALE/") and key.endswith("-v5")
    )
)
"""Every game name accepted by :func:`validate_game` (the ``ALE/{game}-v5`` ids, e.g. ``"MsPacman"``)."""

_GAME_SET = frozenset(ATARI_GAMES)


def validate_game(game: str) -> str:
    """Return ``game`` unchanged if it names a registered ALE v5 game.

    Cheap: consults the gymnasium registry only, no emulator is created.

    Raises:
        ValueError: ``game`` is not a registered name (case-sensitive); the message lists close
            matches and says where the full list lives (``xfer.envs.atari.ATARI_GAMES``).
    """
    if isinstance(game, str) and game in _GAME_SET:
        return game
    lowered = {name.lower(): name for name in ATARI_GAMES}
    query = str(game).lower()
    close = [lowered[m] for m in difflib.get_close_matches(query, list(lowered), n=5, cutoff=0.6)]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(
        f"Unknown Atari game {game!r}.{hint} Names are ALE v5 ids without prefix or version, "
        f"CamelCase and case-sensitive (e.g. 'Pong', 'MsPacman', 'RoadRunner'); the {len(ATARI_GAMES)} "
        "valid names are in xfer.envs.atari.ATARI_GAMES "
        "(python -c 'from xfer.envs.atari import ATARI_GAMES; print(ATARI_GAMES)')."
    )


@functools.cache
def _minimal_actions(game: str) -> tuple[int, ...]:
    validate_game(game)
    env = gym.make(f"ALE/{game}-v5", disable_env_checker=True)
    try:
        return tuple(int(a.value) for a in env.unwrapped.ale.getMinimalActionSet())
    finally:
        env.close()


def minimal_action_map(game: str) -> np.ndarray:
    """Map from the game's minimal-action index to the full-action id.

    Returns:
        int64 array of shape ``[A_min]``: entry ``i`` is the full-action id (0..17) of minimal
        action ``i``, in ALE's ``getMinimalActionSet()`` order. Cached per game (one ROM load).

    Raises:
        ValueError: unknown game (see :func:`validate_game`).
    """
    return np.asarray(_minimal_actions(game), dtype=np.int64)


def action_mask(game: str) -> np.ndarray:
    """Legal-action mask of ``game`` over the full action space.

    Returns:
        bool array of shape ``[18]``, True at the full-action ids of the game's minimal action set.

    Raises:
        ValueError: unknown game (see :func:`validate_game`).
    """
    mask = np.zeros(NUM_FULL_ACTIONS, dtype=bool)
    mask[minimal_action_map(game)] = True
    return mask


RGB_CHANNELS = 3
"""Channels of one Atari frame (RGB)."""


def atari_spec(protocol: AtariProtocol, game: str) -> EnvSpec:
    """The :class:`~xfer.envs.spec.EnvSpec` of ``game`` under ``protocol``: pixels
    ``[3 * stack, screen_size, screen_size]`` uint8, ``Discrete(18)`` with the game's minimal action set
    legal (in ALE's order, as :func:`minimal_action_map`), ``max_episode_frames / frame_skip`` agent steps per episode, random and human reference
    scores as the normaliser (none for Carnival and Pooyan).

    Raises:
        ValueError: unknown game (see :func:`validate_game`).
    """
    s = protocol.screen_size
    return EnvSpec(
        suite="atari",
        task=validate_game(game),
        observation=ObservationSpec("pixels", (RGB_CHANNELS * protocol.stack, s, s), protocol.stack),
        action_space=Discrete(NUM_FULL_ACTIONS),
        legal_actions=_minimal_actions(game),
        max_episode_steps=protocol.max_episode_frames // protocol.frame_skip,
        score_range=REFERENCE_SCORES.get(game),
    )


def clip_reward(reward: float | np.ndarray) -> float | np.ndarray:
    """Reward clipping for learning: ``sign(reward)`` in {-1, 0, 1}.

    A Python/NumPy scalar gives a Python ``float``; an array gives a float32 array of the same shape.
    """
    if np.ndim(reward) == 0:
        return float(np.sign(reward))
    return np.sign(np.asarray(reward, dtype=np.float32))


@dataclass(frozen=True)
class AtariSnapshot:
    """Everything needed to rewind an :class:`AtariEnv` exactly (see :meth:`AtariEnv.clone_state`)."""

    ale_state: Any
    frames: np.ndarray
    lives: int
    episode_return: float
    episode_length: int
    done: bool


class AtariEnv:
    """One Atari game under the Atari100k protocol, acting in the full 18-action space.

    Attributes:
        game: the ALE game name.
        cfg: the :class:`~xfer.config.AtariConfig` used.
        action_mask: bool ``[18]``, True for the game's minimal action set.
        minimal_action_map: int64 ``[A_min]``, minimal index -> full-action id.
        obs_shape: ``(stack * 3, S, S)``; frame_shape: ``(3, S, S)``.

    Raises (constructor):
        ValueError: unknown game, before any emulator is created.
    """

    num_actions = NUM_FULL_ACTIONS

    def __init__(self, cfg: AtariConfig, seed: int | None = None):
        self.game = validate_game(cfg.game)
        self.cfg = cfg
        self._seed = seed
        self._env = gym.make(
            f"ALE/{self.game}-v5",
            frameskip=1,
            repeat_action_probability=0.0,
            full_action_space=True,
            max_num_frames_per_episode=cfg.max_episode_frames,
            disable_env_checker=True,
        )
        self._env = AtariPreprocessing(
            self._env,
            noop_max=cfg.noop_max,
            frame_skip=cfg.frame_skip,
            screen_size=cfg.screen_size,
            terminal_on_life_loss=False,
            grayscale_obs=False,
            scale_obs=False,
        )
        self.ale = self._env.unwrapped.ale
        self.minimal_action_map = np.asarray(
            [int(a.value) for a in self.ale.getMinimalActionSet()], dtype=np.int64
        )
        self.action_mask = np.zeros(NUM_FULL_ACTIONS, dtype=bool)
        self.action_mask[self.minimal_action_map] = True
        s = cfg.screen_size
        self.frame_shape = (3, s, s)
        self.obs_shape = (cfg.stack * 3, s, s)
        self._frames = np.zeros((cfg.stack, 3, s, s), dtype=np.uint8)
        self._lives = 0
        self._episode_return = 0.0
        self._episode_length = 0
        self._done = True
        self._reset_once = False

    # ------------------------------------------------------------------ core API
    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode (with 1..noop_max random no-ops).

        Args:
            seed: reseeds ALE and the no-op RNG. ``None`` on the first reset uses the constructor's
                seed; later ``None`` resets continue the same random stream.

        Returns:
            ``(obs, info)``: obs uint8 ``[stack*3, S, S]`` holding ``stack`` copies of the first frame;
            info has ``"frame"`` (uint8 ``[3, S, S]``, the first frame, a copy), ``"lives"`` (int),
            ``"life_loss"`` (False), ``"raw_reward"`` (0.0).
        """
        if seed is None and not self._reset_once:
            seed = self._seed
        self._reset_once = True
        frame_hwc, _ = self._env.reset(seed=seed)
        frame = _to_chw(frame_hwc)
        self._frames[:] = frame
        self._lives = int(self.ale.lives())
        self._episode_return = 0.0
        self._episode_length = 0
        self._done = False
        info = {"frame": frame, "lives": self._lives, "life_loss": False, "raw_reward": 0.0}
        return self._stacked(), info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advance one agent step (``frame_skip`` frames) with full-action id ``action``.

        Actions outside :attr:`action_mask` are legal for ALE and are executed (masking belongs to
        search).

        Returns:
            ``(obs, raw_reward, terminated, truncated, info)``. obs: uint8 ``[stack*3, S, S]``, the
            newest frame in the last 3 channels. raw_reward: float, the unclipped sum over the skipped
            frames. terminated: game over. truncated: ``max_episode_frames`` reached. info:
            ``"frame"`` (uint8 ``[3, S, S]``, newest frame, a copy), ``"lives"`` (int),
            ``"life_loss"`` (bool, lives decreased during this step; also True on the game-over step
            of games with lives), ``"raw_reward"`` (float), and on the episode's last step
            ``"episode_return"`` (float, raw) and ``"episode_length"`` (int, agent steps).
            When the episode ends mid-skip, gymnasium's wrapper returns the previous step's frame.

        Raises:
            RuntimeError: the episode is over (or never started); call :meth:`reset` first.
            ValueError: ``action`` is not an integer in ``[0, 18)``.
        """
        if self._done:
            raise RuntimeError("AtariEnv.step called on a finished or unstarted episode; call reset() first")
        a = int(action)
        if a != action or not 0 <= a < NUM_FULL_ACTIONS:
            raise ValueError(f"action must be a full-action id in [0, {NUM_FULL_ACTIONS}), got {action!r}")
        frame_hwc, reward, terminated, truncated, _ = self._env.step(a)
        frame = _to_chw(frame_hwc)
        self._frames[:-1] = self._frames[1:]
        self._frames[-1] = frame
        lives = int(self.ale.lives())
        life_loss = lives < self._lives
        self._lives = lives
        reward = float(reward)
        self._episode_return += reward
        self._episode_length += 1
        terminated, truncated = bool(terminated), bool(truncated)
        info: dict[str, Any] = {"frame": frame, "lives": lives, "life_loss": life_loss, "raw_reward": reward}
        if terminated or truncated:
            self._done = True
            info["episode_return"] = self._episode_return
            info["episode_length"] = self._episode_length
        return self._stacked(), reward, terminated, truncated, info

    def close(self) -> None:
        """Release the emulator."""
        self._env.close()

    # ------------------------------------------------------------------ extras
    @property
    def lives(self) -> int:
        """Lives left as of the last reset/step (0 for games without lives)."""
        return self._lives

    @property
    def episode_return(self) -> float:
        """Raw return of the current episode so far."""
        return self._episode_return

    @property
    def episode_length(self) -> int:
        """Agent steps taken in the current episode so far."""
        return self._episode_length

    def observation(self) -> np.ndarray:
        """The current stacked observation, uint8 ``[stack*3, S, S]`` (a copy)."""
        return self._stacked()

    def clone_state(self) -> AtariSnapshot:
        """Snapshot emulator (with its RNG), frame stack and episode counters for exact replay."""
        return AtariSnapshot(
            ale_state=self.ale.cloneState(include_rng=True),
            frames=self._frames.copy(),
            lives=self._lives,
            episode_return=self._episode_return,
            episode_length=self._episode_length,
            done=self._done,
        )

    def restore_state(self, snap: AtariSnapshot) -> None:
        """Rewind to a snapshot taken from an env of the same game by :meth:`clone_state`."""
        self.ale.restoreState(snap.ale_state)
        self._frames[:] = snap.frames
        self._lives = snap.lives
        self._episode_return = snap.episode_return
        self._episode_length = snap.episode_length
        self._done = snap.done
        self._reset_once = True

    def __enter__(self) -> AtariEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stacked(self) -> np.ndarray:
        return self._frames.reshape(self.obs_shape).copy()


def _to_chw(frame_hwc: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(frame_hwc.transpose(2, 0, 1))


def make_atari(cfg: AtariConfig, seed: int) -> AtariEnv:
    """Build an :class:`AtariEnv` for ``cfg.game`` whose first :meth:`~AtariEnv.reset` uses ``seed``.

    Raises:
        ValueError: unknown game, before any emulator is created.
    """
    return AtariEnv(cfg, seed=seed)


class VectorAtari:
    """``num_envs`` independent :class:`AtariEnv` of one game, stepped in a plain loop: the Atari
    :class:`~xfer.envs.vector.VectorEnv`.

    Env ``i`` is seeded with ``seed + i``. Finished episodes reset in the same step.

    Raises (constructor):
        ValueError: unknown game (before any emulator is created) or ``num_envs < 1``.
    """

    def __init__(self, cfg: AtariConfig, num_envs: int, seed: int):
        validate_game(cfg.game)
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.cfg = cfg
        self.num_envs = num_envs
        self.envs = [AtariEnv(cfg, seed=seed + i) for i in range(num_envs)]
        self.action_mask = self.envs[0].action_mask.copy()
        self.minimal_action_map = self.envs[0].minimal_action_map.copy()
        self.obs_shape = self.envs[0].obs_shape
        self.frame_shape = self.envs[0].frame_shape

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Reset every env (env ``i`` reseeded with ``seed + i`` when ``seed`` is given).

        Returns:
            ``(obs, info)``: obs uint8 ``[N, stack*3, S, S]``; info ``"frame"`` uint8 ``[N, 3, S, S]``,
            ``"lives"`` int64 ``[N]``.
        """
        obs = np.empty((self.num_envs, *self.obs_shape), dtype=np.uint8)
        frames = np.empty((self.num_envs, *self.frame_shape), dtype=np.uint8)
        lives = np.empty(self.num_envs, dtype=np.int64)
        for i, env in enumerate(self.envs):
            o, info = env.reset(seed=None if seed is None else seed + i)
            obs[i], frames[i], lives[i] = o, info["frame"], info["lives"]
        return obs, {"frame": frames, "lives": lives}

    def step(self, actions: np.ndarray) -> VectorStep:
        """Step env ``i`` with full-action id ``actions[i]``; finished episodes auto-reset.

        Args:
            actions: integer array-like of shape ``[N]``, full-action ids in ``[0, 18)``.

        Raises:
            ValueError: wrong number of actions or an action outside ``[0, 18)``.
            RuntimeError: :meth:`reset` was never called.
        """
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"expected actions of shape ({self.num_envs},), got {actions.shape}")
        n = self.num_envs
        obs = np.empty((n, *self.obs_shape), dtype=np.uint8)
        frame = np.empty((n, *self.frame_shape), dtype=np.uint8)
        final_frame = np.zeros((n, *self.frame_shape), dtype=np.uint8)
        reward = np.zeros(n, dtype=np.float32)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        life_loss = np.zeros(n, dtype=bool)
        episode_return = np.full(n, np.nan, dtype=np.float64)
        episode_length = np.full(n, -1, dtype=np.int64)
        lives = np.empty(n, dtype=np.int64)
        for i, env in enumerate(self.envs):
            o, r, term, trunc, info = env.step(actions[i])
            reward[i], terminated[i], truncated[i], life_loss[i] = r, term, trunc, info["life_loss"]
            if term or trunc:
                final_frame[i] = info["frame"]
                episode_return[i] = info["episode_return"]
                episode_length[i] = info["episode_length"]
                o, info = env.reset()
            obs[i], frame[i], lives[i] = o, info["frame"], info["lives"]
        return VectorStep(
            obs,
            reward,
            terminated,
            truncated,
            life_loss,
            frame,
            final_frame,
            episode_return,
            episode_length,
            lives,
        )

    def close(self) -> None:
        """Release every emulator."""
        for env in self.envs:
            env.close()

    def __enter__(self) -> VectorAtari:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
