"""Stage ``random@<game>-<seed>`` of the exploration pipeline: the uniform-random agent, the floor of both phases.

Exploration (seed 001: exploration is measured against a uniform-random agent with the same budget):
uniformly random actions for the exploration phase's budget (``explore``'s ``env_steps`` agent steps
in ``num_envs`` environments, seeded like the exploring agents' self-play), counting distinct cells
the same way (:mod:`xfer.exploration.coverage`) and the extrinsic reward collected. Evaluation: the
random agent's extrinsic score under the transfer runs' evaluation protocol (``random_episodes``
episodes, ``eval_max_steps`` agent steps each): the dashed line of the report's transfer curves.

Run from ``explore/``. Outputs (all or nothing): ``runs/random/<game>-<seed>/`` with
``metrics/exploration.tsv`` (agent steps, distinct cells) and ``summary.json``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from xfer.actor import evaluate_random_episodes
from xfer.exploration.config import ExplorePipelineConfig
from xfer.exploration.random_agent import random_exploration
from xfer.metrics import TsvLog
from xfer.stages.common import load_explore_params, stage_cli, write_json
from xfer.stages.explore import RUNS, check_item, parse_seed
from xfer.stages.outputs import probe_writable, replace_together

log = logging.getLogger("xfer.stages.explore_random")


def run(p: ExplorePipelineConfig, game: str, seed: int, out: Path) -> dict:
    """Measure the uniform-random agent on ``game`` with ``seed`` (module docstring), publish ``out``.

    Raises:
        StageInputError: a game or seed that params.yaml does not list.
    """
    check_item(p, "random", game=game, seed=seed)
    agent = next(iter(p.agents))  # the budget and protocol are the phases' keys, the same for every agent
    explore_cfg, finetune_cfg = p.explore_config(game, agent, seed), p.finetune_config(game, agent, seed)
    probe_writable([out])
    stats = random_exploration(explore_cfg.env, p.coverage, explore_cfg.env_steps, explore_cfg.num_envs, seed)
    episodes = evaluate_random_episodes(finetune_cfg.env, p.random_episodes, finetune_cfg.eval_max_steps,
                                        seed=seed + 20_000)
    scores = episodes.scores
    summary = {"game": game, "seed": seed,
               "exploration": {"cells": stats.cells, "extrinsic_total": stats.extrinsic_total,
                               "episodes": len(stats.episode_returns), "episode_returns": stats.episode_returns,
                               "curve": [list(point) for point in stats.curve], "env_steps": stats.steps},
               "eval": {"mean_score": float(np.mean(scores)), "scores": [float(s) for s in scores],
                        "episodes": len(scores), "max_steps": finetune_cfg.eval_max_steps}}
    with replace_together([out]) as staged:
        run_dir = staged[out]
        curve = TsvLog(run_dir / "metrics" / "exploration.tsv", ["env_steps", "cells"])
        for steps, cells in stats.curve:
            curve.append({"env_steps": steps, "cells": cells})
        write_json(run_dir / "summary.json", summary)
    log.info("random %s: %d cells in %d agent steps, eval score %.1f", out.name, stats.cells, stats.steps,
             summary["eval"]["mean_score"])
    return summary


def _run(p: ExplorePipelineConfig, args: argparse.Namespace) -> dict:
    seed = parse_seed("random", args.seed)
    return run(p, args.game, seed, RUNS / "random" / f"{args.game}-{seed}")


def main(argv: list[str] | None = None) -> int:
    return stage_cli("explore_random", __doc__.splitlines()[0], _run, items=("game", "seed"), argv=argv,
                     load=load_explore_params)


if __name__ == "__main__":
    sys.exit(main())
