"""Stage ``report``: the markdown report, plots and DVC metrics of a pipeline run.

Per target game and finetuning run, over the seeds of ``seeds``: each seed's raw score, the mean ±
standard error over seeds, human-normalised score (HNS), and the improvement over the baseline run
(``baseline_run``, from-scratch EfficientZero by default) as XTRA reports it: score relative to the
baseline's mean score on that game (seed 003, Table 1). Every finetuned model is compared with the
uniform-random agent under the same protocol (difference in standard errors). Aggregates over
targets and seeds: mean, median and IQM of HNS with 95% stratified bootstrap confidence intervals
(rliable, Agarwal et al. 2021), and of the relative score. Plots: learning curves per target (mean
over seeds, each seed thin, the random agent dashed) and the task weights of every cross-task run. Writes ``reports/report.md``, ``reports/*.png``
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

from xfer.metrics import plot_seed_curves, read_tsv, write_tsv
from xfer.stages.common import finetune_dir, finetune_name, stage_cli, write_json
from xfer.stages.outputs import replace_together
from xfer.stats import difference, interval_estimates, mean_se
from xfer.xtra_config import PipelineConfig

REPORTS = Path("reports")


def aggregate(values: list[float]) -> dict[str, float | None]:
    """Mean, median and IQM (25%-trimmed mean) of finite values; None when there are none."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return {"mean": None, "median": None, "iqm": None}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "iqm": float(trim_mean(v, 0.25))}


def build_summary(p: PipelineConfig, evaluation: dict) -> dict:
    """Per seed, per (target, run) over seeds, and aggregates over targets and seeds.

    - ``seeds``: ``<target>-<run>-<seed>`` -> score, HNS, and the difference to the uniform-random
      agent with its standard error over episodes (:func:`xfer.stats.difference`).
    - ``runs``: ``<target>-<run>`` -> per-seed scores, mean ± s.e. over seeds, mean HNS, the score
      relative to the baseline run's mean on that target (XTRA Table 1), the difference to the
      baseline run's mean with its standard error over seeds (``vs_baseline``, independent samples;
      None for the baseline itself or with fewer than 2 seeds), and how many seeds are above random
      by at least 3 standard errors of the difference.
    - ``aggregate``: per run, mean / median / IQM of HNS over targets and seeds with 95% stratified
      bootstrap intervals (rliable), and mean / median of the relative score over targets.
    """
    random_eps = evaluation.get("random_episode_scores", {})
    per_seed: dict[str, dict] = {}
    groups: dict[tuple[str, str], list[dict]] = {}
    for key, r in evaluation["runs"].items():
        rnd = random_eps.get(r["target"])
        vs = difference(r["scores"], rnd) if rnd else {"difference": None, "se": None, "z": None}
        per_seed[key] = {"target": r["target"], "run": r["run"], "seed": r.get("seed"), "score": r["mean_score"],
                         "score_se": mean_se(r["scores"])[1], "episodes": r["episodes"], "hns": r["hns"],
                         "vs_random": vs}
        groups.setdefault((r["target"], r["run"]), []).append(per_seed[key])
    means = {k: mean_se([s["score"] for s in v])[0] for k, v in groups.items()}
    per_run: dict[str, dict] = {}
    for (target, name), rows in groups.items():
        mean, se = mean_se([r["score"] for r in rows])
        base = means.get((target, p.baseline_run))
        rel = mean / base if base is not None and abs(base) > 1e-9 else None
        hns = [r["hns"] for r in rows if r["hns"] is not None]
        zs = [r["vs_random"]["z"] for r in rows]
        base_rows = groups.get((target, p.baseline_run))
        vs_base = (difference([r["score"] for r in rows], [r["score"] for r in base_rows])
                   if base_rows and name != p.baseline_run and len(rows) > 1 and len(base_rows) > 1 else None)
        per_run[f"{target}-{name}"] = {
            "target": target, "run": name, "seeds": [r["seed"] for r in rows],
            "scores": [r["score"] for r in rows], "score": mean, "score_se": se,
            "hns": float(np.mean(hns)) if hns else None, "relative_to_baseline": rel,
            "improvement_pct": None if rel is None else 100.0 * (rel - 1.0),
            "vs_baseline": vs_base,
            "seeds_above_random_3se": sum(1 for z in zs if z is not None and z >= 3.0),
        }
    names = list(dict.fromkeys(r["run"] for r in per_run.values()))
    hns_matrices = {}
    for name in names:
        cols = [[s["hns"] for s in groups[(t, name)]] for t in p.targets if (t, name) in groups]
        cols = [c for c in cols if all(h is not None for h in c)]
        if cols and len({len(c) for c in cols}) == 1:
            hns_matrices[name] = np.asarray(cols, dtype=np.float64).T  # [seeds, games]
    intervals = interval_estimates(hns_matrices, seed=p.seed) if hns_matrices else {}
    aggregates = {}
    for name in names:
        rows = [v for v in per_run.values() if v["run"] == name]
        aggregates[name] = {"hns": intervals.get(name),
                            "relative_to_baseline": aggregate([r["relative_to_baseline"] for r in rows])}
    return {"seeds": per_seed, "runs": per_run, "aggregate": aggregates, "baseline_run": p.baseline_run}


