"""Stages ``transfer@<game>-<agent>-<transfer>-<seed>`` and ``scratch@<game>-<agent>-<seed>`` of the exploration pipeline.

Seed 001 (Walker et al. 2023; reference.md section 6), phase 2: the parts the transfer names
(``transfers.<name>``: any of ``encoder``, ``dynamics``, ``reward_head``, ``prior_heads``;
:data:`xfer.transfer.PARTS`) are copied from ``explore@<game>-<agent>-<seed>``'s checkpoint, the
rest keeps its fresh initialisation, and the agent finetunes on the game's extrinsic reward
(``explore/params.yaml``'s ``train`` with the agent's and ``finetune``'s keys over it). ``scratch``
(``--transfer scratch``) is the same run from fresh weights: what each transfer is compared with.
The Q-learning agent (``agents.ql``) is the controlled model-free baseline, given the same
exploration phase. Each run is evaluated greedily during training (``metrics/eval.tsv``: the
report's curves).

Run from ``explore/``. Outputs (all or nothing): ``runs/transfer/<game>-<agent>-<transfer>-<seed>/``
or ``runs/scratch/<game>-<agent>-<seed>/`` with ``model.safetensors`` + ``model.json``, ``metrics/``
(``train.tsv``, ``eval.tsv``), ``learning_curve.png`` and ``summary.json``. The resume state lives in
``.xfer-work/<transfer|scratch>/<name>``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from xfer.checkpoint import read_model_meta
from xfer.exploration.config import ExplorePipelineConfig, explore_run_name
from xfer.metrics import plot_curves, read_tsv
from xfer.stages.common import StageInputError, load_explore_params, stage_cli, work_dir, write_json
from xfer.stages.explore import RUNS, check_item, copy_run_files, explore_model, parse_seed, train_run
from xfer.stages.outputs import probe_writable, replace_together
from xfer.train import WeightsInit

log = logging.getLogger("xfer.stages.explore_transfer")

SCRATCH = "scratch"


def check_explore_model(path: Path) -> None:
    """Refuse a missing exploration checkpoint (naming the ``dvc repro`` target).

    Raises:
        StageInputError: no checkpoint at ``path``, or no sidecar beside it.
    """
    if not path.exists():
        raise StageInputError(f"{path} not found; run `dvc repro explore@{path.parent.name}` first")
    read_model_meta(path)  # a checkpoint without its sidecar fails here, before any training


def run(p: ExplorePipelineConfig, game: str, agent: str, transfer: str, seed: int, out: Path, work: Path,
        progress: bool = True) -> dict:
    """Finetune ``agent`` on ``game``'s extrinsic reward from the parts ``transfer`` names of its
    exploration checkpoint (``transfer = "scratch"``: fresh weights), publish ``out``; returns the summary.

    Raises:
        StageInputError: a game, agent, transfer or seed params.yaml does not list; a missing exploration
            checkpoint. xfer.checkpoint.CheckpointError: a checkpoint of another architecture.
    """
    stage = SCRATCH if transfer == SCRATCH else "transfer"
    check_item(p, stage, game=game, agent=agent, seed=seed, **({} if stage == SCRATCH else {"transfer": transfer}))
    cfg = p.finetune_config(game, agent, seed)
    init, parts = None, []
    if stage == "transfer":
        parts = list(p.transfers[transfer])
        init = WeightsInit(explore_model(game, agent, seed), parts)
        check_explore_model(init.path)
    probe_writable([out])
    item = {"game": game, "agent": agent, "seed": seed, **({} if stage == SCRATCH else {"transfer": transfer})}
    _, summary = train_run(p, stage, cfg, item, work, progress, init=init)
    rows = read_tsv(work / "metrics" / "eval.tsv")
    scores = [float(r["mean_score"]) for r in rows]
    summary.update({"game": game, "agent": agent, "transfer": transfer, "parts": parts, "seed": seed,
                    "agent_kind": cfg.agent.kind,
                    "curve": [[int(r["env_steps"]), float(r["mean_score"])] for r in rows],
                    "mean_eval_score": sum(scores) / len(scores) if scores else None})
    with replace_together([out]) as staged:
        run_dir = staged[out]
        copy_run_files(work, run_dir)
        plot_curves({"greedy evaluation": ([float(r["env_steps"]) for r in rows], scores)},
                    run_dir / "learning_curve.png",
                    f"{agent} on {game}: {transfer}{' (' + ', '.join(parts) + ')' if parts else ''}, seed {seed}",
                    "agent steps", "raw episode score")
        write_json(run_dir / "summary.json", summary)
    log.info("%s %s: final eval score %s", stage, out.name, summary.get("final_eval_score"))
    return summary


def _run(p: ExplorePipelineConfig, args: argparse.Namespace) -> dict:
    seed = parse_seed("transfer", args.seed)
    if args.transfer == SCRATCH:
        name, folder = explore_run_name(args.game, args.agent, seed), SCRATCH
    else:
        name, folder = explore_run_name(args.game, args.agent, seed, args.transfer), "transfer"
    return run(p, args.game, args.agent, args.transfer, seed, RUNS / folder / name, work_dir(folder, name),
               not args.no_progress)


def main(argv: list[str] | None = None) -> int:
    return stage_cli("explore_transfer", __doc__.splitlines()[0], _run, items=("game", "agent", "transfer", "seed"),
                     argv=argv, load=load_explore_params)


if __name__ == "__main__":
    sys.exit(main())
