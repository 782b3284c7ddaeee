"""The Q-learning baseline's targets and action values (xfer/qlearning.py), by hand."""

import numpy as np
import pytest
import torch

from tests.specs import ATARI_INPUT
from xfer.nets.efficientzero import build_network
from xfer.nets.sizes import net_spec
from xfer.qlearning import epsilon_greedy, nstep_q_target, one_step_q_values, ql_value_target

G = 0.5


def test_the_nstep_q_target_bootstraps_only_without_a_terminal_by_hand():
    rewards = np.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    q = np.array([[0.0, 8.0], [0.0, 8.0]])
    # full 3 steps: 1 + 0.5*2 + 0.25*4 + 0.125*8 = 4; terminal after 2 rewards: 1 + 0.5*2 = 2
    got = nstep_q_target(rewards, q, np.array([3, 2]), G)
    assert got == pytest.approx([4.0, 2.0])


def test_the_value_target_of_eq_2_is_the_q_target_without_the_first_reward_by_hand():
    rewards = np.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    q = np.array([[0.0, 8.0], [-3.0, -1.0]])
    # sum_{i=1}^{2} G^{i-1} r_i + G^2 max Q = 2 + 0.5*4 + 0.25*8 = 6; second: 2 + 2 + 0.25*(-1) = 3.75
    assert ql_value_target(rewards, q, np.array([3, 3]), G) == pytest.approx([6.0, 3.75])
    # a terminal after the first reward: nothing follows
    assert ql_value_target(rewards[:1], q[:1], np.array([1]), G) == pytest.approx([0.0])


def test_one_step_q_values_expand_every_action_through_the_model():
    net = build_network(net_spec("tiny"), *ATARI_INPUT, seed=0).eval()
    with torch.no_grad():
        latent = net.represent(torch.randint(0, 255, (2, *ATARI_INPUT[1]), dtype=torch.uint8))
        q = one_step_q_values(net, latent, 0.9)
        a = 5
        out = net.recurrent_inference(latent, net.initial_lstm_state(2), torch.full((2,), a))
    assert q.shape == (2, net.num_actions)
    assert torch.allclose(q[:, a], out.value_prefix + 0.9 * out.value, atol=1e-5)


def test_epsilon_greedy_takes_the_legal_argmax_or_a_uniform_legal_action():
    q = np.array([[1.0, 9.0, 3.0], [5.0, 0.0, 2.0]])
    legal = np.array([True, False, True])
    rng = np.random.default_rng(0)
    assert epsilon_greedy(q, legal, 0.0, rng).tolist() == [2, 0]  # 9.0 is illegal
    draws = np.concatenate([epsilon_greedy(q, legal, 1.0, rng) for _ in range(200)])
    assert set(draws.tolist()) == {0, 2}
    with pytest.raises(ValueError, match="epsilon"):
        epsilon_greedy(q, legal, 1.5, rng)
