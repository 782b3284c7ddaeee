"""Prefect orchestration of the XTRA DVC pipeline: one Prefect task (or sub-flow run) per DVC stage.

The DVC pipeline (``dvc.yaml``) is the single source of truth for *what* runs; this module only decides
*where and in which order*. Every Prefect task runs exactly one ``dvc repro`` of one stage (``collect@Pong``,
``distill``, ...) so that ``dvc.lock`` stays the record of what produced what.

Modes of :func:`xtra_pipeline`:

- local (default): every stage runs in this process, one after another (``dvc repro`` holds a repo lock,
  so one checkout runs one DVC command at a time). With ``push``, each stage's outputs and run-cache
  entry go to the DVC remote (``xfer push --run-cache``).
- distributed: each stage becomes a run of the ``xtra-stage/gpu`` or ``xtra-stage/cpu`` deployment,
  picked up by a worker of the ``gpu`` or ``cpu`` work pool on whatever host it runs. Hosts exchange
  results through the DVC remote and run-cache (``dvc repro --pull`` before, ``xfer push --run-cache``
  after), never through Prefect results: tasks return small JSON summaries only.

Retries: :func:`run_stage` retries transient failures (2 retries). A stage command that exits with code 2
(xfer's "bad input" exit code: bad params, corrupt shard, missing file) is not retried, because the
same inputs fail the same way; see :func:`retry_unless_bad_input`.

Run ``python flows/pipeline.py --help`` for the command line; docs/prefect.md has the deployment set-up.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field, field_validator, model_validator

from flows.artifacts import publish_artifacts
from flows.explore_params import ExploreParams
from flows.metaworld_params import MetaWorldParams
from flows.procgen_params import ProcgenParams

# Stage groups in pipeline order; DVC names per-item stages "group@item". Unknown groups run after
# these, in the order `dvc stage list` prints them.
GROUP_ORDER: tuple[str, ...] = (
    "code", "collect", "teacher", "distill", "bc", "offline_rl", "init", "finetune", "evaluate", "report")
# Runs `dvc repro` of one stage through DVC's Python API and reports what happened as JSON.
REPRO_SCRIPT = Path(__file__).resolve().with_name("dvc_repro.py")
# Stages every host may run itself in distributed mode: `code` (each stage's code fingerprint) reads
# only the checkout's sources, takes a second and gives the same bytes everywhere.
LOCAL_GROUPS: frozenset[str] = frozenset({"code"})
# Groups that need an accelerator: routed to the gpu work pool in distributed mode; the rest go to cpu.
HEAVY_GROUPS: frozenset[str] = frozenset({"collect", "teacher", "distill", "bc", "offline_rl", "finetune",
                                          "procgen/dvc.yaml:train", "metaworld/dvc.yaml:pretrain",
                                          "metaworld/dvc.yaml:finetune", "metaworld/dvc.yaml:scratch",
                                          "explore/dvc.yaml:explore", "explore/dvc.yaml:transfer",
                                          "explore/dvc.yaml:scratch", "explore/dvc.yaml:evaluate"})
# Deployments (flow name/deployment name, see prefect.yaml) that run one stage on a pool's worker.
STAGE_DEPLOYMENTS: dict[str, str] = {"gpu": "xtra-stage/gpu", "cpu": "xtra-stage/cpu"}
# xfer's exit code for bad input (bad params, corrupt data, missing files): retrying cannot help.
BAD_INPUT_EXIT_CODE = 2
TAIL_LINES = 40
# How often distributed mode polls a stage's flow run for completion (seconds).
POLL_SECONDS = float(os.environ.get("XFER_STAGE_POLL_SECONDS", "5"))

Preset = Literal["default", "cpu-demo", "shooter", "maze", "diverse"]


class PipelineParams(BaseModel):
    """What to run: a params preset plus overrides (rendered as a form in the Prefect UI).

    Field names follow params.yaml (``xfer params`` rejects unknown keys): ``targets`` is a list, ``seed``
    the pretraining stages' seed and ``seeds`` the finetuning seeds (dvc.yaml runs every finetuning run
    once per seed). For convenience ``target="Game"`` is accepted as input and mapped onto ``targets``.
    """

    pipeline: Literal["xtra"] = Field("xtra", description="which pipeline (fixed: xtra)")
    preset: Preset = Field("default", description="params preset: default = small CPU pipeline; cpu-demo = "
                           "xtra vs scratch vs no task weights, 3 seeds, about 2 h on 2 CPU cores; "
                           "shooter / maze / diverse = paper-scale setups for GPU workers")
    pretrain_games: list[str] | None = Field(None, description="pretraining games (offline datasets); "
                                             "empty = the preset's")
    targets: list[str] | None = Field(None, description="target games for finetuning (unseen in "
                                      "pretraining); empty = the preset's")
    seed: int | None = Field(None, ge=0, description="seed of the pretraining stages (params.yaml `seed`; "
                             "empty = preset's)")
    seeds: list[int] | None = Field(None, description="finetuning seeds: every finetuning run is repeated once "
                                    "per seed (params.yaml `seeds`; empty = preset's)")
    collect_env_steps: int | None = Field(None, gt=0, description="collect.env_steps (empty = preset's)")
    teacher_train_steps: int | None = Field(None, gt=0, description="teacher.train_steps (empty = preset's)")
    distill_train_steps: int | None = Field(None, gt=0, description="distill.train_steps (empty = preset's)")
    finetune_env_steps: int | None = Field(None, gt=0, description="finetune.env_steps (empty = preset's)")
    push: bool = Field(False, description="after each stage, push its outputs and run-cache entry to the DVC remote "
                       "(xfer push --run-cache)")
    pull: bool = Field(False, description="dvc repro --pull: reuse outputs other hosts pushed (local mode)")
    write_params: bool = Field(True, description="write params.yaml from preset + overrides first "
                               "(off: use the checkout's params.yaml as it is)")

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        target = data.pop("target", None)
        if target is not None:
            if data.get("targets") not in (None, [target]):
                raise ValueError("give either target or targets, not both")
            data["targets"] = [target]
        return data

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int] | None) -> list[int] | None:
        if not v:
            return None  # an emptied list in the form means "the preset's"
        if len(set(v)) != len(v) or min(v) < 0:
            raise ValueError(f"seeds must be distinct non-negative ints, got {v}")
        return v

    @field_validator("pretrain_games", "targets")
    @classmethod
    def _games(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        v = [g.strip() for g in v if g.strip()]
        if not v:
            return None  # an emptied list in the form means "the preset's"
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate games: {v}")
        return v

    def overrides(self) -> dict[str, Any]:
        """The ``xfer params --set`` overrides these params ask for (keys as in params.yaml)."""
        out: dict[str, Any] = {}
        if self.pretrain_games is not None:
            out["pretrain_games"] = self.pretrain_games
        if self.targets is not None:
            out["targets"] = self.targets
        if self.seed is not None:
            out["seed"] = self.seed
        if self.seeds is not None:
            out["seeds"] = self.seeds
        for key, val in (("collect.env_steps", self.collect_env_steps),
                         ("teacher.train_steps", self.teacher_train_steps),
                         ("distill.train_steps", self.distill_train_steps),
                         ("finetune.env_steps", self.finetune_env_steps)):
            if val is not None:
                out[key] = val
        return out


class StageFailed(RuntimeError):
    """A ``dvc repro`` of one stage failed.

    Attributes:
        stage: the DVC stage name (``teacher@Pong``).
        returncode: exit code of the ``dvc`` process.
        cmd_exit_code: exit code of the stage's own command when DVC reports one (``exited with N``),
            else None (DVC itself failed: lock, missing dependency, remote, ...).
    """

    def __init__(self, stage: str, returncode: int, cmd_exit_code: int | None, tail: str, what: str = "dvc repro"):
        self.stage, self.returncode, self.cmd_exit_code = stage, returncode, cmd_exit_code
        why = (f"its command exited with {cmd_exit_code}" if cmd_exit_code is not None
               else f"{what} exited with {returncode}")
        hint = " (bad input: not retried)" if cmd_exit_code == BAD_INPUT_EXIT_CODE else ""
        super().__init__(f"stage {stage!r} failed: {why}{hint}; last output lines:\n{tail}")

    def __reduce__(self):  # keep picklable (Prefect may serialise the exception into the failed state)
        return (_rebuild_stage_failed, (self.stage, self.returncode, self.cmd_exit_code, str(self)))


class NotRestored(RuntimeError):
    """Distributed mode: ``dvc repro --pull STAGE`` was about to *run* an upstream stage that another host
    had already run and pushed (its run-cache entry or one of its objects is missing from the DVC
    remote). Fatal and not retried: recomputing it here would hide the fault and cost its whole run
    time. Attributes: ``stage`` (the requested stage), ``upstream`` (the one that would have run)."""

    def __init__(self, stage: str, upstream: str):
        self.stage, self.upstream = stage, upstream
        super().__init__(
            f"stage {stage!r}: upstream stage {upstream!r} should have been restored from the DVC remote but "
            f"would run on this host; stopped it. Push its outputs and run-cache from the host that ran it "
            f"(`xfer push --run-cache` there; `dvc push --run-cache` alone leaves out the cache: false "
            f"metrics), or run it here on purpose with `dvc repro {upstream}`.")

    def __reduce__(self):
        return (NotRestored, (self.stage, self.upstream))


def _rebuild_stage_failed(stage: str, returncode: int, cmd_exit_code: int | None, message: str) -> StageFailed:
    exc = StageFailed.__new__(StageFailed)
    RuntimeError.__init__(exc, message)
    exc.stage, exc.returncode, exc.cmd_exit_code = stage, returncode, cmd_exit_code
    return exc


class ParamsFailed(RuntimeError):
    """Writing params.yaml failed (``returncode`` 2: the params were rejected)."""

    def __init__(self, message: str, returncode: int):
        super().__init__(message)
        self.returncode = returncode


# ---------------------------------------------------------------------------------------------------
# helpers (plain functions: easy to test and to adapt)


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


def stage_group(stage: str) -> str:
    """``teacher@Pong`` -> ``teacher``; ``distill`` -> ``distill``;
    ``procgen/dvc.yaml:train@coinrun-mz-500-0`` -> ``procgen/dvc.yaml:train``."""
    return stage.split("@", 1)[0]


def stage_pipeline(stage: str) -> str:
    """The pipeline a stage belongs to: its dvc.yaml's folder for ``<dir>/dvc.yaml:<stage>``
    (``procgen/dvc.yaml:report`` -> ``procgen``, ``metaworld/dvc.yaml:pretrain@mz-0`` -> ``metaworld``,
    ``explore/dvc.yaml:random@UpNDown-0`` -> ``explore``),
    else ``xtra`` (the root dvc.yaml's stages)."""
    dvcfile, sep, _ = stage.partition(":")
    folder, slash, name = dvcfile.rpartition("/")
    return folder if sep and slash and folder and name == "dvc.yaml" else "xtra"


def pool_for_stage(stage: str) -> Literal["gpu", "cpu"]:
    """Which work pool a stage belongs on: heavy groups (collect, teacher, distill, bc, offline_rl, finetune;
    Procgen's train; Meta-World's pretrain, finetune, scratch; the exploration pipeline's explore, transfer,
    scratch) -> gpu; the rest (evaluate, the reports, the exploration pipeline's random agent) -> cpu."""
    return "gpu" if stage_group(stage) in HEAVY_GROUPS else "cpu"


def order_stages(names: list[str]) -> list[str]:
    """Pipeline order: known groups in :data:`GROUP_ORDER`, items and unknown groups in DVC's order."""
    rank = {g: i for i, g in enumerate(GROUP_ORDER)}
    indexed = list(enumerate(names))
    indexed.sort(key=lambda p: (rank.get(stage_group(p[1]), len(GROUP_ORDER)), p[0]))
    return [n for _, n in indexed]


def _env() -> dict[str, str]:
    """Environment for DVC and stage commands: this interpreter's bin dir first on PATH (so ``python``,
    ``xfer`` and ``dvc`` in dvc.yaml commands resolve to this environment), unbuffered Python output,
    no DVC analytics (the hosts may be offline)."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("DVC_NO_ANALYTICS", "1")
    return env


def worker_info() -> dict[str, str | None]:
    """Where a stage runs: this host and the GPUs it may use (``CUDA_VISIBLE_DEVICES``, which
    ``flows/gpu_workers.py`` sets per worker; None when unset: every GPU, or none)."""
    return {"host": socket.gethostname(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def _dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def repro_command(stage: str, report: Path, single_item: bool, pull: bool, restore_upstream: bool) -> list[str]:
    """argv of ``dvc repro STAGE`` through DVC's Python API (:mod:`flows.dvc_repro`), which writes what
    happened (ran / restored / unchanged, the command's exit code, an upstream stage stopped) to
    ``report`` as JSON. ``restore_upstream``: upstream stages other than :data:`LOCAL_GROUPS` may only
    be restored or unchanged; one about to run is stopped before its command starts."""
    return [sys.executable, str(REPRO_SCRIPT), stage, "--report", str(report),
            *(["--single-item"] if single_item else []), *(["--pull"] if pull else []),
            *(["--restore-upstream", "--may-run", ",".join(sorted(LOCAL_GROUPS))] if restore_upstream else [])]


def _stream(argv: list[str], cwd: str, log) -> tuple[int, list[str]]:
    """Run ``argv``; send each output line (stdout and stderr merged) to ``log``; return (code, all lines)."""
    lines: list[str] = []
    proc = subprocess.Popen(argv, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", bufsize=1)
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\r\n")
            lines.append(line)
            if line.strip():
                log(line)
        return proc.wait(), lines
    finally:  # cancelled or crashed while streaming: do not leave the stage running
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def retry_unless_bad_input(task, task_run, state) -> bool:
    """``retry_condition_fn`` of :func:`run_stage`: retry unless the stage command exited with code 2.

    Prefect calls it with the failed state; the raised exception is its ``data`` (or its result).
    Must stay a plain ``def`` function: Prefect only calls functions (a callable object would be
    treated as "do not retry").
    """
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            exc = state.result(raise_on_failure=False)
        except Exception:  # noqa: BLE001 - unreadable result: default to retrying
            return True
    if isinstance(exc, StageFailed) and exc.cmd_exit_code == BAD_INPUT_EXIT_CODE:
        return False
    if isinstance(exc, NotRestored):
        return False
    return not (isinstance(exc, ParamsFailed) and exc.returncode == BAD_INPUT_EXIT_CODE)


# ---------------------------------------------------------------------------------------------------
# tasks


@task(name="apply-params", cache_policy=NO_CACHE)
def apply_params(params: SomeParams, repo: str) -> dict[str, Any]:
    """Write the pipeline's params file in ``repo`` from the preset and overrides (``xfer params``):
    ``params.yaml`` (XTRA), ``procgen/params.yaml`` (Procgen), ``metaworld/params.yaml`` (Meta-World) or
    ``explore/params.yaml`` (exploration)."""
    log = get_run_logger()
    argv = params_command(params)
    code, lines = _stream(argv, repo, log.info)
    if code != 0:
        tail = "\n".join(lines[-TAIL_LINES:])
        raise ParamsFailed(f"writing params.yaml failed (exit {code}): {' '.join(argv[1:])}\n{tail}", code)
    return {"pipeline": params.pipeline, "preset": params.preset, "overrides": params.overrides()}


@task(name="list-stages", cache_policy=NO_CACHE)
def list_stages(repo: str, dvcfile: str | None = None) -> list[str]:
    """DVC stage names of ``repo`` (``dvc stage list --name-only``) in pipeline order: the root
    ``dvc.yaml``'s, or with ``dvcfile`` (e.g. ``procgen/dvc.yaml``) that file's, named
    ``procgen/dvc.yaml:train@...`` as ``dvc repro`` takes them from the repo root."""
    proc = subprocess.run(_dvc("stage", "list", "--name-only", *([dvcfile] if dvcfile else [])), cwd=repo,
                          env=_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dvc stage list failed in {repo} (exit {proc.returncode}):\n"
                           f"{proc.stdout}{proc.stderr}")
    names = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
    if not names:
        raise RuntimeError(f"no DVC stages in {Path(repo).resolve()} (is dvc.yaml there?)")
    return order_stages(names)


@task(name="run-stage", task_run_name="{stage}", retries=2, retry_delay_seconds=30,
      retry_condition_fn=retry_unless_bad_input, cache_policy=NO_CACHE)
def run_stage(stage: str, repo: str, pull: bool, push: bool, single_item: bool = True,
              restore_upstream: bool = False) -> dict[str, Any]:
    """Reproduce one DVC stage in ``repo``; then, with ``push``, ``xfer push --run-cache`` (DVC's push
    plus the run-cache entries' ``cache: false`` objects, which plain ``dvc push --run-cache`` leaves
    out; see :func:`xfer.storage.sync.run_cache_objects`).

    ``single_item`` (local mode): ``dvc repro --single-item`` (upstream stages already ran in this
    checkout). Off (a worker's checkout): plain ``dvc repro``, so upstream outputs produced elsewhere are
    checked out from the run-cache (with ``pull``) instead of missing. ``restore_upstream``
    (distributed mode): upstream stages must be restored or unchanged; DVC starting one of them stops
    the command and raises :class:`NotRestored` (not retried).

    Returns a small JSON summary: stage, status (ran | restored | unchanged, from the JSON report of
    :mod:`flows.dvc_repro`, which follows DVC's Python API rather than its messages), seconds, pushed.
    Raises :class:`StageFailed` naming the stage, with the tail of the output. Retried twice unless the
    stage's command exited with code 2 (see :func:`retry_unless_bad_input`).
    """
    log = get_run_logger()
    log.info("$ dvc repro %s%s%s  (in %s)", "--single-item " if single_item else "", "--pull " if pull else "",
             stage, Path(repo).resolve())
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xfer-repro-") as tmp:
        report_path = Path(tmp) / "report.json"
        code, lines = _stream(repro_command(stage, report_path, single_item, pull, restore_upstream), repo, log.info)
        report = json.loads(report_path.read_text()) if report_path.exists() else None
    seconds = round(time.monotonic() - t0, 3)
    tail = "\n".join(lines[-TAIL_LINES:])
    if report is None or code != 0:
        if report is not None and report["not_restored"]:
            raise NotRestored(stage, report["not_restored"])
        raise StageFailed(stage, code, report["cmd_exit_code"] if report else None, tail)
    status = report["stages"].get(stage, "unchanged")
    pushed = False
    if push:
        pcode, plines = _stream([sys.executable, "-m", "xfer.cli", "push", "--run-cache"], repo, log.info)
        if pcode != 0:
            raise StageFailed(stage, pcode, None, "\n".join(plines[-TAIL_LINES:]), what="xfer push --run-cache")
        pushed = True
    log.info("stage %s: %s in %.1f s%s", stage, status, seconds, ", pushed" if pushed else "")
    return {"stage": stage, "status": status, "seconds": seconds, "pushed": pushed}


# ---------------------------------------------------------------------------------------------------
# flows


@flow(name="xtra-stage", log_prints=True)
def xtra_stage(stage: str, repo: str = ".", pull: bool = True, push: bool = True,
               params: AnyParams | None = None, single_item: bool = False) -> dict[str, Any]:
    """Run one DVC stage on whichever worker picks this run up (multi-host operation).

    With ``params``, params.yaml is first written the same way the parent flow wrote it, so the stage
    sees the same parameters on every host (the XTRA, Procgen, Meta-World or exploration pipeline's, by
    ``params.pipeline``).
    ``pull``: restore missing upstream outputs from the DVC remote
    and run-cache first; ``push``: push outputs and the run-cache entry afterwards. The report stage also
    publishes the report/summary artifacts here (the parent's checkout does not hold them).
    Returns :func:`run_stage`'s summary plus ``worker``: the host and ``CUDA_VISIBLE_DEVICES`` it ran
    with (:func:`worker_info`; also logged first).

    Args:
        stage: the DVC stage to run, e.g. "collect@Assault", "report", "procgen/dvc.yaml:report",
            "metaworld/dvc.yaml:pretrain@mz-0" or "explore/dvc.yaml:explore@UpNDown-mz-0".
        repo: the xfer checkout to run in on this host; "." is the worker's XFER_REPO.
        pull: restore missing upstream outputs from the DVC remote and run-cache first.
        push: push the stage's outputs and run-cache entry to the DVC remote afterwards.
        params: the parent run's preset and overrides (params.yaml is written from them first).
        single_item: run exactly this stage item (dvc repro --single-item), not its upstream stages.
            Off (the default): upstream stages must be restored from the DVC remote (or be unchanged
            here); one that would run stops this run with NotRestored.
    """
    worker = worker_info()
    get_run_logger().info("stage %s on host %s, CUDA_VISIBLE_DEVICES=%s", stage, worker["host"],
                          worker["cuda_visible_devices"] if worker["cuda_visible_devices"] is not None else "(unset)")
    if params is not None and params.write_params:
        apply_params(params, repo)
    summary = run_stage(stage, repo, pull, push, single_item=single_item, restore_upstream=pull and not single_item)
    summary["worker"] = worker
    if stage_group(stage).split(":")[-1] == "report":
        summary["artifacts"] = publish_artifacts(repo, stage_pipeline(stage))
    return summary


def _run_remote(stage: str, params: SomeParams, pull: bool, push: bool) -> dict[str, Any]:
    """Run ``stage`` as a run of its pool's xtra-stage deployment; wait; raise naming it if it failed."""
    from prefect.deployments import run_deployment

    pool = pool_for_stage(stage)
    name = STAGE_DEPLOYMENTS[pool]
    fr = run_deployment(name=name, parameters={"stage": stage, "repo": ".", "pull": pull, "push": push,
                                               "params": params.model_dump(mode="json"), "single_item": False},
                        flow_run_name=f"{stage} ({pool})", poll_interval=POLL_SECONDS)
    state = fr.state
    if state is None or not state.is_completed():
        what = f"{state.name}: {state.message}" if state is not None else "no state"
        raise RuntimeError(f"stage {stage!r} failed on the {pool!r} pool (flow run {fr.name}, {fr.id}): {what}")
    return {"stage": stage, "status": "remote", "pool": pool, "flow_run_id": str(fr.id)}


@flow(name="xtra-pipeline", log_prints=True)
def xtra_pipeline(params: PipelineParams = PipelineParams(), repo: str = ".",  # noqa: B008
                  distributed: bool = False) -> dict[str, Any]:
    """The XTRA pipeline: write params.yaml, then run every DVC stage in order, one task per stage.

    ``distributed``: run each stage as a run of the ``xtra-stage/gpu`` (collect, teacher, distill, bc, offline_rl,
    finetune) or ``xtra-stage/cpu`` (evaluate, report, others) deployment instead of in this process;
    stages then always pull before and push after (that is how hosts exchange outputs).
    Publishes the report (markdown) and metrics summary (table) as artifacts. Returns a JSON summary.

    Args:
        params: what to run: a params preset plus overrides, written to params.yaml first.
        repo: the xfer checkout (git + DVC) to run in, on the host that runs this flow; "." is the
            deployment's working directory (the worker's XFER_REPO).
        distributed: send each stage to the xtra-stage/gpu (heavy stages) or xtra-stage/cpu (evaluate,
            report) deployment instead of running it here; hosts exchange outputs through the DVC remote.
    """
    if params.write_params:
        apply_params(params, repo)
    return run_stages(list_stages(repo), params, repo, distributed, "XTRA pipeline")


def run_pipeline(params: SomeParams, repo: str, distributed: bool, dvcfile: str, title: str) -> dict[str, Any]:
    """The body of the flow of a pipeline with a dvc.yaml of its own (Procgen, Meta-World, exploration): write
    its params file from ``params`` (unless ``params.write_params`` is off), then run the root ``code`` stage
    (each stage's code fingerprint) and every stage of ``dvcfile`` in order (:func:`run_stages`)."""
    if params.write_params:
        apply_params(params, repo)
    return run_stages(["code", *list_stages(repo, dvcfile)], params, repo, distributed, title)


def run_stages(stages: list[str], params: SomeParams, repo: str, distributed: bool,
               title: str) -> dict[str, Any]:
    """Run ``stages`` in order, here (one task each) or on the pools' workers (``distributed``), with a
    progress artifact; then publish the pipeline's report and summary artifacts. Returns the flow's summary."""
    log = get_run_logger()
    n = len(stages)
    log.info("%d stages (%s mode): %s", n, "distributed" if distributed else "local", ", ".join(stages))
    progress_id = create_progress_artifact(0.0, description=f"{title}: {n} stages")
    results: list[dict[str, Any]] = []
    for i, stage in enumerate(stages, 1):
        log.info("stage %d/%d: %s%s", i, n, stage, f" -> {pool_for_stage(stage)} pool" if distributed else "")
        if distributed:
            results.append(_run_remote(stage, params, pull=True, push=True))
        else:
            results.append(run_stage(stage, repo, params.pull, params.push))
        update_progress_artifact(progress_id, 100.0 * i / n, description=f"{title}: {i}/{n} stages done")
    artifacts = publish_artifacts(repo, params.pipeline) if not distributed else {}
    counts = collections.Counter(r["status"] for r in results)
    log.info("done: %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return {"mode": "distributed" if distributed else "local", "stages": results, "artifacts": artifacts}


# ---------------------------------------------------------------------------------------------------
# command line


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python flows/pipeline.py",
        description="Run the XTRA pipeline flow (every DVC stage as a Prefect task) from the command line. "
        "Uses the Prefect API in PREFECT_API_URL, or a temporary local server when it is unset.",
        epilog="examples:\n"
        "  python flows/pipeline.py                      # default preset, all stages here\n"
        "  python flows/pipeline.py --preset shooter --games Assault,Carnival --targets Phoenix --seeds 0,1,2\n"
        "  python flows/pipeline.py --push               # push outputs + run-cache after each stage\n"
        "  python flows/pipeline.py --distributed        # stages go to the gpu/cpu pools' workers",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="default", choices=["default", "cpu-demo", "shooter", "maze", "diverse"])
    p.add_argument("--games", type=_csv, help="pretraining games, comma separated (default: preset's)")
    p.add_argument("--targets", type=_csv, help="target games, comma separated (default: preset's)")
    p.add_argument("--seed", type=int, help="seed of the pretraining stages (default: preset's)")
    p.add_argument("--seeds", type=lambda t: [int(x) for x in _csv(t)],
                   help="finetuning seeds, comma separated: every finetuning run once per seed (default: preset's)")
    p.add_argument("--collect-env-steps", type=int)
    p.add_argument("--teacher-train-steps", type=int)
    p.add_argument("--distill-train-steps", type=int)
    p.add_argument("--finetune-env-steps", type=int)
    add_run_options(p, "params.yaml")
    return p


def add_run_options(p: argparse.ArgumentParser, params_file: str) -> None:
    """The options every pipeline command line shares: --push, --pull, --keep-params, --repo, --distributed."""
    p.add_argument("--push", action="store_true", help="xfer push --run-cache after each stage")
    p.add_argument("--pull", action="store_true", help="dvc repro --pull (reuse outputs pushed by other hosts)")
    p.add_argument("--keep-params", action="store_true", help=f"do not rewrite {params_file}; use it as it is")
    p.add_argument("--repo", default=".", help="DVC repo root (default: current directory)")
    p.add_argument("--distributed", action="store_true",
                   help="run stages through the xtra-stage/gpu and xtra-stage/cpu deployments")


def params_from_args(args: argparse.Namespace) -> PipelineParams:
    """The flow's params from :func:`build_parser`'s arguments (raises ValueError on bad values)."""
    return PipelineParams(preset=args.preset, pretrain_games=args.games, targets=args.targets, seed=args.seed,
                          seeds=args.seeds, collect_env_steps=args.collect_env_steps,
                          teacher_train_steps=args.teacher_train_steps, distill_train_steps=args.distill_train_steps,
                          finetune_env_steps=args.finetune_env_steps, push=args.push, pull=args.pull,
                          write_params=not args.keep_params)


def main(argv: list[str] | None = None) -> int:
    return pipeline_main(build_parser(), params_from_args, xtra_pipeline, "pipeline", argv)


def pipeline_main(parser: argparse.ArgumentParser, make_params: Callable[[argparse.Namespace], SomeParams],
                  pipeline_flow, name: str, argv: list[str] | None = None) -> int:
    """A pipeline's command line: parse ``argv`` with ``parser`` (which has :func:`add_run_options`), build the
    flow's params with ``make_params(args)`` (bad values: the message on stderr and exit 2), run the flow
    (:func:`run_flow_cli`)."""
    args = parser.parse_args(argv)
    try:
        params = make_params(args)
    except ValueError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    return run_flow_cli(pipeline_flow, params, args.repo, args.distributed, name)


def run_flow_cli(pipeline_flow, params: SomeParams, repo: str, distributed: bool,
                 name: str) -> int:
    """Run a pipeline flow from a command line: its JSON summary on stdout and exit 0, or the failed
    state on stderr and exit 1."""
    state = pipeline_flow(params=params, repo=repo, distributed=distributed, return_state=True)
    if not state.is_completed():
        print(f"{name}: {state.name}: {state.message}", file=sys.stderr)
        return 1
    print(json.dumps(state.result(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
