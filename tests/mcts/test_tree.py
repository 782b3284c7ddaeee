"""Hand-computed MCTS cases for xfer.mcts (EfficientZero rules, Ye et al. 2021; MuZero app. B).

Every expected number below is worked out by hand in the comments, from these rules:
  coef(Nc) = sqrt(Nc) * (c1 + ln((Nc + c2 + 1) / c2)),  c1 = 1.25, c2 = 19652
    coef(0) = 0, coef(1) = 1.2501018, coef(2) = 1.7679830, coef(3) = 2.1654160
  score(a) = prior(a) * coef(Nc) / (1 + n(a)) + clip((Q - min) / max(max - min, 0.01), 0, 1)
  unvisited Q = mean_q: root = mean of visited Q; below = (parent mean_q + sum Q) / (#visited + 1)
  edge reward r = prefix(child) - prefix(parent), or prefix(child) when depth(parent) % H == 0
Ties (first visit of a node: Nc = 0 and equal normQ) go to the lowest action index here
(``LowIndexTies``), as in the reference search.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.mcts.test_search import LowIndexTies, PathModel, random_fn, random_roots
from xfer.config import SearchConfig
from xfer.mcts import TIE_EPS, RootInputs, Tree, masked_softmax, puct_coefficients, run_search


def drive(model, root: RootInputs, cfg: SearchConfig, rng) -> Tree:
    """run_search's loop on a fresh (non-cached) Tree, returning the tree for inspection."""
    B, A = root.policy_logits.shape
    tree = Tree(B, cfg.num_simulations, A, cfg)
    tree.set_roots(masked_softmax(root.policy_logits, root.action_mask), root.action_mask)
    pool = rng.random((B + cfg.num_simulations, A)) * TIE_EPS
    for s in range(cfg.num_simulations):
        sel = tree.select(s, pool[s : s + B])
        if sel.any_expand:
            child = np.full(B, s + 1, np.int32)
            out = model.recurrent(sel.parent, sel.edge, child, sel.reset_lstm)
            tree.expand(s, out.value_prefix, out.value, out.policy_logits)
        tree.backup()
    return tree


def test_coefficients_used_in_the_comments():
    t = puct_coefficients(3, 1.25, 19652.0)
    np.testing.assert_allclose(t, [0.0, 1.2501018, 1.7679830, 2.1654160], atol=1e-7)


# Case 1: A = 2, discount 0.5, value_prefix_horizon 2, root prior [0.5, 0.5].
#   path    value_prefix  value  child prior
#   (0,)        1.0        2.0   [0.75, 0.25]
#   (1,)        0.5        1.0   [0.5, 0.5]
#   (0,0)       1.5        4.0   [0.5, 0.5]
#   (0,0,0)     0.25      -1.0   [0.5, 0.5]
CASE1 = {
    (0,): (1.0, 2.0, [math.log(3.0), 0.0]),
    (1,): (0.5, 1.0, [0.0, 0.0]),
    (0, 0): (1.5, 4.0, [0.0, 0.0]),
    (0, 0, 0): (0.25, -1.0, [0.0, 0.0]),
}


def case1_fn(b, path):
    vp, v, logits = CASE1[path]  # KeyError = the search expanded a node the hand trace did not
    return np.float32(vp), np.float32(v), np.asarray(logits, np.float32)


def case1(sims: int):
    cfg = SearchConfig(num_simulations=sims, discount=0.5, value_prefix_horizon=2)
    root = RootInputs(np.zeros(1, np.float32), np.zeros((1, 2), np.float32), np.ones((1, 2), bool))
    return cfg, root


def test_case1_three_simulations():
    # sim 0: Nc = 0, min-max empty -> both scores 0 -> tie -> action 0. New node 1 = (0,), parent
    #   depth 0 -> LSTM reset -> r = 1.0. Backup G = 2: node1 (2, 1 visit); Q(root,0) = 1 + .5*2 = 2;
    #   min-max [2, 2]; G = 1 + .5*2 = 2 -> root (2, 1).
    # sim 1: Nc = 1. Range 0 -> floor 0.01: normQ(0) = 0; a1 unvisited, mean_q = 2 -> normQ 0.
    #   a0 = .5*1.2501/2 = .3125, a1 = .5*1.2501/1 = .6251 -> a1. node2 = (1,), reset, r = 0.5;
    #   Q(root,1) = .5 + .5*1 = 1.0; min-max [1, 2]; root (3, 2).
    # sim 2: Nc = 2: a0 = .5*1.76798/2 + (2-1)/1 = 1.4420, a1 = .4420 + 0 -> a0 -> node1: Nc = 0,
    #   both unvisited with mean_q = parent mean_q = (2 + 1)/2 -> tie -> a0. node3 = (0,0); parent
    #   depth 1 -> no reset: r = 1.5 - 1.0 = 0.5. Q(node1,0) = .5 + .5*4 = 2.5; G = 2.5;
    #   node1 (4.5, 2); Q(root,0) = 1 + .5*4.5/2 = 2.125; G = 1 + .5*2.5 = 2.25; root (5.25, 3).
    cfg, root = case1(3)
    model = PathModel(case1_fn, 1, 2, cfg.value_prefix_horizon)
    res = run_search(model, root, cfg, LowIndexTies(), add_noise=False)
    assert res.visit_counts.tolist() == [[2, 1]]
    assert res.root_value[0] == pytest.approx(5.25 / 3, rel=1e-6)
    np.testing.assert_allclose(res.root_q[0], [2.125, 1.0], rtol=1e-6)
    np.testing.assert_allclose(res.policy[0], [2 / 3, 1 / 3], rtol=1e-6)
    assert [bool(c[3][0]) for c in model.calls] == [True, True, False]


