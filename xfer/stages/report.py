"""Stage ``report``: the markdown report, plots and DVC metrics of a pipeline run.

Per target game and finetuning run: raw score, human-normalised score (HNS), and the improvement
over the baseline run (``baseline_run``, from-scratch EfficientZero by default) as XTRA reports it:
score relative to the baseline's mean score on that game (seed 003, Table 1). Aggregates over
targets: mean, median and IQM (interquartile mean, 25% trimmed) of HNS and of the relative score.
Plots: learning curves (evaluation score against agent steps) per target with every run, and the
task weights over time of every cross-task run. Writes ``reports/report.md``, ``reports/*.png``
``metrics/summary.json`` (for ``dvc metrics show``) and the curves/task weights as TSVs under
``metrics/curves`` and ``metrics/task_weights`` (for ``dvc plots show``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from scipy.stats import trim_mean

from xfer.config import PipelineConfig
from xfer.metrics import plot_curves, read_tsv
from xfer.stages.common import finetune_dir, stage_cli, write_json

REPORTS = Path("reports")


def aggregate(values: list[float]) -> dict[str, float | None]:
    """Mean, median and IQM (25%-trimmed mean) of finite values; None when there are none."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return {"mean": None, "median": None, "iqm": None}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "iqm": float(trim_mean(v, 0.25))}


def build_summary(p: PipelineConfig, evaluation: dict) -> dict:
    """Per-run scores, improvement over the baseline, and aggregates over targets."""
    runs = evaluation["runs"]
    per_run: dict[str, dict] = {}
    for key, r in runs.items():
        base = runs.get(f"{r['target']}-{p.baseline_run}")
        rel = None
        if base is not None and abs(base["mean_score"]) > 1e-9:
            rel = r["mean_score"] / base["mean_score"]
        per_run[key] = {"target": r["target"], "run": r["run"], "score": r["mean_score"], "hns": r["hns"],
                        "relative_to_baseline": rel,
                        "improvement_pct": None if rel is None else 100.0 * (rel - 1.0)}
    aggregates = {}
    for name in p.finetune.runs:
        rows = [v for v in per_run.values() if v["run"] == name]
        aggregates[name] = {"hns": aggregate([r["hns"] for r in rows]),
                            "relative_to_baseline": aggregate([r["relative_to_baseline"] for r in rows])}
    return {"runs": per_run, "aggregate": aggregates, "baseline_run": p.baseline_run}


def _fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def render_markdown(p: PipelineConfig, evaluation: dict, summary: dict, plots: list[str]) -> str:
    """The human-readable report (markdown)."""
    e = evaluation["protocol"]
    lines = [
        f"# XTRA report — preset `{p.preset}`",
        "",
        f"Pretraining games: {', '.join(p.pretrain_games)}. Targets: {', '.join(p.targets)}. "
        f"Finetuning budget: {p.finetune.env_steps} agent steps. Network: `{p.net.size}` "
        f"(student `{p.distill.size or p.net.size}`). Evaluation: {e['episodes']} episodes, argmax visit "
        f"counts, no noise, cap {e['max_steps']} agent steps.",
        "",
        "## Scores on the target games",
        "",
        f"| target | run | mean score | std | HNS | vs `{p.baseline_run}` |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for key, r in evaluation["runs"].items():
        s = summary["runs"][key]
        imp = "baseline" if r["run"] == p.baseline_run else (
            "n/a" if s["improvement_pct"] is None else f"{s['improvement_pct']:+.0f}%")
        lines.append(f"| {r['target']} | {r['run']} | {r['mean_score']:.1f} | {r['std_score']:.1f} | "
                     f"{_fmt(r['hns'], 3)} | {imp} |")
    for target, r in evaluation.get("student_zero_shot_targets", {}).items():
        lines.append(f"| {target} | *student, zero-shot (no finetuning)* | {r['mean_score']:.1f} | "
                     f"{r['std_score']:.1f} |  |  |")
    for target, score in evaluation.get("random_scores", {}).items():
        lines.append(f"| {target} | *uniform random, same protocol* | {score:.1f} |  |  |  |")
    lines += ["", "## Aggregates over targets", "",
              "| run | mean HNS | median HNS | IQM HNS | mean score / baseline | median score / baseline |",
              "|---|---:|---:|---:|---:|---:|"]
    for name, agg in summary["aggregate"].items():
        h, rel = agg["hns"], agg["relative_to_baseline"]
        lines.append(f"| {name} | {_fmt(h['mean'], 3)} | {_fmt(h['median'], 3)} | {_fmt(h['iqm'], 3)} | "
                     f"{_fmt(rel['mean'])} | {_fmt(rel['median'])} |")
    if evaluation.get("student_zero_shot"):
        lines += ["", "## Student, zero-shot on the pretraining games", "", "| game | mean score |", "|---|---:|"]
        lines += [f"| {g} | {s:.1f} |" for g, s in evaluation["student_zero_shot"].items()]
    lines += ["", "## Plots", ""] + [f"![{Path(x).stem}]({Path(x).name})" for x in plots]
    lines += ["", "Scores at this scale are what they are: small CPU presets run a tiny network for a few "
              "thousand agent steps, far from the paper's 100k-step, full-size setting.", ""]
    return "\n".join(lines)


def run(p: PipelineConfig, out: Path = REPORTS) -> dict:
    """Build the report from ``metrics/evaluate.json`` and the finetune runs; returns the summary."""
    evaluation = json.loads((Path("metrics") / "evaluate.json").read_text())
    summary = build_summary(p, evaluation)
    out.mkdir(parents=True, exist_ok=True)
    plots = []
    for sub in ("curves", "task_weights"):
        shutil.rmtree(Path("metrics") / sub, ignore_errors=True)
        (Path("metrics") / sub).mkdir(parents=True)
    for target in p.targets:
        series = {}
        for name in p.finetune.runs:
            tsv = finetune_dir(target, name) / "metrics" / "eval.tsv"
            weights = finetune_dir(target, name) / "metrics" / "task_weights.tsv"
            if weights.exists() and len(weights.read_text().splitlines()) > 1:
                shutil.copyfile(weights, Path("metrics") / "task_weights" / f"{target}-{name}.tsv")
            if tsv.exists():
                shutil.copyfile(tsv, Path("metrics") / "curves" / f"{target}-{name}.tsv")
                rows = read_tsv(tsv)
                series[name] = ([float(r["env_steps"]) for r in rows], [float(r["mean_score"]) for r in rows])
        if series:
            png = out / f"learning_curves_{target}.png"
            plot_curves(series, png, f"Finetuning on {target}", "agent steps", "evaluation score")
            plots.append(str(png))
        for name in p.finetune.runs:
            src = finetune_dir(target, name) / "task_weights.png"
            if src.exists():
                dst = out / f"task_weights_{target}-{name}.png"
                shutil.copyfile(src, dst)
                plots.append(str(dst))
    (out / "report.md").write_text(render_markdown(p, evaluation, summary, plots))
    write_json(Path("metrics") / "summary.json", summary)
    return summary


def _run(p: PipelineConfig, args: argparse.Namespace) -> dict:
    summary = run(p)
    print(f"report: {REPORTS / 'report.md'}")
    return summary


def main(argv: list[str] | None = None) -> int:
    return stage_cli("report", __doc__.splitlines()[0], _run, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
