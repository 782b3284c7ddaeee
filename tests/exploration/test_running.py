"""RunningMeanStd and ReturnNormaliser against moments computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xfer.exploration.running import ReturnNormaliser, RunningMeanStd


def test_running_mean_std_merges_batches_like_one_pooled_sample():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    b = np.array([[5.0, 0.0], [7.0, 2.0], [9.0, 4.0]])
    rms = RunningMeanStd((2,))
    rms.update(a)
    rms.update(torch.as_tensor(b, dtype=torch.float32))
    # the prior: 1e-4 rows of mean 0 and variance 1, i.e. a sum of squares of 1e-4
    n = 5 + 1e-4
    mean = np.array([1 + 3 + 5 + 7 + 9, 2 + 4 + 0 + 2 + 4]) / n
    sq = np.array([1 + 9 + 25 + 49 + 81, 4 + 16 + 0 + 4 + 16]) + 1e-4
    var = sq / n - mean**2
    assert rms.count.item() == pytest.approx(n, rel=1e-12)
    np.testing.assert_allclose(rms.mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(rms.var.numpy(), var, rtol=1e-10)
    np.testing.assert_allclose(rms.std.numpy(), np.sqrt(var + 1e-8), rtol=1e-10)
    # with the prior negligible it is numpy's population moments of all five rows
    np.testing.assert_allclose(rms.mean.numpy(), np.concatenate([a, b]).mean(0), rtol=1e-4)
    np.testing.assert_allclose(rms.var.numpy(), np.concatenate([a, b]).var(0), rtol=1e-3)
    assert rms.mean.dtype == torch.float64


def test_running_mean_std_state_round_trips_and_checks_shapes():
    rms = RunningMeanStd((3,))
    rms.update(np.arange(6.0).reshape(2, 3))
    copy = RunningMeanStd((3,))
    copy.load(rms.state())
    rms.update(np.ones((4, 3)))
    copy.update(np.ones((4, 3)))
    for key in ("mean", "var", "count"):
        assert torch.equal(getattr(rms, key), getattr(copy, key))
    with pytest.raises(ValueError, match=r"batch \[B >= 1"):
        rms.update(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"batch \[B >= 1"):
        rms.update(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="shape"):
        RunningMeanStd((2,)).load(rms.state())


def test_return_normaliser_divides_by_the_std_of_discounted_returns():
    norm = ReturnNormaliser(gamma=0.5, num_envs=2)
    out1 = norm(np.array([1.0, 2.0]))
    # R = [1, 2]
    n = 2 + 1e-4
    mean = 3 / n
    var = (1e-4 + 1 + 4) / n - mean**2
    np.testing.assert_allclose(out1, np.array([1.0, 2.0]) / np.sqrt(var + 1e-8), rtol=1e-6)
    assert out1.dtype == np.float32 and out1.shape == (2,)
    out2 = norm(np.array([0.0, 4.0], np.float32))
    # R = 0.5 * [1, 2] + [0, 4] = [0.5, 5]; statistics over the returns 1, 2, 0.5, 5
    n = 4 + 1e-4
    mean = (1 + 2 + 0.5 + 5) / n
    var = (1e-4 + 1 + 4 + 0.25 + 25) / n - mean**2
    np.testing.assert_allclose(out2, np.array([0.0, 4.0]) / np.sqrt(var + 1e-8), rtol=1e-6)
    np.testing.assert_allclose(norm.returns, [0.5, 5.0])


def test_return_normaliser_resumes_exactly_and_checks_its_input():
    rng = np.random.default_rng(0)
    rewards = rng.random((6, 3))
    a = ReturnNormaliser(0.99, 3)
    outs = [a(r) for r in rewards[:3]]
    b = ReturnNormaliser(0.99, 3)
    b.load(a.state())
    outs_a = [a(r) for r in rewards[3:]]
    outs_b = [b(r) for r in rewards[3:]]
    assert all(np.array_equal(x, y) for x, y in zip(outs_a, outs_b))
    assert len(outs) == 3
    with pytest.raises(ValueError, match=r"rewards \[3\]"):
        a(np.zeros(2))
    with pytest.raises(ValueError, match="gamma"):
        ReturnNormaliser(1.0, 3)
    with pytest.raises(ValueError, match="returns"):
        ReturnNormaliser(0.99, 2).load(a.state())
