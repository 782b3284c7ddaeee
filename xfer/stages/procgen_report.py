"""Stage ``report`` of the Procgen pipeline: generalisation across levels, per variant and level count.

Reads every run's ``runs/<game>-<variant>-<levels>-<seed>/summary.json`` and its evaluation curves
(written by ``train@...``, :mod:`xfer.stages.procgen_train`) and reports, as seed 000 does:

- per game, variant and level count: min-max normalised score on the training levels and zero-shot
  on unseen levels (mean ± standard error over seeds), the generalisation gap (train - test) and
  the uniform-random agent under the same protocol;
- per variant and level count: mean, median and IQM over games of the normalised test (and train)
  score with 95% stratified bootstrap confidence intervals over seeds (rliable, Agarwal et al. 2021);
- the data-diversity sweep (normalised score against training levels, ``levels_sweep.png``) and the
  learning curves (mean normalised score over games and seeds against frames, one plot per level
  count, ``curves_<levels>.png``);
- with a ``reference`` in params (the paper preset), the paper's Table A.2 figures beside ours.

Writes ``reports/report.md`` + plots and ``metrics/summary.json``, replaced together or not at all.
Run from ``procgen/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from xfer.envs.procgen import normalised_score
from xfer.metrics import plot_train_test, read_tsv
from xfer.procgen_config import ProcgenPipelineConfig, procgen_run_name
from xfer.stages.common import StageInputError, load_procgen_params, stage_cli, write_json
from xfer.stages.outputs import replace_together
from xfer.stats import interval_estimates, mean_se

REPORTS = Path("reports")
RUNS = Path("runs")
SPLITS = ("train", "test")


def load_runs(p: ProcgenPipelineConfig, runs: Path = RUNS) -> dict[str, dict]:
    """``<run name>`` -> its ``summary.json`` for every game x variant x levels x seed of ``p``.

    Raises:
        StageInputError: a run without its summary (names the ``dvc repro`` target that makes it).
    """
    out = {}
    for game in p.games:
        for variant in p.variants:
            for levels in p.levels:
                for seed in p.seeds:
                    name = procgen_run_name(game, variant, levels, seed)
                    path = runs / name / "summary.json"
                    if not path.exists():
                        raise StageInputError(f"{path} not found; run `dvc repro train@{name}` first")
                    out[name] = json.loads(path.read_text())
    return out


def score_matrix(p: ProcgenPipelineConfig, runs: dict[str, dict], variant: str, levels: int | str,
                 split: str) -> np.ndarray:
    """``[seeds, games]`` normalised scores of ``variant`` at ``levels`` on ``split`` (train | test)."""
    return np.array([[runs[procgen_run_name(g, variant, levels, s)][split]["normalised"] for g in p.games]
                     for s in p.seeds], dtype=np.float64)


def build_summary(p: ProcgenPipelineConfig, runs: dict[str, dict]) -> dict:
    """``games``: per ``<game>/<variant>/<levels>``: normalised train / test / gap / random (mean and
    s.e. over seeds); ``aggregate``: per ``<variant>/<levels>`` (and ``random/<levels>``, the
    uniform-random agent) and split, mean / median / IQM over games with 95% bootstrap intervals;
    ``frames``: agent steps (= frames) per run."""
    games: dict[str, dict] = {}
    for g in p.games:
        for v in p.variants:
            for lv in p.levels:
                rs = [runs[procgen_run_name(g, v, lv, s)] for s in p.seeds]
                row = {}
                for split in SPLITS:
                    m, se = mean_se([r[split]["normalised"] for r in rs])
                    row[split] = {"mean": m, "se": se}
                    row[f"random_{split}"] = float(np.mean([r["random"][split]["normalised"] for r in rs]))
                m, se = mean_se([r["generalisation_gap"] for r in rs])
                row["gap"] = {"mean": m, "se": se}
                games[f"{g}/{v}/{lv}"] = row
    aggregate: dict[str, dict] = {}
    first = next(iter(p.variants))  # every run of a game, levels and seed plays the same random agent
    for split in SPLITS:
        matrices = {f"{v}/{lv}": score_matrix(p, runs, v, lv, split) for v in p.variants for lv in p.levels}
        matrices |= {f"random/{lv}": np.array([[runs[procgen_run_name(g, first, lv, s)]["random"][split]["normalised"]
                                                 for g in p.games] for s in p.seeds]) for lv in p.levels}
        for key, stats in interval_estimates(matrices).items():
            aggregate.setdefault(key, {})[split] = stats
    frames = sorted({int(r["frames"]) for r in runs.values()})
    return {"games": games, "aggregate": aggregate, "frames": frames, "seeds": list(p.seeds)}


def mean_curve(p: ProcgenPipelineConfig, variant: str, levels: int | str, tsv: str, runs: Path = RUNS
               ) -> tuple[list[float], list[float]]:
    """Mean normalised score over games and seeds against frames, at the frames every run evaluated."""
    by_frame: dict[float, list[float]] = {}
    count = 0
    for g in p.games:
        for s in p.seeds:
            count += 1
            mode = p.train.env.distribution_mode
            for r in read_tsv(runs / procgen_run_name(g, variant, levels, s) / "metrics" / tsv):
                by_frame.setdefault(float(r["env_steps"]), []).append(
                    float(normalised_score(g, mode, float(r["mean_score"]))))
    frames = sorted(f for f, v in by_frame.items() if len(v) == count)
    return frames, [float(np.mean(by_frame[f])) for f in frames]


def _pm(stat: dict) -> str:
    return f"{stat['mean']:.3f}" if stat["se"] is None else f"{stat['mean']:.3f} ± {stat['se']:.3f}"


def _ci(stat: dict) -> str:
    return f"{stat['value']:.3f} [{stat['low']:.3f}, {stat['high']:.3f}]"


def render_markdown(p: ProcgenPipelineConfig, summary: dict, plots: list[str]) -> str:
    """The report page (see the module docstring)."""
    t = p.train
    frames = ", ".join(f"{f:,}" for f in summary["frames"])
    lines = [
        f"# Procgen generalisation report (preset `{p.preset}`)", "",
        f"Games: {', '.join(p.games)} ({t.env.distribution_mode} mode); training levels: "
        f"{', '.join(map(str, p.levels))} (from level {t.env.start_level}; `all` = the full distribution); "
        f"seeds: {', '.join(map(str, p.seeds))}; {frames} frames per run (Procgen has no frame skip: "
        f"frames = agent steps); network `{t.net.size}`, {t.mcts.num_simulations} simulations, batch "
        f"{t.batch_size}, {t.env.stack} frames of history.", "",
        "Scores are min-max normalised, (R - R_min) / (R_max - R_min) with the paper's "
        f"{t.env.distribution_mode}-mode constants (reference.md section 4). *Train*: greedy evaluation "
        f"({t.eval_episodes} episodes, at most {t.eval_max_steps} steps) on the run's training levels; "
        "*test*: the same on the full level distribution (zero-shot: levels never trained on); "
        "*gap* = train - test. The uniform-random agent plays both splits under the same protocol "
        f"({p.random_episodes} episodes).", "",
    ]
    if len(p.seeds) < 3:
        lines += [f"**{len(p.seeds)} seed(s)**: standard errors and confidence intervals need at least 2 seeds "
                  "(better 3-5); rliable's stratified bootstrap resamples seeds within each game, so with one "
                  "seed every interval below collapses to its point estimate.", ""]
    lines += ["## Over games: mean, median and IQM of the normalised score", "",
              "95% stratified bootstrap confidence intervals (rliable).", "",
              "| variant | levels | test mean | test median | test IQM | train mean | gap (mean) |"
              + (" paper test mean (Table A.2, 500 levels) |" if p.reference else ""),
              "|---|---|---:|---:|---:|---:|---:|" + ("---:|" if p.reference else "")]
    for v in [*p.variants, "random"]:
        for lv in p.levels:
            a = summary["aggregate"][f"{v}/{lv}"]
            gap = a["train"]["mean"]["value"] - a["test"]["mean"]["value"]
            ref = ""
            if p.reference:
                ref = f" {p.reference[v]:.2f} |" if v in p.reference and lv == 500 else " - |"
            name = "*uniform random*" if v == "random" else v
            lines.append(f"| {name} | {lv} | {_ci(a['test']['mean'])} | {_ci(a['test']['median'])} | "
                         f"{_ci(a['test']['iqm'])} | {_ci(a['train']['mean'])} | {gap:.3f} |{ref}")
    lines += ["", "## Per game (mean ± s.e. over seeds)", "",
              "| game | variant | levels | train | test | gap | random (train / test) |",
              "|---|---|---|---:|---:|---:|---:|"]
    for key, row in summary["games"].items():
        g, v, lv = key.split("/")
        lines.append(f"| {g} | {v} | {lv} | {_pm(row['train'])} | {_pm(row['test'])} | {_pm(row['gap'])} | "
                     f"{row['random_train']:.3f} / {row['random_test']:.3f} |")
    lines += ["", "## Plots", ""] + [f"![{png}]({png})" for png in plots]
    lines += ["", "## Variants", ""] + [f"- `{v}`: {json.dumps(keys, sort_keys=True) if keys else 'train as is'}"
                                         for v, keys in p.variants.items()]
    return "\n".join(lines) + "\n"


def plot_levels_sweep(p: ProcgenPipelineConfig, summary: dict, path: Path) -> None:
    """Mean normalised score over games and seeds against training levels (seed 000 Fig. 3 / Table A.3)."""
    agg = summary["aggregate"]
    x = list(range(len(p.levels)))
    series = {v: ((x, [agg[f"{v}/{lv}"]["test"]["mean"]["value"] for lv in p.levels]),
                  (x, [agg[f"{v}/{lv}"]["train"]["mean"]["value"] for lv in p.levels])) for v in p.variants}
    rnd = float(np.mean([agg[f"random/{lv}"]["test"]["mean"]["value"] for lv in p.levels]))
    plot_train_test(series, path, "Data diversity: normalised score against training levels", "training levels",
                    "mean normalised score over games", hlines={f"uniform random, unseen levels ({rnd:.3f})": rnd},
                    categories=[str(lv) for lv in p.levels])


def run(p: ProcgenPipelineConfig, out: Path = REPORTS, runs_dir: Path = RUNS) -> dict:
    """Build the report from the runs; returns the summary (also ``metrics/summary.json``)."""
    runs = load_runs(p, runs_dir)
    summary = build_summary(p, runs)
    with replace_together([out]) as staged:
        report_dir = staged[out]
        plots = ["levels_sweep.png"]
        plot_levels_sweep(p, summary, report_dir / "levels_sweep.png")
        for lv in p.levels:
            series = {v: (mean_curve(p, v, lv, "test_eval.tsv", runs_dir), mean_curve(p, v, lv, "eval.tsv", runs_dir))
                      for v in p.variants}
            rnd = summary["aggregate"][f"random/{lv}"]["test"]["mean"]["value"]
            png = f"curves_{lv}.png"
            plot_train_test(series, report_dir / png, f"{lv} training levels: mean over games and seeds",
                            "frames", "normalised score", hlines={f"uniform random, unseen levels ({rnd:.3f})": rnd})
            plots.append(png)
        (report_dir / "report.md").write_text(render_markdown(p, summary, plots))
    write_json(Path("metrics") / "summary.json", summary)
    return summary


def _run(p: ProcgenPipelineConfig, args: argparse.Namespace) -> dict:
    summary = run(p)
    print(f"report: {REPORTS / 'report.md'}")
    return summary


def main(argv: list[str] | None = None) -> int:
    return stage_cli("procgen_report", __doc__.splitlines()[0], _run, argv=argv, load=load_procgen_params)


if __name__ == "__main__":
    sys.exit(main())
