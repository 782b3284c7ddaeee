"""Statistics for reporting results over seeds and games (pure functions).

- :func:`mean_se`: mean and standard error of independent values (seeds as the unit).
- :func:`difference`: difference of two means of independent samples and its standard error
  (``se = sqrt(var_a / n_a + var_b / n_b)``, sample variances), e.g. an agent's evaluation
  episodes against the uniform-random agent's under the same protocol.
- :func:`interval_estimates`: mean, median and IQM over a ``[seeds, games]`` score matrix with 95%
  stratified bootstrap confidence intervals, computed by ``rliable`` (Agarwal et al. 2021, "Deep
  Reinforcement Learning at the Edge of the Statistical Precipice"), the field's standard library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def mean_se(values: Sequence[float]) -> tuple[float, float | None]:
    """``(mean, standard error)`` of ``values``; the s.e. uses the sample standard deviation
    (``ddof=1``) and is None for fewer than 2 values.

    Raises:
        ValueError: no values.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("mean_se of no values")
    se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None
    return float(v.mean()), se


def difference(a: Sequence[float], b: Sequence[float]) -> dict[str, float | None]:
    """``mean(a) - mean(b)`` for independent samples, its standard error and their ratio.

    Returns ``{"difference", "se", "z"}``; ``se`` is ``sqrt(var_a / n_a + var_b / n_b)`` (sample
    variances, ``ddof=1``), None when either sample has fewer than 2 values; ``z = difference /
    se`` (``inf`` / ``-inf`` when ``se == 0`` and the means differ, 0 when they do not).

    Raises:
        ValueError: an empty sample.
    """
    ma, sa = mean_se(a)
    mb, sb = mean_se(b)
    d = ma - mb
    if sa is None or sb is None:
        return {"difference": d, "se": None, "z": None}
    se = math.sqrt(sa**2 + sb**2)
    z = d / se if se > 0 else (0.0 if d == 0 else math.copysign(math.inf, d))
    return {"difference": d, "se": se, "z": z}


def interval_estimates(scores: dict[str, np.ndarray], reps: int = 2000, seed: int = 0
                       ) -> dict[str, dict[str, dict[str, float]]]:
    """Mean, median and IQM with 95% stratified bootstrap confidence intervals (rliable).

    Args:
        scores: run name -> ``[num_seeds, num_games]`` float normalised scores (e.g. HNS); runs
            may have different numbers of seeds.
        reps: bootstrap resamples.
        seed: seed of the bootstrap (the result is a deterministic function of the inputs).

    Returns:
        run -> ``{"mean" | "median" | "iqm": {"value", "low", "high"}}``.

    Raises:
        ValueError: a matrix that is not 2-D or is empty.
    """
    from rliable import library as rly
    from rliable import metrics

    for name, m in scores.items():
        m = np.asarray(m)
        if m.ndim != 2 or m.size == 0:
            raise ValueError(f"scores[{name!r}] must be a non-empty [seeds, games] matrix, got shape {m.shape}")

    def aggregate(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_mean(x), metrics.aggregate_median(x), metrics.aggregate_iqm(x)])

    # rliable's stratified bootstrap draws its indices from numpy's global generator (np.random.choice),
    # whatever random_state says: seed it for this call and restore it afterwards.
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        point, ci = rly.get_interval_estimates({k: np.asarray(v, np.float64) for k, v in scores.items()},
                                               aggregate, reps=reps)
    finally:
        np.random.set_state(state)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in scores:
        out[name] = {stat: {"value": float(point[name][i]), "low": float(ci[name][0, i]),
                            "high": float(ci[name][1, i])}
                     for i, stat in enumerate(("mean", "median", "iqm"))}
    return out
