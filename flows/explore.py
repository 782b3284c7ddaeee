"""Prefect orchestration of the exploration pipeline (``explore/dvc.yaml``): one Prefect task (or sub-flow
run) per DVC stage, with the same machinery as the XTRA, Procgen and Meta-World pipelines
(:mod:`flows.pipeline`): every task runs exactly one ``dvc repro`` of one stage, so ``explore/dvc.lock``
stays the record of what produced what.

The flow writes ``explore/params.yaml`` from a preset of ``presets/explore/`` plus overrides
(:class:`~flows.explore_params.ExploreParams`, the form in the Prefect UI), runs the root ``code`` stage
(each stage's code fingerprint), then every ``explore@<game>-<agent>-<seed>`` (reward-free exploration on
the intrinsic reward), ``random@<game>-<seed>`` (the uniform-random agent), ``transfer@<game>-<agent>-
<transfer>-<seed>`` and ``scratch@<game>-<agent>-<seed>`` (finetuning on the game's reward from the
exploration checkpoint's parts, or from fresh weights), ``evaluate`` (every final model under one
protocol) and the ``report``. ``distributed``: the explore, transfer, scratch and evaluate stages go to the
``xtra-stage/gpu`` deployment (they run on ``params.device``), the random and report stages to
``xtra-stage/cpu``; hosts exchange outputs through the DVC remote and run-cache, as in the XTRA pipeline.

Run ``python flows/explore.py --help`` for the command line; docs/prefect.md has the deployment set-up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, get_args

if __package__ in (None, ""):  # `python flows/explore.py`: make `flows` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefect import flow

from flows.cli import add_run_options, csv_list, pipeline_main
from flows.explore_params import ExploreParams, ExplorePreset
from flows.pipeline import run_pipeline

DVCFILE = "explore/dvc.yaml"


@flow(name="explore-pipeline", log_prints=True)
def explore_pipeline(params: ExploreParams = ExploreParams(), repo: str = ".",  # noqa: B008
                     distributed: bool = False, parallel: int = 1) -> dict[str, Any]:
    """The exploration pipeline: write explore/params.yaml, then run the `code` stage and every stage of
    explore/dvc.yaml in order (explore, random, transfer, scratch, evaluate, report), one task per stage. Publishes
    the report (markdown) and the summary (table) as artifacts (keys explore-report, explore-summary).
    Returns a JSON summary.

    Args:
        params: what to run: a preset of presets/explore/ plus overrides, written to explore/params.yaml first.
        repo: the xfer checkout (git + DVC) to run in, on the host that runs this flow; "." is the
            deployment's working directory (the worker's XFER_REPO).
        distributed: send each explore, transfer, scratch and evaluate stage to the xtra-stage/gpu deployment and the
            random and report stages to xtra-stage/cpu instead of running them here; hosts exchange outputs
            through the DVC remote.
        parallel: distributed mode: run up to this many items of one stage group at once (one checkout
            per worker: docs/gpu-workers.md); local mode runs one stage at a time.
    """
    return run_pipeline(params, repo, distributed, DVCFILE, "Exploration pipeline", parallel)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python flows/explore.py",
        description="Run the exploration pipeline flow (every DVC stage of explore/dvc.yaml as a Prefect task) "
        "from the command line. Uses the Prefect API in PREFECT_API_URL, or a temporary local server when it is "
        "unset.",
        epilog="examples:\n"
        "  python flows/explore.py                                  # default preset (CPU), all stages here\n"
        "  python flows/explore.py --games UpNDown,Breakout --seeds 0,1,2 --intrinsic disagreement\n"
        "  python flows/explore.py --explore-env-steps 5000 --finetune-env-steps 2000\n"
        "  python flows/explore.py --preset gpu_atari --distributed # explore/transfer/scratch on the gpu pool",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="default", choices=list(get_args(ExplorePreset)))
    p.add_argument("--games", type=csv_list, help="games (tasks) of the preset's suite, comma separated "
                   "(default: preset's)")
    p.add_argument("--seeds", type=lambda t: [int(x) for x in csv_list(t)], help="seeds, comma separated")
    p.add_argument("--device", choices=["cpu", "cuda"], help="where the runs train (default: preset's)")
    p.add_argument("--explore-env-steps", type=int, help="agent steps of reward-free exploration per run "
                   "(explore.env_steps; also the random agent's)")
    p.add_argument("--finetune-env-steps", type=int, help="agent steps per transfer and scratch run "
                   "(finetune.env_steps)")
    p.add_argument("--intrinsic", choices=["rnd", "disagreement"], help="the exploration reward "
                   "(intrinsic.kind; default: preset's)")
    add_run_options(p, "explore/params.yaml")
    return p


def params_from_args(args: argparse.Namespace) -> ExploreParams:
    """The flow's params from :func:`build_parser`'s arguments (raises ValueError on bad values)."""
    return ExploreParams(preset=args.preset, games=args.games, seeds=args.seeds, device=args.device,
                         explore_env_steps=args.explore_env_steps, finetune_env_steps=args.finetune_env_steps,
                         intrinsic=args.intrinsic, push=args.push, pull=args.pull, write_params=not args.keep_params)


def main(argv: list[str] | None = None) -> int:
    return pipeline_main(build_parser(), params_from_args, explore_pipeline, "explore pipeline", argv)


if __name__ == "__main__":
    sys.exit(main())
