"""Batched MCTS (xfer.mcts) against a per-node reference search and behavioural checks.

The reference below is a deliberately naive one-root-at-a-time search with Python node objects,
written from the EfficientZero rules (Ye et al. 2021; MuZero appendix B) as stated in the
docstrings of ``xfer.mcts.tree``; the vectorised search must reproduce it exactly (visit counts)
and to rounding (values) on random trees.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from xfer.config import SearchConfig
from xfer.mcts import RecurrentStep, RootInputs, root_prior, run_search, select_action
from xfer.mcts.tree import masked_softmax, puct_coefficients

# --------------------------------------------------------------------------- fake models


class PathModel:
    """Fake model whose outputs are a fixed function of (root index, action path).

    ``fn(b, path) -> (value_prefix, value, logits[A])``. Records every call for checks, and
    validates the protocol (child ids 1..S in order, reset flag = parent depth % horizon == 0).
    """

    def __init__(self, fn, B: int, A: int, value_prefix_horizon: int = 5):
        self.fn, self.B, self.A, self.horizon = fn, B, A, value_prefix_horizon
        self.paths = [{0: ()} for _ in range(B)]
        self.calls: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def recurrent(self, parent, action, child, reset_lstm) -> RecurrentStep:
        assert parent.dtype == np.int32 and child.dtype == np.int32 and action.dtype == np.int64
        assert reset_lstm.dtype == bool
        assert parent.shape == action.shape == child.shape == reset_lstm.shape == (self.B,)
        assert (child == len(self.calls) + 1).all() or len(set(child.tolist())) == 1
        self.calls.append((parent.copy(), action.copy(), child.copy(), reset_lstm.copy()))
        vp = np.zeros(self.B, np.float32)
        v = np.zeros(self.B, np.float32)
        logits = np.zeros((self.B, self.A), np.float32)
        for b in range(self.B):
            path = self.paths[b][int(parent[b])] + (int(action[b]),)
            self.paths[b][int(child[b])] = path
            assert bool(reset_lstm[b]) == ((len(path) - 1) % self.horizon == 0)
            vp[b], v[b], logits[b] = self.fn(b, path)
        return RecurrentStep(value_prefix=vp, value=v, policy_logits=logits)


def random_fn(A: int, seed: int, vp_scale: float = 1.0, logit_scale: float = 1.0):
    """Outputs drawn from a generator seeded by (seed, root, path): tie-free with probability 1."""

    def fn(b, path):
        key = zlib.crc32(repr((seed, b, path)).encode())
        r = np.random.default_rng(key)
        return (
            np.float32(vp_scale * r.normal()),
            np.float32(r.normal()),
            (logit_scale * r.normal(size=A)).astype(np.float32),
        )

    return fn


def random_roots(B: int, A: int, seed: int, mask_p: float = 0.0) -> RootInputs:
    r = np.random.default_rng(seed)
    mask = r.random((B, A)) >= mask_p
    mask[np.arange(B), r.integers(0, A, B)] = True
    return RootInputs(
        value=r.normal(size=B).astype(np.float32),
        policy_logits=r.normal(size=(B, A)).astype(np.float32),
        action_mask=mask,
    )


class LowIndexTies:
    """Stand-in generator whose tie jitter always favours the lowest action index."""

    def random(self, size):
        A = size[-1]
        return np.broadcast_to(np.linspace(1.0, 0.0, A), size).copy()


# --------------------------------------------------------------------------- reference


class _Node:
    def __init__(self, prior, value_prefix, depth, reward):
        self.prior = prior
        self.value_prefix = value_prefix
        self.depth = depth
        self.reward = reward  # reward of the edge into this node
        self.children: dict[int, _Node] = {}
        self.visits = 0
        self.value_sum = 0.0

    def value(self):
        return self.value_sum / self.visits


def reference_search(fn, b, prior, legal, cfg: SearchConfig):
    """One root, straight from the rules. Returns (child visits [A], root value, child Q [A])."""
    A = prior.shape[0]
    g = cfg.discount
    root = _Node(prior, 0.0, 0, 0.0)
    lo, hi = math.inf, -math.inf

    def q_of(parent, child):
        return child.reward + g * child.value()

    def norm(x):
        if hi < lo:
            return 0.0
        return min(max((x - lo) / max(hi - lo, cfg.min_max_delta), 0.0), 1.0)

    for _ in range(cfg.num_simulations):
        node, path, actions, parent_mq = root, [root], [], 0.0
        revisit = False
        while True:
            visited = [q_of(node, c) for c in node.children.values() if c.visits > 0]
            if node is root:
                mq = sum(visited) / len(visited) if visited else 0.0
            else:
                mq = (parent_mq + sum(visited)) / (len(visited) + 1)
            nc = sum(c.visits for c in node.children.values())
            coef = math.sqrt(nc) * (cfg.c1 + math.log((nc + cfg.c2 + 1) / cfg.c2))
            cands = [a for a in range(A) if legal[a]]  # the game's action set at every node
            if cfg.max_depth > 0 and node.depth == cfg.max_depth - 1:
                fresh = [a for a in cands if a not in node.children]
                cands = fresh or cands
            best, best_a = -math.inf, None
            for a in cands:
                c = node.children.get(a)
                n = c.visits if c is not None else 0
                q = q_of(node, c) if n > 0 else mq
                s = node.prior[a] * coef / (1 + n) + norm(q)
                if s > best:
                    best, best_a = s, a
            actions.append(best_a)
            parent_mq = mq
            child = node.children.get(best_a)
            if child is None:
                break
            node = child
            path.append(node)
            if cfg.max_depth > 0 and node.depth == cfg.max_depth:
                revisit = True
                break
        if revisit:
            leaf_value = node.value()
        else:
            vp, v, logits = fn(b, tuple(actions))
            reset = node.depth % cfg.value_prefix_horizon == 0
            reward = float(vp) - (0.0 if reset else node.value_prefix)
            p = masked_softmax(np.asarray(logits)[None], np.asarray(legal)[None])[0]
            leaf = _Node(p, float(vp), node.depth + 1, reward)
            node.children[actions[-1]] = leaf
            path.append(leaf)
            leaf_value = float(v)
        G = leaf_value
        for i in range(len(path) - 1, -1, -1):
            nd = path[i]
            nd.value_sum += G
            nd.visits += 1
            if i > 0:
                q = nd.reward + g * nd.value()
                lo, hi = min(lo, q), max(hi, q)
            G = nd.reward + g * G
    visits = np.zeros(A, np.int64)
    qs = np.full(A, np.nan)
    for a, c in root.children.items():
        visits[a] = c.visits
        qs[a] = q_of(root, c)
    return visits, root.value(), qs


def _check_against_reference(cfg, B, A, seed, mask_p=0.0, logit_scale=1.0):
    roots = random_roots(B, A, seed, mask_p)
    fn = random_fn(A, seed, logit_scale=logit_scale)
    model = PathModel(fn, B, A, cfg.value_prefix_horizon)
    # first visits of a node are exact ties (Nc = 0); the reference takes the lowest index
    res = run_search(model, roots, cfg, LowIndexTies(), add_noise=False)
    prior = masked_softmax(roots.policy_logits, roots.action_mask)
    for b in range(B):
        visits, value, qs = reference_search(fn, b, prior[b], roots.action_mask[b], cfg)
        np.testing.assert_array_equal(res.visit_counts[b], visits, err_msg=f"root {b}")
        assert res.root_value[b] == pytest.approx(value, rel=1e-5, abs=1e-5)
        np.testing.assert_allclose(res.root_q[b], qs, rtol=1e-5, atol=1e-5)
    return res, model


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    "kw",
    [
        dict(num_simulations=30),
        dict(num_simulations=40, value_prefix_horizon=2, discount=0.9),
        dict(num_simulations=25, value_prefix_horizon=1, discount=1.0),
        dict(num_simulations=30, max_depth=2),
        dict(num_simulations=30, max_depth=3, value_prefix_horizon=2),
        dict(num_simulations=20, max_depth=1),
        dict(num_simulations=30, min_max_delta=1.0, c1=2.0),
    ],
)
def test_matches_reference_search(kw):
    cfg = SearchConfig(**kw)
    _check_against_reference(
        cfg, B=6, A=4, seed=zlib.crc32(repr(sorted(kw.items())).encode()) % 1000, mask_p=0.3
    )


def test_matches_reference_peaked_priors_deep_trees():
    # peaked child priors make deep, narrow trees: exercises long ragged paths in one batch
    cfg = SearchConfig(num_simulations=40, value_prefix_horizon=3)
    res, _ = _check_against_reference(cfg, B=5, A=3, seed=7, logit_scale=4.0)
    assert res.visit_counts.sum(axis=1).tolist() == [40] * 5


def test_protocol_node_ids_and_reset_flags():
    cfg = SearchConfig(num_simulations=12, value_prefix_horizon=2)
    B, A = 3, 3
    model = PathModel(random_fn(A, 1, logit_scale=3.0), B, A, cfg.value_prefix_horizon)
    run_search(model, random_roots(B, A, 1), cfg, np.random.default_rng(0), add_noise=False)
    assert len(model.calls) == 12
    for s, (parent, action, child, _reset) in enumerate(model.calls):
        assert (child == s + 1).all()
        assert (parent <= s).all() and (parent >= 0).all()
        assert ((action >= 0) & (action < A)).all()
    # PathModel itself asserts reset == (parent depth % horizon == 0) for every call


def test_illegal_actions_never_visited_and_noise_only_on_legal():
    cfg = SearchConfig(num_simulations=60)
    B, A = 8, 6
    roots = random_roots(B, A, 3, mask_p=0.5)
    model = PathModel(random_fn(A, 3), B, A)
    res = run_search(model, roots, cfg, np.random.default_rng(0), add_noise=True)
    assert (res.visit_counts[~roots.action_mask] == 0).all()
    assert (res.visit_counts.sum(axis=1) == 60).all()
    assert np.isnan(res.root_q[~roots.action_mask]).all()
    np.testing.assert_allclose(res.policy.sum(axis=1), 1.0, rtol=1e-6)

    prior = root_prior(roots.policy_logits, roots.action_mask, np.random.default_rng(5), True, 0.3, 0.25)
    assert (prior[~roots.action_mask] == 0).all()
    np.testing.assert_allclose(prior.sum(axis=1), 1.0)
    clean = masked_softmax(roots.policy_logits, roots.action_mask)
    noise = (prior - 0.75 * clean) / 0.25  # the Dirichlet part: a distribution over legal actions
    assert (noise[roots.action_mask] >= -1e-12).all()
    np.testing.assert_allclose(noise.sum(axis=1), 1.0)
    assert not np.allclose(prior, clean)


@pytest.mark.parametrize("kw", [dict(num_simulations=60), dict(num_simulations=40, max_depth=3),
                                dict(num_simulations=30, root_expand_all=True, policy_target="completed_q")])
def test_no_illegal_action_expanded_at_any_depth(kw):
    # A model that puts almost all prior mass on an action the game does not have, at every node
    # (the shared 18-action head of a multi-game model): XTRA slices the logits to the game's
    # actions at every node, so no simulation may ever expand an illegal action, at any depth.
    cfg = SearchConfig(**kw)
    B, A = 6, 8
    legal = np.zeros((B, A), bool)
    legal[:, [0, 2, 5]] = True  # e.g. a 3-action game inside an 8-action head
    illegal_fav = 7

    def fn(b, path):
        logits = np.zeros(A, np.float32)
        logits[illegal_fav] = 20.0
        return np.float32(0.1 * (path[-1] % 3)), np.float32(0.5), logits

    roots = RootInputs(np.zeros(B, np.float32), np.tile(fn(0, (0,))[2], (B, 1)), legal)
    model = PathModel(fn, B, A)
    res = run_search(model, roots, cfg, np.random.default_rng(0), add_noise=True)
    depths = set()
    for b in range(B):
        for path in model.paths[b].values():
            assert all(legal[b, a] for a in path), f"illegal action expanded in path {path}"
            depths.add(len(path))
    assert max(depths) >= 3  # the tree did go deep
    assert (res.visit_counts[~legal] == 0).all()


def test_dirichlet_noise_statistics():
    # Dirichlet(alpha) over k legal actions has mean 1/k per action
    B, A = 4000, 5
    logits = np.zeros((B, A), np.float32)
    mask = np.ones((B, A), bool)
    mask[:, 3:] = False
    p = root_prior(logits, mask, np.random.default_rng(0), True, alpha=0.3, fraction=1.0)
    np.testing.assert_allclose(p[:, :3].mean(axis=0), 1 / 3, atol=0.02)
    assert (p[:, 3:] == 0).all()
    # variance of a Dirichlet(0.3, 0.3, 0.3) marginal: a(a0 - a) / (a0^2 (a0 + 1)) = 0.3*0.6/(0.81*1.9)
    assert p[:, 0].var() == pytest.approx(0.3 * 0.6 / (0.81 * 1.9), rel=0.1)


def test_deterministic_given_rng_and_noise_changes_result():
    cfg = SearchConfig(num_simulations=30)
    B, A = 4, 5
    roots = random_roots(B, A, 4)
    # uniform logits everywhere: many exact ties, broken by the generator
    fn = lambda b, path: (np.float32(0.1 * len(path)), np.float32(0.0), np.zeros(A, np.float32))  # noqa: E731

    def go(seed, noise):
        return run_search(PathModel(fn, B, A), roots, cfg, np.random.default_rng(seed), add_noise=noise)

    for noise in (False, True):
        r1, r2 = go(11, noise), go(11, noise)
        np.testing.assert_array_equal(r1.visit_counts, r2.visit_counts)
        np.testing.assert_array_equal(r1.root_value, r2.root_value)
    assert not np.array_equal(go(11, True).visit_counts, go(12, True).visit_counts)


def test_ties_broken_uniformly():
    # a single root with 4 equal actions and identical children: the first simulation's choice is
    # a pure tie (Nc = 0, empty min-max) and must be uniform over the legal actions
    cfg = SearchConfig(num_simulations=1)
    A = 4
    fn = lambda b, path: (np.float32(0), np.float32(0), np.zeros(A, np.float32))  # noqa: E731
    B = 2000
    roots = RootInputs(np.zeros(B, np.float32), np.zeros((B, A), np.float32), np.ones((B, A), bool))
    res = run_search(PathModel(fn, B, A), roots, cfg, np.random.default_rng(0), add_noise=False)
    share = res.visit_counts.mean(axis=0)
    np.testing.assert_allclose(share, 0.25, atol=0.04)


def test_bandit_concentrates_on_best_action():
    # value prefix (= reward, the LSTM resets at the root) depends only on the root action
    A = 5
    rewards = np.array([0.1, 0.5, 0.9, 0.3, 0.0], np.float32)

    def fn(b, path):
        return rewards[path[0]], np.float32(0.0), np.zeros(A, np.float32)

    B = 3
    roots = RootInputs(np.zeros(B, np.float32), np.zeros((B, A), np.float32), np.ones((B, A), bool))
    for sims in (50, 200):
        cfg = SearchConfig(num_simulations=sims)
        res = run_search(PathModel(fn, B, A), roots, cfg, np.random.default_rng(0), add_noise=False)
        assert (res.visit_counts.argmax(axis=1) == 2).all()
        assert (res.visit_counts[:, 2] > 0.5 * sims).all()
        np.testing.assert_allclose(res.root_q[:, 2], 0.9, atol=1e-6)  # deeper rewards are 0


def value_prefix_of(step_reward, path, horizon):
    """Value prefix of the node at ``path``: the undiscounted reward sum since the last LSTM reset
    (the reset happens below every depth that is a multiple of ``horizon``)."""
    d = len(path)
    start = ((d - 1) // horizon) * horizon + 1
    return sum(step_reward(path[:k]) for k in range(start, d + 1))


def test_chain_reward_after_three_correct_actions():
    # reward 1 only for the step that completes the action sequence 2, 0, 1; everything else 0
    A, H = 3, 5
    target = (2, 0, 1)

    def step_reward(path):
        return 1.0 if path == target else 0.0

    def fn(b, path):
        return np.float32(value_prefix_of(step_reward, path, H)), np.float32(0.0), np.zeros(A, np.float32)

    B = 2
    cfg = SearchConfig(num_simulations=150, value_prefix_horizon=H)
    roots = RootInputs(np.zeros(B, np.float32), np.zeros((B, A), np.float32), np.ones((B, A), bool))
    res = run_search(PathModel(fn, B, A, H), roots, cfg, np.random.default_rng(0), add_noise=False)
    assert (res.visit_counts.argmax(axis=1) == 2).all()
    assert (res.visit_counts[:, 2] > 0.6 * res.visit_counts.sum(axis=1)).all()
    # Q(root, 2) is a visit-weighted mix of the best line (discount^2 * 1) and exploration (0)
    assert (res.root_q[:, 2] > 0.7).all() and (res.root_q[:, 2] <= 0.997**2 + 1e-6).all()
    assert (res.root_q[:, :2] < 0.2).all()


def test_batch_independence():
    cfg = SearchConfig(num_simulations=40, value_prefix_horizon=3)
    B, A = 7, 6
    roots = random_roots(B, A, 21, mask_p=0.3)
    fn = random_fn(A, 21)
    # the first selection at every node is an exact tie (Nc = 0): fix the tie-break order so the
    # batch and the lone searches break ties alike
    together = run_search(PathModel(fn, B, A, 3), roots, cfg, LowIndexTies(), add_noise=False)
    for b in range(B):
        one = RootInputs(roots.value[b : b + 1], roots.policy_logits[b : b + 1], roots.action_mask[b : b + 1])
        # shift the root index the model sees so it matches position b of the batch
        alone = run_search(
            PathModel(lambda _, path, b=b: fn(b, path), 1, A, 3), one, cfg, LowIndexTies(), False
        )
        np.testing.assert_array_equal(together.visit_counts[b], alone.visit_counts[0])
        assert together.root_value[b] == alone.root_value[0]
        np.testing.assert_array_equal(together.root_q[b], alone.root_q[0])


def test_max_depth_one_expands_only_root_children():
    cfg = SearchConfig(num_simulations=20, max_depth=1)
    B, A = 4, 5
    roots = random_roots(B, A, 8, mask_p=0.3)
    model = PathModel(random_fn(A, 8), B, A)
    res = run_search(model, roots, cfg, np.random.default_rng(0), add_noise=False)
    n_legal = roots.action_mask.sum(axis=1)
    # every legal child is expanded (once, by the first simulations) and nothing deeper exists
    assert (res.visit_counts[roots.action_mask] >= 1).all()
    assert (res.visit_counts.sum(axis=1) == 20).all()
    for b in range(B):
        # (roots that do not expand in a simulation get a dummy call for parent 0, action 0)
        paths = {p for p in model.paths[b].values() if p} - {(0,)}
        assert all(len(p) == 1 for p in paths)
        assert len(paths) == n_legal[b] - roots.action_mask[b, 0]
    # the model is only called while some root still has an unexpanded child
    assert len(model.calls) == n_legal.max()
    # re-visits back up the child's current value, so Q of a root child = its one-step estimate
    fn = random_fn(A, 8)
    for b in range(B):
        for a in np.flatnonzero(roots.action_mask[b]):
            vp, v, _ = fn(b, (int(a),))
            assert res.root_q[b, a] == pytest.approx(vp + cfg.discount * v, rel=1e-5)


def test_max_depth_two_bounds_depth():
    cfg = SearchConfig(num_simulations=60, max_depth=2)
    B, A = 3, 2
    model = PathModel(random_fn(A, 9), B, A)
    res = run_search(model, random_roots(B, A, 9), cfg, np.random.default_rng(0), add_noise=False)
    for b in range(B):
        paths = set(model.paths[b].values())
        assert max(len(p) for p in paths) == 2
        # the most visited child had its A children expanded first, then re-visits, never deeper
        top = int(res.visit_counts[b].argmax())
        assert {(top, 0), (top, 1)} <= paths
        assert res.visit_counts[b, top] > 3


def test_single_simulation_and_single_action():
    cfg = SearchConfig(num_simulations=1)
    roots = RootInputs(np.zeros(2, np.float32), np.zeros((2, 1), np.float32), np.ones((2, 1), bool))
    fn = lambda b, path: (np.float32(1.0), np.float32(2.0), np.zeros(1, np.float32))  # noqa: E731
    res = run_search(PathModel(fn, 2, 1), roots, cfg, np.random.default_rng(0), add_noise=True)
    assert res.visit_counts.tolist() == [[1], [1]]
    # root value = G through the only edge = r + discount * v, discount 0.997^4 per agent step
    np.testing.assert_allclose(res.root_value, 1 + 0.997**4 * 2, rtol=1e-6)
    np.testing.assert_allclose(res.policy, 1.0)


def test_bad_inputs_rejected():
    cfg = SearchConfig(num_simulations=2)
    model = PathModel(random_fn(2, 0), 2, 2)
    bad_mask = RootInputs(
        np.zeros(2, np.float32), np.zeros((2, 2), np.float32), np.array([[1, 0], [0, 0]], bool)
    )
    with pytest.raises(ValueError, match="legal"):
        run_search(model, bad_mask, cfg, np.random.default_rng(0), False)
    bad_shape = RootInputs(np.zeros(3, np.float32), np.zeros((2, 2), np.float32), np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="shapes"):
        run_search(model, bad_shape, cfg, np.random.default_rng(0), False)


def test_buffer_reuse_across_searches_is_clean():
    # the same shapes reuse cached arrays: a search after a different one must match a fresh run
    cfg = SearchConfig(num_simulations=25, value_prefix_horizon=2)
    B, A = 5, 4
    r_a, r_b = random_roots(B, A, 30, 0.3), random_roots(B, A, 31, 0.3)
    fa, fb = random_fn(A, 30), random_fn(A, 31)
    first = run_search(PathModel(fb, B, A, 2), r_b, cfg, np.random.default_rng(0), False)
    run_search(PathModel(fa, B, A, 2), r_a, cfg, np.random.default_rng(0), False)
    again = run_search(PathModel(fb, B, A, 2), r_b, cfg, np.random.default_rng(0), False)
    np.testing.assert_array_equal(first.visit_counts, again.visit_counts)
    np.testing.assert_array_equal(first.root_value, again.root_value)
    # and with a max_depth search (partial expansions leave stale slots) in between
    run_search(
        PathModel(fa, B, A, 2),
        r_a,
        SearchConfig(num_simulations=25, max_depth=1),
        np.random.default_rng(0),
        False,
    )
    again = run_search(PathModel(fb, B, A, 2), r_b, cfg, np.random.default_rng(0), False)
    np.testing.assert_array_equal(first.visit_counts, again.visit_counts)


def test_nested_search_of_same_shape_gets_its_own_buffers():
    # a model that itself runs a search of the same shape (e.g. a nested planner) while the outer
    # search holds the cached buffers: both must stay correct
    cfg = SearchConfig(num_simulations=15)
    B, A = 3, 4
    roots = random_roots(B, A, 40)
    fn = random_fn(A, 40)
    plain = run_search(PathModel(fn, B, A), roots, cfg, LowIndexTies(), False)

    class Nesting(PathModel):
        def recurrent(self, parent, action, child, reset_lstm):
            inner = run_search(PathModel(fn, B, A), roots, cfg, LowIndexTies(), False)
            np.testing.assert_array_equal(inner.visit_counts, plain.visit_counts)
            return super().recurrent(parent, action, child, reset_lstm)

    nested = run_search(Nesting(fn, B, A), roots, cfg, LowIndexTies(), False)
    np.testing.assert_array_equal(nested.visit_counts, plain.visit_counts)


# --------------------------------------------------------------------------- select_action


def test_select_action_deterministic_argmax_with_random_ties():
    counts = np.array([[1, 5, 2], [3, 3, 0], [0, 0, 7]])
    rng = np.random.default_rng(0)
    picks = np.stack([select_action(counts, 1.0, rng, deterministic=True) for _ in range(400)])
    assert (picks[:, 0] == 1).all() and (picks[:, 2] == 2).all()
    assert set(picks[:, 1].tolist()) == {0, 1}  # the 3-3 tie goes either way
    assert abs((picks[:, 1] == 0).mean() - 0.5) < 0.1
    a1 = select_action(counts, 1.0, np.random.default_rng(3), deterministic=True)
    a2 = select_action(counts, 1.0, np.random.default_rng(3), deterministic=True)
    np.testing.assert_array_equal(a1, a2)
    assert a1.dtype == np.int64


def test_select_action_temperature():
    counts = np.tile(np.array([[10, 30, 60, 0]]), (20000, 1))
    a = select_action(counts, 1.0, np.random.default_rng(0), deterministic=False)
    freq = np.bincount(a, minlength=4) / a.size
    np.testing.assert_allclose(freq, [0.1, 0.3, 0.6, 0.0], atol=0.015)
    # T = 0.5: p ∝ n^2 = 100, 900, 3600 → 0.0217, 0.1957, 0.7826
    a = select_action(counts, 0.5, np.random.default_rng(1), deterministic=False)
    freq = np.bincount(a, minlength=4) / a.size
    np.testing.assert_allclose(freq, np.array([100, 900, 3600, 0]) / 4600, atol=0.015)
    # T → 0 is the argmax (no overflow)
    a = select_action(counts[:50], 1e-6, np.random.default_rng(2), deterministic=False)
    assert (a == 2).all()
    a = select_action(counts[:50], 0.0, np.random.default_rng(2), deterministic=False)
    assert (a == 2).all()


def test_puct_coefficients_table():
    t = puct_coefficients(3, 1.25, 19652.0)
    assert t[0] == 0.0
    assert t[2] == pytest.approx(math.sqrt(2) * (1.25 + math.log(19655 / 19652)))