def _fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _pm(mean: float, se: float | None, digits: int = 1) -> str:
    return f"{mean:.{digits}f}" if se is None else f"{mean:.{digits}f} ± {se:.{digits}f}"


def _ci(stat: dict | None) -> str:
    return "n/a" if stat is None else f"{stat['value']:.3f} [{stat['low']:.3f}, {stat['high']:.3f}]"


def zero_shot_table(p: PipelineConfig, evaluation: dict, baselines: dict[str, dict]) -> list[str]:
    """Markdown lines: pretrained models without finetuning on every game (XTRA section 4, appendix C).

    Rows: the distilled student (``evaluation["student_zero_shot"]`` on the pretraining games,
    ``student_zero_shot_targets`` on the targets) and each pretraining baseline of ``baselines``
    (``bc`` / ``offline_rl`` -> their stage metrics); the uniform-random agent on the targets."""
    games = [*p.pretrain_games, *p.targets]
    student = {**evaluation.get("student_zero_shot", {}),
               **{g: r["mean_score"] for g, r in evaluation.get("student_zero_shot_targets", {}).items()}}
    rows = {"student (distilled from teachers)": student}
    names = {"bc": "multi-game behaviour cloning", "offline_rl": "multi-game offline RL"}
    for key, m in baselines.items():
        scores = {**m.get("zero_shot_pretrain", {}), **m.get("zero_shot_targets", {})}
        rows[f"{names.get(key, key)} ({m.get('acts_on', '')})"] = {g: s["mean_score"] for g, s in scores.items()}
    rows["*uniform random, same protocol*"] = evaluation.get("random_scores", {})
    if not any(rows.values()):
        return []
    head = " | ".join(f"{g}{' (pretraining)' if g in p.pretrain_games else ' (target)'}" for g in games)
    lines = ["", "## Zero-shot: pretrained models without finetuning", "",
             "The student against multi-game models trained on the same datasets without teachers "
             "(behaviour cloning, XTRA section 4; offline RL, appendix C); raw mean scores.", "",
             f"| model | {head} |", "|---|" + "---:|" * len(games)]
    for name, scores in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(scores.get(g), 1) for g in games) + " |")
    return lines


