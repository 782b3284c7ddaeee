"""Stage ``train@<game>-<variant>-<levels>-<seed>`` of the Procgen pipeline: one agent on one game's training levels.

Seed 000 sections 3-4: the agent (``procgen/params.yaml``'s ``train`` with the variant's keys over it:
MuZero, a self-supervised term, the Q-learning baseline, a planning ablation) learns online on
``levels`` levels of ``game`` (``all``: the full distribution), evaluated greedily on those training
levels during the run (``metrics/eval.tsv``) and, with the weights of every evaluation, zero-shot on
the full level distribution (``metrics/test_eval.tsv``); a uniform-random agent plays both splits
under the same protocol. Procgen has no frame skip: agent steps are frames.

Run from ``procgen/`` (where its ``dvc.yaml`` and ``params.yaml`` are), as ``dvc repro`` does.
Outputs (all or nothing): ``runs/<name>/`` with ``model.safetensors`` + ``model.json``, ``metrics/``
(``train.tsv``, ``eval.tsv``, ``test_eval.tsv``), ``learning_curve.png`` (normalised scores of both
splits against frames) and ``summary.json`` (raw and normalised scores of both splits, the random
agent's, the generalisation gap). The resume state lives in ``.xfer-work/procgen_train/<name>``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

import numpy as np

from xfer import checkpoint as ckpt
from xfer.actor import evaluate_random
from xfer.config import config_hash
from xfer.envs.procgen import normalised_score
from xfer.metrics import TsvLog, plot_curves, read_tsv
from xfer.parallel_eval import EvalJob, run_evaluations
from xfer.procgen_config import ProcgenPipelineConfig, procgen_run_name
from xfer.stages.common import (
    StageInputError,
    load_procgen_params,
    params_hash,
    resume_key,
    stage_cli,
    work_dir,
    write_json,
)
from xfer.stages.outputs import probe_writable, replace_together
from xfer.train import EVAL_COLUMNS, Trainer

log = logging.getLogger("xfer.stages.procgen_train")

RUNS = Path("runs")


def parse_levels(text: str) -> int | str:
    """``--levels`` as params.yaml spells it: a positive count or ``all``.

    Raises:
        StageInputError: anything else.
    """
    if text == "all":
        return "all"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise StageInputError(f"--levels must be a positive number of levels or 'all', got {text!r}")
    return n


def split_scores(game: str, mode: str, scores: np.ndarray) -> dict:
    """Raw episode scores of one split -> ``{"raw", "normalised", "scores"}`` (means over episodes)."""
    raw = float(np.mean(scores))
    return {"raw": raw, "normalised": float(normalised_score(game, mode, raw)), "scores": [float(s) for s in scores]}


def test_curve(work: Path, cfg, acting, device: str) -> list[dict]:
    """Zero-shot evaluation on the full level distribution of the weights of every in-run evaluation
    (``work/evals/model_<agent steps>.safetensors``): rows of :data:`xfer.train.EVAL_COLUMNS`."""
    test_env = cfg.env.model_copy(update={"split": "test"})
    kept = sorted(work.glob("evals/model_*.safetensors"), key=lambda f: int(f.stem.split("_")[1]))
    rows = []
    for path in kept:
        net, meta = ckpt.load_model(path, device=device, precision=cfg.net.precision)
        steps = meta.env_steps
        scores = run_evaluations([EvalJob("test", net, test_env, acting, cfg.eval_episodes, cfg.eval_max_steps,
                                          cfg.seed + 30_000 + steps)], device=device, workers=1)["test"]
        rows.append({"env_steps": steps, "train_steps": meta.step, "mean_score": float(scores.mean()),
                     "std_score": float(scores.std()), "min_score": float(scores.min()),
                     "max_score": float(scores.max()), "episodes": len(scores), "_scores": scores})
    return rows


def run(p: ProcgenPipelineConfig, game: str, variant: str, levels: int | str, seed: int, out: Path, work: Path,
        progress: bool = True) -> dict:
    """Train variant ``variant`` on ``levels`` training levels of ``game`` with ``seed``, evaluate both
    splits and the random agent, publish ``out``; returns the run's summary.

    Raises:
        StageInputError: a game, variant, level count or seed that params.yaml does not list.
    """
    for what, value, allowed in (("game", game, p.games), ("variant", variant, list(p.variants)),
                                 ("levels", levels, p.levels), ("seed", seed, p.seeds)):
        if value not in allowed:
            raise StageInputError(f"procgen train: {what} {value!r} is not in params.yaml's {allowed}")
    cfg = p.run_config(game, variant, levels, seed).model_copy(update={"keep_eval_models": True})
    probe_writable([out])
    item = {"game": game, "variant": variant, "levels": levels, "seed": seed}
    # a state from other params or other code is discarded (resume_key), so a rerun after a code change
    # trains anew instead of republishing the old code's run
    key = resume_key(params_hash(p, "train", item, extra={"train": config_hash(cfg)}), "train")
    trainer = Trainer(cfg, work, progress, restart_stale=True, random_baseline=False, resume_key=key)
    summary = trainer.run()
    summary.pop("wall_seconds_this_session", None)  # describes the host, not the result
    acting = trainer.acting(1.0, explore=False)
    train_rows = read_tsv(work / "metrics" / "eval.tsv")
    test_rows = test_curve(work, cfg, acting, cfg.device)
    mode = cfg.env.distribution_mode
    train_final = [r for r in train_rows if int(r["env_steps"]) == summary["env_steps"]][-1]
    random = {split: split_scores(game, mode, evaluate_random(cfg.env.model_copy(update={"split": split}),
                                                              p.random_episodes, cfg.eval_max_steps,
                                                              seed=cfg.seed + 20_000 + k))
              for k, split in enumerate(("train", "test"))}
    train = {"raw": float(train_final["mean_score"]),
             "normalised": float(normalised_score(game, mode, float(train_final["mean_score"])))}
    test = split_scores(game, mode, test_rows[-1]["_scores"])
    summary.update({"game": game, "variant": variant, "levels": levels, "seed": seed, "agent": cfg.agent.kind,
                    "distribution_mode": mode, "frames": summary["env_steps"], "train": train, "test": test,
                    "random": random, "generalisation_gap": train["normalised"] - test["normalised"]})
    with replace_together([out]) as staged:  # the whole run folder or nothing
        run_dir = staged[out]
        for name in ("model.safetensors", "model.json"):
            shutil.copyfile(work / name, run_dir / name)
        (run_dir / "metrics").mkdir()
        for tsv in ("train.tsv", "eval.tsv"):
            shutil.copyfile(work / "metrics" / tsv, run_dir / "metrics" / tsv)
        test_log = TsvLog(run_dir / "metrics" / "test_eval.tsv", EVAL_COLUMNS, "env_steps", -1)
        for row in test_rows:
            test_log.append({k: v for k, v in row.items() if not k.startswith("_")})
        frames = lambda rows: [float(r["env_steps"]) for r in rows]  # noqa: E731
        norm = lambda rows: [float(normalised_score(game, mode, float(r["mean_score"]))) for r in rows]  # noqa: E731
        plot_curves({"training levels": (frames(train_rows), norm(train_rows)),
                     "unseen levels (zero-shot)": (frames(test_rows), norm(test_rows))},
                    run_dir / "learning_curve.png", f"{variant} on {game}, {levels} training levels, seed {seed}",
                    "frames (= agent steps)", "normalised score",
                    hlines={"uniform random, unseen levels": random["test"]["normalised"]})
        write_json(run_dir / "summary.json", summary)
    log.info("procgen run %s: train %.3f, test %.3f (normalised)", out.name, train["normalised"], test["normalised"])
    return summary


def _run(p: ProcgenPipelineConfig, args: argparse.Namespace) -> dict:
    try:
        seed = int(args.seed)
    except ValueError:
        raise StageInputError(f"procgen train: --seed must be an integer, got {args.seed!r}") from None
    levels = parse_levels(args.levels)
    name = procgen_run_name(args.game, args.variant, levels, seed)
    return run(p, args.game, args.variant, levels, seed, RUNS / name, work_dir("procgen_train", name),
               not args.no_progress)


def main(argv: list[str] | None = None) -> int:
    return stage_cli("procgen_train", __doc__.splitlines()[0], _run, items=("game", "variant", "levels", "seed"),
                     argv=argv, load=load_procgen_params)


if __name__ == "__main__":
    sys.exit(main())
