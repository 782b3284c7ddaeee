"""Stage ``offline_rl``: multi-game offline RL instead of distillation, evaluated zero-shot (XTRA appendix C).

One network of the student's size is trained like a teacher (EfficientZero + Reanalyse on fixed
data, value bootstraps from its own target network) but on the behaviour datasets of all
pretraining games at once, batches split evenly over the games. XTRA found that such a model does
not scale beyond a couple of games, which is why it distils per-game teachers instead; this stage
measures that comparison: zero-shot scores on the pretraining games (against the teachers and the
student) and on the targets. Outputs ``models/baselines/offline_rl`` and
``metrics/baselines/offline_rl.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from xfer.agent import build_agent
from xfer.data import OfflineSampler
from xfer.envs.spec import shared_spaces
from xfer.offline import LatestCopy, train_offline
from xfer.replay.targets import Batch, concat_batches
from xfer.stages.bc import baseline_model
from xfer.stages.common import (
    dataset_dir,
    input_fingerprint,
    params_hash,
    resume_key,
    stage_cli,
    task_specs,
    work_dir,
    write_json,
)
from xfer.stages.multigame import open_datasets, zero_shot
from xfer.stages.outputs import probe_writable, replace_model
from xfer.stages.teacher import make_meta, reanalysed_batch
from xfer.xtra_config import PipelineConfig


def run(p: PipelineConfig, out_model: Path, work: Path, progress: bool = True) -> dict:
    """Train the multi-game offline-RL model and evaluate it zero-shot; returns its metrics."""
    probe_writable([out_model.parent])  # a read-only folder fails before the training
    o = p.baselines.offline_rl
    size = o.size or p.distill.size or p.net.size
    readers = open_datasets(p.pretrain_games)
    sampler = OfflineSampler(readers, o.max_cached_shards, o.rotate_every, seed=p.seed + 13)
    tasks = task_specs(p, list(p.pretrain_games))
    learner = build_agent(shared_spaces(list(tasks.values())), p.net, p.optim, p.loss, p.value_prefix_horizon,
                          o.train_steps, p.device, size=size, seed=p.seed).learner
    latest = LatestCopy(learner, every=25)
    cfg_hash = params_hash(p, "offline_rl", extra={"data": input_fingerprint([dataset_dir(g) for g in p.pretrain_games])})

    def source(rng: np.random.Generator) -> list[Batch]:
        return [concat_batches([reanalysed_batch(index, learner, latest.get(), p, o.reanalyse_fraction, rng)
                                for index in sampler.sample_uniform(o.batch_size).values()])]

    metrics = train_offline(learner, source, o.train_steps, work / "state", resume_key(cfg_hash, "offline_rl"), p.seed, o.checkpoint_every,
                            o.target_refresh, Path("metrics") / "baselines" / "offline_rl.tsv", progress=progress,
                            desc="multi-game offline RL")
    result = {"size": size, "train_steps": learner.step_count, "final_loss": metrics.get("loss_total"),
              "acts_on": "search",
              "zero_shot_pretrain": zero_shot(learner.net, p, p.pretrain_games, p.search, p.seed + 5000),
              "zero_shot_targets": zero_shot(learner.net, p, p.targets, p.search, p.seed + 6000)}
    replace_model(out_model, learner.net, make_meta(p, size, tasks, learner.step_count, cfg_hash))
    return result


def _run(p: PipelineConfig, args: argparse.Namespace) -> dict:
    metrics = run(p, baseline_model("offline_rl"), work_dir("offline_rl"), not args.no_progress)
    write_json(Path("metrics") / "baselines" / "offline_rl.json", metrics)
    return metrics


def main(argv: list[str] | None = None) -> int:
    return stage_cli("offline_rl", __doc__.splitlines()[0], _run, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
