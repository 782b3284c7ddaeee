"""What every pipeline stage shares: params loading, output paths, config building, CLI plumbing.

Stages follow the contract of DESIGN.md: ``xfer.stages.<name>.run(cfg, ...) -> metrics``; their
``main()`` only parses arguments, loads ``params.yaml`` and does I/O. Long stages keep their
resumable training state under ``.xfer-work/`` (outside DVC outputs, which DVC deletes before a
stage runs), so a killed stage picks up from its last checkpoint when rerun.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from xfer.checkpoint import CheckpointError
from xfer.config import TrainConfig, deep_merge, describe_validation_error
from xfer.data.format import DatasetError
from xfer.envs.atari import validate_game
from xfer.envs.spec import EnvSpec
from xfer.envs.suites import env_spec
from xfer.exploration.config import ExplorePipelineConfig
from xfer.fileio import atomic_write_text
from xfer.metaworld_config import MetaWorldPipelineConfig
from xfer.procgen_config import ProcgenPipelineConfig
from xfer.stages.guard import StageBusyError, exclusive_lock, stop_when_parent_dies
from xfer.xtra_config import PipelineConfig

log = logging.getLogger("xfer.stages")

WORK = Path(".xfer-work")


class StageInputError(ValueError):
    """A stage's inputs are unusable (wrong game, missing upstream output, ...): exit code 2."""


class ParamsError(StageInputError):
    """params.yaml is missing, not YAML, or does not validate (message names the key)."""


