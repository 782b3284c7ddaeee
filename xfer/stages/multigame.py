"""What the multi-game pretraining stages share: the behaviour datasets of all pretraining games,
the sidecar of a multi-game model, and zero-shot evaluation on a list of games."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from xfer.config import SearchConfig
from xfer.data import DatasetReader
from xfer.envs.atari import action_mask
from xfer.nets.efficientzero import EfficientZeroNet
from xfer.parallel_eval import EvalJob, run_evaluations
from xfer.stages.common import StageInputError, dataset_dir
from xfer.xtra_config import PipelineConfig


def open_datasets(games: list[str], where: Callable[[str], Path] = dataset_dir, producer: str = "collect",
                  what: str = "dataset") -> dict[str, DatasetReader]:
    """Readers of the datasets of ``games`` at ``where(game)`` (default: the behaviour datasets of
    ``collect@<game>``), each checked for its game and action map, every shard's size and SHA-256
    verified before any training (not when a sampler first reaches a bad shard).

    Raises:
        FileNotFoundError: a game without its dataset (the message names ``producer@<game>`` to run);
        StageInputError / xfer.data.DatasetError: wrong game, action map, or a corrupt shard.
    """
    readers = {}
    for g in games:
        path = where(g)
        if not (path / "manifest.json").exists():
            raise FileNotFoundError(f"no {what} for {g!r} at {path}; run `dvc repro {producer}@{g}` first")
        r = DatasetReader(path)
        if r.game != g:
            raise StageInputError(f"{path} holds game {r.game!r}, expected {g!r}")
        r.check_action_mask(action_mask(g))
        r.verify_all()
        readers[g] = r
    return readers


def zero_shot(net: EfficientZeroNet, p: PipelineConfig, games: list[str], search: SearchConfig,
              seed: int) -> dict[str, dict]:
    """Evaluate ``net`` on each of ``games`` under the evaluation protocol (``evaluate`` section):
    game -> ``{mean_score, scores}`` (raw scores, ``EvalConfig.pretrained_episodes`` each). The
    games run side by side, one per core (:func:`xfer.parallel_eval.run_evaluations`); game ``i``
    is seeded ``seed + 1000 * i``."""
    jobs = [EvalJob(g, net, p.env.for_game(g), search, p.evaluate.pretrained_episodes, p.evaluate.max_steps,
                    seed + 1000 * i) for i, g in enumerate(games)]
    scores = run_evaluations(jobs, device=p.device)
    return {g: {"mean_score": float(np.mean(s)), "scores": s.tolist()} for g, s in scores.items()}
