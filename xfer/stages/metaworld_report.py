"""Stage ``report`` of the Meta-World pipeline: task generalisation, per variant (seed 000 Table A.6).

Reads every run's ``summary.json`` and curves (``runs/pretrain|finetune|scratch/<variant>-<seed>/``,
written by :mod:`xfer.stages.metaworld_pretrain` and :mod:`xfer.stages.metaworld_finetune`) and
reports, as seed 000 does, success rates (an episode succeeds if the task's success flag is raised at
any of its 500 steps; a split's rate is the mean over its tasks):

- per variant: *train* success (the pretrained agent on the training tasks), *zero-shot* test success
  (the same agent on the held-out test tasks), *finetuned* test success (after training on the test
  tasks from the pretrained agent) and *scratch* (the same training from fresh weights), with the
  uniform-random agent under the same protocol; mean ± standard error over seeds, and finetuned minus
  scratch with the standard error of the difference;
- the cumulative regret of finetuning against training from scratch (failed self-play episodes
  against agent steps, ``regret.png``; seed 000 Figure 6), and the pretraining success curves;
- per task: the same figures task by task;
- with a ``reference`` in params (the paper presets), the paper's Table A.6 figures beside ours.

Writes ``reports/report.md`` + plots and ``metrics/summary.json``, replaced together or not at all.
Run from ``metaworld/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xfer.metaworld_config import MetaWorldPipelineConfig, metaworld_run_name
from xfer.metrics import plot_seed_curves, read_tsv
from xfer.stages.common import StageInputError, load_metaworld_params, stage_cli, write_json
from xfer.stages.outputs import replace_together
from xfer.stats import difference, mean_se

REPORTS = Path("reports")
RUNS = Path("runs")
KINDS = ("pretrain", "finetune", "scratch")
COLUMNS = (("train", "pretrain", "train"), ("zero_shot", "pretrain", "zero_shot"),
           ("finetuned", "finetune", "finetuned"), ("scratch", "scratch", "finetuned"))
"""Report column -> (run kind, the summary key of its success figures)."""


def load_runs(p: MetaWorldPipelineConfig, runs: Path = RUNS) -> dict[str, dict[str, dict]]:
    """``kind -> <variant>-<seed> -> summary.json`` for every run of ``p`` (kinds: pretrain, finetune,
    scratch).

    Raises:
        StageInputError: a run without its summary (names the ``dvc repro`` target that makes it).
    """
    out: dict[str, dict[str, dict]] = {k: {} for k in KINDS}
    for kind in KINDS:
        for v in p.variants:
            for s in p.seeds:
                name = metaworld_run_name(v, s)
                path = runs / kind / name / "summary.json"
                if not path.exists():
                    raise StageInputError(f"{path} not found; run `dvc repro {kind}@{name}` first")
                out[kind][name] = json.loads(path.read_text())
    return out


def _stat(values: list[float]) -> dict:
    m, se = mean_se(values)
    return {"mean": m, "se": se, "seeds": values}


def build_summary(p: MetaWorldPipelineConfig, runs: dict[str, dict[str, dict]]) -> dict:
    """``variants``: per variant, each column's task-mean success (mean, s.e. and per-seed values over
    seeds), the random agent's on both splits, the cumulative regret of finetuning and of scratch, and
    finetuned - scratch (success and regret, with the s.e. of the difference); ``tasks``: per
    ``<variant>/<column>/<task>`` the success rate (mean over seeds); ``frames``: agent steps per
    pretraining and per finetuning run."""
    variants: dict[str, dict] = {}
    tasks: dict[str, float] = {}
    for v in p.variants:
        names = [metaworld_run_name(v, s) for s in p.seeds]
        row: dict[str, dict] = {}
        for col, kind, key in COLUMNS:
            runs_ = [runs[kind][n][key] for n in names]
            row[col] = _stat([r["success"] for r in runs_])
            for task in runs_[0]["tasks"]:
                tasks[f"{v}/{col}/{task}"] = float(sum(r["tasks"][task]["success"] for r in runs_) / len(runs_))
        for split in ("train", "test"):
            row[f"random_{split}"] = _stat([runs["pretrain"][n]["random"][split]["success"] for n in names])
        for kind in ("finetune", "scratch"):
            row[f"regret_{kind}"] = _stat([float(runs[kind][n]["cumulative_regret"]) for n in names])
        row["finetuned_minus_scratch"] = difference(row["finetuned"]["seeds"], row["scratch"]["seeds"])
        row["regret_saved"] = difference(row["regret_scratch"]["seeds"], row["regret_finetune"]["seeds"])
        variants[v] = row
    first = metaworld_run_name(next(iter(p.variants)), p.seeds[0])
    return {"variants": variants, "tasks": tasks, "seeds": list(p.seeds),
            "frames": {"pretrain": runs["pretrain"][first]["frames"], "finetune": runs["finetune"][first]["frames"]}}


def _pm(stat: dict, pct: bool = True) -> str:
    f = (lambda x: f"{100 * x:.1f}%") if pct else (lambda x: f"{x:.1f}")  # noqa: E731
    return f(stat["mean"]) if stat["se"] is None else f"{f(stat['mean'])} ± {f(stat['se'])}"


def _diff(d: dict, pct: bool = True) -> str:
    scale, unit = (100.0, " pp") if pct else (1.0, "")
    if d["se"] is None:
        return f"{scale * d['difference']:+.1f}{unit} (one seed: no s.e.)"
    return f"{scale * d['difference']:+.1f} ± {scale * d['se']:.1f}{unit} ({d['z']:+.1f} s.e.)"


def render_markdown(p: MetaWorldPipelineConfig, summary: dict, plots: list[str]) -> str:
    """The report page (see the module docstring)."""
    t, env = p.pretrain, p.pretrain.env
    fr = summary["frames"]
    lines = [
        f"# Meta-World task generalisation report (preset `{p.preset}`)", "",
        f"Benchmark {p.benchmark}; training tasks: {_tasks(p.train_tasks)}; test tasks: {_tasks(p.test_tasks)}; "
        f"{env.observation} observations{f' with {env.reward_history} past rewards' if env.reward_history else ''}; "
        f"seeds: {', '.join(map(str, p.seeds))}; {fr['pretrain']:,} agent steps (= frames) of pretraining and "
        f"{fr['finetune']:,} of finetuning per run; Sampled MuZero, network `{t.net.size}`, "
        f"{t.mcts.num_simulations} simulations over {t.mcts.num_samples} sampled actions per node.", "",
        "Success: an episode succeeds if the task's success flag is raised at any of its 500 steps; a "
        f"split's rate is the mean over its tasks of {p.eval_episodes} greedy episodes each (the random "
        f"agent: {p.random_episodes}). *Train*: the pretrained agent on the training tasks; *zero-shot*: it on "
        "the test tasks, never trained on; *finetuned*: after training on the test tasks from the pretrained "
        "agent; *scratch*: the same training from fresh weights. Mean ± standard error over seeds.", "",
    ]
    if fr["pretrain"] < 1_000_000:
        lines += [f"**A CPU-scale run**: {fr['pretrain']:,} agent steps of pretraining against the paper's 50M "
                  "frames; it shows the pipeline working, not what the method achieves.", ""]
    if len(p.seeds) < 2:
        lines += ["**One seed**: no standard errors; differences below are single runs.", ""]
    ref = bool(p.reference)
    lines += ["## Success rates", "",
              "| variant | train | zero-shot test | finetuned test | scratch test | finetuned - scratch |"
              + (" paper (Table A.6: train / zero-shot / finetuned) |" if ref else ""),
              "|---|---:|---:|---:|---:|---:|" + ("---:|" if ref else "")]
    for v, row in summary["variants"].items():
        paper = ""
        if ref:
            r = p.reference.get(v)
            paper = (f" {100 * r['train']:.1f}% / {100 * r['zero_shot']:.1f}% / {100 * r['finetuned']:.1f}% |" if r
                     else " - |")
        lines.append(f"| {v} | {_pm(row['train'])} | {_pm(row['zero_shot'])} | {_pm(row['finetuned'])} | "
                     f"{_pm(row['scratch'])} | {_diff(row['finetuned_minus_scratch'])} |{paper}")
    any_row = next(iter(summary["variants"].values()))
    lines.append(f"| *uniform random* | {_pm(any_row['random_train'])} | {_pm(any_row['random_test'])} | "
                 f"{_pm(any_row['random_test'])} | {_pm(any_row['random_test'])} | |" + (" |" if ref else ""))
    lines += ["", "## Cumulative regret on the test tasks (failed self-play episodes)", "",
              "| variant | finetuned | scratch | saved by pretraining (scratch - finetuned) |", "|---|---:|---:|---:|"]
    for v, row in summary["variants"].items():
        lines.append(f"| {v} | {_pm(row['regret_finetune'], False)} | {_pm(row['regret_scratch'], False)} | "
                     f"{_diff(row['regret_saved'], False)} |")
    lines += ["", "## Per task (success, mean over seeds)", "", "| variant | column | task | success |",
              "|---|---|---|---:|"]
    for key, value in summary["tasks"].items():
        v, col, task = key.split("/")
        lines.append(f"| {v} | {col} | {task} | {100 * value:.1f}% |")
    lines += ["", "## Plots", ""] + [f"![{png}]({png})" for png in plots]
    lines += ["", "## Variants", ""] + [f"- `{v}`: {json.dumps(keys, sort_keys=True) if keys else 'pretrain as is'}"
                                         for v, keys in p.variants.items()]
    return "\n".join(lines) + "\n"


def _tasks(tasks: str | list[str]) -> str:
    return "all of the split" if tasks == "all" else ", ".join(tasks)


def _curve(path: Path, x: str, y: str) -> tuple[list[float], list[float]]:
    rows = read_tsv(path)
    return [float(r[x]) for r in rows], [float(r[y]) for r in rows]


def run(p: MetaWorldPipelineConfig, out: Path = REPORTS, runs_dir: Path = RUNS) -> dict:
    """Build the report from the runs; returns the summary (also ``metrics/summary.json``)."""
    runs = load_runs(p, runs_dir)
    summary = build_summary(p, runs)
    names = {v: [metaworld_run_name(v, s) for s in p.seeds] for v in p.variants}
    with replace_together([out]) as staged:
        report_dir = staged[out]
        regret = {f"{v} {label}": [_curve(runs_dir / kind / n / "metrics" / "regret.tsv", "env_steps",
                                          "cumulative_regret") for n in ns]
                  for v, ns in names.items() for kind, label in (("finetune", "finetuned"), ("scratch", "scratch"))}
        plot_seed_curves(regret, report_dir / "regret.png", f"{p.benchmark} test tasks: cumulative regret",
                         "agent steps on the test tasks", "failed self-play episodes")
        curves = {v: [_curve(runs_dir / "pretrain" / n / "metrics" / "eval.tsv", "env_steps", "success_rate")
                      for n in ns] for v, ns in names.items()}
        rnd = next(iter(summary["variants"].values()))["random_train"]["mean"]
        plot_seed_curves(curves, report_dir / "pretraining.png", f"{p.benchmark} training tasks: success while "
                         "pretraining", "agent steps", "success rate", hlines={f"uniform random ({rnd:.2f})": rnd})
        plots = ["regret.png", "pretraining.png"]
        (report_dir / "report.md").write_text(render_markdown(p, summary, plots))
    write_json(Path("metrics") / "summary.json", summary)
    return summary


def _run(p: MetaWorldPipelineConfig, args: argparse.Namespace) -> dict:
    summary = run(p)
    print(f"report: {REPORTS / 'report.md'}")
    return summary


def main(argv: list[str] | None = None) -> int:
    return stage_cli("metaworld_report", __doc__.splitlines()[0], _run, argv=argv, load=load_metaworld_params)


if __name__ == "__main__":
    sys.exit(main())