def render_markdown(p: PipelineConfig, evaluation: dict, summary: dict, plots: list[str],
                    baselines: dict[str, dict] | None = None) -> str:
    """The human-readable report (markdown); ``baselines`` are the pretraining baselines' stage
    metrics (``metrics/baselines/<name>.json``) by name."""
    e = evaluation["protocol"]
    cpu_scale = p.device == "cpu"
    lines = [
        f"# XTRA report — preset `{p.preset}`",
        "",
        f"Pretraining games: {', '.join(p.pretrain_games)}. Targets: {', '.join(p.targets)}. "
        f"Finetuning budget: {p.finetune.env_steps} agent steps, seeds {p.seeds}. Network: `{p.net.size}` "
        f"(student `{p.distill.size or p.net.size}`). Evaluation: {e['episodes']} episodes per model, greedy "
        f"(argmax of the search's acting scores), no noise, cap {e['max_steps']} agent steps; ± is one "
        "standard error.",
    ]
    if cpu_scale:
        lines += ["", "**This is a CPU-scale run**: a tiny network and a few thousand agent steps, far from "
                  "the paper's 100k-step, full-size setting; compare it with the uniform-random agent under "
                  "the same protocol, not with published scores."]
    lines += [
        "",
        "## Scores on the target games (over seeds)",
        "",
        f"| target | run | mean score ± s.e. over seeds | per seed | HNS | vs `{p.baseline_run}` (difference ± s.e. "
        "over seeds) | seeds > random by 3 s.e. |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for r in summary["runs"].values():
        imp = "baseline" if r["run"] == p.baseline_run else (
            "n/a" if r["improvement_pct"] is None else f"{r['improvement_pct']:+.0f}%")
        if r.get("vs_baseline") and r["vs_baseline"]["se"] is not None:
            d = r["vs_baseline"]
            imp += f" ({d['difference']:+.1f} ± {d['se']:.1f}, {d['z']:+.1f} s.e.)"
        per = ", ".join(f"{x:.1f}" for x in r["scores"])
        lines.append(f"| {r['target']} | {r['run']} | {_pm(r['score'], r['score_se'])} | {per} | "
                     f"{_fmt(r['hns'], 3)} | {imp} | {r['seeds_above_random_3se']} of {len(r['scores'])} |")
    for target, r in evaluation.get("student_zero_shot_targets", {}).items():
        lines.append(f"| {target} | *student, zero-shot (no finetuning)* | {_pm(r['mean_score'], mean_se(r['scores'])[1])} "
                     "|  |  |  |  |")
    for target, score in evaluation.get("random_scores", {}).items():
        eps = evaluation.get("random_episode_scores", {}).get(target)
        lines.append(f"| {target} | *uniform random, same protocol* | "
                     f"{_pm(score, mean_se(eps)[1] if eps else None)} |  |  |  |  |")
    lines += ["", "## Every finetuned model against the uniform-random agent", "",
              "Difference of mean scores over evaluation episodes, in standard errors of the difference.", "",
              "| target | run | seed | score ± s.e. (episodes) | random ± s.e. (episodes) | difference | in s.e. |",
              "|---|---|---:|---:|---:|---:|---:|"]
    random_eps = evaluation.get("random_episode_scores", {})
    for s in summary["seeds"].values():
        v = s["vs_random"]
        rnd = random_eps.get(s["target"])
        rnd_txt = f"{_pm(*mean_se(rnd))} ({len(rnd)})" if rnd else "n/a"
        lines.append(f"| {s['target']} | {s['run']} | {s['seed']} | {_pm(s['score'], s['score_se'])} ({s['episodes']}) "
                     f"| {rnd_txt} | {_fmt(v['difference'], 1)} | {_fmt(v['z'], 1)} |")
    lines += ["", "## Aggregates over targets and seeds", "",
              "HNS with 95% stratified bootstrap confidence intervals (rliable; Agarwal et al. 2021).", "",
              "| run | mean HNS | median HNS | IQM HNS | mean score / baseline | median score / baseline |",
              "|---|---:|---:|---:|---:|---:|"]
    for name, agg in summary["aggregate"].items():
        h, rel = agg["hns"] or {}, agg["relative_to_baseline"]
        lines.append(f"| {name} | {_ci(h.get('mean'))} | {_ci(h.get('median'))} | {_ci(h.get('iqm'))} | "
                     f"{_fmt(rel['mean'])} | {_fmt(rel['median'])} |")
    lines += zero_shot_table(p, evaluation, baselines or {})
    lines += ["", "## Plots", ""] + [f"![{Path(x).stem}]({Path(x).name})" for x in plots]
    lines += [""]
    return "\n".join(lines)


def curve_rows(rows: list[dict[str, str]], final: dict | None) -> list[dict[str, str]]:
    """A finetuning run's learning curve: its in-run evaluations (``eval.tsv`` rows), ended by the
    evaluate stage's score of its final model (``final``: an entry of ``evaluate.json``'s ``runs``)
    when that comes after the last in-run point (finetuning runs do not evaluate their last step
    themselves). The added row has ``env_steps, mean_score, std_score, min_score, max_score,
    episodes`` and an empty ``train_steps``."""
    rows = [dict(r) for r in rows]
    if final is None or (rows and float(rows[-1]["env_steps"]) >= final["env_steps"]):
        return rows
    scores = final["scores"]
    row = {"env_steps": str(final["env_steps"]), "train_steps": "", "mean_score": str(final["mean_score"]),
           "std_score": str(final["std_score"]), "min_score": str(min(scores)), "max_score": str(max(scores)),
           "episodes": str(final["episodes"])}
    return rows + [{k: row.get(k, "") for k in (rows[0] if rows else row)}]


def run(p: PipelineConfig, out: Path = REPORTS) -> dict:
    """Build the report from ``metrics/evaluate.json`` and the finetune runs; returns the summary.

    ``out`` (the report and its plots), ``metrics/curves`` and ``metrics/task_weights`` are replaced
    together or not at all (:func:`xfer.stages.outputs.replace_together`)."""
    evaluation = json.loads((Path("metrics") / "evaluate.json").read_text())
    summary = build_summary(p, evaluation)
    curves_dir, weights_dir = Path("metrics") / "curves", Path("metrics") / "task_weights"
    with replace_together([out, curves_dir, weights_dir]) as staged:
        report_dir, curves, weights_out = staged[out], staged[curves_dir], staged[weights_dir]
        plots = []
        for target in p.targets:
            runs: dict[str, list[tuple[list[float], list[float]]]] = {}
            for name in p.finetune.runs:
                for seed in p.seeds:
                    item = finetune_name(target, name, seed)
                    tsv = finetune_dir(target, name, seed) / "metrics" / "eval.tsv"
                    weights = finetune_dir(target, name, seed) / "metrics" / "task_weights.tsv"
                    if weights.exists() and len(weights.read_text().splitlines()) > 1:
                        shutil.copyfile(weights, weights_out / f"{item}.tsv")
                    if tsv.exists():
                        rows = curve_rows(read_tsv(tsv), evaluation.get("runs", {}).get(item))
                        write_tsv(curves / f"{item}.tsv", rows)
                        runs.setdefault(name, []).append(([float(r["env_steps"]) for r in rows],
                                                          [float(r["mean_score"]) for r in rows]))
                    src = finetune_dir(target, name, seed) / "task_weights.png"
                    if src.exists():
                        shutil.copyfile(src, report_dir / f"task_weights_{item}.png")
                        plots.append(f"task_weights_{item}.png")
            if runs:
                png = f"learning_curves_{target}.png"
                rnd = evaluation.get("random_scores", {}).get(target)
                hlines = None if rnd is None else {f"uniform random, same protocol ({rnd:.1f})": rnd}
                plot_seed_curves(runs, report_dir / png, f"Finetuning on {target}: mean over seeds (thin: each seed)",
                                 "agent steps", "evaluation score", hlines=hlines)
                plots.insert(0, png)
        baselines = {name: json.loads(f.read_text()) for name in ("bc", "offline_rl")
                     if (f := Path("metrics") / "baselines" / f"{name}.json").exists()}
        (report_dir / "report.md").write_text(render_markdown(p, evaluation, summary, plots, baselines))
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
