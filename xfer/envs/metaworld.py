"""Meta-World (Yu et al. 2020) as the continuous-control suite of seed 000 (sec 4, reference.md section 5).

``metaworld`` 3.x on MuJoCo, one Python-looped environment per copy (Meta-World has no batched
simulator). The protocol:

* A task (``"reach-v3"``) of one split of a benchmark: ``ML10`` / ``ML45`` train on their training
  tasks and test zero-shot on held-out ones; ``ML1`` trains and tests on different goals of one task.
  Each task comes with 50 goal variations per split (Meta-World's ``Task`` objects, sampled by the
  benchmark from ``benchmark_seed``); every episode plays one of them, drawn at its reset.
* Actions: ``Box(-1, 1, (4,))`` (end-effector xyz displacement and gripper effort); the agent squashes
  its actions into the box, out-of-bound actions are refused, not clipped.
* Observations: the 39-d state vector (hand, gripper, two objects, previous step's copy of those, and
  the goal, which the ML benchmarks hide as zeros) as float32, or RGB frames of ``frame_size`` from
  ``camera`` (``corner3``) as uint8 ``[C * stack, S, S]``, oldest first; a new episode's stack is its
  first frame repeated.
* Reward history (``reward_history``; the paper gives the agent its past rewards): states append the
  last ``reward_history`` rewards / 10, oldest first (zeros at an episode's start). Pixels take 0 or 1:
  with 1, each frame gets a fourth uint8 plane ``round(clip(r / 10, 0, 1) * 255)`` of the reward that
  led to it (0 on a first frame), so the history is ``stack`` long. Dense rewards are in [0, 10].
* Episodes last 500 agent steps (Meta-World's ``max_path_length``) and end ``truncated``; success does
  not end them. An episode succeeds if ``info["success"]`` is 1 at any of its steps
  (:attr:`~xfer.envs.vector.VectorStep.episode_success`). No score normaliser.
* Headless rendering: with ``MUJOCO_GL`` unset, pixel runs pick ``egl``, else ``osmesa`` (whichever
  renders in a probe subprocess) before MuJoCo renders in this process (:func:`select_gl_backend`).
"""

from __future__ import annotations

import atexit
import difflib
import functools
import os
import subprocess
import sys
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from xfer.config import MetaWorldConfig, MetaWorldProtocol
from xfer.envs.spec import Box, EnvSpec, ObservationSpec
from xfer.envs.vector import VectorStep

if TYPE_CHECKING:  # the pipeline's params model; an env module does not import pipeline code
    from xfer.metaworld_config import MetaWorldPipelineConfig

STATE_SIZE = 39
"""Length of Meta-World's state vector."""
ACTION_SPACE = Box(-1.0, 1.0, (4,))
EPISODE_STEPS = 500
"""Meta-World's ``max_path_length``: agent steps per episode (it raises when stepped past it)."""
REWARD_SCALE = 10.0
"""Meta-World's dense rewards lie in ``[0, REWARD_SCALE]``; the reward history is divided by it."""
GL_BACKENDS = ("egl", "osmesa")
"""Headless OpenGL backends tried, in order, when ``MUJOCO_GL`` is unset."""

_GL_PROBE = """\
import mujoco
m = mujoco.MjModel.from_xml_string('<mujoco/>')
r = mujoco.Renderer(m, 16, 16)
r.update_scene(mujoco.MjData(m))
r.render()
r.close()
"""
_GL_ADVICE = ("set MUJOCO_GL to a backend that works here: egl (a GPU or Mesa EGL driver) or osmesa "
              "(libOSMesa installed)")


