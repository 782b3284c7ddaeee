"""Summarise several ``xfer train`` runs (seeds) of one game: a learning-curve figure and a table.

Reads each run's ``metrics/eval.tsv`` (mean, std of the greedy evaluation episodes) and
``metrics/random.json`` (uniform-random agent, same protocol), then

- plots every seed's evaluation curve (thin), the mean over seeds (thick) with a band of
  +- one standard error over all pooled episodes, and the random floor (dashed);
- prints a markdown table: per seed and pooled, score at every evaluation as mean +- s.e.;
- prints, per evaluation, the comparison with random that treats runs (not episodes) as the unit:
  each run's mean minus the random mean (all runs' random episodes pooled: the random agent's
  score does not depend on the run's seed, and one run's 32 random episodes alone are noisy),
  how many runs are above it, and the mean difference +- its standard error over runs. Greedy play on a near-deterministic game often repeats one line
  in every episode, so episodes within a run are not independent samples; runs are.

    python benchmarks/plot_learning.py runs/qbert-s0 runs/qbert-s1 runs/qbert-s2 \\
        --out docs/figures/learning_qbert_tiny_cpu.png --title "tiny EfficientZero, Qbert, CPU"

Runs must share the evaluation schedule (``eval_every``) and protocol: the k-th evaluations of all
runs are pooled (their agent steps may differ by less than ``num_envs``: a run that stops at 2,500
evaluates there, a longer one at 2,504); a run with fewer evaluations is left out of the later ones. Raises SystemExit with a message for a run directory
without ``metrics/eval.tsv``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from xfer.metrics import read_tsv  # noqa: E402


def load_run(run: Path) -> tuple[list[tuple[int, float, float, int]], dict]:
    """``[(agent steps, mean, std, episodes)]`` of a run's evaluations in order, and its random.json."""
    tsv = run / "metrics" / "eval.tsv"
    if not tsv.is_file():
        raise SystemExit(f"{run}: no metrics/eval.tsv (is this an `xfer train --out` directory?)")
    evals = [(int(r["env_steps"]), float(r["mean_score"]), float(r["std_score"]), int(r["episodes"]))
             for r in read_tsv(tsv)]
    rnd_path = run / "metrics" / "random.json"
    rnd = json.loads(rnd_path.read_text()) if rnd_path.is_file() else {}
    return evals, rnd


def pooled(stats: list[tuple[float, float, int]]) -> tuple[float, float]:
    """Mean and standard error of the union of several groups of episodes, from their (mean,
    population std, count); each group weighs by its episode count."""
    n = sum(k for _, _, k in stats)
    mean = sum(m * k for m, _, k in stats) / n
    second = sum(k * (s**2 + m**2) for m, s, k in stats) / n
    var = max(second - mean**2, 0.0) * n / max(n - 1, 1)
    return mean, float(np.sqrt(var / n))


def versus_random(runs: list[tuple[str, list[tuple[int, float, float, int]], dict]], k: int,
                  random_mean: float) -> tuple[list[float], float, float]:
    """Differences ``run mean score - random_mean`` at the k-th evaluation of every run that has it,
    and their mean and standard error over runs (0.0 with a single run)."""
    diffs = [e[k][1] - random_mean for _, e, _ in runs if k < len(e)]
    if not diffs:
        return [], float("nan"), float("nan")
    se = float(np.std(diffs, ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else 0.0
    return diffs, float(np.mean(diffs)), se


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="xfer train output directories, one per seed")
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    ap.add_argument("--title", default="tiny EfficientZero on a 2-core CPU")
    args = ap.parse_args(argv)
    runs = [(r.name, *load_run(r)) for r in args.runs]
    n_evals = max(len(e) for _, e, _ in runs)
    columns = [[e[k] for _, e, _ in runs if k < len(e)] for k in range(n_evals)]
    steps = [round(float(np.mean([c[0] for c in col]))) for col in columns]

    fig, ax = plt.subplots(figsize=(8.5, 4))
    for name, evals, _ in runs:
        ax.plot([e[0] for e in evals], [e[1] for e in evals], linewidth=0.8, alpha=0.6, marker=".", label=name)
    means, sems = zip(*(pooled([c[1:] for c in col]) for col in columns))
    m, s = np.array(means), np.array(sems)
    ax.plot(steps, m, color="black", linewidth=2.2, marker="o", label=f"mean of {len(runs)} seeds")
    for x, y, col in zip(steps, m, columns):
        if len(col) < len(runs):  # a later evaluation that only some runs reached
            ax.annotate(f"{len(col)} seeds", xy=(x, y), xytext=(4, -12), textcoords="offset points", fontsize=8)
    ax.fill_between(steps, m - s, m + s, color="black", alpha=0.15, label="+- 1 s.e. (all episodes)")
    rnd_scores = np.concatenate([np.asarray(r["scores"], dtype=float) for _, _, r in runs if r.get("scores")] or [[]])
    if rnd_scores.size:
        r_mean = float(rnd_scores.mean())
        ax.axhline(r_mean, linestyle="--", color="gray", linewidth=1)
        ax.annotate(f"uniform random, same protocol ({r_mean:.1f})", xy=(0.01, r_mean),
                    xycoords=("axes fraction", "data"), fontsize=8, color="gray")
    ax.set_title(args.title)
    ax.set_xlabel("agent steps (1 step = 4 frames)")
    ax.set_ylabel("greedy evaluation score (raw)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    plt.close(fig)

    head = "| run | " + " | ".join(str(x) for x in steps) + " |"
    print(head)
    print("|---|" + "---:|" * len(steps))
    for name, evals, _ in runs:
        cells = [f"{e[1]:.1f} ± {e[2] / np.sqrt(max(e[3] - 1, 1)):.1f}" for e in evals]
        cells += ["-"] * (n_evals - len(evals))
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("| **pooled** | " + " | ".join(f"**{a:.1f} ± {b:.1f}**" for a, b in zip(m, s)) + " |")
    if rnd_scores.size:
        sem = rnd_scores.std(ddof=1) / np.sqrt(len(rnd_scores)) if len(rnd_scores) > 1 else 0.0
        print(f"\nuniform random, same protocol: {rnd_scores.mean():.1f} ± {sem:.1f} ({len(rnd_scores)} episodes)")
    if not rnd_scores.size:
        print(f"figure: {args.out}")
        return
    print(f"\nper run, mean score minus the pooled random mean {rnd_scores.mean():.1f} (runs as the unit):\n")
    print("| agent steps | runs above random | mean difference ± s.e. over runs | per run |")
    print("|---:|---:|---:|---|")
    for k, step in enumerate(steps):
        diffs, mean_d, se_d = versus_random(runs, k, float(rnd_scores.mean()))
        if diffs:
            above = sum(d > 0 for d in diffs)
            print(f"| {step} | {above} of {len(diffs)} | {mean_d:+.1f} ± {se_d:.1f} | "
                  + ", ".join(f"{d:+.1f}" for d in diffs) + " |")
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
