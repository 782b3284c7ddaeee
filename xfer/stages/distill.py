"""Stage ``distill``: one multi-task student distilled from the frozen per-game teachers.

XTRA sec 3.1 (stage 1b): batches are sampled uniformly over the pretraining games; value and
policy targets come from each sample's frozen teacher (its stored root visit distributions and
root values in ``data/teacher_targets/<game>``), not from the student's own bootstrap. Value
targets are proper n-step returns bootstrapped with the teacher's root value. The student has the
shared 18-action policy head; every game's legal actions are masked by its own action map. It is
EfficientZero-L by default (``distill.size``) and is evaluated zero-shot on every pretraining game.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from xfer.agent import build_agent
from xfer.data import DatasetReader, OfflineSampler
from xfer.envs.spec import shared_spaces
from xfer.offline import train_offline
from xfer.replay.targets import Batch, build_batch, concat_batches, stored_bootstrap
from xfer.stages.common import (
    StageInputError,
    input_fingerprint,
    params_hash,
    resume_key,
    stage_cli,
    student_model,
    task_specs,
    teacher_data_dir,
    work_dir,
    write_json,
)
from xfer.stages.multigame import open_datasets, zero_shot
from xfer.stages.outputs import probe_writable, replace_model
from xfer.stages.teacher import make_meta
from xfer.xtra_config import PipelineConfig


def open_teacher_data(games: list[str]) -> dict[str, DatasetReader]:
    """Readers of the teacher-relabelled datasets, checked for game, action map and annotation.

    Raises:
        xfer.data.DatasetError / ValueError: missing teacher data for a game, wrong game, action-map
            mismatch, a dataset that was never relabelled by a teacher, or a missing, truncated or
            corrupt shard (every shard's size and SHA-256 are checked here).
    """
    readers = open_datasets(games, teacher_data_dir, "teacher", "teacher targets")
    for g, r in readers.items():
        if not r.manifest.annotation.startswith("teacher:"):
            raise StageInputError(f"{r.path} is annotated by {r.manifest.annotation!r}, not a teacher; rerun teacher@{g}")
    return readers


def stored_target_batches(sampler: OfflineSampler, batch_size: int, p: PipelineConfig, discount: float,
                          rng: np.random.Generator) -> dict[str, Batch]:
    """One batch per game (``batch_size`` split evenly) with stored-teacher targets."""
    r = p.replay
    out = {}
    for game, index in sampler.sample_uniform(batch_size).items():
        out[game] = build_batch(index, r.unroll_steps, r.td_steps, r.off_policy_age_scale, 0, discount,
                                p.value_prefix_horizon, 0.0, stored_bootstrap, None, rng)
    return out


def run(p: PipelineConfig, out_model: Path, work: Path, progress: bool = True) -> dict:
    """Distil the teachers of all pretraining games into one student; returns metrics."""
    probe_writable([out_model.parent])  # a read-only folder fails before the training
    d = p.distill
    size = d.size or p.net.size
    readers = open_teacher_data(p.pretrain_games)
    sampler = OfflineSampler(readers, d.max_cached_shards, d.rotate_every, seed=p.seed)
    tasks = task_specs(p, list(p.pretrain_games))
    learner = build_agent(shared_spaces(list(tasks.values())), p.net, p.optim, p.loss, p.value_prefix_horizon,
                          d.train_steps, p.device, size=size, seed=p.seed).learner
    cfg_hash = params_hash(p, "distill", extra={"data": input_fingerprint([teacher_data_dir(g) for g in p.pretrain_games])})

    def source(rng: np.random.Generator) -> list[Batch]:
        return [concat_batches(list(stored_target_batches(sampler, d.batch_size, p, p.discount, rng).values()))]

    metrics = train_offline(learner, source, d.train_steps, work / "state", resume_key(cfg_hash, "distill"), p.seed, d.checkpoint_every,
                            d.target_refresh, Path("metrics") / "distill.tsv", progress=progress, desc="distill")
    scores = {g: r["mean_score"] for g, r in zero_shot(learner.net, p, p.pretrain_games, p.search, p.seed + 2000).items()}
    replace_model(out_model, learner.net, make_meta(p, size, tasks, learner.step_count, cfg_hash))
    return {"size": size, "train_steps": learner.step_count, "final_loss": metrics.get("loss_total"),
            "zero_shot_scores": scores, "peak_resident_bytes": sampler.resident_bytes()}


def _run(p: PipelineConfig, args: argparse.Namespace) -> dict:
    metrics = run(p, student_model(), work_dir("distill"), not args.no_progress)
    write_json(Path("metrics") / "distill.json", metrics)
    return metrics


def main(argv: list[str] | None = None) -> int:
    return stage_cli("distill", __doc__.splitlines()[0], _run, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
