"""The suite table: suite name -> :class:`Suite` (a task's :class:`~xfer.envs.spec.EnvSpec`, and the
vectorised environment that simulates it).

A new suite (Procgen, Meta-World) is a module in ``xfer/envs/`` with its spec function, its one-task
env config and its :class:`~xfer.envs.vector.VectorEnv`, and one row here. Each spec function takes
the suite's protocol config (the ``env`` section) and the task name, and raises ``ValueError``
naming the valid choices for an unknown task, before any simulator starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xfer.config import AtariConfig, MetaWorldConfig, ProcgenConfig
from xfer.envs.atari import VectorAtari, atari_spec
from xfer.envs.metaworld import VectorMetaWorld, metaworld_spec
from xfer.envs.procgen import VectorProcgen, procgen_spec
from xfer.envs.spec import EnvSpec, shared_spaces
from xfer.envs.vector import VectorEnv


@dataclass(frozen=True)
class Suite:
    """One row of the suite table.

    ``spec``: ``(protocol, task) -> EnvSpec`` (validates the task before any simulator starts).
    ``config``: the suite's one-task env config class (protocol plus task: :class:`AtariConfig`).
    ``vector_env``: ``(config, num_envs, seed) -> VectorEnv``.
    """

    spec: Callable[[Any, str], EnvSpec]
    config: type
    vector_env: Callable[[Any, int, int], VectorEnv]


SUITES: dict[str, Suite] = {
    "atari": Suite(atari_spec, AtariConfig, VectorAtari),
    "procgen": Suite(procgen_spec, ProcgenConfig, VectorProcgen),
    "metaworld": Suite(metaworld_spec, MetaWorldConfig, VectorMetaWorld),
}


def env_spec(suite: str, protocol: Any, task: str) -> EnvSpec:
    """The spec of ``task`` in ``suite`` under ``protocol`` (the suite's ``env`` config).

    Raises:
        ValueError: an unknown suite (the message lists :data:`SUITES`) or task.
    """
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; suites: {', '.join(sorted(SUITES))}")
    return SUITES[suite].spec(protocol, task)


def make_vector_env(env_cfg: Any, num_envs: int, seed: int) -> VectorEnv:
    """``num_envs`` environments of the task ``env_cfg`` describes (env ``i`` seeded ``seed + i``),
    from the suite whose env config ``env_cfg`` is.

    Raises:
        TypeError: ``env_cfg`` is no suite's env config.
        ValueError: what the suite's environment raises (an unknown task, ``num_envs < 1``).
    """
    for suite in SUITES.values():
        if isinstance(env_cfg, suite.config):
            return suite.vector_env(env_cfg, num_envs, seed)
    raise TypeError(f"{type(env_cfg).__name__} is no suite's env config; suites take "
                    f"{', '.join(s.config.__name__ for s in SUITES.values())}")


def multitask_spec(suite: str, protocol: Any, tasks: list[str]) -> EnvSpec:
    """One spec standing for ``tasks`` that share a network (their observation and action space;
    the legal actions and normaliser are per task, see :func:`env_spec`).

    Raises:
        ValueError: no tasks, an unknown suite or task, or tasks whose spaces differ.
    """
    return shared_spaces([env_spec(suite, protocol, t) for t in tasks])
