"""The suite table: suite name -> the function that gives a task's :class:`~xfer.envs.spec.EnvSpec`.

A new suite (Procgen, Meta-World) is a module in ``xfer/envs/`` with its spec function, and one row
here. Each spec function takes the suite's protocol config (the ``env`` section) and the task name,
and raises ``ValueError`` naming the valid choices for an unknown task, before any simulator starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xfer.envs.atari import atari_spec
from xfer.envs.spec import EnvSpec, shared_spaces

SUITES: dict[str, Callable[[Any, str], EnvSpec]] = {
    "atari": atari_spec,
}


def env_spec(suite: str, protocol: Any, task: str) -> EnvSpec:
    """The spec of ``task`` in ``suite`` under ``protocol`` (the suite's ``env`` config).

    Raises:
        ValueError: an unknown suite (the message lists :data:`SUITES`) or task.
    """
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; suites: {', '.join(sorted(SUITES))}")
    return SUITES[suite](protocol, task)


def multitask_spec(suite: str, protocol: Any, tasks: list[str]) -> EnvSpec:
    """One spec standing for ``tasks`` that share a network (their observation and action space;
    the legal actions and normaliser are per task, see :func:`env_spec`).

    Raises:
        ValueError: no tasks, an unknown suite or task, or tasks whose spaces differ.
    """
    return shared_spaces([env_spec(suite, protocol, t) for t in tasks])