def _read_params(path: Path, model: type[BaseModel], preset: str, check: Callable[[Any], None]) -> Any:
    """``path`` read as YAML, validated as ``model`` and then by ``check`` (names of games or tasks, which
    the model alone cannot know); :class:`ParamsError` naming the key or the name otherwise. ``preset``: the
    ``xfer params`` arguments that write a valid file, for the error of a missing one."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path} not found; create it with `xfer params --preset {preset}`")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML: {exc}") from exc
    try:
        cfg = model.model_validate(raw)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        raise ParamsError(f"{path} does not validate: {problems}") from exc
    try:
        check(cfg)
    except ValueError as exc:
        raise ParamsError(f"{path}: {exc}") from exc
    return cfg


def _check_xtra_games(cfg: PipelineConfig) -> None:
    for game in [*cfg.pretrain_games, *cfg.targets]:
        validate_game(game)


def _check_procgen_games(cfg: ProcgenPipelineConfig) -> None:
    from xfer.envs.procgen import validate_game as validate_procgen_game

    for game in cfg.games:
        validate_procgen_game(game)


def _check_metaworld_tasks(cfg: MetaWorldPipelineConfig) -> None:
    from xfer.envs.metaworld import check_metaworld_tasks

    check_metaworld_tasks(cfg)


def _check_explore_games(cfg: ExplorePipelineConfig) -> None:
    from xfer.params import check_explore_games

    check_explore_games(cfg)


def load_params(path: Path = Path("params.yaml")) -> PipelineConfig:
    """Read and validate ``params.yaml``; also checks every game name before any work starts.

    Raises:
        ParamsError: missing file, bad YAML, unknown keys, bad values or unknown games.
    """
    return _read_params(path, PipelineConfig, "default", _check_xtra_games)


def load_procgen_params(path: Path = Path("params.yaml")) -> ProcgenPipelineConfig:
    """Read and validate the Procgen pipeline's ``params.yaml`` (``procgen/params.yaml``), games included.

    Raises:
        ParamsError: missing file, bad YAML, unknown keys, bad values or unknown games (named with the
            valid choices).
    """
    return _read_params(path, ProcgenPipelineConfig, "default --pipeline procgen", _check_procgen_games)


def load_metaworld_params(path: Path = Path("params.yaml")) -> MetaWorldPipelineConfig:
    """Read and validate the Meta-World pipeline's ``params.yaml`` (``metaworld/params.yaml``), tasks
    included (each against its split of the benchmark, without starting a simulator).

    Raises:
        ParamsError: missing file, bad YAML, unknown keys, bad values or unknown tasks (named with the
            valid choices).
    """
    return _read_params(path, MetaWorldPipelineConfig, "default --pipeline metaworld", _check_metaworld_tasks)


def load_explore_params(path: Path = Path("params.yaml")) -> ExplorePipelineConfig:
    """Read and validate the exploration pipeline's ``params.yaml`` (``explore/params.yaml``), games
    included (against the suite of ``train.env``).

    Raises:
        ParamsError: missing file, bad YAML, unknown keys, bad values or unknown games.
    """
    return _read_params(path, ExplorePipelineConfig, "default --pipeline explore", _check_explore_games)


# ---- paths (kept in sync with dvc.yaml) ----------------------------------------------------------
def dataset_dir(game: str) -> Path:
    """Behaviour dataset of ``collect@<game>``."""
    return Path("data") / "datasets" / game


def teacher_data_dir(game: str) -> Path:
    """The dataset relabelled with teacher visit counts and values (``teacher@<game>``)."""
    return Path("data") / "teacher_targets" / game


def teacher_model(game: str) -> Path:
    return Path("models") / "teachers" / game / "model.safetensors"


def student_model() -> Path:
    return Path("models") / "student" / "model.safetensors"


def init_source(init: str) -> Path | None:
    """The weights a finetune run's ``init`` names (see :class:`xfer.xtra_config.FinetuneRun`), None for ``none``:
    ``student`` -> ``models/student``, ``bc`` / ``offline_rl`` -> ``models/baselines/<name>``,
    ``teacher:<game>`` -> ``models/teachers/<game>`` (each ``.../model.safetensors``)."""
    if init == "none":
        return None
    if init == "student":
        return student_model()
    if init.startswith("teacher:"):
        return teacher_model(init.removeprefix("teacher:"))
    return Path("models") / "baselines" / init / "model.safetensors"


def init_dir(run: str) -> Path:
    """Outputs of ``init@<run>``: a copy of the model finetune run ``run`` starts from."""
    return Path("runs") / "init" / run


def finetune_name(target: str, run: str, seed: int) -> str:
    """Item name of one finetuning run: ``<target>-<run>-<seed>`` (dvc.yaml's matrix, the report's keys)."""
    return f"{target}-{run}-{seed}"


def finetune_dir(target: str, run: str, seed: int) -> Path:
    """Outputs of ``finetune@<target>-<run>-<seed>``."""
    return Path("runs") / "finetune" / finetune_name(target, run, seed)


def stage_metrics(name: str) -> Path:
    return Path("metrics") / f"{name}.json"


def work_dir(stage: str, item: str | None = None) -> Path:
    """Resume-state directory of a stage (not a DVC output)."""
    return WORK / stage / item if item else WORK / stage


# ---- configs -------------------------------------------------------------------------------------
def train_config(p: PipelineConfig, game: str, overrides: dict[str, Any], **fields: Any) -> TrainConfig:
    """A :class:`TrainConfig` for ``game`` from the shared params sections plus stage overrides."""
    base = {
        "env": p.env.for_game(game).model_dump(),
        "net": p.net.model_dump(),
        "mcts": p.mcts.model_dump(),
        "replay": p.replay.model_dump(),
        "optim": p.optim.model_dump(),
        "loss": p.loss.model_dump(),
        "discount": p.discount,
        "value_prefix_horizon": p.value_prefix_horizon,
        "seed": p.seed,
        "device": p.device,
    }
    return TrainConfig.model_validate(deep_merge(deep_merge(base, overrides), fields))


def task_specs(p: PipelineConfig, games: list[str]) -> dict[str, EnvSpec]:
    """The environment spec of each of ``games`` under the pipeline's ``env`` protocol (the pipeline's
    suite is Atari; the ``env`` section is its protocol)."""
    return {g: env_spec("atari", p.env, g) for g in games}


def write_json(path: Path, data: dict) -> None:
    """Atomically write pretty JSON (metrics files read by ``dvc metrics show``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


# ---- CLI -----------------------------------------------------------------------------------------
def stage_cli(
    name: str,
    description: str,
    run: Callable[[Any, argparse.Namespace], dict],
    items: tuple[str, ...] = (),
    argv: list[str] | None = None,
    load: Callable[[Path], Any] = load_params,
) -> int:
    """Parse ``--params`` (and ``--<item>`` for each of ``items``), load params with ``load`` (the XTRA
    pipeline's :func:`load_params` unless a pipeline passes its own), call ``run``.

    Bad input (params, data, checkpoints) maps to exit code 2 with a one-line message.

    The stage runs under :func:`xfer.stages.guard.exclusive_lock` (a second process of the same
    stage instance fails at once, naming the first one's PID) and stops when the ``dvc`` process
    that started it dies (:func:`xfer.stages.guard.stop_when_parent_dies`).

    Exit codes: 0 success; 2 bad input (params, data, checkpoints), the stage instance already
    running, or a file-system error
    (read-only folder, full disk: the path and the fix), as one line on stderr without a traceback;
    130 interrupted (Ctrl-C), with one line saying where the stage resumes from.
    """
    parser = argparse.ArgumentParser(prog=f"xfer stage {name}", description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    for item in items:
        parser.add_argument(f"--{item}", required=True, help=f"the {item} this stage instance handles")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    instance = "-".join(str(getattr(args, i)) for i in items)
    try:
        # one writer per stage instance; and no stage outliving the `dvc repro` that started it
        with exclusive_lock(WORK / "locks" / f"{name}{'-' + instance if instance else ''}.lock",
                            f"stage {name}{' ' + instance if instance else ''}"), stop_when_parent_dies():
            cfg = load(Path(args.params))
            metrics = run(cfg, args)
    except (StageInputError, DatasetError, CheckpointError, FileNotFoundError, StageBusyError) as exc:
        print(f"xfer stage {name}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # read-only folder, full disk, ...: outputs are replaced only at the end
        where = f" at {exc.filename}" if exc.filename else ""
        print(f"xfer stage {name}: error: {exc.strerror or exc}{where}; make the folder writable or free disk "
              "space, then rerun `dvc repro` (it resumes from the last checkpoint)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        state = work_dir(name, instance or None)
        then = (f"`dvc repro` resumes it from its last checkpoint in {state}" if state.exists()
                else "`dvc repro` runs it again")
        print(f"xfer stage {name}: interrupted; {then}", file=sys.stderr)
        return 130
    log.info("%s done: %s", name, json.dumps(metrics, sort_keys=True)[:500])
    return 0


def input_fingerprint(paths: list[Path]) -> str:
    """Hash of input files' identities: dataset manifests (shard checksums) and model sidecars
    (weights checksum). Resume states include it, so new upstream data never continues an old run."""
    import hashlib

    h = hashlib.sha256()
    for path in paths:
        path = Path(path)
        f = path / "manifest.json" if path.is_dir() else path.with_suffix(".json")
        h.update(str(path).encode())
        h.update(f.read_bytes() if f.exists() else b"missing")
    return h.hexdigest()[:12]


def _stage_body(stage: str, dvc_yaml: Path) -> dict:
    """dvc.yaml's ``stage`` (a foreach stage's ``do``); :class:`StageInputError` without the file or stage."""
    if not dvc_yaml.exists():
        raise StageInputError(f"{dvc_yaml.resolve()} not found; run pipeline stages from the checkout that holds "
                              "dvc.yaml (as `dvc repro` does)")
    stages = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {})
    if stage not in stages:
        raise StageInputError(f"{dvc_yaml} has no stage {stage!r} (it has {sorted(stages)})")
    return stages[stage].get("do", stages[stage])


def declared_params(stage: str, item: dict[str, Any] | None = None, dvc_yaml: Path = Path("dvc.yaml")) -> list[str]:
    """The params keys dvc.yaml's ``stage`` declares (its ``params:``), ``${item.x}`` filled in from ``item``.

    dvc.yaml is the one declaration of what a stage depends on: DVC reruns the stage when one of these
    keys changes, and :func:`params_hash` makes the stage's resume state (and its checkpoints'
    ``config_hash``) depend on exactly the same keys.

    Raises:
        StageInputError: no dvc.yaml in the working directory (run stages from the pipeline checkout),
            no such stage in it, or an ``${item.x}`` that ``item`` does not give.
    """
    body = _stage_body(stage, dvc_yaml)
    keys = []
    for key in body.get("params", []):
        if not isinstance(key, str):  # `- other.yaml: [keys]` entries name other files
            continue
        for name, value in (item or {}).items():
            key = key.replace(f"${{item.{name}}}", str(value))
        if "${" in key:
            raise StageInputError(f"dvc.yaml stage {stage!r} param {key!r} needs an item this stage did not give")
        keys.append(key)
    return keys


def code_fingerprint(stage: str, dvc_yaml: Path = Path("dvc.yaml")) -> str:
    """MD5 of the code fingerprint dvc.yaml's ``stage`` depends on (its ``code-deps/<module>.json``, written
    by the ``code`` stage: the stage's import closure with each file's md5); ``""`` when it declares none.

    A resume state keyed on it (:func:`resume_key`) is discarded when the stage's code changed: DVC reruns
    the stage because its code changed, and continuing a state trained by the old code (or, for a
    finished run, just republishing it) would hand back the old code's result.

    Raises:
        StageInputError: no dvc.yaml or no such stage.
    """
    import hashlib

    deps = [d for d in _stage_body(stage, dvc_yaml).get("deps", []) if isinstance(d, str) and "code-deps/" in d]
    if not deps:
        return ""
    path = dvc_yaml.parent / deps[0]
    return hashlib.md5(path.read_bytes()).hexdigest()[:12] if path.exists() else "unknown"


def resume_key(state_hash: str, stage: str, dvc_yaml: Path = Path("dvc.yaml")) -> str:
    """What a stage's resume state must match: its params hash (``state_hash``) and its code
    (:func:`code_fingerprint`). Checkpoint sidecars keep ``state_hash`` alone, so their bytes do not
    change with code that does not change the result."""
    return f"{state_hash}-{code_fingerprint(stage, dvc_yaml)}"


def params_hash(p: PipelineConfig, stage: str, item: dict[str, Any] | None = None,
                extra: dict | None = None) -> str:
    """:func:`section_hash` of the params ``stage`` declares in dvc.yaml (:func:`declared_params`)."""
    return section_hash(p, *declared_params(stage, item), extra=extra)


def section_hash(p: PipelineConfig, *sections: str, extra: dict | None = None) -> str:
    """Hash of the named params keys (+ ``extra``): what a stage's resume state (and the
    ``config_hash`` of its checkpoints) depends on. Keys are dvc.yaml's params names: a section
    (``"net"``) or a dotted key (``"baselines.bc"``); name exactly what the stage declares, so
    unrelated params (another baseline's settings) change neither its state nor its output bytes.
    """
    import hashlib

    def value(key: str) -> Any:
        v: Any = p
        for part in key.split("."):
            v = v[part] if isinstance(v, dict) else getattr(v, part)
        return v.model_dump(mode="json") if hasattr(v, "model_dump") else v

    blob = {s: value(s) for s in sections}
    blob["extra"] = extra or {}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:12]
