"""Stage ``bc``: a multi-game behaviour-cloning baseline, evaluated zero-shot (XTRA section 4).

One network of the student's size learns to imitate the actions of the behaviour datasets of all
pretraining games (``data/datasets/<game>``), batches split evenly over the games, every game's
actions masked by its own action map; only the policy loss is on (cross-entropy to the one-hot
action taken, at every unroll position with a real action). It acts greedily on its policy head (no
search: its value and dynamics are not trained) and is evaluated zero-shot on the pretraining and
the target games, the comparison XTRA draws with its student's zero-shot ability. Outputs
``models/baselines/bc`` and ``metrics/baselines/bc.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from xfer.agent import build_agent
from xfer.config import LossConfig
from xfer.data import OfflineSampler
from xfer.envs.spec import shared_spaces
from xfer.offline import train_offline
from xfer.replay.targets import Batch, behaviour_cloning_targets, build_batch, concat_batches
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
from xfer.stages.teacher import make_meta
from xfer.xtra_config import PipelineConfig


def baseline_model(name: str) -> Path:
    """Weights of the pretraining baseline ``name`` (``bc`` or ``offline_rl``)."""
    return Path("models") / "baselines" / name / "model.safetensors"


def run(p: PipelineConfig, out_model: Path, work: Path, progress: bool = True) -> dict:
    """Train the behaviour-cloning model and evaluate it zero-shot; returns its metrics."""
    probe_writable([out_model.parent])  # a read-only folder fails before the training
    b = p.baselines.bc
    size = b.size or p.distill.size or p.net.size
    readers = open_datasets(p.pretrain_games)
    sampler = OfflineSampler(readers, b.max_cached_shards, b.rotate_every, seed=p.seed + 11)
    tasks = task_specs(p, list(p.pretrain_games))
    policy_only = LossConfig(value_prefix=0.0, value=0.0, policy=1.0, consistency=0.0,
                             hidden_grad_scale=p.loss.hidden_grad_scale)
    learner = build_agent(shared_spaces(list(tasks.values())), p.net, p.optim, policy_only, p.value_prefix_horizon,
                          b.train_steps, p.device, size=size, seed=p.seed).learner
    cfg_hash = params_hash(p, "bc", extra={"data": input_fingerprint([dataset_dir(g) for g in p.pretrain_games])})
    r = p.replay

    def no_values(requests: list) -> np.ndarray:  # value targets are unused (weight 0)
        return np.zeros(len(requests), np.float32)

    def source(rng: np.random.Generator) -> list[Batch]:
        per_game = [build_batch(index, r.unroll_steps, r.td_steps, r.off_policy_age_scale, 0, p.discount,
                                p.value_prefix_horizon, 0.0, no_values, None, rng)
                    for index in sampler.sample_uniform(b.batch_size).values()]
        return [behaviour_cloning_targets(concat_batches(per_game))]

    metrics = train_offline(learner, source, b.train_steps, work / "state", resume_key(cfg_hash, "bc"), p.seed, b.checkpoint_every,
                            b.target_refresh, Path("metrics") / "baselines" / "bc.tsv", progress=progress,
                            desc="behaviour cloning")
    prior = p.search.model_copy(update={"search_at_eval": False})  # act on the policy head
    result = {"size": size, "train_steps": learner.step_count, "final_loss": metrics.get("loss_total"),
              "acts_on": "policy head (no search)",
              "zero_shot_pretrain": zero_shot(learner.net, p, p.pretrain_games, prior, p.seed + 3000),
              "zero_shot_targets": zero_shot(learner.net, p, p.targets, prior, p.seed + 4000)}
    replace_model(out_model, learner.net, make_meta(p, size, tasks, learner.step_count, cfg_hash))
    return result


def _run(p: PipelineConfig, args: argparse.Namespace) -> dict:
    metrics = run(p, baseline_model("bc"), work_dir("bc"), not args.no_progress)
    write_json(Path("metrics") / "baselines" / "bc.json", metrics)
    return metrics


def main(argv: list[str] | None = None) -> int:
    return stage_cli("bc", __doc__.splitlines()[0], _run, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
