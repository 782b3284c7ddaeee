"""Stage ``finetune@<target>-<run>-<seed>``: concurrent cross-task finetuning on the target game (XTRA sec 3.2, Eq. 1).

Online EfficientZero on the target game (fully reanalysed target data) plus, when the run has
``cross_task``, offline batches of every pretraining game with frozen-teacher targets in the same
gradient step: ``L = L_ez(target) + sum_i eta_i L_ez(offline i)``. ``eta`` comes from gradient
cosine similarity (Appendix B, :class:`xfer.transfer.TaskWeights`) or stays 1 without task
weights. Offline value targets are proper n-step returns bootstrapped with the stored teacher
root value (``offline_value_target: nstep``, default) or the public code's variant
(``public``: 5 undiscounted rewards + stored root value, no ``gamma^5``).

Each run of ``finetune.runs`` is one DVC stage; the switches reproduce the paper's baselines and
ablations: from scratch (``init: none, cross_task: false``), without cross-task, without
pretraining (``init: none``), without task weights, frozen representation, and transferring only
``h`` / ``h+g`` / ``h+g+f``; ``init`` may also name a pretraining baseline (``bc``, ``offline_rl``) or
one teacher (``teacher:<game>``). The run starts from ``init@<run>``'s copy (``runs/init/<run>``). dvc.yaml repeats every run once per seed of ``seeds``. Output
``runs/finetune/<target>-<run>-<seed>/``: model, learning curve, metrics TSVs,
task weights over time (TSV + PNG) and ``summary.json``; every file a function of the inputs
(a rerun reproduces it byte for byte). Wall time and memory go to the work folder's ``host.json``
(``.xfer-work/finetune/<target>-<run>-<seed>/``) and the log.
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import sys
from pathlib import Path

import numpy as np

from xfer.checkpoint import read_model_meta
from xfer.config import config_hash
from xfer.data import OfflineSampler
from xfer.learner import Learner, StepResult
from xfer.metrics import TsvLog, plot_curves, read_tsv
from xfer.replay.targets import Batch
from xfer.stages.common import (
    StageInputError,
    finetune_dir,
    finetune_name,
    init_dir,
    input_fingerprint,
    params_hash,
    resume_key,
    stage_cli,
    teacher_data_dir,
    train_config,
    work_dir,
    write_json,
)
from xfer.stages.distill import open_teacher_data, stored_target_batches
from xfer.stages.outputs import probe_writable, replace_together
from xfer.train import Trainer, WeightsInit
from xfer.transfer import TaskWeights
from xfer.xtra_config import PipelineConfig

log = logging.getLogger(__name__)


class OfflineTasks:
    """The offline tasks of XTRA Eq. 1 as a :class:`xfer.train.StepTasks` part of the online loop:
    each gradient step adds one batch per pretraining game (stored teacher targets, ``finetune.
    offline_batch_size`` samples split over the games) to the target game's replay batch, weighted by
    the task weights eta (gradient cosines measured inside each window, ``finetune.task_weights``;
    XTRA sec 3.2), pooled by ``finetune.loss_balance``.

    ``games`` empty (a run without cross-task learning): every step is the replay batch alone; the
    weights log is then a header only and the final weights ``{}``.
    """

    def __init__(self, p: PipelineConfig, run_name: str, games: list[str], seed: int) -> None:
        self.p = p
        self.run_cfg = p.finetune.runs[run_name]
        self.weights = TaskWeights(games, p.finetune.task_weights)
        self.sampler: OfflineSampler | None = None
        if games:
            self.sampler = OfflineSampler(open_teacher_data(games), p.distill.max_cached_shards,
                                          p.distill.rotate_every, seed=seed + 7)
        self.weights_log: TsvLog | None = None

    def num_tasks(self) -> int:
        return 1 + len(self.weights.games) if self.sampler is not None else 1

    def open(self, out_dir: Path, keep: float) -> None:
        self.weights_log = TsvLog(out_dir / "metrics" / "task_weights.tsv", ["train_steps", *self.weights.games],
                                  "train_steps", keep)

    def state(self) -> dict:
        return {"task_weights": self.weights.state()}

    def load(self, extra: dict) -> None:
        if "task_weights" in extra:
            self.weights.load(extra["task_weights"])

    def learn(self, learner: Learner, online: Batch, rng: np.random.Generator) -> StepResult:
        if self.sampler is None:
            return learner.step(online)
        # params read as p.section.key, no aliases: tests/stages/test_dvc_yaml.py checks them against dvc.yaml
        discount = self.p.discount if self.p.finetune.offline_value_target == "nstep" else 1.0
        offline = stored_target_batches(self.sampler, self.p.finetune.offline_batch_size, self.p, discount, rng)
        games = self.weights.games  # every game draws >= 1 sample (offline_batch_size >= games, validated)
        batches = [online] + [offline[g] for g in games]
        step = learner.step_count
        measure = self.run_cfg.task_weights and self.weights.in_window(step)
        eta = self.weights.as_dict() if self.run_cfg.task_weights else {g: 1.0 for g in games}
        # one pooled forward: the step and, inside a window, the gradient cosines of the same batch
        result = learner.step_tasks(batches, [1.0] + [eta[g] for g in games], self.p.finetune.loss_balance, measure)
        if measure and self.weights.observe(step, result.cosines):
            assert self.weights_log is not None, "open() comes before the first step"
            self.weights_log.append({"train_steps": step + 1, **self.weights.as_dict()})
        return result


def plot_task_weights(tsv: Path, png: Path, title: str) -> None:
    """Task weight per offline game against training steps (XTRA Fig. 5b / Fig. 9)."""
    rows = read_tsv(tsv)
    if not rows:
        return
    games = [k for k in rows[0] if k != "train_steps"]
    x = [float(r["train_steps"]) for r in rows]
    plot_curves({g: (x, [float(r[g]) for r in rows]) for g in games}, png, title, "training steps", "task weight eta")


def run(p: PipelineConfig, target: str, name: str, seed: int, out: Path, work: Path, progress: bool = True) -> dict:
    """Run finetuning variant ``name`` of ``finetune.runs`` on game ``target`` with ``seed`` (one of
    ``seeds``: self-play, sampling, initialisation of the parts not transferred); returns its summary.

    Raises:
        StageInputError: a target, run or seed that params.yaml does not list.
    """
    if target not in p.targets:
        raise StageInputError(f"finetune: {target!r} is not in targets {p.targets}")
    if name not in p.finetune.runs:
        raise StageInputError(f"unknown finetune run {name!r}; params.yaml defines {sorted(p.finetune.runs)}")
    if seed not in p.seeds:
        raise StageInputError(f"finetune: seed {seed} is not in seeds {p.seeds}")
    rc = p.finetune.runs[name]
    # the model the run starts from: init@<run>'s copy of the student, a baseline or a teacher
    start = None if rc.init == "none" else init_dir(name) / "model.safetensors"
    if start is not None and not start.exists():
        raise FileNotFoundError(f"{start} not found: finetune run {name!r} starts from {rc.init!r}; "
                                f"run `dvc repro init@{name}` first")
    size = (rc.size or p.net.size) if start is None else read_model_meta(start).size
    overrides = {**p.finetune.train.overrides(), "extra_train_steps": rc.extra_train_steps}
    if rc.batch_size is not None:
        overrides["batch_size"] = rc.batch_size
    cfg = train_config(p, target, overrides, env_steps=p.finetune.env_steps, net={"size": size}, seed=seed)
    probe_writable([out])  # a read-only folder fails before the training
    games = list(p.pretrain_games) if rc.cross_task else []
    tasks = OfflineTasks(p, name, games, cfg.seed)
    inputs = ([start] if start is not None else []) + [teacher_data_dir(g) for g in games]
    # the final model is evaluated by the evaluate stage (its protocol, its episodes, the random agent
    # once per target): no in-run evaluation at the last agent step; the report ends each curve with it
    trainer = Trainer(cfg, work, progress, init=WeightsInit(start, rc.transfer) if start is not None else None,
                      restart_stale=True, freeze_representation=rc.freeze_representation, final_eval=False,
                      random_baseline=False, tasks=tasks,
                      resume_key=resume_key(params_hash(p, "finetune", {"run": name}, extra={
                          "train": config_hash(cfg), "inputs": input_fingerprint(inputs)}), "finetune"))
    summary = trainer.run()
    summary.update({
        "run": name, "target": target, "seed": seed, "init": rc.init, "cross_task": rc.cross_task,
        "task_weights": rc.task_weights, "transfer": rc.transfer, "freeze_representation": rc.freeze_representation,
        "final_task_weights": tasks.weights.as_dict(),
    })
    # what describes the host, not the result, stays out of the versioned outputs (a rerun must
    # reproduce them byte for byte): the work folder's host.json and the log
    host = {"wall_seconds_this_session": summary.pop("wall_seconds_this_session", None),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "offline_resident_mb": round(tasks.sampler.resident_bytes() / 2**20, 1) if tasks.sampler else 0.0}
    write_json(work / "host.json", host)
    log.info("finetune %s: %s", finetune_name(target, name, seed), host)
    with replace_together([out]) as staged:  # the whole run folder or nothing
        run_dir = staged[out]
        for name_ in ("model.safetensors", "model.json", "learning_curve.png"):
            shutil.copyfile(work / name_, run_dir / name_)
        (run_dir / "metrics").mkdir()
        for tsv in (work / "metrics").glob("*.tsv"):
            shutil.copyfile(tsv, run_dir / "metrics" / tsv.name)
        plot_task_weights(run_dir / "metrics" / "task_weights.tsv", run_dir / "task_weights.png",
                          f"XTRA task weights, target {target} ({name})")
        write_json(run_dir / "summary.json", summary)
    return summary


def _run(p: PipelineConfig, args: argparse.Namespace) -> dict:
    try:
        seed = int(args.seed)
    except ValueError:
        raise StageInputError(f"finetune: --seed must be an integer, got {args.seed!r}") from None
    return run(p, args.target, args.run, seed, finetune_dir(args.target, args.run, seed),
               work_dir("finetune", finetune_name(args.target, args.run, seed)), not args.no_progress)


def main(argv: list[str] | None = None) -> int:
    return stage_cli("finetune", __doc__.splitlines()[0], _run, items=("target", "run", "seed"), argv=argv)


if __name__ == "__main__":
    sys.exit(main())

