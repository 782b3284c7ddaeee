"""Metric logs as TSV files (readable by ``dvc plots``, pandas, spreadsheets) and curve plots."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


class TsvLog:
    """Append-only TSV with a fixed header; reopening an existing file continues it (resume).

    Rows whose ``key`` column is beyond ``truncate_after`` are dropped on open, so a resumed run
    that restarts from an earlier checkpoint does not duplicate x values (pass -1 to start empty).
    """

    def __init__(self, path: Path, columns: list[str], key: str | None = None, truncate_after: float | None = None):
        self.path = Path(path)
        self.columns = columns
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = read_tsv(self.path)
        if key is not None and truncate_after is not None:
            rows = [r for r in rows if float(r[key]) <= truncate_after]
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, columns, delimiter="\t", lineterminator="\n")
            w.writeheader()
            w.writerows(rows)

    def append(self, row: dict[str, float | int | str]) -> None:
        """Append one row; missing columns stay empty.

        Raises:
            ValueError: a key that is not a column (a metric is never dropped silently: add it to the
                columns, e.g. a new loss term's ``loss_<name>``).
        """
        unknown = [k for k in row if k not in self.columns]
        if unknown:
            raise ValueError(f"{self.path.name}: metrics {unknown} are not columns of this log ({self.columns})")
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns, delimiter="\t", lineterminator="\n").writerow(row)

    def read(self) -> list[dict[str, str]]:
        return read_tsv(self.path)


def read_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of a TSV file with a header line, as dicts of strings (empty list if missing)."""
    if not Path(path).exists():
        return []
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def write_tsv(path: Path, rows: list[dict[str, str]]) -> None:
    """Write dict rows (same keys) as a TSV file with a header line."""
    if not rows:
        return
    with Path(path).open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)


def running_mean(y: list[float], window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each position (fewer at the start): ``[n]`` float64."""
    c = np.cumsum(np.concatenate([[0.0], np.asarray(y, np.float64)]))
    n = np.arange(1, len(y) + 1)
    lo = np.maximum(n - window, 0)
    return (c[n] - c[lo]) / (n - lo)


def plot_curves(
    series: dict[str, tuple[list[float], list[float]]],
    path: Path,
    title: str,
    xlabel: str,
    ylabel: str,
    hlines: dict[str, float] | None = None,
    points: dict[str, tuple[list[float], list[float]]] | None = None,
    window: int = 10,
) -> None:
    """Line plot of named ``(x, y)`` series saved as PNG; ``hlines`` adds labelled reference lines;
    ``points`` are noisy series (e.g. self-play episode returns) drawn as dots with a running mean
    over ``window`` points instead of a zig-zag line."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, (x, y) in series.items():
        ax.plot(x, y, marker="o", markersize=3, label=name)
    for name, (x, y) in (points or {}).items():
        dots = ax.scatter(x, y, s=6, alpha=0.35)
        if len(y):
            ax.plot(x, running_mean(y, window), color=dots.get_facecolor()[0][:3], linewidth=1.5,
                    label=f"{name} (dots; line: mean of last {window})")
    _finish(ax, fig, path, title, xlabel, ylabel, hlines)


def plot_seed_curves(
    runs: dict[str, list[tuple[list[float], list[float]]]],
    path: Path,
    title: str,
    xlabel: str,
    ylabel: str,
    hlines: dict[str, float] | None = None,
) -> None:
    """Curves of runs repeated over seeds: ``runs[name]`` is one ``(x, y)`` per seed. Each seed is a
    thin line; the mean over seeds (at the x values every seed has) a bold line with a ±1 standard
    error band (from 2 seeds on)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, curves in runs.items():
        color = None
        for x, y in curves:
            (line,) = ax.plot(x, y, linewidth=0.7, alpha=0.4, color=color)
            color = line.get_color()
        shared = sorted(set.intersection(*(set(x) for x, _ in curves)))
        ys = np.array([[dict(zip(x, y))[s] for s in shared] for x, y in curves])
        mean = ys.mean(axis=0)
        ax.plot(shared, mean, marker="o", markersize=3, linewidth=2, color=color, label=f"{name} ({len(curves)} seeds)")
        if len(curves) > 1:
            se = ys.std(axis=0, ddof=1) / np.sqrt(len(curves))
            ax.fill_between(shared, mean - se, mean + se, color=color, alpha=0.15)
    _finish(ax, fig, path, title, xlabel, ylabel, hlines)


def plot_train_test(
    series: dict[str, tuple[tuple[list[float], list[float]], tuple[list[float], list[float]]]],
    path: Path,
    title: str,
    xlabel: str,
    ylabel: str,
    hlines: dict[str, float] | None = None,
    categories: list[str] | None = None,
) -> None:
    """Per name, ``((x, y) on unseen levels, (x, y) on training levels)``: unseen solid, training
    dashed, in the name's colour. ``categories``: labels of a categorical x axis (x = 0, 1, ...), e.g.
    training levels 10, 100, 500, all."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, ((xt, yt), (xr, yr)) in series.items():
        (line,) = ax.plot(xt, yt, marker="o", markersize=4, label=f"{name}: unseen levels")
        ax.plot(xr, yr, marker="o", markersize=3, linestyle="--", color=line.get_color(),
                label=f"{name}: training levels")
    if categories is not None:
        ax.set_xticks(np.arange(len(categories)), categories)
    _finish(ax, fig, path, title, xlabel, ylabel, hlines)


def _finish(ax, fig, path: Path, title: str, xlabel: str, ylabel: str, hlines: dict[str, float] | None) -> None:
    for name, y in (hlines or {}).items():
        ax.axhline(y, linestyle="--", linewidth=1, color="gray")
        ax.annotate(name, xy=(0.01, y), xycoords=("axes fraction", "data"), fontsize=8, color="gray")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
