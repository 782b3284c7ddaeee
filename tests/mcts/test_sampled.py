"""Sampled MuZero's search (Hubert et al. 2021): the Gaussian policy, the prior correction, and a
search over sampled actions on fake models with a known continuous optimum."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from xfer.config import SearchConfig
from xfer.mcts import RecurrentStep, RootInputs, gaussian, run_search
from xfer.mcts.edges import SampledEdges


def test_sampled_prior_matches_hand_computed_values():
    # (beta_hat / beta) * pi, normalised: beta_hat = 1/3 each; ratios pi/beta = 0.5, 1, 3 -> 1/9, 2/9, 6/9
    log_pi = np.log([[0.2, 0.5, 0.3]])
    log_beta = np.log([[0.4, 0.5, 0.1]])
    np.testing.assert_allclose(gaussian.sampled_prior(log_pi, log_beta), [[1 / 9, 2 / 9, 6 / 9]])
    # beta = pi (the paper's choice): uniform over the sample
    np.testing.assert_allclose(gaussian.sampled_prior(log_pi, log_pi), np.full((1, 3), 1 / 3))


def test_log_prob_is_the_diagonal_gaussian_density():
    rng = np.random.default_rng(0)
    mu, log_sigma = rng.normal(size=(2, 3)), rng.normal(size=(2, 3)) * 0.5
    u = rng.normal(size=(2, 4, 3))
    want = norm.logpdf(u, mu[:, None], np.exp(log_sigma)[:, None]).sum(-1)
    np.testing.assert_allclose(gaussian.log_prob(u, mu, log_sigma), want, rtol=1e-12)


def test_split_params_clips_log_std_and_rejects_odd_widths():
    mu, ls = gaussian.split_params(np.array([[0.5, -1.0, 10.0, -10.0]]))
    np.testing.assert_array_equal(mu, [[0.5, -1.0]])
    np.testing.assert_array_equal(ls, [[gaussian.LOG_STD_MAX, gaussian.LOG_STD_MIN]])
    with pytest.raises(ValueError, match=r"\[B, 2D\]"):
        gaussian.split_params(np.zeros((2, 3)))


def test_squash_maps_into_the_box():
    u = np.array([-50.0, -1.0, 0.0, 1.0, 50.0])
    a = gaussian.squash(u, -2.0, 3.0)
    assert a.dtype == np.float32 and (a >= -2.0).all() and (a <= 3.0).all()
    np.testing.assert_allclose(a[2], 0.5)  # the middle of the box
    np.testing.assert_allclose(a[[0, 4]], [-2.0, 3.0])


def test_root_temperature_corrects_the_prior_by_pi_over_beta():
    B, D, K = 3, 2, 6
    params = np.random.default_rng(1).normal(size=(B, 2 * D))
    cfg = SearchConfig(num_samples=K, sample_temperature=2.0, exploration_fraction=0.0)
    edges = SampledEdges(B, 2, K, -1.0, 1.0, D)
    prior, legal = edges.root(np.zeros(B), params, None, np.random.default_rng(0), True, cfg)
    assert legal.all() and prior.shape == (B, K)
    mu, ls = params[:, :D], params[:, D:]
    u = edges.samples[0]
    pi = norm.pdf(u, mu[:, None], np.exp(ls)[:, None]).prod(-1)
    beta = norm.pdf(u, mu[:, None], np.exp(ls)[:, None] * math.sqrt(2.0)).prod(-1)
    want = (pi / beta) / (pi / beta).sum(1, keepdims=True)
    np.testing.assert_allclose(prior, want, rtol=1e-9)
    # evaluation / reanalyse (no noise): beta = pi, uniform prior
    prior, _ = edges.root(np.zeros(B), params, None, np.random.default_rng(0), False, cfg)
    np.testing.assert_allclose(prior, 1.0 / K)


def test_root_noise_is_dirichlet_over_the_sampled_edges():
    B, D, K = 2000, 1, 4
    cfg = SearchConfig(num_samples=K, exploration_fraction=0.25, dirichlet_alpha=0.3)
    edges = SampledEdges(B, 2, K, -1.0, 1.0, D)
    prior, _ = edges.root(np.zeros(B), np.zeros((B, 2 * D)), None, np.random.default_rng(0), True, cfg)
    np.testing.assert_allclose(prior.sum(1), 1.0)
    assert (prior >= 0.75 / K - 1e-12).all()  # (1 - f) * uniform + f * Dirichlet
    noise = (prior - 0.75 / K) / 0.25
    # Dirichlet(0.3, ..., 0.3) over K = 4: mean 1/4, variance (1/4)(3/4)/(1.2 + 1)
    assert abs(noise.mean() - 0.25) < 0.01
    assert abs(noise.var() - 0.25 * 0.75 / 2.2) < 0.01


class BanditModel:
    """One-step fake model: the edge into a depth-1 node earns ``-||a - optimum||^2``; deeper edges 0;
    every value 0; every node's policy is ``N(0, 1)`` per dimension (``value_prefix_horizon = 1`` so a
    node's value prefix is its edge's reward)."""

    def __init__(self, optimum: np.ndarray, B: int):
        self.optimum, self.B = optimum, B
        self.depth = np.zeros((B, 1000), int)
        self.calls = 0

    def recurrent(self, parent, action, child, reset_lstm) -> RecurrentStep:
        assert action.shape == (self.B, self.optimum.shape[-1]) and action.dtype == np.float32
        self.calls += 1
        b = np.arange(self.B)
        d = self.depth[b, parent] + 1
        self.depth[b, child] = d
        reward = np.where(d == 1, -((action - self.optimum) ** 2).sum(-1), 0.0)
        zeros = np.zeros(self.B, np.float32)
        return RecurrentStep(reward.astype(np.float32), zeros, np.zeros((self.B, 2 * self.optimum.shape[-1]), np.float32))


def _bandit_search(sims: int, K: int = 20, B: int = 64, seed: int = 0):
    D = 2
    optimum = np.random.default_rng(100).uniform(-0.6, 0.6, size=(B, D))
    cfg = SearchConfig(num_simulations=sims, num_samples=K, value_prefix_horizon=1)
    root = RootInputs(np.zeros(B, np.float32), np.zeros((B, 2 * D), np.float32), None)
    edges = SampledEdges(B, sims + 1, K, -1.0, 1.0, D)
    res = run_search(BanditModel(optimum, B), root, cfg, np.random.default_rng(seed), False, edges)
    chosen = res.actions[np.arange(B), res.visit_counts.argmax(1)]
    best = res.actions[np.arange(B), ((res.actions - optimum[:, None]) ** 2).sum(-1).argmin(1)]
    return res, np.linalg.norm(chosen - optimum, axis=1), np.linalg.norm(best - optimum, axis=1)


def test_chosen_action_converges_to_the_continuous_optimum_as_simulations_grow():
    errors = {}
    for sims in (1, 20, 100, 400):
        res, err, best = _bandit_search(sims)
        errors[sims] = err.mean()
        assert res.actions.shape == (64, 20, 2) and res.visit_counts.shape == res.policy.shape == (64, 20)
        assert (np.abs(res.actions) <= 1.0).all()
        np.testing.assert_allclose(res.policy.sum(1), 1.0, rtol=1e-6)
        np.testing.assert_array_equal(res.visit_counts.sum(1), sims)
    assert errors[1] > errors[20] > errors[100] >= errors[400], errors
    # with enough simulations the search picks the best of its 20 samples
    res, err, best = _bandit_search(400)
    assert np.mean(np.isclose(err, best)) >= 0.9
    assert errors[400] < 0.5 * errors[1]


def test_sampled_search_is_deterministic_given_the_generator():
    a, _, _ = _bandit_search(30, seed=3)
    b, _, _ = _bandit_search(30, seed=3)
    c, _, _ = _bandit_search(30, seed=4)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.visit_counts, b.visit_counts)
    assert not np.array_equal(a.actions, c.actions)
    np.testing.assert_allclose(gaussian.squash(a.samples, -1.0, 1.0), a.actions, atol=1e-6)


def test_sampled_search_rejects_completed_q_and_bad_shapes():
    B, D, K = 2, 3, 4
    root = RootInputs(np.zeros(B, np.float32), np.zeros((B, 2 * D), np.float32), None)
    edges = SampledEdges(B, 3, K, -1.0, 1.0, D)
    model = BanditModel(np.zeros((B, D)), B)
    with pytest.raises(ValueError, match="policy_target: visits"):
        run_search(model, root, SearchConfig(num_simulations=2, policy_target="completed_q"),
                   np.random.default_rng(0), False, edges)
    bad = RootInputs(np.zeros(B, np.float32), np.zeros((B, 2 * D + 2), np.float32), None)
    with pytest.raises(ValueError, match=r"\[B, 2D\]"):
        run_search(model, bad, SearchConfig(num_simulations=2), np.random.default_rng(0), False, edges)
