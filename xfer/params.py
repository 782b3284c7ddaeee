"""``xfer params``: write ``params.yaml`` from a named pipeline preset plus overrides.

Presets live in ``presets/<name>.yaml`` at the repository root: ``default`` (the small CPU
pipeline), ``cpu-demo`` (``extends: default``), ``shooter`` and ``maze`` (XTRA Table 1 groups) and
``diverse`` (Table 2), the last three paper-scale for GPU workers: each ``extends: _atari100k``, the
EfficientZero Atari100k settings, and names only its games (and runs it adds). A preset file's
``extends: NAME`` merges it over ``presets/NAME.yaml`` (dicts merge key by key, lists and scalars
replace); files whose name starts with ``_`` are bases only, never offered as presets. Overrides use dotted keys with YAML values, e.g.
``--set targets=[Phoenix] --set finetune.env_steps=5000``. The result is validated
(:class:`xfer.xtra_config.PipelineConfig`) before ``params.yaml`` is replaced atomically, so a bad
override never leaves a broken params file behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from xfer.config import deep_merge, describe_validation_error
from xfer.envs.atari import validate_game
from xfer.envs.metaworld import check_metaworld_tasks
from xfer.envs.suites import env_spec
from xfer.exploration.config import ExplorePipelineConfig
from xfer.fileio import atomic_write_text
from xfer.metaworld_config import MetaWorldPipelineConfig
from xfer.presets import parse_overrides
from xfer.procgen_config import ProcgenPipelineConfig
from xfer.xtra_config import PipelineConfig

PRESET_DIR = Path("presets")


def available_presets(preset_dir: Path = PRESET_DIR) -> list[str]:
    """Names of the preset files in ``preset_dir`` (bases, ``_<name>.yaml``, left out)."""
    return sorted(p.stem for p in Path(preset_dir).glob("*.yaml") if not p.stem.startswith("_"))


def load_preset(name: str, preset_dir: Path = PRESET_DIR, _chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """``presets/<name>.yaml`` with its ``extends:`` chain merged in (the base first), ``extends`` removed.

    Raises:
        ValueError: unknown preset or base, a file that is not a YAML mapping, or an ``extends`` cycle.
    """
    path = Path(preset_dir) / f"{name}.yaml"
    if name in _chain:
        raise ValueError(f"preset {_chain[0]!r}: `extends` goes round in a circle: {' -> '.join([*_chain, name])}")
    if not path.exists():
        what = f"base {name!r} of preset {_chain[-1]!r}" if _chain else f"preset {name!r}"
        raise ValueError(f"unknown {what}; available: {available_presets(preset_dir)} (in {preset_dir}/)")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must be a YAML mapping of params, not {type(data).__name__}")
    base = data.pop("extends", None)
    if base is None:
        return data
    return deep_merge(load_preset(str(base), preset_dir, (*_chain, name)), data)


def build_params(preset: str, overrides: list[str], preset_dir: Path = PRESET_DIR,
                 pipeline: str = "xtra") -> dict[str, Any]:
    """Merge ``presets/<preset>.yaml`` (:func:`load_preset`) with ``key=value`` overrides, validate, fill
    in defaults. ``pipeline``: ``xtra`` (:class:`~xfer.xtra_config.PipelineConfig`, ``params.yaml``) or
    ``procgen`` (:class:`~xfer.procgen_config.ProcgenPipelineConfig`, ``procgen/params.yaml``; its presets are in
    ``presets/procgen/``: pass that folder as ``preset_dir``).

    Raises:
        ValueError: unknown preset or pipeline, malformed override, a result that does not validate (the
            message names the offending keys) or an unknown game (:func:`check_games`).
    """
    if pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline!r}; pipelines: {', '.join(PIPELINES)}")
    model, check = PIPELINES[pipeline]
    data = deep_merge(load_preset(preset, preset_dir), parse_overrides(overrides))
    try:
        cfg = model.model_validate(data)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        raise ValueError(f"preset {preset!r} with overrides {overrides} does not validate: {problems}") from exc
    check(cfg)
    # Every field explicitly (defaults included): DVC tracks params key by key.
    return cfg.model_dump(mode="json")


def check_procgen_games(cfg: ProcgenPipelineConfig) -> None:
    """Check ``games`` against the 16 Procgen games.

    Raises:
        ValueError: an unknown game, with the close match and the valid choices.
    """
    from xfer.envs.procgen import validate_game as validate_procgen_game

    for game in cfg.games:
        try:
            validate_procgen_game(game)
        except ValueError as exc:
            raise ValueError(f"games: {exc}") from exc


def check_explore_games(cfg: ExplorePipelineConfig) -> None:
    """Check ``games`` against the suite of ``train.env`` (Atari's ALE registry, Procgen's 16 games,
    Meta-World's tasks), without starting a simulator.

    Raises:
        ValueError: an unknown game, with the suite's message (close matches, valid choices).
    """
    for game in cfg.games:
        try:
            env_spec(cfg.train.env.suite, cfg.explore_config(game, next(iter(cfg.agents)), cfg.seeds[0]).env,
                     game)
        except ValueError as exc:
            raise ValueError(f"games: {exc}") from exc


def check_games(cfg: PipelineConfig) -> None:
    """Check every game name of ``cfg`` against the ALE registry (what the stages would check, but
    before ``dvc repro`` has removed any stage's outputs).

    Raises:
        ValueError: an unknown game; the message names the key and close matches.
    """
    for key in ("pretrain_games", "targets"):
        for game in getattr(cfg, key):
            try:
                validate_game(game)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from exc


def write_params(preset: str, overrides: list[str], out: Path = Path("params.yaml"),
                 preset_dir: Path = PRESET_DIR, pipeline: str = "xtra") -> dict[str, Any]:
    """Validate and atomically write ``out``; returns the written dict (see :func:`build_params`)."""
    data = build_params(preset, overrides, preset_dir, pipeline)
    flag = "" if pipeline == "xtra" else f" --pipeline {pipeline}"
    header = f"# Written by `xfer params{flag} --preset {preset}" + "".join(f" --set {o}" for o in overrides) + "`.\n"
    atomic_write_text(out, header + yaml.safe_dump(data, sort_keys=False))
    return data


PIPELINES: dict[str, tuple[type, Any]] = {"xtra": (PipelineConfig, check_games),
                                          "procgen": (ProcgenPipelineConfig, check_procgen_games),
                                          "metaworld": (MetaWorldPipelineConfig, check_metaworld_tasks),
                                          "explore": (ExplorePipelineConfig, check_explore_games)}
"""pipeline -> (its params model, its game check)."""

PIPELINE_FILES: dict[str, tuple[Path, Path]] = {"xtra": (PRESET_DIR, Path("params.yaml")),
                                                "procgen": (PRESET_DIR / "procgen", Path("procgen/params.yaml")),
                                                "metaworld": (PRESET_DIR / "metaworld", Path("metaworld/params.yaml")),
                                                "explore": (PRESET_DIR / "explore", Path("explore/params.yaml"))}
"""pipeline -> (its preset folder, its params file), relative to the repository root."""
