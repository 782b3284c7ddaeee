"""Reporting statistics against hand-computed values."""

import math

import numpy as np
import pytest

from xfer.stats import difference, interval_estimates, mean_se


def test_mean_se_by_hand():
    mean, se = mean_se([1.0, 2.0, 3.0, 6.0])
    assert mean == 3.0
    # sample variance: (4 + 1 + 0 + 9) / 3 = 14/3; s.e. = sqrt(14/3 / 4)
    assert se == pytest.approx(math.sqrt(14 / 3 / 4))
    assert mean_se([5.0]) == (5.0, None)
    with pytest.raises(ValueError):
        mean_se([])


def test_difference_and_its_standard_error_by_hand():
    d = difference([10.0, 12.0, 14.0], [1.0, 3.0])
    # var_a = 4 (n 3), var_b = 2 (n 2): se = sqrt(4/3 + 2/2)
    assert d["difference"] == pytest.approx(12.0 - 2.0)
    assert d["se"] == pytest.approx(math.sqrt(4 / 3 + 1.0))
    assert d["z"] == pytest.approx(10.0 / math.sqrt(4 / 3 + 1.0))
    assert difference([3.0, 3.0], [1.0, 1.0])["z"] == math.inf  # no spread, different means
    assert difference([1.0], [0.0, 2.0])["se"] is None


def test_interval_estimates_bracket_the_point_and_are_reproducible():
    rng = np.random.default_rng(0)
    scores = {"a": rng.normal(1.0, 0.2, (5, 4)), "b": np.full((3, 4), 0.5)}
    out = interval_estimates(scores, reps=500, seed=1)
    a = out["a"]
    assert a["mean"]["value"] == pytest.approx(scores["a"].mean())
    assert a["median"]["value"] == pytest.approx(np.median(scores["a"].mean(axis=0)))
    for stat in ("mean", "median", "iqm"):
        assert a[stat]["low"] <= a[stat]["value"] <= a[stat]["high"]
        assert out["b"][stat] == {"value": 0.5, "low": 0.5, "high": 0.5}  # no spread, no interval
    assert interval_estimates(scores, reps=500, seed=1) == out
    with pytest.raises(ValueError, match="seeds, games"):
        interval_estimates({"a": np.zeros(3)})
