"""Stage ``evaluate``: final evaluation of every finetuned model on its target game.

Protocol of reference.md section 1: ``evaluate.episodes`` episodes per model, argmax of visit
counts, no root noise, ``evaluate.max_steps`` agent steps per episode (27k = 108k frames), fresh
seeds independent of training. Scores are raw game scores; human-normalised scores use the
Atari-57 random/human references (``xfer.envs.scores``); games without references (Carnival,
Pooyan) are normalised against a uniformly random agent measured here with the same protocol
(``hns`` is then None and ``random_score`` is the measured one). Every target also gets a
uniform-random score under this same protocol (``random_scores``), the fair floor for capped
evaluations, over ``evaluate.random_episodes`` episodes (more than a model's: they need no search,
and the random agent's spread would otherwise dominate the standard error of each difference). The multi-task student is also evaluated zero-shot on every target game (no
finetuning; its shared 18-action head masked to the target's actions; XTRA section 4), and its
zero-shot scores on the pretraining games are collected from ``metrics/distill.json``.
Output: ``metrics/evaluate.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xfer import checkpoint as ckpt
from xfer.envs.scores import REFERENCE_SCORES, human_normalised_score
from xfer.parallel_eval import EvalJob, run_evaluations
from xfer.stages.common import (
    StageInputError,
    finetune_dir,
    finetune_name,
    stage_cli,
    student_model,
    write_json,
)
from xfer.xtra_config import PipelineConfig

RANDOM_CHUNK = 64  # episodes per evaluation job of the uniform-random agent


def chunks(total: int, size: int) -> list[int]:
    """``total`` split into pieces of at most ``size``: ``chunks(150, 64) == [64, 64, 22]``."""
    return [min(size, total - start) for start in range(0, total, size)]


def run(p: PipelineConfig) -> dict:
    """Evaluate every ``finetune@<target>-<run>-<seed>`` model; returns the metrics dict.

    ``runs`` is keyed ``<target>-<run>-<seed>`` (:func:`xfer.stages.common.finetune_name`); each
    entry has ``target, run, seed, mean_score, std_score, episodes, scores, env_steps, hns``.
    ``random_scores`` (target -> mean) and ``random_episode_scores`` (target -> scores) are the
    uniform-random agent under the same protocol. All evaluations (models, the random agent, the
    student zero-shot) run side by side, one per core (:func:`xfer.parallel_eval.run_evaluations`).

    Raises:
        StageInputError: a model trained on another game than its target.
        FileNotFoundError: a missing finetuned model or student (the message names the stage to run).
    """
    e = p.evaluate
    jobs: list[EvalJob] = []
    metas: dict[str, ckpt.ModelMeta] = {}
    for ti, target in enumerate(p.targets):
        env = p.env.for_game(target)
        # uniform-random legal actions under the same protocol (episodes, step cap): the fair floor
        # for capped evaluations, whose scores sit below full-episode reference scores
        # in chunks, so they spread over the workers
        jobs += [EvalJob(f"random:{target}:{c}", None, env, None, n, e.max_steps, p.seed + 50_000 + ti + 1000 * c)
                 for c, n in enumerate(chunks(e.random_agent_episodes, RANDOM_CHUNK))]
        for ri, name in enumerate(p.finetune.runs):
            for si, seed in enumerate(p.seeds):
                model_path = finetune_dir(target, name, seed) / "model.safetensors"
                if not model_path.exists():
                    raise FileNotFoundError(f"no finetuned model at {model_path}; run "
                                            f"`dvc repro finetune@{finetune_name(target, name, seed)}` first")
                net, meta = ckpt.load_model(model_path, device=p.device, precision=p.net.precision)
                if target not in meta.games:
                    raise StageInputError(f"{model_path} was trained on {meta.games}, not on target {target!r}")
                key = finetune_name(target, name, seed)
                metas[key] = meta
                jobs.append(EvalJob(key, net, env, p.search, e.episodes, e.max_steps,
                                    p.seed + 100_000 + 10_000 * ti + 100 * ri + si))
    jobs += student_zero_shot_jobs(p)
    scores = run_evaluations(jobs, device=p.device)
    results: dict[str, dict] = {}
    n_chunks = len(chunks(e.random_agent_episodes, RANDOM_CHUNK))
    random_episodes = {t: [x for c in range(n_chunks) for x in scores[f"random:{t}:{c}"].tolist()] for t in p.targets}
    random_scores = {t: sum(s) / len(s) for t, s in random_episodes.items()}
    for target in p.targets:
        random_ref = None if target in REFERENCE_SCORES else random_scores[target]
        for name in p.finetune.runs:
            for seed in p.seeds:
                key = finetune_name(target, name, seed)
                s = scores[key]
                mean = float(s.mean())
                entry = {"target": target, "run": name, "seed": seed, "mean_score": mean,
                         "std_score": float(s.std()), "episodes": len(s), "scores": s.tolist(),
                         "env_steps": metas[key].env_steps}
                if random_ref is None:
                    entry["hns"] = human_normalised_score(target, mean)
                else:
                    entry["hns"] = None
                    entry["random_score"] = random_ref
                results[key] = entry
    student_targets = {}
    for target in p.targets:
        s = scores[f"student:{target}"]
        student_targets[target] = {"mean_score": float(s.mean()), "std_score": float(s.std()),
                                   "episodes": len(s), "scores": s.tolist()}
    zero_shot = {}
    distill_metrics = Path("metrics") / "distill.json"
    if distill_metrics.exists():
        zero_shot = json.loads(distill_metrics.read_text()).get("zero_shot_scores", {})
    return {"runs": results, "random_scores": random_scores, "random_episode_scores": random_episodes,
            "student_zero_shot": zero_shot,
            "student_zero_shot_targets": student_targets, "protocol": e.model_dump()}


def student_zero_shot_jobs(p: PipelineConfig) -> list[EvalJob]:
    """Evaluation jobs (keys ``student:<target>``) of the student (``models/student``) on every
    target game, under the evaluation protocol with ``evaluate.zero_shot_episodes`` episodes.

    Raises:
        FileNotFoundError: no student model (run ``dvc repro distill``).
    """
    e = p.evaluate
    path = student_model()
    if not path.exists():
        raise FileNotFoundError(f"no student model at {path}; run `dvc repro distill` first")
    net, _ = ckpt.load_model(path, device=p.device, precision=p.net.precision)
    return [EvalJob(f"student:{target}", net, p.env.for_game(target), p.search, e.pretrained_episodes, e.max_steps,
                    p.seed + 200_000 + 1000 * ti) for ti, target in enumerate(p.targets)]


def _run(p: PipelineConfig, args: argparse.Namespace) -> dict:
    metrics = run(p)
    write_json(Path("metrics") / "evaluate.json", metrics)
    return metrics


def main(argv: list[str] | None = None) -> int:
    return stage_cli("evaluate", __doc__.splitlines()[0], _run, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
