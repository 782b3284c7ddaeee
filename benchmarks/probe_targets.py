"""Which actions a dataset's stored policy targets favour: a check for a bias by action index.

For every dataset folder given (``data/datasets/<game>``: the collecting agent's root visit
distributions; ``data/teacher_targets/<game>``: the teacher's relabelled ones), prints per legal action
the mean stored policy target and how often it is the argmax, and the rank correlation between the
action id and its mean target. A target that grows with the action id in every game is not about the
games: with the EfficientZero / XTRA action plane (one constant plane ``a / 18``) an under-trained
dynamics network gives Q values monotone in ``a``, and the student distils that into a fixed line of
play on the target (benchmarks/results/learning.md, twelfth round).

    python benchmarks/probe_targets.py data/datasets/Phoenix data/teacher_targets/Phoenix
"""

from __future__ import annotations

import argparse

import numpy as np

from xfer.data.reader import DatasetReader


def target_stats(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(legal action ids ``[L]``, mean stored target per legal action ``[L]``, argmax frequency ``[L]`` (a tie
    counts for the lowest id),
    Spearman rank correlation between action id and mean target) over every stored step of ``path``.

    Raises:
        xfer.data.reader errors: a missing, corrupt or unreadable dataset (with what to do).
    """
    reader = DatasetReader(path)
    legal = np.flatnonzero(reader.action_mask)
    targets = np.concatenate([seg.visit_dist for seg in reader.iter_segments()]).astype(np.float64)  # [T, 18]
    mean = targets[:, legal].mean(axis=0)
    picks = np.bincount(targets[:, legal].argmax(axis=1), minlength=len(legal)) / len(targets)
    ranks = np.argsort(np.argsort(mean))
    rho = float(np.corrcoef(np.arange(len(legal)), ranks)[0, 1]) if np.ptp(mean) > 1e-6 else 0.0  # all equal: none
    return legal, mean, picks, rho


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="+", help="dataset folders (data/datasets/<game>, data/teacher_targets/<game>)")
    args = ap.parse_args(argv)
    for path in args.datasets:
        legal, mean, picks, rho = target_stats(path)
        print(f"{path}: legal actions {legal.tolist()}")
        print(f"    mean target  {np.round(mean, 3).tolist()}")
        print(f"    argmax share {np.round(picks, 3).tolist()}")
        print(f"    rank correlation of action id and mean target: {rho:+.2f}")


if __name__ == "__main__":
    main()
