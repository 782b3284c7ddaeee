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

The pieces live beside it: the tasks and their retries (:mod:`flows.stage_tasks`), stage order and pools
(:mod:`flows.routing`), the forms (:mod:`flows.xtra_params`, :mod:`flows.params`) and what every pipeline's
command line shares (:mod:`flows.cli`); the Procgen, Meta-World and exploration flows reuse
:func:`run_pipeline`.

Run ``python flows/pipeline.py --help`` for the command line; docs/prefect.md has the deployment set-up.
"""

from __future__ import annotations

import argparse
import collections
import contextvars
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python flows/pipeline.py`: make `flows` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from flows.artifacts import publish_artifacts
from flows.cli import add_run_options, csv_list, pipeline_main
from flows.params import AnyParams, SomeParams, params_device
from flows.routing import STAGE_DEPLOYMENTS, pool_for_stage, stage_group, stage_pipeline, waves
from flows.stage_tasks import apply_params, list_stages, run_stage, worker_info
from flows.xtra_params import PipelineParams

# How often distributed mode polls a stage's flow run for completion (seconds).
POLL_SECONDS = float(os.environ.get("XFER_STAGE_POLL_SECONDS", "5"))


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


def _run_remote(stage: str, params: SomeParams, pull: bool, push: bool, device: str = "cpu") -> dict[str, Any]:
    """Run ``stage`` as a run of its pool's xtra-stage deployment (:func:`flows.routing.pool_for_stage` with the
    params' ``device``); wait; raise naming it if it failed."""
    from prefect.deployments import run_deployment

    pool = pool_for_stage(stage, device)
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
                  distributed: bool = False, parallel: int = 1) -> dict[str, Any]:
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
        parallel: distributed mode: run up to this many items of one stage group at once (one checkout
            per worker: docs/gpu-workers.md); local mode runs one stage at a time.
    """
    if params.write_params:
        apply_params(params, repo)
    return run_stages(list_stages(repo), params, repo, distributed, "XTRA pipeline", parallel)


def run_pipeline(params: SomeParams, repo: str, distributed: bool, dvcfile: str, title: str,
                 parallel: int = 1) -> dict[str, Any]:
    """The body of the flow of a pipeline with a dvc.yaml of its own (Procgen, Meta-World, exploration): write
    its params file from ``params`` (unless ``params.write_params`` is off), then run the root ``code`` stage
    (each stage's code fingerprint) and every stage of ``dvcfile`` in order (:func:`run_stages`)."""
    if params.write_params:
        apply_params(params, repo)
    return run_stages(["code", *list_stages(repo, dvcfile)], params, repo, distributed, title, parallel)


def run_stages(stages: list[str], params: SomeParams, repo: str, distributed: bool,
               title: str, parallel: int = 1) -> dict[str, Any]:
    """Run ``stages`` in order, here (one task each) or on the pools' workers (``distributed``), with a
    progress artifact; then publish the pipeline's report and summary artifacts. Returns the flow's summary.

    ``parallel`` (distributed mode): up to this many items of one stage group run at once, each on whichever
    worker picks it up (:func:`flows.routing.waves`; a group starts once the one before it finished). Local
    mode runs one stage at a time whatever ``parallel`` says: DVC runs one command at a time per checkout.

    Raises:
        ValueError: ``parallel`` < 1.
        StageFailed, NotRestored, RuntimeError: the first stage that failed (in distributed mode, after the
            other stages of its wave finished).
    """
    if parallel < 1:
        raise ValueError(f"parallel must be at least 1, got {parallel}")
    log = get_run_logger()
    n = len(stages)
    mode = f"distributed, up to {parallel} at once" if distributed and parallel > 1 else \
        "distributed" if distributed else "local"
    log.info("%d stages (%s mode): %s", n, mode, ", ".join(stages))
    if parallel > 1 and not distributed:
        log.warning("parallel=%d applies to distributed mode only: running one stage at a time here", parallel)
    progress_id = create_progress_artifact(0.0, description=f"{title}: {n} stages")
    results: list[dict[str, Any]] = []

    def done(result: dict[str, Any]) -> None:
        results.append(result)
        update_progress_artifact(progress_id, 100.0 * len(results) / n,
                                 description=f"{title}: {len(results)}/{n} stages done")

    if distributed:
        device = params_device(repo, params.pipeline)  # the XTRA evaluate needs a gpu worker with device cuda
        for wave in waves(stages):
            for stage in wave:
                log.info("stage %d/%d: %s -> %s pool", stages.index(stage) + 1, n, stage,
                         pool_for_stage(stage, device))
            _run_wave(wave, params, parallel, done, device)
    else:
        for i, stage in enumerate(stages, 1):
            log.info("stage %d/%d: %s", i, n, stage)
            done(run_stage(stage, repo, params.pull, params.push))
    artifacts = publish_artifacts(repo, params.pipeline) if not distributed else {}
    counts = collections.Counter(r["status"] for r in results)
    log.info("done: %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return {"mode": "distributed" if distributed else "local", "stages": results, "artifacts": artifacts}


def _run_wave(wave: list[str], params: SomeParams, parallel: int, done: Callable[[dict[str, Any]], None],
              device: str = "cpu") -> None:
    """Run one wave's stages on the pools (:func:`_run_remote`), up to ``parallel`` at once, calling ``done``
    with each result as it comes; raise the first failure once every stage of the wave has finished (a
    stage already running elsewhere is not abandoned half-way)."""
    if parallel == 1 or len(wave) == 1:
        for stage in wave:
            done(_run_remote(stage, params, pull=True, push=True, device=device))
        return
    failures: list[BaseException] = []
    with ThreadPoolExecutor(min(parallel, len(wave)), thread_name_prefix="xfer-stage") as pool:
        # each thread runs in a copy of this flow run's context, so the stage runs are its sub-flows
        futures = [pool.submit(contextvars.copy_context().run, _run_remote, stage, params, True, True, device)
                   for stage in wave]
        for future in as_completed(futures):
            if future.exception() is not None:
                failures.append(future.exception())
            else:
                done(future.result())
    if failures:
        raise failures[0]


# ---------------------------------------------------------------------------------------------------
# command line


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
    p.add_argument("--games", type=csv_list, help="pretraining games, comma separated (default: preset's)")
    p.add_argument("--targets", type=csv_list, help="target games, comma separated (default: preset's)")
    p.add_argument("--seed", type=int, help="seed of the pretraining stages (default: preset's)")
    p.add_argument("--seeds", type=lambda t: [int(x) for x in csv_list(t)],
                   help="finetuning seeds, comma separated: every finetuning run once per seed (default: preset's)")
    p.add_argument("--collect-env-steps", type=int)
    p.add_argument("--teacher-train-steps", type=int)
    p.add_argument("--distill-train-steps", type=int)
    p.add_argument("--finetune-env-steps", type=int)
    add_run_options(p, "params.yaml")
    return p


def params_from_args(args: argparse.Namespace) -> PipelineParams:
    """The flow's params from :func:`build_parser`'s arguments (raises ValueError on bad values)."""
    return PipelineParams(preset=args.preset, pretrain_games=args.games, targets=args.targets, seed=args.seed,
                          seeds=args.seeds, collect_env_steps=args.collect_env_steps,
                          teacher_train_steps=args.teacher_train_steps, distill_train_steps=args.distill_train_steps,
                          finetune_env_steps=args.finetune_env_steps, push=args.push, pull=args.pull,
                          write_params=not args.keep_params)


def main(argv: list[str] | None = None) -> int:
    return pipeline_main(build_parser(), params_from_args, xtra_pipeline, "pipeline", argv)


if __name__ == "__main__":
    sys.exit(main())
