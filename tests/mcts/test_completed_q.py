"""Completed-Q policy targets (xfer.mcts.completed_q) against hand-computed values and in a search."""

from __future__ import annotations

import math

import numpy as np

from tests.mcts.test_search import PathModel
from xfer.config import SearchConfig
from xfer.mcts import RootInputs, run_search
from xfer.mcts.completed_q import completed_q_policy, mixed_value


def test_hand_computed_target():
    # uniform prior over 3 actions; visits [2, 1, 0]; Q [1, 0, -]; network value 0.5
    logits = np.zeros((1, 3))
    visits = np.array([[2, 1, 0]])
    q = np.array([[1.0, 0.0, np.nan]])
    value = np.array([0.5])
    prior = np.full((1, 3), 1 / 3)
    # v_mix = (0.5 + 3 * (1/3 * 1 + 1/3 * 0) / (2/3)) / (1 + 3) = 0.5
    np.testing.assert_allclose(mixed_value(value, prior, visits, q), [0.5])
    # completed Q [1, 0, 0.5] -> normalised [1, 0, 0.5]; sigma = (50 + 2) * 0.1 * q_hat
    e = np.exp([5.2, 0.0, 2.6])
    np.testing.assert_allclose(completed_q_policy(logits, np.ones((1, 3), bool), visits, q, value), [e / e.sum()])


def test_range_floor_keeps_small_q_differences_small():
    # Q differ by 0.01: without a floor they are stretched to [0, 1] (sigma up to 5.3), with a floor
    # of 1.0 they count as 0.01 of one value unit
    logits, mask = np.zeros((1, 2)), np.ones((1, 2), bool)
    visits, q, value = np.array([[3, 3]]), np.array([[0.51, 0.50]]), np.array([0.5])
    sharp = completed_q_policy(logits, mask, visits, q, value)
    soft = completed_q_policy(logits, mask, visits, q, value, range_floor=1.0)
    e = np.exp([(50 + 3) * 0.1 * 1.0, 0.0])
    np.testing.assert_allclose(sharp, [e / e.sum()])
    e = np.exp([(50 + 3) * 0.1 * 0.01, 0.0])
    np.testing.assert_allclose(soft, [e / e.sum()])
    # a range above the floor is normalised exactly as without it
    q_wide = np.array([[2.5, 0.5]])
    np.testing.assert_allclose(completed_q_policy(logits, mask, visits, q_wide, value, range_floor=1.0),
                               completed_q_policy(logits, mask, visits, q_wide, value))


def test_equal_q_returns_the_prior_and_illegal_actions_get_zero():
    logits = np.array([[1.0, 0.0, 2.0, 5.0]])
    mask = np.array([[True, True, True, False]])
    visits = np.array([[3, 3, 3, 0]])
    q = np.array([[0.7, 0.7, 0.7, np.nan]])
    pi = completed_q_policy(logits, mask, visits, q, np.array([0.7]))
    e = np.exp([1.0, 0.0, 2.0])
    np.testing.assert_allclose(pi, [[*(e / e.sum()), 0.0]])


def test_no_visits_falls_back_to_the_network_value():
    pi = completed_q_policy(np.zeros((1, 2)), np.ones((1, 2), bool), np.zeros((1, 2)), np.full((1, 2), np.nan),
                            np.array([3.0]))
    np.testing.assert_allclose(pi, [[0.5, 0.5]])
    assert math.isclose(mixed_value(np.array([3.0]), np.full((1, 2), 0.5), np.zeros((1, 2)),
                                    np.full((1, 2), np.nan))[0], 3.0)


def test_search_target_is_sharper_than_visit_counts_with_few_simulations():
    # a 6-armed bandit, 12 simulations: visits stay spread, the completed-Q target does not
    A, B = 6, 4
    rewards = np.array([0.1, 0.5, 0.9, 0.3, 0.0, 0.2], np.float32)

    def fn(b, path):
        return rewards[path[0]], np.float32(0.0), np.zeros(A, np.float32)

    roots = RootInputs(np.zeros(B, np.float32), np.zeros((B, A), np.float32), np.ones((B, A), bool))
    out = {}
    for target in ("visits", "completed_q"):
        cfg = SearchConfig(num_simulations=12, policy_target=target, root_expand_all=True)
        out[target] = run_search(PathModel(fn, B, A), roots, cfg, np.random.default_rng(0), add_noise=False)
    visits, cq = out["visits"], out["completed_q"]
    np.testing.assert_array_equal(visits.visit_counts, cq.visit_counts)  # the search itself is unchanged
    np.testing.assert_allclose(cq.policy.sum(axis=1), 1.0, rtol=1e-6)
    assert (cq.policy.argmax(axis=1) == 2).all()
    assert (cq.policy[:, 2] > 0.85).all() and (cq.policy[:, 2] > visits.policy[:, 2] + 0.2).all()


def test_root_expand_all_visits_every_legal_action_first():
    A, B = 6, 3
    rewards = np.array([0.1, 0.5, 0.9, 0.3, 0.0, 0.2], np.float32)

    def fn(b, path):
        return rewards[path[0]], np.float32(0.0), np.zeros(A, np.float32)

    mask = np.ones((B, A), bool)
    mask[1, [0, 4]] = False
    roots = RootInputs(np.zeros(B, np.float32), np.zeros((B, A), np.float32), mask)
    plain = run_search(PathModel(fn, B, A), roots, SearchConfig(num_simulations=A), np.random.default_rng(0), False)
    assert ((plain.visit_counts > 0).sum(axis=1) < mask.sum(axis=1)).any()  # pUCT alone locks in early
    model = PathModel(fn, B, A)
    res = run_search(model, roots, SearchConfig(num_simulations=A, root_expand_all=True), np.random.default_rng(0), False)
    np.testing.assert_array_equal(res.visit_counts > 0, mask)  # each legal action once, illegal never
    first = [set(int(call[1][b]) for call in model.calls[: mask[b].sum()]) for b in range(B)]
    assert first == [set(np.flatnonzero(mask[b]).tolist()) for b in range(B)]


def test_agent_acts_on_the_improved_policy_only_with_completed_q():
    from xfer.acting import acting_scores
    from xfer.inference import PolicyOutput

    visits = np.array([[8, 1, 1]], np.int32)  # the prior's favourite collects the visits ...
    improved = np.array([[0.05, 0.9, 0.05]], np.float32)  # ... while Q says action 1
    out = PolicyOutput(policy=improved, root_value=np.zeros(1, np.float32), visit_counts=visits,
                       prior_value=np.zeros(1, np.float32))
    np.testing.assert_array_equal(acting_scores(out, SearchConfig()), visits)
    np.testing.assert_array_equal(acting_scores(out, SearchConfig(policy_target="completed_q")), improved)
