"""Stage ``teacher@<game>``: offline RL per game, then relabel the dataset with teacher targets.

XTRA sec 3.1 (stage 1a): one EfficientZero per pretraining game trained on its fixed dataset with
Reanalyse (fresh policy targets for ``teacher.reanalyse_fraction`` of samples by searching with
the target network and root noise as EfficientZero's reanalyse worker, or with the latest weights
per ``replay.reanalyse_network`` / ``replay.reanalyse_noise``; value bootstraps from the target
network), with no
environment interaction during training. Start positions are drawn uniformly from a
memory-bounded shard cache (:class:`xfer.data.OfflineSampler`). The finished teacher is evaluated
on the real game, then searches every stored observation once: its root visit distributions and
root values replace the behaviour annotations in a copy of the dataset
(``data/teacher_targets/<game>``), which the student (distillation) and the offline terms of
finetuning use as their frozen-teacher targets.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from xfer import checkpoint as ckpt
from xfer.agent import build_agent, model_meta
from xfer.data import DatasetReader, DatasetWriter, OfflineSampler
from xfer.envs.spec import EnvSpec, shared_spaces
from xfer.inference import reanalyse_policy_fn, search_policy
from xfer.learner import Learner
from xfer.nets.efficientzero import EfficientZeroNet
from xfer.offline import LatestCopy, train_offline
from xfer.parallel_eval import EvalJob, run_evaluations
from xfer.replay.buffer import SampleIndex
from xfer.replay.segment import Segment
from xfer.replay.targets import Batch, build_batch, network_bootstrap
from xfer.stages.common import (
    StageInputError,
    dataset_dir,
    input_fingerprint,
    params_hash,
    resume_key,
    stage_cli,
    task_specs,
    teacher_data_dir,
    teacher_model,
    work_dir,
    write_json,
)
from xfer.stages.outputs import probe_writable, replace_together
from xfer.xtra_config import PipelineConfig


def make_meta(p: PipelineConfig, size: str, tasks: dict[str, EnvSpec], steps: int, cfg_hash: str) -> ckpt.ModelMeta:
    """Sidecar of a pipeline model trained offline on ``tasks`` (one shared head, per-task action maps)."""
    return model_meta(shared_spaces(list(tasks.values())), p.net, tasks, steps, 0, cfg_hash, size)


def reanalysed_batch(index: SampleIndex, learner: Learner, latest_net: EfficientZeroNet, p: PipelineConfig,
                     reanalyse_fraction: float, rng: np.random.Generator) -> Batch:
    """Offline RL targets for sampled positions (MuZero Reanalyse on a fixed dataset): value
    bootstraps from ``learner.target_net``, policy targets re-searched for ``reanalyse_fraction`` of
    the samples (:func:`xfer.inference.reanalyse_policy_fn`: the target network or ``latest_net``).
    Offline data never ages, so the TD horizon stays ``replay.td_steps``. Returns a :class:`Batch`."""
    r = p.replay

    def value_fn(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return learner.target_net.initial_inference(torch.from_numpy(obs).to(p.device)).value.cpu().numpy()

    policy_fn = reanalyse_policy_fn(learner.target_net, latest_net, r, p.search, rng, p.device)
    return build_batch(index, r.unroll_steps, r.td_steps, r.off_policy_age_scale, 0, p.discount,
                       p.value_prefix_horizon, reanalyse_fraction, network_bootstrap(value_fn), policy_fn, rng)


def annotate(net: EfficientZeroNet, segments: list[Segment], p: PipelineConfig, seed: int,
             progress: bool, chunk: int = 256) -> list[Segment]:
    """Search every observation ``o_0..o_T`` of every segment with ``net`` (no root noise).

    Returns copies with ``visit_dist`` ``[T, A]`` and ``root_values`` ``[T]`` from the search and
    ``final_value`` = root value of ``o_T`` (0 for a true terminal).
    """
    rng = np.random.default_rng(seed)
    out = []
    for seg in tqdm(segments, disable=not progress, desc="teacher targets", unit="segment"):
        obs = np.stack([seg.obs(t) for t in range(len(seg) + 1)])
        mask = np.broadcast_to(seg.action_mask, (len(obs), len(seg.action_mask))).copy()
        res = search_policy(net, obs, mask, p.search, rng, add_noise=False, device=p.device, chunk=chunk)
        final = 0.0 if seg.terminal else float(res.root_value[-1])
        out.append(replace(seg, visit_dist=res.policy[:-1].astype(np.float32),
                           root_values=res.root_value[:-1].astype(np.float32), final_value=final))
    return out


def run(p: PipelineConfig, game: str, data: Path, out_model: Path, out_data: Path, work: Path,
        progress: bool = True) -> dict:
    """Train the teacher for ``game`` on ``data``; write its model and the relabelled dataset."""
    reader = DatasetReader(data)
    if reader.game != game:
        raise StageInputError(f"dataset {data} holds game {reader.game!r}, expected {game!r}")
    tasks = task_specs(p, [game])
    reader.check_action_mask(tasks[game].action_mask())
    # every shard's checksum before any work: training samples only some shards, and a bad one
    # found later (relabelling) would come after this stage had already replaced its model
    reader.verify_all()
    probe_writable([out_model.parent, out_data])  # a read-only folder fails before the training
    t = p.teacher
    size = p.net.size
    cfg_hash = params_hash(p, "teacher", extra={"game": game, "data": input_fingerprint([data])})
    learner = build_agent(tasks[game], p.net, p.optim, p.loss, p.value_prefix_horizon, t.train_steps, p.device,
                          size=size, seed=p.seed).learner
    latest = LatestCopy(learner, every=25)
    sampler = OfflineSampler({game: reader}, t.max_cached_shards, t.rotate_every, seed=p.seed)

    def source(rng: np.random.Generator):
        return [reanalysed_batch(sampler.sample(game, t.batch_size), learner, latest.get(), p,
                                 t.reanalyse_fraction, rng)]

    metrics = train_offline(learner, source, t.train_steps, work / "state", resume_key(cfg_hash, "teacher"), p.seed, t.checkpoint_every,
                            t.target_refresh, Path("metrics") / "teacher" / f"{game}.tsv", progress=progress,
                            desc=f"teacher {game}")
    scores = run_evaluations([EvalJob(game, learner.net, p.env.for_game(game), p.search, p.evaluate.pretrained_episodes,
                                      p.evaluate.max_steps, p.seed + 1000)], device=p.device)[game]
    # the model and the dataset it relabelled replace the old ones together or not at all
    with replace_together([out_model.parent, out_data]) as staged:
        model = staged[out_model.parent] / out_model.name
        ckpt.save_model(model, learner.net, make_meta(p, size, tasks, learner.step_count, cfg_hash))
        sha = ckpt.read_model_meta(model).weights_sha256
        with DatasetWriter(staged[out_data], game, reader.manifest.env, reader.manifest.behaviour_policy,
                           annotation=f"teacher:{sha[:16]}", shard_transitions=p.collect.shard_transitions) as writer:
            for i in range(reader.num_shards):
                for seg in annotate(learner.net, reader.load_shard(i), p, p.seed + i, progress):
                    writer.add(seg)
    return {"game": game, "train_steps": learner.step_count, "eval_mean_score": float(scores.mean()),
            "eval_scores": scores.tolist(), "final_loss": metrics.get("loss_total")}


def _run(p: PipelineConfig, args: argparse.Namespace) -> dict:
    if args.game not in p.pretrain_games:
        raise StageInputError(f"teacher: {args.game!r} is not in pretrain_games {p.pretrain_games}")
    metrics = run(p, args.game, dataset_dir(args.game), teacher_model(args.game), teacher_data_dir(args.game),
                  work_dir("teacher", args.game), not args.no_progress)
    write_json(Path("metrics") / "teacher" / f"{args.game}.json", metrics)
    return metrics


def main(argv: list[str] | None = None) -> int:
    return stage_cli("teacher", __doc__.splitlines()[0], _run, items=("game",), argv=argv)


if __name__ == "__main__":
    sys.exit(main())