def test_case1_four_simulations_reset_at_horizon():
    # sim 3: root Nc = 3, min-max [1, 2.5] (range 1.5): a0 = .5*2.16542/3 + (2.125-1)/1.5 = 1.1109,
    #   a1 = .5*2.16542/2 + 0 = .5414 -> a0 -> node1: Nc = 1; Q(node1,0) = 2.5; root mean_q =
    #   (2.125 + 1)/2 = 1.5625, so mean_q(node1) = (1.5625 + 2.5)/2 = 2.03125.
    #   a0 = .75*1.2501/2 + (2.5-1)/1.5 = 1.4688; a1 = .25*1.2501/1 + (2.03125-1)/1.5 = 1.0000 -> a0
    #   -> node3 (depth 2): Nc = 0 -> tie -> a0. node4 = (0,0,0) at depth 3; parent depth 2 = H ->
    #   LSTM reset -> r = prefix = 0.25 (not 0.25 - 1.5).
    #   Backup G = -1: node4 (-1, 1); Q(node3,0) = .25 + .5*(-1) = -0.25 -> min -0.25;
    #   G = -0.25: node3 (3.75, 2); Q(node1,0) = .5 + .5*3.75/2 = 1.4375;
    #   G = .5 + .5*(-.25) = .375: node1 (4.875, 3); Q(root,0) = 1 + .5*4.875/3 = 1.8125;
    #   G = 1 + .5*.375 = 1.1875: root (6.4375, 4) -> root value 1.609375.
    cfg, root = case1(4)
    model = PathModel(case1_fn, 1, 2, cfg.value_prefix_horizon)
    res = run_search(model, root, cfg, LowIndexTies(), add_noise=False)
    assert res.visit_counts.tolist() == [[3, 1]]
    assert res.root_value[0] == pytest.approx(1.609375, rel=1e-6)
    np.testing.assert_allclose(res.root_q[0], [1.8125, 1.0], rtol=1e-6)
    assert [bool(c[3][0]) for c in model.calls] == [True, True, False, True]

    # the same search on a Tree we can inspect
    tree = drive(PathModel(case1_fn, 1, 2, 2), root, cfg, LowIndexTies())
    # node ids follow expansion order: 1 = (0,), 2 = (1,), 3 = (0,0), 4 = (0,0,0)
    np.testing.assert_allclose(tree.reward[:5], [0.0, 1.0, 0.5, 0.5, 0.25])
    assert tree.depth[:5].tolist() == [0, 1, 1, 2, 3]
    assert tree.visits[:5].tolist() == [4, 3, 1, 2, 1]
    np.testing.assert_allclose(tree.value_sum[:5], [6.4375, 4.875, 1.0, 3.75, -1.0])
    assert (tree.min_q[0], tree.max_q[0]) == (-0.25, 2.5)
    n1, q1 = tree.child_stats(1)  # children of node 1
    assert n1.tolist() == [[2, 0]]
    np.testing.assert_allclose(q1[0], [1.4375, np.nan])
    np.testing.assert_allclose(tree.child_prior(1)[0], [0.75, 0.25], rtol=1e-6)  # float32 logits
    np.testing.assert_allclose(tree.node_value(3, 0), 1.875)


# Case 2: the mean-Q rule for unvisited children decides the third simulation.
#   A = 3, discount 1, root prior [0.1, 0.5, 0.4]; children values 1.0, 0.0, 0.5; prefixes 0.
CASE2 = {(0,): 1.0, (1,): 0.0, (2,): 0.5}


