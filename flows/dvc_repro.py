"""``dvc repro`` of one stage through DVC's Python API, recording what happened as JSON.

Run as a script in the DVC checkout (``python flows/dvc_repro.py STAGE --report FILE``); the Prefect
tasks of ``flows/stage_tasks.py`` call it in a child process (DVC holds a repo lock per process, and the
stage commands' output streams into the task's log). Instead of reading DVC's printed messages, it
watches the two points where DVC decides a stage's fate:

- ``dvc.stage.run.cmd_run``: the stage's command is about to run -> ``ran``;
- ``StageCache.restore`` returning: outputs checked out from the run-cache -> ``restored``;
- neither: the stage was up to date -> ``unchanged``.

``--restore-upstream`` (distributed mode): a stage other than STAGE (and the ``code`` fingerprint
stage, ``--may-run``) reaching ``cmd_run`` is stopped *before* its command starts: another host ran
it, and recomputing it here would hide a missing push and cost its whole run time.

The report (``--report FILE``, JSON) holds ``stages`` (address -> ran | restored), ``failed`` (the stage
whose command failed, or None), ``cmd_exit_code`` (its exit code; xfer's stages exit 2 on bad input),
``not_restored`` (the upstream stage stopped by ``--restore-upstream``) and ``error`` (DVC's message).
Exit status: 0 reproduced; 1 failed (see the report); 2 bad arguments.

Built against DVC 3 (``dvc.stage.run.cmd_run``, ``dvc.stage.cache.StageCache.restore``,
``dvc.stage.exceptions.StageCmdFailedError``); tests/flows/test_dvc_repro.py fails if they move.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


class UpstreamWouldRun(Exception):
    """Raised inside DVC to stop a stage whose command must not run here (``--restore-upstream``)."""

    def __init__(self, stage: str):
        super().__init__(f"upstream stage {stage!r} would run here")
        self.stage = stage


def reproduce(stage: str, single_item: bool, pull: bool, restore_upstream: bool,
              may_run: frozenset[str] = frozenset()) -> dict:
    """Reproduce ``stage`` in the working directory's DVC repo; returns the report (module docstring).

    ``may_run``: stage groups (``code`` for ``code``, ``teacher`` for ``teacher@Pong``) any host may
    run itself even with ``restore_upstream``.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo
    from dvc.stage import run as dvc_run
    from dvc.stage.cache import StageCache
    from dvc.stage.exceptions import StageCmdFailedError

    report: dict = {"stage": stage, "stages": {}, "failed": None, "cmd_exit_code": None, "not_restored": None,
                    "error": None}
    original_cmd_run, original_restore, original_failed_init = dvc_run.cmd_run, StageCache.restore, \
        StageCmdFailedError.__init__

    def cmd_run(st, *args, **kwargs):
        name = st.addressing
        if restore_upstream and name != stage and name.split("@", 1)[0] not in may_run:
            raise UpstreamWouldRun(name)
        report["stages"][name] = "ran"
        report["failed"] = name  # until its command returns
        original_cmd_run(st, *args, **kwargs)
        report["failed"] = None

    def restore(self, st, *args, **kwargs):
        original_restore(self, st, *args, **kwargs)  # raises RunCacheNotFoundError when there is nothing
        if not kwargs.get("dry"):
            report["stages"][st.addressing] = "restored"

    def failed_init(self, cmd, status=None):  # DVC keeps the exit code in its message only
        original_failed_init(self, cmd, status)
        self.status = status

    dvc_run.cmd_run, StageCache.restore, StageCmdFailedError.__init__ = cmd_run, restore, failed_init
    try:
        with Repo(".") as repo:
            repo.reproduce(targets=[stage], single_item=single_item, pull=pull)
    except DvcException as exc:
        causes = []
        cause: BaseException | None = exc
        while cause is not None:
            causes.append(cause)
            cause = cause.__cause__ or cause.__context__
        for c in causes:
            if isinstance(c, UpstreamWouldRun):
                report["not_restored"], report["failed"] = c.stage, None
            elif isinstance(c, StageCmdFailedError):
                report["cmd_exit_code"] = getattr(c, "status", None)
        report["error"] = ": ".join(str(c) for c in causes if str(c))  # as `dvc repro` prints it
        report["failed"] = report["failed"] or (None if report["not_restored"] else stage)
    finally:
        dvc_run.cmd_run, StageCache.restore, StageCmdFailedError.__init__ = original_cmd_run, original_restore, \
            original_failed_init
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python flows/dvc_repro.py",
        description="dvc repro of one stage through DVC's Python API; writes what happened to each stage "
                    "(ran / restored / failed, the command's exit code) as JSON.")
    parser.add_argument("stage", help="the DVC stage, e.g. teacher@Pong")
    parser.add_argument("--report", type=Path, required=True, help="where to write the JSON report")
    parser.add_argument("--single-item", action="store_true", help="this stage only, not its upstream stages")
    parser.add_argument("--pull", action="store_true", help="restore missing outputs from the remote and run-cache")
    parser.add_argument("--restore-upstream", action="store_true",
                        help="stop (before its command) any other stage that would run here")
    parser.add_argument("--may-run", default="", help="comma-separated stage groups exempt from --restore-upstream")
    args = parser.parse_args(argv)
    from dvc.logger import setup

    setup()  # DVC's own console messages, as `dvc repro` prints them
    report = reproduce(args.stage, args.single_item, args.pull, args.restore_upstream,
                       frozenset(g for g in args.may_run.split(",") if g))
    tmp = args.report.with_name(args.report.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, args.report)
    if report["error"]:
        print(f"ERROR: {report['error']}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