@functools.lru_cache(maxsize=1)
def select_gl_backend() -> str:
    """The MuJoCo OpenGL backend pixel observations render with: ``MUJOCO_GL`` if set, else the first
    of :data:`GL_BACKENDS` that renders a frame in a probe subprocess (about half a second, once per
    process), which is then written to ``os.environ["MUJOCO_GL"]`` before this process renders. A probe
    subprocess, because OpenGL's platform cannot change in a process once chosen.

    Raises:
        RuntimeError: ``MUJOCO_GL`` is unset and no backend renders (the message names those tried).
    """
    chosen = os.environ.get("MUJOCO_GL")
    if chosen:
        return chosen
    tried = []
    for backend in GL_BACKENDS:
        try:
            probe = subprocess.run([sys.executable, "-c", _GL_PROBE], env={**os.environ, "MUJOCO_GL": backend},
                                   capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            tried.append(f"{backend} (timed out)")
            continue
        if probe.returncode == 0:
            os.environ["MUJOCO_GL"] = backend
            return backend
        tried.append(f"{backend} ({(probe.stderr.strip().splitlines() or ['failed'])[-1]})")
    raise RuntimeError(f"Meta-World pixels need a headless OpenGL backend and none rendered; tried "
                       f"{'; '.join(tried)}. {_GL_ADVICE}")


def _env_dict(pixels: bool) -> Any:
    """``metaworld.env_dict`` (the benchmarks' class tables; importing it imports MuJoCo, which reads
    ``MUJOCO_GL``: pixel runs choose the backend first)."""
    if pixels:
        select_gl_backend()
    try:
        import metaworld.env_dict
    except Exception as err:
        if not os.environ.get("MUJOCO_GL"):
            raise
        raise RuntimeError(f"importing Meta-World (MuJoCo) failed with MUJOCO_GL={os.environ['MUJOCO_GL']!r} "
                           f"({type(err).__name__}: {err}); {_GL_ADVICE}") from err
    return metaworld.env_dict


def benchmark_tasks(benchmark: str, split: str, pixels: bool = False) -> tuple[str, ...]:
    """The task names of ``split`` (``"train"`` / ``"test"``) of ``benchmark``, in Meta-World's order
    (ML1: any of the 50 tasks, in both splits). No simulator starts.

    Raises:
        ValueError: an unknown benchmark or split.
    """
    if split not in ("train", "test"):
        raise ValueError(f"Meta-World splits are 'train' and 'test', got {split!r}")
    table = _env_dict(pixels)
    if benchmark == "ML1":
        return tuple(table.ALL_V3_ENVIRONMENTS)
    if benchmark not in ("ML10", "ML45"):
        raise ValueError(f"unknown Meta-World benchmark {benchmark!r}; benchmarks: ML1, ML10, ML45")
    return tuple((table.ML10_V3 if benchmark == "ML10" else table.ML45_V3)[split])


def validate_task(benchmark: str, split: str | None, task: str, pixels: bool = False) -> str:
    """``task`` if it belongs to ``split`` of ``benchmark`` (``split=None``: to either split).

    Raises:
        ValueError: an unknown task (the message names the closest task and lists the split's tasks),
            or a task of the other split (the message says which split it is in).
    """
    splits = ("train", "test") if split is None else (split,)
    valid = [t for s in splits for t in benchmark_tasks(benchmark, s, pixels)]
    if task in valid:
        return task
    where = f"{benchmark} {split}" if split else benchmark
    if split is not None:
        other = "test" if split == "train" else "train"
        if task in benchmark_tasks(benchmark, other, pixels):
            raise ValueError(f"Meta-World task {task!r} is an {benchmark} {other} task, not a {split} task: "
                             f"set split: {other}, or choose one of the {where} tasks: {', '.join(valid)}")
    close = difflib.get_close_matches(task.lower(), valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown Meta-World task {task!r} for {where}{hint}; {where} tasks: {', '.join(valid)}")


def task_list(benchmark: str, split: str | None, task: str, pixels: bool = False) -> tuple[str, ...]:
    """The tasks a task name stands for: ``"all"`` every task of ``split`` of ``benchmark`` (ML10 / ML45),
    ``"a+b"`` the tasks ``a`` and ``b`` (:attr:`xfer.config.MetaWorldConfig.game` of a task list), any
    other name itself; each validated (:func:`validate_task`).

    Raises:
        ValueError: an unknown task or one of the other split; ``"all"`` or several tasks on ML1 (one
            task, different goals) or without a split.
    """
    names = benchmark_tasks(benchmark, split or "train", pixels) if task == "all" else tuple(task.split("+"))
    if len(names) > 1 and (benchmark == "ML1" or split is None and task == "all"):
        raise ValueError(f"{benchmark} {'has one task and different goals' if benchmark == 'ML1' else 'needs a split'}"
                         f": choose one task, not {task!r}")
    return tuple(validate_task(benchmark, split, t, pixels) for t in names)


def metaworld_spec(protocol: MetaWorldProtocol, task: str) -> EnvSpec:
    """The :class:`~xfer.envs.spec.EnvSpec` of ``task``: states float32 ``[39 + reward_history]`` or
    pixels uint8 ``[C * stack, S, S]`` (C = 3, or 4 with the reward plane), ``Box(-1, 1, (4,))``, 500
    agent steps per episode, no score normaliser.

    ``protocol`` is the ``env`` section (any split) or a :class:`~xfer.config.MetaWorldConfig`, whose
    ``split`` the task must belong to.

    Raises:
        ValueError: an unknown task or one of the other split, before any simulator starts.
        RuntimeError: pixels, with no OpenGL backend that renders (:func:`select_gl_backend`), or MuJoCo
            does not import under the ``MUJOCO_GL`` set.
    """
    pixels = protocol.observation == "pixels"
    task_list(protocol.benchmark, getattr(protocol, "split", None), task, pixels)
    if pixels:
        size = protocol.frame_size
        channels = 3 + (protocol.reward_history > 0)
        observation = ObservationSpec("pixels", (channels * protocol.stack, size, size), protocol.stack)
    else:
        observation = ObservationSpec("state", (STATE_SIZE + protocol.reward_history,))
    return EnvSpec(suite="metaworld", task=task, observation=observation, action_space=ACTION_SPACE,
                   legal_actions=None, max_episode_steps=EPISODE_STEPS, score_range=None,
                   reports_success=True)


def check_metaworld_tasks(cfg: MetaWorldPipelineConfig) -> None:
    """Check ``train_tasks`` and ``test_tasks`` against the benchmark's training and test splits (no
    simulator starts).

    Raises:
        ValueError: an unknown task or one of the other split, naming the key and the valid choices.
    """
    for key, split in (("train_tasks", "train"), ("test_tasks", "test")):
        tasks = cfg.tasks(split)
        try:
            task_list(cfg.benchmark, split, tasks if isinstance(tasks, str) else "+".join(tasks))
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from exc


@functools.lru_cache(maxsize=8)
def benchmark(name: str, task: str | None, seed: int) -> Any:
    """Meta-World's benchmark object (``metaworld.ML10(seed=seed)``; ML1: ``ML1(task, seed=seed)``),
    built once per process: it samples every task's goals in simulators (seconds for ML10, more for
    ML45). Meta-World restores numpy's global random state afterwards."""
    import metaworld

    return metaworld.ML1(task, seed=seed) if name == "ML1" else getattr(metaworld, name)(seed=seed)


def goal_tasks(cfg: MetaWorldConfig, task: str) -> tuple[type, list[Any]]:
    """``(env class, goal variations)`` of ``task`` (one of ``cfg``'s) on ``cfg.split``: the
    ``metaworld.Task`` objects of the split whose ``env_name`` is the task (50 for every benchmark)."""
    bench = benchmark(cfg.benchmark, task if cfg.benchmark == "ML1" else None, cfg.benchmark_seed)
    classes, tasks = ((bench.train_classes, bench.train_tasks) if cfg.split == "train"
                      else (bench.test_classes, bench.test_tasks))
    return classes[task], [t for t in tasks if t.env_name == task]


_LIVE: weakref.WeakSet[VectorMetaWorld] = weakref.WeakSet()


@functools.lru_cache(maxsize=1)
def _close_live_at_exit() -> None:
    """Close every open :class:`VectorMetaWorld` at interpreter exit, before MuJoCo's EGL display is
    terminated (registered after the first render, so it runs first): otherwise the renderers' ``__del__``
    print EGL errors at exit."""
    atexit.register(lambda: [env.close() for env in list(_LIVE)])


class VectorMetaWorld:
    """``num_envs`` copies of one Meta-World task as a :class:`~xfer.envs.vector.VectorEnv`, stepped in
    a Python loop. With several tasks (a task list or ``"all"``, :func:`task_list`) copy ``i`` plays
    task ``i mod n`` (:attr:`copy_tasks`): one agent collects from all of them at once.

    Seeding: copy ``i`` draws each episode's goal variation with ``numpy.random.default_rng(seed + i)``
    (and seeds its simulator with ``seed + i``), so a run is reproducible from ``seed``;
    :meth:`reset` with a seed starts the draws anew. ``action_mask`` is ``None`` (Box actions).

    ``frame`` / ``final_frame`` are the newest frame ``[N, *frame_shape]``: the whole observation for
    states, ``[C, S, S]`` for pixels. :attr:`goal_index` ``[N]`` int64 is the goal variation each copy
    plays (an index into the split's 50).

    Raises (constructor):
        ValueError: an unknown task, one of the other split, or ``num_envs < 1``, before any simulator
            starts.
        RuntimeError: pixels, with no OpenGL backend that renders.
    """

    def __init__(self, cfg: MetaWorldConfig, num_envs: int, seed: int) -> None:
        self.spec = metaworld_spec(cfg, cfg.game)
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.cfg, self.num_envs, self.seed = cfg, num_envs, seed
        tasks = task_list(cfg.benchmark, cfg.split, cfg.game, cfg.observation == "pixels")
        self.copy_tasks = [tasks[i % len(tasks)] for i in range(num_envs)]
        """The task each copy plays."""
        self.action_mask = None
        self.pixels = cfg.observation == "pixels"
        self.stack = cfg.stack if self.pixels else 1
        self.obs_shape = self.spec.observation.shape
        self.frame_shape = self.spec.observation.frame_shape
        self.dtype = self.spec.observation.dtype
        self.history = cfg.reward_history
        self.envs: list[Any] | None = None
        """The Meta-World environments (gymnasium ``MujocoEnv``), made at the first :meth:`reset`."""
        self.goal_index = np.zeros(num_envs, np.int64)

    def _make(self) -> list[Any]:
        made = {t: goal_tasks(self.cfg, t) for t in dict.fromkeys(self.copy_tasks)}
        self._goals = [made[t][1] for t in self.copy_tasks]
        render = (dict(render_mode="rgb_array", camera_name=self.cfg.camera, width=self.cfg.frame_size,
                       height=self.cfg.frame_size) if self.pixels else {})
        envs = [made[t][0](**render) for t in self.copy_tasks]
        _LIVE.add(self)
        return envs

    def _start_episode(self, i: int) -> np.ndarray:
        """Reset copy ``i`` onto a newly drawn goal; returns its first frame (clears its bookkeeping)."""
        rng = self._rngs[i]
        goals = self._goals[i]
        self.goal_index[i] = rng.integers(len(goals))
        env = self.envs[i]
        env.set_task(goals[self.goal_index[i]])
        state, _ = env.reset(seed=int(rng.integers(2**31)))
        self._return[i], self._length[i], self._success[i] = 0.0, 0, False
        self._rewards[i] = 0.0
        return self._frame(i, state, 0.0)

    def _frame(self, i: int, state: np.ndarray, reward: float) -> np.ndarray:
        """Copy ``i``'s newest frame: the state and its reward history, or the camera image (CHW) and the
        reward plane of ``reward``."""
        if not self.pixels:
            return np.concatenate([state.astype(np.float32), self._rewards[i]])
        try:
            rgb = self.envs[i].render()
        except Exception as err:
            raise RuntimeError(f"Meta-World could not render with MUJOCO_GL={os.environ.get('MUJOCO_GL')!r} "
                               f"({type(err).__name__}: {err}); {_GL_ADVICE}") from err
        _close_live_at_exit()
        frame = np.empty(self.frame_shape, np.uint8)
        frame[:3] = np.moveaxis(rgb, -1, 0)
        if self.history:
            frame[3] = round(min(max(reward / REWARD_SCALE, 0.0), 1.0) * 255)
        return frame

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start ``num_envs`` new episodes (goal draws seeded ``seed + i``, default the constructor's).

        Returns:
            ``(obs, info)``: obs ``[N, *observation.shape]`` (float32 states or uint8 pixels); info
            ``"frame"`` ``[N, *frame_shape]`` the newest frames, ``"goal_index"`` int64 ``[N]``.
        """
        seed = self.seed if seed is None else seed
        if self.envs is None:
            self.envs = self._make()
        n = self.num_envs
        self._rngs = [np.random.default_rng(seed + i) for i in range(n)]
        for i, env in enumerate(self.envs):
            env.seed(seed + i)
        self._return = np.zeros(n, np.float64)
        self._length = np.zeros(n, np.int64)
        self._success = np.zeros(n, bool)
        self._rewards = np.zeros((n, self.history), np.float32)
        self._frames = np.empty((n, self.stack, *self.frame_shape), self.dtype)
        for i in range(n):
            self._frames[i] = self._start_episode(i)
        return self._obs(), {"frame": self._frames[:, -1].copy(), "goal_index": self.goal_index.copy()}

    def _obs(self) -> np.ndarray:
        return self._frames.reshape(self.num_envs, *self.obs_shape).copy()

    def _check_actions(self, actions: np.ndarray) -> np.ndarray:
        shape = (self.num_envs, *ACTION_SPACE.shape)
        a = np.asarray(actions)
        if a.shape != shape:
            raise ValueError(f"expected Meta-World actions of shape {shape} (float32 [N, 4]), got {a.shape}")
        a = a.astype(np.float64)
        for bad, what in ((~np.isfinite(a), "is not finite"), (a < ACTION_SPACE.low, f"is below {ACTION_SPACE.low}"),
                          (a > ACTION_SPACE.high, f"is above {ACTION_SPACE.high}")):
            if bad.any():
                i, j = np.argwhere(bad)[0]
                raise ValueError(f"Meta-World action entry {a[i, j]} (env {i}, dim {j}) {what}: actions must lie in "
                                 f"the Box [{ACTION_SPACE.low}, {ACTION_SPACE.high}] (the agent must squash its "
                                 f"actions into the Box, e.g. with tanh); {int(bad.sum())} such entries")
        return a.astype(np.float32)

    def step(self, actions: np.ndarray) -> VectorStep:
        """Step copy ``i`` with ``actions[i]`` (float ``[N, 4]`` in ``[-1, 1]``); episodes end truncated
        at 500 steps and auto-reset. Reports ``episode_success`` (float64 ``[N]``: 1.0 / 0.0 where an
        episode finished, NaN elsewhere).

        Raises:
            ValueError: actions of the wrong shape, non-finite, or outside the Box (before any copy steps).
            RuntimeError: :meth:`reset` was never called.
        """
        if self.envs is None:
            raise RuntimeError("call reset() before step()")
        actions = self._check_actions(actions)
        n = self.num_envs
        reward = np.zeros(n, np.float32)
        over = np.zeros(n, bool)
        final_frame = np.zeros((n, *self.frame_shape), self.dtype)
        episode_return = np.full(n, np.nan)
        episode_length = np.full(n, -1, np.int64)
        episode_success = np.full(n, np.nan)
        for i, env in enumerate(self.envs):
            state, r, _, _, info = env.step(actions[i])
            reward[i] = r
            self._return[i] += float(r)
            self._length[i] += 1
            self._success[i] |= bool(info["success"])
            if self.history:
                self._rewards[i, :-1] = self._rewards[i, 1:]
                self._rewards[i, -1] = reward[i] / REWARD_SCALE
            frame = self._frame(i, state, float(r))
            if self._length[i] >= EPISODE_STEPS:
                over[i] = True
                final_frame[i] = frame
                episode_return[i], episode_length[i] = self._return[i], self._length[i]
                episode_success[i] = float(self._success[i])
                self._frames[i] = self._start_episode(i)
            else:
                self._frames[i, :-1] = self._frames[i, 1:]
                self._frames[i, -1] = frame
        return VectorStep(self._obs(), reward, np.zeros(n, bool), over, np.zeros(n, bool), self._frames[:, -1].copy(),
                          final_frame, episode_return, episode_length, np.zeros(n, np.int64), episode_success)

    def close(self) -> None:
        """Release the simulators and their render contexts (a later :meth:`reset` makes new ones)."""
        if self.envs is not None:
            for env in self.envs:
                env.close()
            self.envs = None
        _LIVE.discard(self)

    def __enter__(self) -> VectorMetaWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
