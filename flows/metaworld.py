"""Prefect orchestration of the Meta-World pipeline (``metaworld/dvc.yaml``): one Prefect task (or sub-flow
run) per DVC stage, with the same machinery as the XTRA and Procgen pipelines (:mod:`flows.pipeline`):
every task runs exactly one ``dvc repro`` of one stage, so ``metaworld/dvc.lock`` stays the record of what
produced what.

The flow writes ``metaworld/params.yaml`` from a preset of ``presets/metaworld/`` plus overrides
(:class:`~flows.metaworld_params.MetaWorldParams`, the form in the Prefect UI), runs the root ``code``
stage (each stage's code fingerprint), then every ``pretrain@<variant>-<seed>``,
``finetune@<variant>-<seed>`` and ``scratch@<variant>-<seed>`` and the ``report``. ``distributed``: the
pretrain, finetune and scratch stages go to the ``xtra-stage/gpu`` deployment, the report to
``xtra-stage/cpu``; hosts exchange outputs through the DVC remote and run-cache, as in the XTRA pipeline.

Run ``python flows/metaworld.py --help`` for the command line; docs/prefect.md has the deployment set-up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python flows/metaworld.py`: make `flows` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefect import flow

from flows.cli import add_run_options, csv_list, pipeline_main
from flows.metaworld_params import MetaWorldParams
from flows.pipeline import run_pipeline

DVCFILE = "metaworld/dvc.yaml"


@flow(name="metaworld-pipeline", log_prints=True)
def metaworld_pipeline(params: MetaWorldParams = MetaWorldParams(), repo: str = ".",  # noqa: B008
                       distributed: bool = False, parallel: int = 1) -> dict[str, Any]:
    """The Meta-World pipeline: write metaworld/params.yaml, then run the `code` stage and every stage of
    metaworld/dvc.yaml in order (pretrain, finetune, scratch, report), one task per stage. Publishes the
    report (markdown) and the summary (tables) as artifacts (keys metaworld-report, metaworld-summary,
    metaworld-aggregate). Returns a JSON summary.

    Args:
        params: what to run: a preset of presets/metaworld/ plus overrides, written to metaworld/params.yaml first.
        repo: the xfer checkout (git + DVC) to run in, on the host that runs this flow; "." is the
            deployment's working directory (the worker's XFER_REPO).
        distributed: send each pretrain, finetune and scratch stage to the xtra-stage/gpu deployment and the
            report to xtra-stage/cpu instead of running them here; hosts exchange outputs through the DVC remote.
        parallel: distributed mode: run up to this many items of one stage group at once (one checkout
            per worker: docs/gpu-workers.md); local mode runs one stage at a time.
    """
    return run_pipeline(params, repo, distributed, DVCFILE, "Meta-World pipeline", parallel)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python flows/metaworld.py",
        description="Run the Meta-World pipeline flow (every DVC stage of metaworld/dvc.yaml as a Prefect task) from "
        "the command line. Uses the Prefect API in PREFECT_API_URL, or a temporary local server when it is unset.",
        epilog="examples:\n"
        "  python flows/metaworld.py                                # default preset (CPU), all stages here\n"
        "  python flows/metaworld.py --train-tasks reach-v3,push-v3 --test-tasks door-close-v3 --seeds 0,1,2\n"
        "  python flows/metaworld.py --benchmark ML1 --train-tasks reach-v3 --test-tasks reach-v3\n"
        "  python flows/metaworld.py --preset paper_ml45 --distributed  # runs on the gpu pool's workers",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="default", choices=["default", "paper_ml10", "paper_ml45"])
    p.add_argument("--benchmark", choices=["ML1", "ML10", "ML45"], help="Meta-World benchmark (default: preset's)")
    p.add_argument("--train-tasks", type=csv_list, help="training-split tasks to pretrain on, comma separated, or all "
                   "(default: preset's)")
    p.add_argument("--test-tasks", type=csv_list, help="test-split tasks for zero-shot and finetuning, comma separated, "
                   "or all (default: preset's)")
    p.add_argument("--seeds", type=lambda t: [int(x) for x in csv_list(t)], help="seeds, comma separated")
    p.add_argument("--device", choices=["cpu", "cuda"], help="where the runs train (default: preset's)")
    p.add_argument("--pretrain-env-steps", type=int, help="agent steps per pretraining run (pretrain.env_steps)")
    p.add_argument("--finetune-env-steps", type=int, help="agent steps per finetuning and scratch run "
                   "(finetune.env_steps)")
    add_run_options(p, "metaworld/params.yaml")
    return p


def params_from_args(args: argparse.Namespace) -> MetaWorldParams:
    """The flow's params from :func:`build_parser`'s arguments (raises ValueError on bad values)."""
    return MetaWorldParams(preset=args.preset, benchmark=args.benchmark, train_tasks=args.train_tasks,
                           test_tasks=args.test_tasks, seeds=args.seeds, device=args.device,
                           pretrain_env_steps=args.pretrain_env_steps, finetune_env_steps=args.finetune_env_steps,
                           push=args.push, pull=args.pull, write_params=not args.keep_params)


def main(argv: list[str] | None = None) -> int:
    return pipeline_main(build_parser(), params_from_args, metaworld_pipeline, "metaworld pipeline", argv)


if __name__ == "__main__":
    sys.exit(main())
