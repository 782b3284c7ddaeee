"""Stage ``explore@<game>-<agent>-<seed>`` of the exploration pipeline: reward-free pretraining.

Seed 001 (Walker et al. 2023; reference.md section 6), phase 1: the agent (``explore/params.yaml``'s
``train`` with the agent's and ``explore``'s keys over it: MuZero, or the controlled Q-learning
baseline) learns online from the intrinsic reward alone (``intrinsic``: RND by default,
:mod:`xfer.exploration.reward`); its world model's reward head predicts that reward, so the search
plans towards novelty. The game's extrinsic reward is collected and logged but never optimised.
Exploration is measured: distinct cells visited (``coverage``) and extrinsic reward collected against
agent steps (``metrics/exploration.tsv``); the uniform-random agent's figures for the same budget come
from ``random@<game>-<seed>`` (:mod:`xfer.stages.explore_random`). The final weights are evaluated
greedily on the extrinsic score (what the exploration policy scores zero-shot).

Run from ``explore/`` (where its ``dvc.yaml`` and ``params.yaml`` are), as ``dvc repro`` does.
Outputs (all or nothing): ``runs/explore/<name>/`` with ``model.safetensors`` + ``model.json`` (what
``transfer@`` starts from), ``metrics/`` (``train.tsv``, ``eval.tsv``, ``exploration.tsv``),
``exploration.png`` and ``summary.json``. The resume state lives in ``.xfer-work/explore/<name>``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from xfer.config import TrainConfig, config_hash
from xfer.envs.suites import env_spec
from xfer.exploration.config import ExplorePipelineConfig, explore_run_name
from xfer.exploration.reward import ExplorationReward
from xfer.metrics import plot_curves, read_tsv
from xfer.rewards import protocol_reward
from xfer.stages.common import (
    StageInputError,
    load_explore_params,
    params_hash,
    resume_key,
    stage_cli,
    work_dir,
    write_json,
)
from xfer.stages.outputs import probe_writable, replace_together
from xfer.train import Trainer, WeightsInit

log = logging.getLogger("xfer.stages.explore")

RUNS = Path("runs")


def parse_seed(stage: str, text: str) -> int:
    """``--seed`` as an integer; :class:`StageInputError` otherwise."""
    try:
        return int(text)
    except ValueError:
        raise StageInputError(f"{stage}: --seed must be an integer, got {text!r}") from None


def check_item(p: ExplorePipelineConfig, stage: str, **item: object) -> None:
    """Refuse a game, agent, transfer or seed that params.yaml does not list.

    Raises:
        StageInputError: naming the key and its values.
    """
    allowed = {"game": p.games, "agent": list(p.agents), "transfer": list(p.transfers), "seed": p.seeds}
    for what, value in item.items():
        if value not in allowed[what]:
            raise StageInputError(f"{stage}: {what} {value!r} is not in params.yaml's {allowed[what]}")


def explore_model(game: str, agent: str, seed: int) -> Path:
    """The weights ``explore@<game>-<agent>-<seed>`` publishes (what ``transfer@`` starts from)."""
    return RUNS / "explore" / explore_run_name(game, agent, seed) / "model.safetensors"


def train_run(p: ExplorePipelineConfig, stage: str, cfg: TrainConfig, item: dict, work: Path, progress: bool,
              init: WeightsInit | None = None, reward: ExplorationReward | None = None) -> tuple[Trainer, dict]:
    """Train (or resume) ``cfg`` in ``work`` as ``stage``'s instance ``item``: returns the trainer and its
    summary (host figures removed). The resume state is keyed on the stage's params and code; the random
    agent is measured by ``random@``, not per run. Exploration runs (``reward`` given) skip the evaluation
    of their untrained network; transfer and scratch runs evaluate it (the curve's start: what the
    transferred parts score before finetuning)."""
    key = resume_key(params_hash(p, stage, item, extra={"train": config_hash(cfg)}), stage)
    trainer = Trainer(cfg, work, progress, init=init, restart_stale=True, random_baseline=False, resume_key=key,
                      reward=reward, initial_eval=reward is None)
    summary = trainer.run()
    summary.pop("wall_seconds_this_session", None)  # describes the host, not the result
    return trainer, summary


def copy_run_files(work: Path, run_dir: Path, tsvs: tuple[str, ...] = ("train.tsv", "eval.tsv")) -> None:
    """Copy the model, its sidecar and the named ``metrics/`` logs of a finished run into ``run_dir``."""
    for name in ("model.safetensors", "model.json"):
        shutil.copyfile(work / name, run_dir / name)
    (run_dir / "metrics").mkdir()
    for tsv in tsvs:
        shutil.copyfile(work / "metrics" / tsv, run_dir / "metrics" / tsv)


def exploration_summary(rows: list[dict[str, str]], train_rows: list[dict[str, str]]) -> dict:
    """The exploration figures of a run: final distinct cells, raw extrinsic reward collected, the
    returns of the episodes finished while exploring, and the cell curve ``[[agent steps, cells], ...]``."""
    returns = [float(r["episode_return"]) for r in train_rows if r.get("episode_return")]
    last = rows[-1] if rows else {}
    return {"cells": int(float(last.get("cells", 0))), "extrinsic_total": float(last.get("extrinsic_total", 0.0)),
            "episodes": len(returns), "episode_returns": returns,
            "curve": [[int(r["env_steps"]), int(float(r["cells"]))] for r in rows]}


def run(p: ExplorePipelineConfig, game: str, agent: str, seed: int, out: Path, work: Path,
        progress: bool = True) -> dict:
    """Explore ``game`` reward-free with ``agent`` and ``seed``, publish ``out``; returns the summary.

    Raises:
        StageInputError: a game, agent or seed that params.yaml does not list.
    """
    check_item(p, "explore", game=game, agent=agent, seed=seed)
    cfg = p.explore_config(game, agent, seed)
    probe_writable([out])
    spec = env_spec(cfg.env.suite, cfg.env, cfg.env.game)
    reward = ExplorationReward(spec, p.intrinsic, p.coverage, protocol_reward(cfg.env.clip_rewards), cfg.num_envs,
                               seed=cfg.seed + 40_000, device=cfg.device)
    _, summary = train_run(p, "explore", cfg, {"game": game, "agent": agent, "seed": seed}, work, progress,
                           reward=reward)
    if reward.log is not None and (not reward.log.read() or int(reward.log.read()[-1]["env_steps"]) < cfg.env_steps):
        reward.log.append(reward.row(summary["env_steps"]))  # the budget's last point, always
    rows = read_tsv(work / "metrics" / "exploration.tsv")
    summary.update({"game": game, "agent": agent, "seed": seed, "agent_kind": cfg.agent.kind,
                    "intrinsic": p.intrinsic.kind,
                    "exploration": exploration_summary(rows, read_tsv(work / "metrics" / "train.tsv"))})
    with replace_together([out]) as staged:  # the whole run folder or nothing
        run_dir = staged[out]
        copy_run_files(work, run_dir, ("train.tsv", "eval.tsv", "exploration.tsv"))
        steps = [float(r["env_steps"]) for r in rows]
        plot_curves({"distinct cells": (steps, [float(r["cells"]) for r in rows])}, run_dir / "exploration.png",
                    f"{agent} exploring {game} on {p.intrinsic.kind} (seed {seed})", "agent steps", "distinct cells")
        write_json(run_dir / "summary.json", summary)
    log.info("explore %s: %d cells, extrinsic reward collected %.1f", out.name, summary["exploration"]["cells"],
             summary["exploration"]["extrinsic_total"])
    return summary


def _run(p: ExplorePipelineConfig, args: argparse.Namespace) -> dict:
    seed = parse_seed("explore", args.seed)
    name = explore_run_name(args.game, args.agent, seed)
    return run(p, args.game, args.agent, seed, RUNS / "explore" / name, work_dir("explore", name),
               not args.no_progress)


def main(argv: list[str] | None = None) -> int:
    return stage_cli("explore", __doc__.splitlines()[0], _run, items=("game", "agent", "seed"), argv=argv,
                     load=load_explore_params)


if __name__ == "__main__":
    sys.exit(main())
