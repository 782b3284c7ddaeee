"""Stage ``pretrain@<variant>-<seed>`` of the Meta-World pipeline: one agent on every training task at once.

Seed 000 section 4 (Table A.6): Sampled MuZero (``metaworld/params.yaml``'s ``pretrain`` with the
variant's keys over it) learns online on the ``train_tasks`` of the benchmark's training split (one
vector env whose copies play the tasks in turn, each episode on a goal variation of its task), with
greedy evaluations on them during the run (``metrics/eval.tsv``: success rate over the tasks). The
final agent is then evaluated task by task on the training tasks (*train success*) and zero-shot on
the ``test_tasks`` of the test split (*zero-shot success*); the uniform-random agent plays both splits
under the same protocol (:mod:`xfer.stages.metaworld_eval`). Meta-World has no frame skip: agent
steps are frames.

Run from ``metaworld/`` (where its ``dvc.yaml`` and ``params.yaml`` are), as ``dvc repro`` does.
Outputs (all or nothing): ``runs/pretrain/<variant>-<seed>/`` with ``model.safetensors`` + ``model.json``,
``metrics/`` (``train.tsv``, ``eval.tsv``), ``learning_curve.png`` (success rate against agent steps)
and ``summary.json``. The resume state lives in ``.xfer-work/metaworld_pretrain/<variant>-<seed>``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from xfer.config import TrainConfig, config_hash
from xfer.metaworld_config import MetaWorldPipelineConfig, metaworld_run_name
from xfer.metrics import TsvLog, plot_curves, read_tsv
from xfer.stages.common import (
    StageInputError,
    load_metaworld_params,
    params_hash,
    resume_key,
    stage_cli,
    work_dir,
    write_json,
)
from xfer.stages.metaworld_eval import task_success
from xfer.stages.outputs import probe_writable, replace_together
from xfer.train import Trainer, WeightsInit

log = logging.getLogger("xfer.stages.metaworld_pretrain")

RUNS = Path("runs")


def check_item(p: MetaWorldPipelineConfig, stage: str, variant: str, seed: int) -> None:
    """Refuse a variant or seed that params.yaml does not list.

    Raises:
        StageInputError: naming the key and its values.
    """
    for what, value, allowed in (("variant", variant, list(p.variants)), ("seed", seed, p.seeds)):
        if value not in allowed:
            raise StageInputError(f"metaworld {stage}: {what} {value!r} is not in params.yaml's {allowed}")


def train_run(p: MetaWorldPipelineConfig, stage: str, cfg: TrainConfig, variant: str, seed: int, work: Path,
              progress: bool, init: WeightsInit | None = None) -> tuple[Trainer, dict]:
    """Train (or resume) ``cfg``, the run of ``variant`` and ``seed`` in ``stage``, in ``work``: returns the
    trainer and its summary (host figures removed). Its resume state is keyed on the stage's params and
    code."""
    item = {"variant": variant, "seed": seed}
    key = resume_key(params_hash(p, stage, item, extra={"train": config_hash(cfg)}), stage)
    trainer = Trainer(cfg, work, progress, init=init, restart_stale=True, random_baseline=False, resume_key=key)
    summary = trainer.run()
    summary.pop("wall_seconds_this_session", None)  # describes the host, not the result
    return trainer, summary


def publish_run(out: Path, work: Path, summary: dict, curves: dict, title: str, hline: dict,
                extra_tsvs: dict[str, list[dict]] | None = None) -> None:
    """Replace ``out`` with the run folder (all or nothing): model + sidecar, ``metrics/train.tsv`` and
    ``eval.tsv`` (and ``extra_tsvs``: name -> rows), ``learning_curve.png`` of ``curves`` and
    ``summary.json``."""
    with replace_together([out]) as staged:
        run_dir = staged[out]
        for name in ("model.safetensors", "model.json"):
            shutil.copyfile(work / name, run_dir / name)
        (run_dir / "metrics").mkdir()
        for tsv in ("train.tsv", "eval.tsv"):
            shutil.copyfile(work / "metrics" / tsv, run_dir / "metrics" / tsv)
        for name, rows in (extra_tsvs or {}).items():
            log_ = TsvLog(run_dir / "metrics" / name, list(rows[0]) if rows else ["env_steps"])
            for row in rows:
                log_.append(row)
        plot_curves(curves, run_dir / "learning_curve.png", title, "agent steps (= frames)", "success rate",
                    hlines=hline)
        write_json(run_dir / "summary.json", summary)


def success_curve(work: Path) -> tuple[list[float], list[float]]:
    """The in-run evaluations' success rate against agent steps (``metrics/eval.tsv``)."""
    rows = read_tsv(work / "metrics" / "eval.tsv")
    return [float(r["env_steps"]) for r in rows], [float(r["success_rate"]) for r in rows]


def run(p: MetaWorldPipelineConfig, variant: str, seed: int, out: Path, work: Path, progress: bool = True) -> dict:
    """Pretrain ``variant`` with ``seed`` on the training tasks, evaluate train and zero-shot test success
    and the random agent, publish ``out``; returns the run's summary.

    Raises:
        StageInputError: a variant or seed that params.yaml does not list.
    """
    check_item(p, "pretrain", variant, seed)
    probe_writable([out])
    trainer, summary = train_run(p, "pretrain", p.pretrain_config(variant, seed), variant, seed, work, progress)
    cfg, net, acting = trainer.cfg, trainer.learner.net, trainer.acting(1.0, explore=False)
    train = task_success(net, cfg, "train", p.train_tasks, acting, p.eval_episodes, seed + 40_000)
    zero_shot = task_success(net, cfg, "test", p.test_tasks, acting, p.eval_episodes, seed + 50_000)
    random = {split: task_success(None, cfg, split, p.tasks(split), None, p.random_episodes, seed + 60_000)
              for split in ("train", "test")}
    summary.update({"variant": variant, "seed": seed, "benchmark": p.benchmark, "frames": summary["env_steps"],
                    "train": train, "zero_shot": zero_shot, "random": random})
    publish_run(out, work, summary, {"training tasks (greedy evaluation)": success_curve(work)},
                f"{variant} pretraining on {p.benchmark} training tasks, seed {seed}",
                {f"uniform random, training tasks ({random['train']['success']:.2f})": random["train"]["success"]})
    log.info("metaworld pretrain %s: train success %.3f, zero-shot test success %.3f", out.name, train["success"],
             zero_shot["success"])
    return summary


def _seed(text: str, stage: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise StageInputError(f"metaworld {stage}: --seed must be an integer, got {text!r}") from None


def _run(p: MetaWorldPipelineConfig, args: argparse.Namespace) -> dict:
    seed = _seed(args.seed, "pretrain")
    name = metaworld_run_name(args.variant, seed)
    return run(p, args.variant, seed, RUNS / "pretrain" / name, work_dir("metaworld_pretrain", name),
               not args.no_progress)


def main(argv: list[str] | None = None) -> int:
    return stage_cli("metaworld_pretrain", __doc__.splitlines()[0], _run, items=("variant", "seed"), argv=argv,
                     load=load_metaworld_params)


if __name__ == "__main__":
    sys.exit(main())
