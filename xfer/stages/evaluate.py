"""Stage ``evaluate``: final evaluation of every finetuned model on its target game.

Protocol of reference.md section 1: ``evaluate.episodes`` episodes per model, argmax of visit
counts, no root noise, ``evaluate.max_steps`` agent steps per episode (27k = 108k frames), fresh
seeds independent of training. Scores are raw game scores; human-normalised scores use the
Atari-57 random/human references (``xfer.envs.scores``); games without references (Carnival,
Pooyan) are normalised against a uniformly random agent measured here with the same protocol
(``hns`` is then None and ``random_score`` is the measured one). Every target also gets a
uniform-random score under this same protocol (``random_scores``), the fair floor for capped
evaluations. The multi-task student is also evaluated zero-shot on every target game (no
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
from xfer.actor import evaluate, evaluate_random
from xfer.config import PipelineConfig
from xfer.envs.scores import REFERENCE_SCORES, human_normalised_score
from xfer.stages.common import (
    StageInputError,
    finetune_dir,
    finetune_name,
    stage_cli,
    student_model,
    write_json,
)


def run(p: PipelineConfig) -> dict:
    """Evaluate every ``finetune@<target>-<run>-<seed>`` model; returns the metrics dict.

    ``runs`` is keyed ``<target>-<run>-<seed>`` (:func:`xfer.stages.common.finetune_name`); each
    entry has ``target, run, seed, mean_score, std_score, episodes, scores, env_steps, hns``.
    ``random_scores`` (target -> mean) and ``random_episode_scores`` (target -> scores) are the
    uniform-random agent under the same protocol.
    """
    e = p.evaluate
    results: dict[str, dict] = {}
    random_scores: dict[str, float] = {}
    random_episodes: dict[str, list[float]] = {}
    for ti, target in enumerate(p.targets):
        # uniform-random legal actions under the same protocol (episodes, step cap): the fair floor
        # for capped evaluations, whose scores sit below full-episode reference scores
        rnd = evaluate_random(p.env.for_game(target), e.episodes, e.max_steps, p.seed + 50_000 + ti)
        random_scores[target], random_episodes[target] = float(rnd.mean()), rnd.tolist()
        random_ref = None if target in REFERENCE_SCORES else random_scores[target]
        for ri, name in enumerate(p.finetune.runs):
            for si, seed in enumerate(p.seeds):
                model_path = finetune_dir(target, name, seed) / "model.safetensors"
                net, meta = ckpt.load_model(model_path, device=p.device, precision=p.net.precision)
                if target not in meta.games:
                    raise StageInputError(f"{model_path} was trained on {meta.games}, not on target {target!r}")
                scores = evaluate(net, p.env.for_game(target), p.search, e.episodes, e.max_steps,
                                  seed=p.seed + 100_000 + 10_000 * ti + 100 * ri + si, device=p.device)
                mean = float(scores.mean())
                entry = {"target": target, "run": name, "seed": seed, "mean_score": mean,
                         "std_score": float(scores.std()), "episodes": len(scores), "scores": scores.tolist(),
                         "env_steps": meta.env_steps}
                if random_ref is None:
                    entry["hns"] = human_normalised_score(target, mean)
                else:
                    entry["hns"] = None
                    entry["random_score"] = random_ref
                results[finetune_name(target, name, seed)] = entry
    student_targets = student_zero_shot(p)
    zero_shot = {}
    distill_metrics = Path("metrics") / "distill.json"
    if distill_metrics.exists():
        zero_shot = json.loads(distill_metrics.read_text()).get("zero_shot_scores", {})
    return {"runs": results, "random_scores": random_scores, "random_episode_scores": random_episodes,
            "student_zero_shot": zero_shot,
            "student_zero_shot_targets": student_targets, "protocol": e.model_dump()}


def student_zero_shot(p: PipelineConfig) -> dict[str, dict]:
    """The student (``models/student``) on every target game it was not trained on, under the
    evaluation protocol: target -> ``{mean_score, std_score, episodes, scores}``.

    Raises:
        FileNotFoundError: no student model (run ``dvc repro distill``).
    """
    e = p.evaluate
    path = student_model()
    if not path.exists():
        raise FileNotFoundError(f"no student model at {path}; run `dvc repro distill` first")
    net, _ = ckpt.load_model(path, device=p.device, precision=p.net.precision)
    out = {}
    for ti, target in enumerate(p.targets):
        scores = evaluate(net, p.env.for_game(target), p.search, e.pretrained_episodes, e.max_steps,
                          seed=p.seed + 200_000 + 1000 * ti, device=p.device)
        out[target] = {"mean_score": float(scores.mean()), "std_score": float(scores.std()),
                       "episodes": len(scores), "scores": scores.tolist()}
    return out


def _run(p: PipelineConfig, args: argparse.Namespace) -> dict:
    metrics = run(p)
    write_json(Path("metrics") / "evaluate.json", metrics)
    return metrics


def main(argv: list[str] | None = None) -> int:
    return stage_cli("evaluate", __doc__.splitlines()[0], _run, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