def test_mean_q_for_unvisited_children_decides():
    # sim 0: tie -> a0, Q0 = 0 + 1*1 = 1; min-max [1, 1].
    # sim 1: Nc = 1: a0 = .1*1.2501/2 + 0 = .0625; a1 = .5*1.2501 + normQ(mean_q 1 -> 0) = .6251;
    #   a2 = .4*1.2501 = .5000 -> a1; Q1 = 0; min-max [0, 1].
    # sim 2: Nc = 2: a0 = .1*1.76798/2 + 1 = 1.0884; a1 = .5*1.76798/2 + 0 = .4420;
    #   a2 (unvisited) = .4*1.76798 + normQ(mean_q = (1 + 0)/2 = .5) = .7072 + .5 = 1.2072 -> a2.
    #   (Scoring unvisited children with Q = 0, as MuZero does, would give a2 .7072 -> a0.)
    cfg = SearchConfig(num_simulations=3, discount=1.0)
    root = RootInputs(
        np.zeros(1, np.float32), np.log(np.array([[0.1, 0.5, 0.4]], np.float32)), np.ones((1, 3), bool)
    )

    def fn(b, path):
        return np.float32(0.0), np.float32(CASE2[path]), np.zeros(3, np.float32)

    res = run_search(PathModel(fn, 1, 3), root, cfg, LowIndexTies(), add_noise=False)
    assert res.visit_counts.tolist() == [[1, 1, 1]]
    np.testing.assert_allclose(res.root_q[0], [1.0, 0.0, 0.5], rtol=1e-6)
    assert res.root_value[0] == pytest.approx(0.5, rel=1e-6)


def test_min_max_normalisation_makes_search_scale_free():
    # with discount 1, values v -> 100 v + 7 and value prefixes x100 map every Q (and mean Q) to
    # 100 Q + 7; min-max normalisation removes that, so the visit counts must not change
    cfg = SearchConfig(num_simulations=40, discount=1.0, value_prefix_horizon=3)
    B, A = 4, 4
    base = random_fn(A, 5)

    def scaled(b, path):
        vp, v, logits = base(b, path)
        return np.float32(100 * vp), np.float32(100 * v + 7), logits

    roots = random_roots(B, A, 5)
    r1 = run_search(PathModel(base, B, A, 3), roots, cfg, LowIndexTies(), add_noise=False)
    r2 = run_search(PathModel(scaled, B, A, 3), roots, cfg, LowIndexTies(), add_noise=False)
    np.testing.assert_array_equal(r1.visit_counts, r2.visit_counts)
    np.testing.assert_allclose(r2.root_value, 100 * r1.root_value + 7, rtol=1e-4)


def test_first_simulation_with_empty_min_max_is_a_tie():
    # before any backup the min-max statistics are empty (normQ = 0) and Nc = 0, so every legal
    # action scores exactly 0: the descent must pick among the legal actions only
    cfg = SearchConfig(num_simulations=1)
    B, A = 64, 5
    mask = np.zeros((B, A), bool)
    mask[:, [1, 3]] = True
    root = RootInputs(
        np.zeros(B, np.float32), np.random.default_rng(0).normal(size=(B, A)).astype(np.float32), mask
    )
    tree = Tree(B, 1, A, cfg)
    tree.set_roots(masked_softmax(root.policy_logits, mask), mask)
    sel = tree.select(0, np.random.default_rng(1).random((B, A)) * TIE_EPS)
    assert set(sel.edge.tolist()) == {1, 3}
    assert sel.expand.all() and (sel.depth == 1).all() and (sel.parent == 0).all() and sel.reset_lstm.all()


def test_max_depth_one_revisits_back_up_current_value():
    # max_depth = 1 with A = 2: sims 0 and 1 expand both children (only unexpanded actions compete
    # at depth 0 while any remain); sim 2 re-visits a child without a model call and backs up its
    # value again, so that child's value_sum doubles and its Q stays r + discount * v.
    cfg = SearchConfig(num_simulations=3, max_depth=1, discount=0.5)
    root = RootInputs(np.zeros(1, np.float32), np.zeros((1, 2), np.float32), np.ones((1, 2), bool))
    outs = {(0,): (1.0, 2.0), (1,): (0.0, 1.0)}

    def fn(b, path):
        vp, v = outs[path]
        return np.float32(vp), np.float32(v), np.zeros(2, np.float32)

    model = PathModel(fn, 1, 2)
    tree = drive(model, root, cfg, LowIndexTies())
    assert len(model.calls) == 2
    # Q0 = 1 + .5*2 = 2, Q1 = 0 + .5*1 = .5; sim 2: a0 = .5*1.76798/2 + 1 > a1 = .4420 + 0 -> a0
    n, q = tree.child_stats(0)
    assert n.tolist() == [[2, 1]]
    np.testing.assert_allclose(q[0], [2.0, 0.5])
    assert tree.visits[3] == 0  # slot of simulation 2 stays unused
    # root: 2 + 0.5 + 2 (re-visit of node 1: G = 1 + .5*2)
    assert tree.value_sum[0] == pytest.approx(4.5)


def test_child_softmax_survives_extreme_logits():
    from xfer.mcts.tree import _softmax_into

    logits = np.array([[1000.0, 0.0, 0.0], [-2000.0, -2000.0, -1999.0], [0.5, 0.1, -0.3]], np.float32)
    out = np.zeros((3, 7))
    with np.errstate(over="ignore"):
        _softmax_into(out[:, :3], logits)
    np.testing.assert_allclose(out[:, :3], masked_softmax(logits), rtol=1e-12)
    assert (out[:, 3:] == 0).all()
