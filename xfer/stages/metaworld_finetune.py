"""Stages ``finetune@<variant>-<seed>`` and ``scratch@<variant>-<seed>`` of the Meta-World pipeline.

Seed 000 section 4 (Table A.6, Figure 6): the pretrained agent of ``pretrain@<variant>-<seed>`` keeps
learning online on the ``test_tasks`` of the benchmark's test split (``--start pretrained``, every
weight copied), and the same run from fresh weights (``--start scratch``) is the baseline. Both use
``pretrain`` with the variant's and ``finetune``'s keys over it. Each run is evaluated task by task at
its end (*finetuned success*, :mod:`xfer.stages.metaworld_eval`) and reports its *cumulative regret*:
the number of self-play episodes that failed, against agent steps (``metrics/regret.tsv``), which
shows what pretraining saves while the agent adapts.

Run from ``metaworld/``. Outputs (all or nothing): ``runs/<finetune|scratch>/<variant>-<seed>/`` with
``model.safetensors`` + ``model.json``, ``metrics/`` (``train.tsv``, ``eval.tsv``, ``regret.tsv``),
``learning_curve.png`` and ``summary.json``. The resume state lives in
``.xfer-work/metaworld_<finetune|scratch>/<variant>-<seed>``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from xfer.checkpoint import read_model_meta
from xfer.metaworld_config import MetaWorldPipelineConfig, metaworld_run_name
from xfer.metrics import read_tsv
from xfer.stages.common import StageInputError, load_metaworld_params, stage_cli, work_dir
from xfer.stages.metaworld_eval import cumulative_regret, task_success
from xfer.stages.metaworld_pretrain import RUNS, _seed, check_item, publish_run, success_curve, train_run
from xfer.stages.outputs import probe_writable
from xfer.train import WeightsInit

log = logging.getLogger("xfer.stages.metaworld_finetune")

STARTS = ("pretrained", "scratch")
STAGE_OF = {"pretrained": "finetune", "scratch": "scratch"}
"""``--start`` -> the stage (and ``runs/`` folder) it runs as."""


def pretrained_model(variant: str, seed: int) -> Path:
    """The weights ``pretrain@<variant>-<seed>`` publishes."""
    return RUNS / "pretrain" / metaworld_run_name(variant, seed) / "model.safetensors"


def check_action_space(path: Path, action_dim: int) -> None:
    """Refuse a checkpoint whose action space is not the task's ``Box`` of ``action_dim`` entries.

    Raises:
        StageInputError: a missing checkpoint (naming the ``dvc repro`` target) or another action space.
    """
    if not path.exists():
        raise StageInputError(f"{path} not found; run `dvc repro pretrain@{path.parent.name}` first")
    meta = read_model_meta(path)
    if meta.action_dim != action_dim:
        have = f"a Box of {meta.action_dim}" if meta.action_dim else f"{meta.num_actions} discrete actions"
        raise StageInputError(f"{path} was trained for {have}, but the Meta-World tasks act with a Box of "
                              f"{action_dim}: finetune from a Meta-World checkpoint")


def run(p: MetaWorldPipelineConfig, variant: str, seed: int, start: str, out: Path, work: Path,
        progress: bool = True) -> dict:
    """Train ``variant`` with ``seed`` on the test tasks from its pretrained agent (``start="pretrained"``)
    or from scratch, evaluate its success task by task and its cumulative regret, publish ``out``.

    Raises:
        StageInputError: a variant, seed or start params.yaml does not allow; a missing or mismatched
            pretrained checkpoint.
    """
    if start not in STARTS:
        raise StageInputError(f"metaworld finetune: --start must be one of {STARTS}, got {start!r}")
    stage = STAGE_OF[start]
    check_item(p, stage, variant, seed)
    init = None
    if start == "pretrained":
        init = WeightsInit(pretrained_model(variant, seed))
        check_action_space(init.path, 4)
    probe_writable([out])
    trainer, summary = train_run(p, stage, p.finetune_config(variant, seed), variant, seed, work, progress, init)
    cfg, net, acting = trainer.cfg, trainer.learner.net, trainer.acting(1.0, explore=False)
    finetuned = task_success(net, cfg, "test", p.test_tasks, acting, p.eval_episodes, seed + 70_000)
    train_rows = read_tsv(work / "metrics" / "train.tsv")
    steps, regret = cumulative_regret(train_rows)
    episodes = sum(r.get("episode_success") not in (None, "") for r in train_rows)
    summary.update({"variant": variant, "seed": seed, "start": start, "benchmark": p.benchmark,
                    "frames": summary["env_steps"], "finetuned": finetuned,
                    "cumulative_regret": float(regret[-1]) if len(regret) else 0.0, "episodes": int(episodes)})
    rows = [{"env_steps": int(s), "cumulative_regret": int(r)} for s, r in zip(steps, regret)]
    what = "finetuning from pretraining" if start == "pretrained" else "training from scratch"
    publish_run(out, work, summary, {"test tasks (greedy evaluation)": success_curve(work)},
                f"{variant}: {what} on {p.benchmark} test tasks, seed {seed}", {},
                extra_tsvs={"regret.tsv": rows})
    log.info("metaworld %s %s: test success %.3f, cumulative regret %d over %d episodes", stage, out.name,
             finetuned["success"], summary["cumulative_regret"], summary["episodes"])
    return summary


def _run(p: MetaWorldPipelineConfig, args: argparse.Namespace) -> dict:
    start = args.start
    stage = STAGE_OF.get(start, "finetune")
    seed = _seed(args.seed, stage)
    name = metaworld_run_name(args.variant, seed)
    return run(p, args.variant, seed, start, RUNS / stage / name, work_dir(f"metaworld_{stage}", name),
               not args.no_progress)


def main(argv: list[str] | None = None) -> int:
    return stage_cli("metaworld_finetune", __doc__.splitlines()[0], _run, items=("variant", "seed", "start"),
                     argv=argv, load=load_metaworld_params)


if __name__ == "__main__":
    sys.exit(main())
