"""Prefect orchestration of the Procgen pipeline (``procgen/dvc.yaml``): one Prefect task (or sub-flow run)
per DVC stage, with the same machinery as the XTRA pipeline (:mod:`flows.pipeline`): every task runs
exactly one ``dvc repro`` of one stage, so ``procgen/dvc.lock`` stays the record of what produced what.

The flow writes ``procgen/params.yaml`` from a preset of ``presets/procgen/`` plus overrides
(:class:`~flows.procgen_params.ProcgenParams`, the form in the Prefect UI), runs the root ``code`` stage
(each stage's code fingerprint), then every ``train@<game>-<variant>-<levels>-<seed>`` and the
``report``. ``distributed``: the train stages go to the ``xtra-stage/gpu`` deployment, the report to
``xtra-stage/cpu``; hosts exchange outputs through the DVC remote and run-cache, as in the XTRA pipeline.

Run ``python flows/procgen.py --help`` for the command line; docs/prefect.md has the deployment set-up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python flows/procgen.py`: make `flows` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefect import flow

from flows.cli import add_run_options, csv_list, pipeline_main
from flows.pipeline import run_pipeline
from flows.procgen_params import ProcgenParams

DVCFILE = "procgen/dvc.yaml"


@flow(name="procgen-pipeline", log_prints=True)
def procgen_pipeline(params: ProcgenParams = ProcgenParams(), repo: str = ".",  # noqa: B008
                     distributed: bool = False, parallel: int = 1) -> dict[str, Any]:
    """The Procgen pipeline: write procgen/params.yaml, then run the `code` stage and every stage of
    procgen/dvc.yaml in order, one task per stage. Publishes the report (markdown) and the summary
    (tables) as artifacts (keys procgen-report, procgen-summary, procgen-aggregate). Returns a JSON summary.

    Args:
        params: what to run: a preset of presets/procgen/ plus overrides, written to procgen/params.yaml first.
        repo: the xfer checkout (git + DVC) to run in, on the host that runs this flow; "." is the
            deployment's working directory (the worker's XFER_REPO).
        distributed: send each train stage to the xtra-stage/gpu deployment and the report to
            xtra-stage/cpu instead of running them here; hosts exchange outputs through the DVC remote.
        parallel: distributed mode: run up to this many items of one stage group at once (one checkout
            per worker: docs/gpu-workers.md); local mode runs one stage at a time.
    """
    return run_pipeline(params, repo, distributed, DVCFILE, "Procgen pipeline", parallel)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python flows/procgen.py",
        description="Run the Procgen pipeline flow (every DVC stage of procgen/dvc.yaml as a Prefect task) from the "
        "command line. Uses the Prefect API in PREFECT_API_URL, or a temporary local server when it is unset.",
        epilog="examples:\n"
        "  python flows/procgen.py                                  # default preset (CPU), all stages here\n"
        "  python flows/procgen.py --games coinrun,bigfish --levels 10,all --seeds 0,1\n"
        "  python flows/procgen.py --preset paper --distributed     # train stages on the gpu pool's workers",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="default", choices=["default", "paper", "planning"])
    p.add_argument("--games", type=csv_list, help="Procgen games, comma separated (default: preset's)")
    p.add_argument("--levels", type=lambda t: [x if x == "all" else int(x) for x in csv_list(t)],
                   help="training levels per run, comma separated, e.g. 10,100,500,all (default: preset's)")
    p.add_argument("--seeds", type=lambda t: [int(x) for x in csv_list(t)], help="seeds, comma separated")
    p.add_argument("--env-steps", type=int, help="frames per run (train.env_steps; default: preset's)")
    add_run_options(p, "procgen/params.yaml")
    return p


def params_from_args(args: argparse.Namespace) -> ProcgenParams:
    """The flow's params from :func:`build_parser`'s arguments (raises ValueError on bad values)."""
    return ProcgenParams(preset=args.preset, games=args.games, levels=args.levels, seeds=args.seeds,
                         env_steps=args.env_steps, push=args.push, pull=args.pull, write_params=not args.keep_params)


def main(argv: list[str] | None = None) -> int:
    return pipeline_main(build_parser(), params_from_args, procgen_pipeline, "procgen pipeline", argv)


if __name__ == "__main__":
    sys.exit(main())
