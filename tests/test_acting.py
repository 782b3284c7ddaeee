"""``xfer.acting``: search acting, the planning ablations' fallbacks and the Q-learning baseline's
epsilon-greedy, on a seeded tiny network over real Atari-shaped observations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.specs import ATARI
from xfer.acting import QActing, act, q_policy
from xfer.agent import build_model
from xfer.config import NetConfig, SearchConfig
from xfer.inference import search_policy
from xfer.qlearning import one_step_q_values


@pytest.fixture(scope="module")
def net():
    return build_model(ATARI, NetConfig(size="tiny", precision="fp32", zero_init_heads=False), seed=3).eval()


@pytest.fixture(scope="module")
def obs():
    return np.random.default_rng(0).integers(0, 255, size=(4, *ATARI.observation.shape), dtype=np.uint8)


def _mask(n: int = 4) -> np.ndarray:
    mask = np.zeros((n, 18), bool)
    mask[:, [0, 1, 3, 4]] = True  # Breakout's actions in the full space
    return mask


def test_greedy_q_acting_takes_the_legal_argmax_of_one_step_q_values(net, obs):
    mask = _mask()
    actions, out = q_policy(net, obs, mask, QActing(0.0, 0.9), np.random.default_rng(0))
    with torch.no_grad():
        latent = net.initial_inference(torch.from_numpy(obs)).latent
        q = one_step_q_values(net, latent, 0.9).numpy()
    expected = np.where(mask, q, -np.inf).argmax(1)
    np.testing.assert_array_equal(actions, expected)
    np.testing.assert_allclose(out.root_value, np.where(mask, q, -np.inf).max(1), rtol=1e-6)
    # the stored policy is the epsilon-greedy distribution: all mass on the greedy action at epsilon 0
    np.testing.assert_array_equal(out.policy, np.eye(18, dtype=np.float32)[expected])


def test_epsilon_greedy_spreads_epsilon_over_legal_actions_only(net, obs):
    mask = _mask()
    actions, out = q_policy(net, obs, mask, QActing(0.4, 0.9), np.random.default_rng(0))
    np.testing.assert_allclose(out.policy.sum(1), 1.0, rtol=1e-6)
    assert (out.policy[~mask] == 0).all()
    greedy = out.policy.argmax(1)
    np.testing.assert_allclose(out.policy[np.arange(4), greedy], 0.6 + 0.4 / 4, rtol=1e-6)
    many = np.concatenate([q_policy(net, obs, mask, QActing(1.0, 0.9), np.random.default_rng(s))[0] for s in range(30)])
    assert set(many.tolist()) == {0, 1, 3, 4}  # uniform over the legal actions, never an illegal one


def test_search_acting_is_the_search_argmax_at_evaluation(net, obs):
    cfg = SearchConfig(num_simulations=8)
    actions, out = act(net, obs, _mask(), cfg, np.random.default_rng(1), explore=False)
    ref = search_policy(net, obs, _mask(), cfg, np.random.default_rng(1), add_noise=False)
    np.testing.assert_array_equal(out.visit_counts, ref.visit_counts)
    assert all(out.visit_counts[i, a] == out.visit_counts[i].max() for i, a in enumerate(actions))


def test_without_search_one_step_is_the_search_cut_at_depth_one(net, obs):
    prior_cfg = SearchConfig(num_simulations=12, search_at_eval=False)
    one_cfg = prior_cfg.model_copy(update={"without_search": "one_step"})
    _, prior = act(net, obs, _mask(), prior_cfg, np.random.default_rng(2), explore=False)
    _, one = act(net, obs, _mask(), one_cfg, np.random.default_rng(2), explore=False)
    depth1 = search_policy(net, obs, _mask(), SearchConfig(num_simulations=12, max_depth=1),
                           np.random.default_rng(2), add_noise=False)
    assert (prior.visit_counts == 0).all()  # the policy head: no search ran
    np.testing.assert_array_equal(one.visit_counts, depth1.visit_counts)
    np.testing.assert_array_equal(one.policy, depth1.policy)
    assert one.visit_counts.sum() == 4 * 12


def test_collect_style_uniform_acting_refuses_q_acting(net, tmp_path):
    from xfer.actor import SelfPlay
    from xfer.config import AtariConfig

    play = SelfPlay(AtariConfig(game="Breakout"), num_envs=1, seed=0, segment_length=8)
    try:
        with pytest.raises(ValueError, match="needs a SearchConfig"):
            play.step(net, QActing(0.1, 0.9), 1.0, np.random.default_rng(0), act_uniform=True)
    finally:
        play.close()
