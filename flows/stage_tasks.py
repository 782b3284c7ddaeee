"""The Prefect tasks every pipeline flow is made of: write the params file, list the stages, run one stage.

Every stage runs as exactly one ``dvc repro`` of one stage (through :mod:`flows.dvc_repro`, which reports
what happened as JSON), streaming its output to the Prefect log. Retries: :func:`run_stage` retries
transient failures (2 retries); a stage command that exits with code 2 (xfer's "bad input" exit code: bad
params, corrupt shard, missing file) is not retried, because the same inputs fail the same way
(:func:`retry_unless_bad_input`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.params import SomeParams, params_command
from flows.routing import LOCAL_GROUPS, order_stages

# Runs `dvc repro` of one stage through DVC's Python API and reports what happened as JSON.
REPRO_SCRIPT = Path(__file__).resolve().with_name("dvc_repro.py")
# xfer's exit code for bad input (bad params, corrupt data, missing files): retrying cannot help.
BAD_INPUT_EXIT_CODE = 2
TAIL_LINES = 40


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


def command_env() -> dict[str, str]:
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
    proc = subprocess.Popen(argv, cwd=cwd, env=command_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
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
                          env=command_env(), capture_output=True, text=True)
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
