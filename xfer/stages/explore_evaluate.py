"""Stage ``evaluate`` of the exploration pipeline: every final model under one protocol, on fresh seeds.

Seed 001 (Walker et al. 2023) compares the agents' extrinsic scores after finetuning; the curves of the
transfer and scratch runs are cheap periodic evaluations (``train.eval_episodes``), so the comparison
the report draws rests on this stage instead: each final model greedily (argmax of the search's visit
counts or completed-Q policy without root noise; the Q-learning agent at ``agent.eval_epsilon``) for
``evaluate.episodes`` episodes of at most the finetuning phase's ``eval_max_steps`` agent steps, with
seeds independent of training. The models: every ``transfer@`` and ``scratch@`` run, and every
``explore@`` checkpoint zero-shot (what the reward-free policy scores on the extrinsic reward it never
saw). The uniform-random agent's floor under the same step cap comes from ``random@``.

Run from ``explore/``. Output: ``metrics/evaluate.json`` (written whole or not at all):
``{"runs": {"<kind>:<run name>": {kind, game, agent, transfer, seed, mean_score, std_score, episodes,
max_steps, scores}}, "protocol": {episodes, max_steps}}`` with kind ``explore``, ``transfer`` or ``scratch``;
each model's ``max_steps`` is its finetuning phase's ``eval_max_steps`` (an agent's keys may set their own),
``protocol.max_steps`` the largest of them.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from xfer import checkpoint as ckpt
from xfer.exploration.config import ExplorePipelineConfig, explore_run_name
from xfer.parallel_eval import EvalJob, run_evaluations
from xfer.stages.common import StageInputError, load_explore_params, stage_cli, write_json
from xfer.stages.explore import RUNS
from xfer.train import run_acting

METRICS = Path("metrics") / "evaluate.json"
SEED_OFFSET = 300_000  # evaluation seeds: far from training's (seed) and the random agent's (seed + 20,000)


@dataclass(frozen=True)
class FinalModel:
    """One model the stage evaluates: ``kind`` (explore, transfer, scratch), its run name and item."""

    kind: str
    game: str
    agent: str
    seed: int
    transfer: str | None = None

    @property
    def name(self) -> str:
        """``<game>-<agent>-<seed>`` or ``<game>-<agent>-<transfer>-<seed>`` (the run's folder)."""
        return explore_run_name(self.game, self.agent, self.seed, self.transfer)

    @property
    def key(self) -> str:
        """``<kind>:<name>``: the model's key in ``metrics/evaluate.json``."""
        return f"{self.kind}:{self.name}"

    def path(self, runs: Path = RUNS) -> Path:
        """Its published weights, ``runs/<kind>/<name>/model.safetensors``."""
        return runs / self.kind / self.name / "model.safetensors"


def final_models(p: ExplorePipelineConfig) -> list[FinalModel]:
    """Every model of ``p`` the stage evaluates, in a fixed order (game, agent, seed; explore, scratch,
    then the transfers in params order): the order fixes each model's evaluation seed."""
    models = []
    for game in p.games:
        for agent in p.agents:
            for seed in p.seeds:
                models += [FinalModel("explore", game, agent, seed), FinalModel("scratch", game, agent, seed)]
                models += [FinalModel("transfer", game, agent, seed, t) for t in p.transfers]
    return models


def run(p: ExplorePipelineConfig, runs: Path = RUNS) -> dict:
    """Evaluate every final model of ``p`` (module docstring); returns the metrics dict.

    All evaluations run side by side, one per core (:func:`xfer.parallel_eval.run_evaluations`); the
    scores do not depend on how many run at once.

    Raises:
        StageInputError: a missing model (names the ``dvc repro`` target that makes it), or a model
            trained on another game. xfer.checkpoint.CheckpointError: a checkpoint without its sidecar.
    """
    models = final_models(p)
    jobs = []
    max_steps: dict[str, int] = {}
    for i, m in enumerate(models):
        path = m.path(runs)
        if not path.exists():
            stage = "transfer" if m.kind == "transfer" else m.kind
            raise StageInputError(f"{path} not found; run `dvc repro {stage}@{m.name}` first")
        net, meta = ckpt.load_model(path, device=p.device, precision=p.train.net.precision)
        if m.game not in meta.games:
            raise StageInputError(f"{path} was trained on {meta.games}, not on {m.game!r}")
        phase = p.explore_config if m.kind == "explore" else p.finetune_config
        cfg = phase(m.game, m.agent, m.seed)
        max_steps[m.key] = p.finetune_config(m.game, m.agent, m.seed).eval_max_steps
        jobs.append(EvalJob(m.key, net, cfg.env, run_acting(cfg, explore=False), p.evaluate.episodes,
                            max_steps[m.key], m.seed + SEED_OFFSET + 1000 * i))
    scores = run_evaluations(jobs, device=p.device)
    out = {}
    for m in models:
        s = scores[m.key]
        out[m.key] = {"kind": m.kind, "game": m.game, "agent": m.agent, "transfer": m.transfer, "seed": m.seed,
                      "mean_score": float(s.mean()), "std_score": float(s.std()), "episodes": len(s),
                      "max_steps": max_steps[m.key], "scores": s.tolist()}
    return {"runs": out, "protocol": {"episodes": p.evaluate.episodes, "max_steps": max(max_steps.values())}}


def _run(p: ExplorePipelineConfig, args: argparse.Namespace) -> dict:
    metrics = run(p)
    write_json(METRICS, metrics)
    return {"models": len(metrics["runs"]), "protocol": metrics["protocol"]}


def main(argv: list[str] | None = None) -> int:
    return stage_cli("explore_evaluate", __doc__.splitlines()[0], _run, argv=argv, load=load_explore_params)


if __name__ == "__main__":
    sys.exit(main())
