"""Metric logs as TSV files (readable by ``dvc plots``, pandas, spreadsheets) and curve plots."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

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
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns, delimiter="\t", lineterminator="\n", extrasaction="ignore").writerow(row)

    def read(self) -> list[dict[str, str]]:
        return read_tsv(self.path)


def read_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of a TSV file with a header line, as dicts of strings (empty list if missing)."""
    if not Path(path).exists():
        return []
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def plot_curves(
    series: dict[str, tuple[list[float], list[float]]],
    path: Path,
    title: str,
    xlabel: str,
    ylabel: str,
    hlines: dict[str, float] | None = None,
) -> None:
    """Line plot of named ``(x, y)`` series saved as PNG; ``hlines`` adds labelled reference lines."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, (x, y) in series.items():
        ax.plot(x, y, marker="o", markersize=3, label=name)
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
