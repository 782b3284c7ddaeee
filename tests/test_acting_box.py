"""``xfer.acting`` on a Box action space (Sampled MuZero): a seeded tiny Gaussian-policy network over
Meta-World-shaped state vectors (``[39]``) and 4-dim actions in ``[-1, 1]``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xfer.acting import QActing, act
from xfer.agent import build_model
from xfer.config import NetConfig, SearchConfig
from xfer.envs.spec import Box, EnvSpec, ObservationSpec
from xfer.inference import search_policy
from xfer.mcts import gaussian

BOX = EnvSpec("toy", "reach", ObservationSpec("state", (39,)), Box(-1.0, 1.0, (4,)), None, 500)
"""A Meta-World-shaped spec: ``[39]`` float32 states, ``Box(-1, 1, (4,))`` actions."""

B, K = 3, 5
CFG = SearchConfig(num_simulations=8, num_samples=K)


@pytest.fixture(scope="module")
def net():
    return build_model(BOX, NetConfig(size="tiny", precision="fp32"), seed=0).eval()


@pytest.fixture(scope="module")
def obs():
    return np.random.default_rng(0).normal(size=(B, 39)).astype(np.float32)


NO_MASK = np.ones((B, 0), bool)


def _row_of(actions: np.ndarray, out_actions: np.ndarray) -> np.ndarray:
    """Which sampled action each row of ``actions [B, D]`` is: ``[B]`` edge indices into ``out_actions
    [B, K, D]`` (fails if a row is none of them)."""
    hits = (out_actions == actions[:, None]).all(-1)
    assert hits.any(1).all(), "an action is not one of its root's sampled actions"
    return hits.argmax(1)


def test_evaluation_takes_the_most_visited_sampled_action(net, obs):
    actions, out = act(net, obs, NO_MASK, CFG, np.random.default_rng(1), explore=False)
    assert actions.dtype == np.float32 and actions.shape == (B, 4)
    assert (np.abs(actions) <= 1.0).all()
    assert out.actions.shape == out.samples.shape == (B, K, 4) and out.visit_counts.shape == (B, K)
    assert (out.visit_counts.sum(1) == 8).all()
    np.testing.assert_allclose(out.actions, gaussian.squash(out.samples, -1.0, 1.0), atol=1e-6)
    edge = _row_of(actions, out.actions)
    assert (out.visit_counts[np.arange(B), edge] == out.visit_counts.max(1)).all()
    # the same search as search_policy's without noise
    ref = search_policy(net, obs, NO_MASK, CFG, np.random.default_rng(1), add_noise=False)
    np.testing.assert_array_equal(out.visit_counts, ref.visit_counts)
    np.testing.assert_array_equal(out.actions, ref.actions)


def test_self_play_acting_explores_with_the_generator(net, obs):
    def explore(seed):
        return act(net, obs, NO_MASK, CFG, np.random.default_rng(seed), explore=True)

    (a0, out0), (a0_again, _), (a1, _) = explore(0), explore(0), explore(1)
    np.testing.assert_array_equal(a0, a0_again)  # a function of the generator
    assert not np.array_equal(a0, a1)  # new samples, noise and draws with another
    assert a0.dtype == np.float32 and a0.shape == (B, 4) and (np.abs(a0) <= 1.0).all()
    edge = _row_of(a0, out0.actions)
    assert (out0.visit_counts[np.arange(B), edge] > 0).all()  # sampled by visits: never an unvisited edge


def test_acting_without_search_takes_one_of_the_policy_samples(net, obs):
    cfg = CFG.model_copy(update={"search_for_acting": False, "search_at_eval": False})
    for explore in (True, False):
        actions, out = act(net, obs, NO_MASK, cfg, np.random.default_rng(2), explore=explore)
        assert (out.visit_counts == 0).all() and out.actions.shape == (B, K, 4)
        np.testing.assert_allclose(out.policy, 1.0 / K)  # K samples of pi, uniform over them
        assert actions.dtype == np.float32 and actions.shape == (B, 4)
        _row_of(actions, out.actions)


def test_q_learning_acts_greedily_over_a_uniform_sample_of_box_actions(net, obs):
    """Seed 000 A.2 on continuous actions: the maximum is taken over a sample (ours: uniform in the box)."""
    from xfer.qlearning import one_step_q_values

    actions, out = act(net, obs, NO_MASK, QActing(0.0, 0.9, num_samples=6), np.random.default_rng(0), explore=True)
    assert actions.shape == (B, 4) and actions.dtype == np.float32 and out.actions.shape == (B, 6, 4)
    assert (np.abs(out.actions) <= 1.0).all() and out.policy.shape == (B, 6)
    with torch.no_grad():
        q = one_step_q_values(net, net.initial_inference(torch.from_numpy(obs)).latent, 0.9,
                              torch.from_numpy(out.actions)).numpy()
    best = q.argmax(axis=1)
    np.testing.assert_array_equal(actions, out.actions[np.arange(B), best])  # epsilon 0: the greedy sample
    np.testing.assert_allclose(out.root_value, q.max(axis=1), rtol=1e-5)
    np.testing.assert_array_equal(out.policy, np.eye(6, dtype=np.float32)[best])
    np.testing.assert_allclose(np.tanh(out.samples), out.actions, atol=1e-5)
    # epsilon 1: a uniform draw among the candidates, spread over them
    _, explore = act(net, np.repeat(obs[:1], 64, 0), np.ones((64, 0), bool), QActing(1.0, 0.9, num_samples=6),
                     np.random.default_rng(1), explore=True)
    np.testing.assert_allclose(explore.policy, 1 / 6)


def test_the_search_steps_the_dynamics_with_the_sampled_action_vectors(net, obs, monkeypatch):
    """Each simulation's dynamics step takes the selected edge's action vector as it is: the first one
    is one of the root's sampled actions. (The search once cast the Box actions to int64 on their way
    to the network, so the dynamics saw 0 for every action inside the box.)"""
    seen = []
    real = net.recurrent_inference

    def recording(latent, state, action):
        seen.append(action.clone())
        return real(latent, state, action)

    monkeypatch.setattr(net, "recurrent_inference", recording)
    out = search_policy(net, obs, NO_MASK, CFG, np.random.default_rng(3), add_noise=False)
    assert len(seen) == 8 and all(a.dtype == torch.float32 and a.shape == (B, 4) for a in seen)
    _row_of(seen[0].numpy(), out.actions)  # simulation 0 expands a root edge
    assert (seen[0] != 0).any()
