"""Batched MCTS driver with EfficientZero semantics (Ye et al. 2021; MuZero appendix B).

:func:`run_search` runs ``cfg.num_simulations`` simulations over ``B`` roots at once. Each
simulation is one batched descent (:meth:`xfer.mcts.tree.Tree.select`), one batched model call for
the ``B`` new leaves (:meth:`SearchModel.recurrent`) and one batched backup. The network side only
sees node ids: root = node 0 and simulation ``s`` creates node ``s + 1`` in every tree, so an
adapter can keep latents and LSTM states in ``[B, num_simulations + 1, ...]`` buffers.

Root rules (EfficientZero): prior = softmax of the logits over legal actions only (illegal prior
0, never selected); with ``add_noise`` the legal part becomes
``(1 - f) * prior + f * Dirichlet(alpha)`` drawn over the legal actions only. The root starts with
0 visits and ``value_sum`` 0 and every simulation backs up through it, so after ``S`` simulations
it has ``S`` visits; the root value from the initial inference (``RootInputs.value``) is therefore
not part of any statistic (as in EfficientZero) and is only validated.

XTRA (Xu et al. 2022) plans with this EfficientZero search unchanged; its planning ablations
(seed 001) only switch where search is used (``SearchConfig.search_for_*``, read by the callers) and
cut the tree depth (``SearchConfig.max_depth``, handled here).

Randomness: ``rng`` draws the Dirichlet noise (only with ``add_noise``) and one pool of
``[B + S, A]`` uniform tie-break values per search; simulation ``s`` adds rows ``s .. s + B - 1``
(times ``TIE_EPS = 1e-9``) to the scores, so exact ties are broken uniformly at random and the
result is a deterministic function of the inputs, the model and the generator state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from xfer.config import SearchConfig
from xfer.mcts.completed_q import completed_q_policy
from xfer.mcts.edges import DiscreteEdges, SampledEdges
from xfer.mcts.tree import TIE_EPS, Tree


@dataclass
class RootInputs:
    """Initial-inference outputs for ``B`` roots.

    ``value [B]`` float32 scalar root value; ``policy_logits [B, A]`` float32;
    ``action_mask [B, A]`` bool, True = legal (at least one True per row).
    """

    value: np.ndarray
    policy_logits: np.ndarray
    action_mask: np.ndarray


@dataclass
class RecurrentStep:
    """Recurrent-inference outputs for the ``B`` new leaves of one simulation.

    ``value_prefix [B]`` float32 scalar value prefix of the new child; ``value [B]`` float32;
    ``policy_logits [B, A]`` float32.
    """

    value_prefix: np.ndarray
    value: np.ndarray
    policy_logits: np.ndarray


class SearchModel(Protocol):
    """What :func:`run_search` needs from the network (the adapter is written elsewhere)."""

    def recurrent(
        self, parent: np.ndarray, action: np.ndarray, child: np.ndarray, reset_lstm: np.ndarray
    ) -> RecurrentStep:
        """Expand one leaf per root.

        ``parent [B]`` int32 node id of the parent within each tree (root = 0), ``action [B]``
        int64, ``child [B]`` int32 node id to store the new latent under (``s + 1`` at simulation
        ``s``, the same for all roots), ``reset_lstm [B]`` bool: True when the parent's depth is a
        multiple of ``value_prefix_horizon`` and the value-prefix LSTM must start from a zero state.

        Under ``max_depth`` some roots may not expand in a simulation; they are still in the batch
        (fixed shape) with ``parent = 0, action = 0, reset_lstm = True``, their outputs are ignored
        and their slot ``child`` stays unused. If no root expands the call is skipped.
        """
        ...


@dataclass
class SearchResult:
    """Search statistics of ``B`` roots.

    ``visit_counts [B, A]`` int32 root child visits; ``root_value [B]`` float32 = root
    ``value_sum / visits``; ``root_q [B, A]`` float32 Q of root children (nan if unvisited);
    ``policy [B, A]`` float32 the policy target: normalised visit counts, or with
    ``SearchConfig.policy_target = "completed_q"`` the completed-Q improved policy
    (:func:`xfer.mcts.completed_q.completed_q_policy`). Agents act on the visit counts, or on the
    completed-Q policy under that target (:func:`xfer.acting.acting_scores`).

    A sampled search (Sampled MuZero) gives these over its ``K`` root edges (``A = K``) and the sampled
    set itself: ``actions [B, K, D]`` float32 in the Box (what the environment steps with) and
    ``samples [B, K, D]`` float32 their pre-squash values (what the policy loss scores); ``None`` for a
    discrete search.
    """

    visit_counts: np.ndarray
    root_value: np.ndarray
    root_q: np.ndarray
    policy: np.ndarray
    actions: np.ndarray | None = None
    samples: np.ndarray | None = None


def run_search(
    model: SearchModel, root: RootInputs, cfg: SearchConfig, rng: np.random.Generator, add_noise: bool,
    edges: DiscreteEdges | SampledEdges | None = None,
) -> SearchResult:
    """Run ``cfg.num_simulations`` EfficientZero simulations over ``B`` roots in lock-step.

    Args:
        model: batched recurrent inference (see :class:`SearchModel`).
        root: initial inference of the ``B`` roots (:class:`RootInputs`).
        cfg: search constants (c1, c2, discount, Dirichlet, min-max delta, LSTM horizon, max depth).
        rng: source of the Dirichlet noise and of the tie-breaking jitter; the result is a
            deterministic function of the model, the inputs and the generator state.
        add_noise: mix Dirichlet noise into the root prior (acting during training).
        edges: what the edges are (:mod:`xfer.mcts.edges`): ``None`` = :class:`DiscreteEdges` over the
            ``A`` columns of ``root.policy_logits``; a :class:`SampledEdges` for Sampled MuZero, whose
            ``root.policy_logits`` and the model's ``policy_logits`` are then Gaussian parameters
            ``[B, 2D]`` and whose actions are ``[B, D]`` float32 vectors.

    Returns:
        :class:`SearchResult` (float32 / int32 arrays; ``[B, K]`` over the sampled edges and with the
        sampled ``actions`` for a sampled search).

    Raises:
        ValueError: inputs of the wrong shape, a root with no legal action, or a sampled search with
            ``policy_target = "completed_q"`` (it needs the prior over the whole action space).
    """
    if edges is None:
        edges = DiscreteEdges(np.shape(root.policy_logits)[-1])
    if isinstance(edges, SampledEdges) and cfg.policy_target != "visits":
        raise ValueError("the sampled search's policy target is the visit fractions of the sampled actions; "
                         "set mcts.policy_target: visits")
    prior, mask = edges.root(root.value, root.policy_logits, root.action_mask, rng, add_noise, cfg)
    B, A = prior.shape
    S = int(cfg.num_simulations)
    tree = Tree(B, S, A, cfg, reuse_buffers=True)
    try:
        tree.set_roots(prior, mask)
        child = np.empty(B, np.int32)
        zero_i32 = np.zeros(B, np.int32)
        zero_i64 = np.zeros(B, np.int64)
        # Tie-break jitter: one pool of B + S uniform rows; simulation s uses rows s .. s + B - 1, so
        # a root sees a fresh row in every simulation (one random draw per search instead of S).
        pool = np.asarray(rng.random((B + S, A)), dtype=np.float64) * TIE_EPS
        for s in range(S):
            sel = tree.select(s, pool[s : s + B])
            if sel.any_expand:
                child.fill(s + 1)
                if sel.all_expand:
                    out = model.recurrent(sel.parent, edges.actions(sel.parent, sel.edge), child, sel.reset_lstm)
                else:
                    e = sel.expand
                    parent = np.where(e, sel.parent, zero_i32)
                    out = model.recurrent(parent, edges.actions(parent, np.where(e, sel.edge, zero_i64)), child,
                                          np.where(e, sel.reset_lstm, True))
                tree.expand(s, out.value_prefix, out.value, edges.node_logits(s + 1, out.policy_logits, rng))
            tree.backup()
        result = _result(tree, root, cfg)
        if isinstance(edges, SampledEdges):
            result.actions, result.samples = edges.actions_[0].copy(), edges.samples[0].astype(np.float32)
        return result
    finally:
        tree.release()


def _result(tree: Tree, root: RootInputs, cfg: SearchConfig) -> SearchResult:
    n, q = tree.child_stats(0)
    root_value = tree.value_sum[: tree.B] / np.maximum(tree.visits[: tree.B], 1)
    if cfg.policy_target == "completed_q":
        policy = completed_q_policy(root.policy_logits, root.action_mask, n, q, root.value, cfg.c_visit, cfg.c_scale,
                                    cfg.q_range_floor)
    else:
        policy = n / np.maximum(n.sum(axis=1, keepdims=True), 1)
    return SearchResult(
        visit_counts=n.astype(np.int32),
        root_value=root_value.astype(np.float32),
        root_q=q.astype(np.float32),
        policy=policy.astype(np.float32),
    )


def select_action(
    visit_counts: np.ndarray, temperature: float, rng: np.random.Generator, deterministic: bool
) -> np.ndarray:
    """Pick one action per root from ``visit_counts [B, A]`` (int or float) → ``[B]`` int64.

    ``deterministic`` (or ``temperature <= 0``): the most visited action, ties broken uniformly at
    random. Otherwise sample with probability proportional to ``visits ** (1 / temperature)``
    (MuZero appendix B visit-count temperature), computed in log space so small temperatures do
    not overflow; unvisited actions are never sampled (a row with no visits samples uniformly).
    """
    n = np.asarray(visit_counts, dtype=np.float64)
    B, A = n.shape
    if deterministic or temperature <= 0.0:
        top = n == n.max(axis=1, keepdims=True)
        return np.argmax(np.where(top, rng.random((B, A)), -1.0), axis=1).astype(np.int64)
    with np.errstate(divide="ignore"):
        logp = np.log(n) / float(temperature)
    empty = ~np.isfinite(logp).any(axis=1)
    logp[empty] = 0.0
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    cdf = np.cumsum(p, axis=1)
    u = rng.random(B) * cdf[:, -1]
    a = (cdf <= u[:, None]).sum(axis=1)
    return np.minimum(a, A - 1).astype(np.int64)
