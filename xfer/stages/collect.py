"""Stage ``collect@<game>``: an offline dataset from a behaviour policy that records search statistics.

XTRA's offline data were EfficientZero replay buffers with root visit counts and root values per
step (reference.md section 3). By default this stage trains an online EfficientZero agent for
``collect.env_steps`` agent steps (``xfer.train.Trainer``; resumable from ``.xfer-work``) and exports
its replay: frames, actions, raw and clipped rewards, life-loss cuts and terminals, root visit
distributions and root values. ``collect.policy: random`` is the cheap option: uniform random
legal actions annotated by a search with a freshly initialised network.

Output: a sharded dataset at ``data/datasets/<game>`` (see :mod:`xfer.data`) and
``metrics/collect/<game>.json`` (size per transition, compression, behaviour scores).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from xfer.actor import SelfPlay
from xfer.agent import build_model
from xfer.data import atari_env_info, write_dataset
from xfer.replay.segment import Segment
from xfer.stages.common import StageInputError, dataset_dir, stage_cli, train_config, work_dir, write_json
from xfer.train import Trainer, task_spec
from xfer.xtra_config import PipelineConfig

log = logging.getLogger(__name__)


def collect_random(p: PipelineConfig, game: str, progress: bool) -> tuple[list[Segment], list[float]]:
    """Uniform random legal actions; visit counts and root values from a search with a fresh network."""
    cfg = train_config(p, game, {}, env_steps=p.collect.env_steps)
    net = build_model(task_spec(cfg), cfg.net, cfg.device, seed=cfg.seed)
    selfplay = SelfPlay(cfg.env, cfg.num_envs, cfg.seed, cfg.replay.segment_length)
    rng = np.random.default_rng(cfg.seed)
    segments: list[Segment] = []
    returns: list[float] = []
    with tqdm(total=p.collect.env_steps, disable=not progress, desc=f"collect {game} (random)") as bar:
        while selfplay.steps < p.collect.env_steps:
            out = selfplay.step(net, cfg.search, temperature=1.0, rng=rng, act_uniform=True)
            segments += out.segments
            returns += out.episode_returns
            bar.update(cfg.num_envs)
    selfplay.close()
    return segments, returns


def run(p: PipelineConfig, game: str, out: Path, work: Path, progress: bool = True) -> dict:
    """Collect the dataset for ``game`` into ``out`` (atomic); returns the stage metrics."""
    if p.collect.policy == "efficientzero":
        cfg = train_config(p, game, p.collect.train.overrides(), env_steps=p.collect.env_steps)
        # no evaluation of the untrained behaviour policy: only its final score is reported
        trainer = Trainer(cfg, work, progress=progress, restart_stale=True, initial_eval=False)
        summary = trainer.run()
        segments = list(trainer.replay.segments)
        returns = [float(r["episode_return"]) for r in trainer.train_log.read() if r.get("episode_return")]
        behaviour = f"efficientzero-online size={cfg.net.size} env_steps={cfg.env_steps} sims={cfg.mcts.num_simulations}"
    else:
        segments, returns = collect_random(p, game, progress)
        summary = {}
        behaviour = f"random+search annotations env_steps={p.collect.env_steps}"
    if not segments:
        raise StageInputError(f"collect@{game}: no complete segment was collected; raise collect.env_steps")
    manifest = write_dataset(out, segments, game, atari_env_info(p.env.for_game(game)), behaviour,
                             shard_transitions=p.collect.shard_transitions)
    return {
        "game": game,
        "transitions": manifest.num_transitions,
        "segments": manifest.num_segments,
        "bytes_per_transition": round(manifest.bytes_per_transition, 1),
        "raw_bytes_per_transition": round(manifest.raw_bytes_per_transition, 1),
        "compression": round(manifest.raw_bytes_per_transition / max(manifest.bytes_per_transition, 1e-9), 1),
        "behaviour_episodes": len(returns),
        "behaviour_mean_return": float(np.mean(returns)) if returns else None,
        "behaviour_final_eval": summary.get("final_eval_score"),
    }


def _run(p: PipelineConfig, args: argparse.Namespace) -> dict:
    if args.game not in p.pretrain_games:
        raise StageInputError(f"collect: {args.game!r} is not in pretrain_games {p.pretrain_games}")
    metrics = run(p, args.game, dataset_dir(args.game), work_dir("collect", args.game), not args.no_progress)
    write_json(Path("metrics") / "collect" / f"{args.game}.json", metrics)
    print(f"dataset: {dataset_dir(args.game)} ({metrics['transitions']} transitions, "
          f"{metrics['bytes_per_transition']} B/transition on disk, {metrics['compression']}x smaller than raw)")
    return metrics


def main(argv: list[str] | None = None) -> int:
    return stage_cli("collect", __doc__.splitlines()[0], _run, items=("game",), argv=argv)


if __name__ == "__main__":
    sys.exit(main())
