"""A run's params, whichever pipeline it belongs to, and the ``xfer params`` command that writes them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import Field

from flows.explore_params import ExploreParams
from flows.metaworld_params import MetaWorldParams
from flows.procgen_params import ProcgenParams
from flows.xtra_params import PipelineParams

SomeParams = PipelineParams | ProcgenParams | MetaWorldParams | ExploreParams
"""The params of a run of any pipeline (XTRA, Procgen, Meta-World, exploration)."""
AnyParams = Annotated[SomeParams, Field(discriminator="pipeline")]
"""A run's params as a flow parameter: the XTRA, Procgen, Meta-World or exploration pipeline's (told apart by
``pipeline``)."""


def params_command(params: SomeParams) -> list[str]:
    """argv that writes the pipeline's params file for ``params`` (run in the repo root).

    ``xfer params [--pipeline procgen|metaworld|explore] --preset NAME --set key=value ...``; values are JSON,
    which the ``--set`` parser reads as YAML (so strings stay strings and lists stay lists).
    """
    which = [] if params.pipeline == "xtra" else ["--pipeline", params.pipeline]
    argv = [sys.executable, "-m", "xfer.cli", "params", *which, "--preset", params.preset]
    for key, val in params.overrides().items():
        argv += ["--set", f"{key}={json.dumps(val)}"]
    return argv


def params_file(repo: str | Path, pipeline: str) -> Path:
    """The params file of ``pipeline`` in checkout ``repo``: ``params.yaml`` (``xtra``), else
    ``<pipeline>/params.yaml`` (``procgen``, ``metaworld``, ``explore``)."""
    return Path(repo) / ("params.yaml" if pipeline == "xtra" else f"{pipeline}/params.yaml")


def params_device(repo: str | Path, pipeline: str) -> str:
    """The ``device`` the pipeline's params file in ``repo`` names (``cpu`` where it names none or there is no
    file yet): what the stages that run on the params' device need from their pool
    (:func:`flows.routing.pool_for_stage`)."""
    path = params_file(repo, pipeline)
    if not path.exists():
        return "cpu"
    data = yaml.safe_load(path.read_text()) or {}
    return str(data.get("device", "cpu")) if isinstance(data, dict) else "cpu"
