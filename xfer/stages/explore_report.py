"""Stage ``report`` of the exploration pipeline: what exploration found, and which parts' transfer helped.

Reads every run's ``summary.json`` (``runs/explore``, ``runs/random``, ``runs/transfer``,
``runs/scratch``; :mod:`xfer.stages.explore`, :mod:`xfer.stages.explore_random`,
:mod:`xfer.stages.explore_transfer`) and the final evaluation of every model (``metrics/evaluate.json``,
:mod:`xfer.stages.explore_evaluate`), and reports, per game, mean ± standard error over seeds:

- exploration (seed 001, phase 1): distinct cells visited and extrinsic reward collected (not
  optimised) by each exploring agent, against the uniform-random agent with the same budget, with
  the difference and its standard error; the cell curves against agent steps (``exploration_<game>.png``);
- transfer (phase 2): the extrinsic evaluation curves of every transfer variant of every agent against
  its scratch run and the random agent (``transfer_<game>_<agent>.png``), and of each variant across the
  agents, each with its scratch run (``variant_<game>_<transfer>.png``: MuZero against the Q-learning
  agent, the controlled model-free baseline with the same exploration phase);
- which parts' transfer helped: transfer minus scratch, on the mean evaluation score over the run
  (the area under the curve: how much sooner the agent scores) and on the final evaluation (the
  ``evaluate`` stage's protocol), with the standard error of the difference (seeds as independent
  samples); and what each exploration checkpoint scores zero-shot under the same protocol.

Writes ``reports/report.md`` + plots and ``metrics/summary.json``, replaced together or not at all.
Run from ``explore/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xfer.exploration.config import ExplorePipelineConfig, explore_run_name
from xfer.metrics import plot_seed_curves
from xfer.stages.common import StageInputError, load_explore_params, stage_cli, write_json
from xfer.stages.explore_evaluate import final_models
from xfer.stages.outputs import replace_together
from xfer.stats import difference, mean_se

REPORTS = Path("reports")
RUNS = Path("runs")
EVALUATE = Path("metrics") / "evaluate.json"


def _load(path: Path, target: str) -> dict:
    if not path.exists():
        raise StageInputError(f"{path} not found; run `dvc repro {target}` first")
    return json.loads(path.read_text())


def load_runs(p: ExplorePipelineConfig, runs: Path = RUNS) -> dict[str, dict[str, dict]]:
    """``kind -> run name -> summary.json`` for every run of ``p`` (kinds: explore, random, transfer, scratch).

    Raises:
        StageInputError: a run without its summary (names the ``dvc repro`` target that makes it).
    """
    out: dict[str, dict[str, dict]] = {"explore": {}, "random": {}, "transfer": {}, "scratch": {}}
    for game in p.games:
        for seed in p.seeds:
            out["random"][f"{game}-{seed}"] = _load(runs / "random" / f"{game}-{seed}" / "summary.json",
                                                    f"random@{game}-{seed}")
            for agent in p.agents:
                name = explore_run_name(game, agent, seed)
                for kind in ("explore", "scratch"):
                    out[kind][name] = _load(runs / kind / name / "summary.json", f"{kind}@{name}")
                for transfer in p.transfers:
                    name = explore_run_name(game, agent, seed, transfer)
                    out["transfer"][name] = _load(runs / "transfer" / name / "summary.json", f"transfer@{name}")
    return out


def _stat(values: list[float]) -> dict:
    mean, se = mean_se(values)
    return {"mean": mean, "se": se, "values": values}


def load_evaluation(p: ExplorePipelineConfig, path: Path = EVALUATE) -> dict[str, float]:
    """``"<kind>:<run name>" -> mean final score`` from the ``evaluate`` stage's metrics, for every model of ``p``.

    Raises:
        StageInputError: no metrics file, or one without a model of ``p`` (params changed since: rerun it).
    """
    runs = _load(path, "evaluate")["runs"]
    missing = [m.key for m in final_models(p) if m.key not in runs]
    if missing:
        raise StageInputError(f"{path} has no evaluation of {missing[:3]}{'...' if len(missing) > 3 else ''}; "
                              "run `dvc repro evaluate` first")
    return {key: float(r["mean_score"]) for key, r in runs.items()}


def build_summary(p: ExplorePipelineConfig, runs: dict[str, dict[str, dict]], final: dict[str, float]) -> dict:
    """The report's figures as a JSON-able dict: ``games -> game -> {random, agents -> agent -> {exploration,
    zero_shot, scratch, transfers -> name -> {parts, mean_score, final_score, vs_scratch}}}``; ``final`` is
    :func:`load_evaluation`'s (the final scores and the exploration checkpoints' zero-shot ones)."""
    games = {}
    for game in p.games:
        rnd = [runs["random"][f"{game}-{s}"] for s in p.seeds]
        g: dict = {"random": {"cells": _stat([r["exploration"]["cells"] for r in rnd]),
                              "extrinsic_total": _stat([r["exploration"]["extrinsic_total"] for r in rnd]),
                              "eval_score": _stat([r["eval"]["mean_score"] for r in rnd])},
                   "agents": {}}
        for agent in p.agents:
            exp = [runs["explore"][explore_run_name(game, agent, s)]["exploration"] for s in p.seeds]
            cells, ext = [e["cells"] for e in exp], [e["extrinsic_total"] for e in exp]
            rnd_cells = g["random"]["cells"]["values"]
            rnd_ext = g["random"]["extrinsic_total"]["values"]
            scratch = [runs["scratch"][explore_run_name(game, agent, s)] for s in p.seeds]
            a: dict = {"exploration": {"cells": _stat(cells), "cells_vs_random": difference(cells, rnd_cells),
                                       "extrinsic_total": _stat(ext), "extrinsic_vs_random": difference(ext, rnd_ext)},
                       "zero_shot": _stat([final[f"explore:{explore_run_name(game, agent, s)}"] for s in p.seeds]),
                       "scratch": {"mean_score": _stat([r["mean_eval_score"] for r in scratch]),
                                   "final_score": _stat([final[f"scratch:{explore_run_name(game, agent, s)}"]
                                                         for s in p.seeds])},
                       "transfers": {}}
            for transfer, parts in p.transfers.items():
                tr = [runs["transfer"][explore_run_name(game, agent, s, transfer)] for s in p.seeds]
                mean_scores = [r["mean_eval_score"] for r in tr]
                finals = [final[f"transfer:{explore_run_name(game, agent, s, transfer)}"] for s in p.seeds]
                a["transfers"][transfer] = {
                    "parts": list(parts), "mean_score": _stat(mean_scores), "final_score": _stat(finals),
                    "vs_scratch": {"mean_score": difference(mean_scores, a["scratch"]["mean_score"]["values"]),
                                   "final_score": difference(finals, a["scratch"]["final_score"]["values"])}}
            g["agents"][agent] = a
        games[game] = g
    return {"preset": p.preset, "intrinsic": p.intrinsic.kind, "seeds": p.seeds, "games": games}


def _pm(stat: dict, digits: int = 1) -> str:
    se = stat.get("se")
    return f"{stat['mean']:.{digits}f}" + (f" ± {se:.{digits}f}" if se is not None else "")


def _diff(d: dict, digits: int = 1) -> str:
    se = d.get("se")
    return f"{d['difference']:+.{digits}f}" + (f" ± {se:.{digits}f}" if se is not None else " (one seed: no s.e.)")


def render_markdown(p: ExplorePipelineConfig, summary: dict, plots: list[str]) -> str:
    """The report as Markdown: the exploration table, the transfer table and the plots."""
    n = len(p.seeds)
    explore_steps = p.explore_config(p.games[0], next(iter(p.agents)), p.seeds[0]).env_steps
    ft = p.finetune_config(p.games[0], next(iter(p.agents)), p.seeds[0])
    finetune_steps = ft.env_steps
    lines = [f"# Exploration then transfer (preset `{p.preset}`)", "",
             f"Reward-free exploration on **{p.intrinsic.kind}** for {explore_steps} agent steps, then finetuning on "
             f"the extrinsic reward for {finetune_steps} agent steps; mean ± standard error over {n} seed(s) "
             f"({', '.join(map(str, p.seeds))}); differences with the standard error of the difference (seeds as "
             "independent samples). The uniform-random agent has the same exploration budget and evaluation "
             "protocol.", ""]
    for game, g in summary["games"].items():
        lines += [f"## {game}", "", "### Exploration (phase 1)", "",
                  "| agent | distinct cells | vs random | extrinsic reward collected | vs random |",
                  "|---|---|---|---|---|",
                  f"| uniform random | {_pm(g['random']['cells'])} | | {_pm(g['random']['extrinsic_total'])} | |"]
        for agent, a in g["agents"].items():
            e = a["exploration"]
            lines.append(f"| {agent} | {_pm(e['cells'])} | {_diff(e['cells_vs_random'])} | "
                         f"{_pm(e['extrinsic_total'])} | {_diff(e['extrinsic_vs_random'])} |")
        lines += ["", "### Transfer (phase 2): extrinsic evaluation score", "",
                  f"*Mean over the run*: the periodic greedy evaluations while finetuning ({ft.eval_episodes} "
                  f"episodes each, the curves below). *Final*: the `evaluate` stage, {p.evaluate.episodes} "
                  f"episodes of at most {ft.eval_max_steps} agent steps per model on fresh seeds; the exploration "
                  "checkpoint is scored zero-shot (no finetuning) the same way. Uniform random with that step "
                  f"cap: {_pm(g['random']['eval_score'])}.", "",
                  "| agent | start | parts transferred | mean over the run | vs scratch | final | vs scratch |",
                  "|---|---|---|---|---|---|---|"]
        for agent, a in g["agents"].items():
            s = a["scratch"]
            lines.append(f"| {agent} | exploration checkpoint, zero-shot | all, not finetuned | | | "
                         f"{_pm(a['zero_shot'])} | |")
            lines.append(f"| {agent} | scratch | none | {_pm(s['mean_score'])} | | {_pm(s['final_score'])} | |")
            for name, t in a["transfers"].items():
                lines.append(f"| {agent} | {name} | {', '.join(t['parts'])} | {_pm(t['mean_score'])} | "
                             f"{_diff(t['vs_scratch']['mean_score'])} | {_pm(t['final_score'])} | "
                             f"{_diff(t['vs_scratch']['final_score'])} |")
        lines.append("")
    lines += ["A transfer helped where its difference to scratch is positive by more than about two standard "
              "errors; with few seeds and CPU-scale budgets most differences are within noise.", ""]
    lines += [f"![{name}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def _curve(rows: list) -> tuple[list[float], list[float]]:
    return [float(x) for x, _ in rows], [float(y) for _, y in rows]


def _seed_curves(p: ExplorePipelineConfig, runs: dict, kind: str, game: str, agent: str,
                 transfer: str | None = None) -> list:
    """The evaluation curve of run ``kind`` (``scratch`` / ``transfer``) of ``game`` x ``agent`` (x ``transfer``)
    for every seed, as ``[(agent steps, scores), ...]``."""
    return [_curve(runs[kind][explore_run_name(game, agent, s, transfer)]["curve"]) for s in p.seeds]


def run(p: ExplorePipelineConfig, out: Path = REPORTS, runs_dir: Path = RUNS, evaluation: Path = EVALUATE) -> dict:
    """Build the report from the runs and their final evaluation; returns the summary (also
    ``metrics/summary.json``).

    Raises:
        StageInputError: a missing run summary or final evaluation.
    """
    runs = load_runs(p, runs_dir)
    summary = build_summary(p, runs, load_evaluation(p, evaluation))
    plots = []
    with replace_together([out]) as staged:
        report_dir = staged[out]
        for game in p.games:
            g = summary["games"][game]
            cells = {agent: [_curve(runs["explore"][explore_run_name(game, agent, s)]["exploration"]["curve"])
                             for s in p.seeds] for agent in p.agents}
            cells["uniform random"] = [_curve(runs["random"][f"{game}-{s}"]["exploration"]["curve"]) for s in p.seeds]
            plot_seed_curves(cells, report_dir / f"exploration_{game}.png", f"{game}: distinct cells while exploring "
                             f"({p.intrinsic.kind})", "agent steps", "distinct cells")
            plots.append(f"exploration_{game}.png")
            rnd = g["random"]["eval_score"]["mean"]
            random_line = {f"uniform random ({rnd:.1f})": rnd}

            for agent in p.agents:  # which parts' transfer helps this agent
                curves = {"scratch": _seed_curves(p, runs, "scratch", game, agent)}
                curves.update({t: _seed_curves(p, runs, "transfer", game, agent, t) for t in p.transfers})
                name = f"transfer_{game}_{agent}.png"
                plot_seed_curves(curves, report_dir / name, f"{game}, {agent}: finetuning after exploration",
                                 "agent steps", "raw episode score", hlines=random_line)
                plots.append(name)
            for transfer in p.transfers:  # each variant against scratch and the baseline agent
                curves = {}
                for agent in p.agents:
                    curves[f"{agent}, {transfer}"] = _seed_curves(p, runs, "transfer", game, agent, transfer)
                    curves[f"{agent}, scratch"] = _seed_curves(p, runs, "scratch", game, agent)
                name = f"variant_{game}_{transfer}.png"
                plot_seed_curves(curves, report_dir / name, f"{game}: transfer '{transfer}' vs scratch, every agent",
                                 "agent steps", "raw episode score", hlines=random_line)
                plots.append(name)
        (report_dir / "report.md").write_text(render_markdown(p, summary, plots))
    write_json(Path("metrics") / "summary.json", summary)
    return summary


def _run(p: ExplorePipelineConfig, args: argparse.Namespace) -> dict:
    summary = run(p)
    print(f"report: {REPORTS / 'report.md'}")
    return summary


def main(argv: list[str] | None = None) -> int:
    return stage_cli("explore_report", __doc__.splitlines()[0], _run, argv=argv, load=load_explore_params)


if __name__ == "__main__":
    sys.exit(main())
