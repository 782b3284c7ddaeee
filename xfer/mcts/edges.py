"""What each edge of the search tree stands for: the tree works on edge indices, the model on actions.

The tree (:mod:`xfer.mcts.tree`) gives every node ``E`` edge slots and selects, expands and backs up
by edge index. An edge table makes each node's prior over its edges (at the root and when the
search expands a node) and turns the edges a simulation selected into the actions the model's
dynamics network takes:

* :class:`DiscreteEdges`: edge ``k`` is action id ``k`` (``E = A``, nothing stored); the prior is the
  softmax of the policy logits over the legal actions.
* :class:`SampledEdges` (Sampled MuZero, Hubert et al. 2021; continuous control, Meta-World):
  ``E = K`` actions sampled per node from the Gaussian policy (:mod:`xfer.mcts.gaussian`), stored
  ``[N, B, K, D]`` when the node is expanded; the prior is the sample-based ``(beta_hat / beta) *
  pi``. The tree needs no change.
"""

from __future__ import annotations

import math

import numpy as np

from xfer.config import SearchConfig
from xfer.mcts import gaussian
from xfer.mcts.tree import masked_softmax


def dirichlet_mix(prior: np.ndarray, mask: np.ndarray, rng: np.random.Generator, alpha: float,
                  fraction: float) -> np.ndarray:
    """``(1 - fraction) * prior + fraction * Dirichlet(alpha)`` over each row's legal entries
    (``prior [B, E]`` float64, ``mask [B, E]`` bool) -> ``[B, E]`` float64 (MuZero's root noise).

    The Dirichlet sample is drawn as normalised independent ``Gamma(alpha, 1)`` variables over the
    legal entries (exactly ``Dirichlet(alpha, ..., alpha)`` there), so rows with different numbers of
    legal entries are drawn in one call; illegal entries keep their prior. A row whose gammas all
    underflow (tiny ``alpha``) gets uniform legal noise.
    """
    g = rng.standard_gamma(alpha, size=prior.shape) * mask
    tot = g.sum(axis=1, keepdims=True)
    bad = tot[:, 0] <= 0.0
    if bad.any():
        g[bad] = mask[bad]
        tot[bad] = mask[bad].sum(axis=1, keepdims=True)
    return (1.0 - fraction) * prior + fraction * (g / tot)


def root_prior(
    logits: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    add_noise: bool,
    alpha: float,
    fraction: float,
) -> np.ndarray:
    """Root prior ``[B, A]`` float64 of a discrete search: legal-only softmax of ``logits [B, A]``,
    optionally mixed with Dirichlet noise over the legal actions (:func:`dirichlet_mix`). Illegal
    actions keep prior 0. Consumes the generator only when noise is added."""
    prior = masked_softmax(logits, mask)
    if add_noise and fraction > 0.0:
        prior = dirichlet_mix(prior, mask, rng, alpha, fraction)
    return prior


class DiscreteEdges:
    """Edge ``k`` of every node is action id ``k`` of a ``Discrete(num_edges)`` space."""

    def __init__(self, num_edges: int) -> None:
        self.num_edges = num_edges

    def root(self, value: np.ndarray, logits: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator,
             add_noise: bool, cfg: SearchConfig) -> tuple[np.ndarray, np.ndarray]:
        """``(prior [B, A] float64, legal [B, A] bool)`` of the roots (:func:`root_prior`).

        Raises:
            ValueError: shapes other than ``value [B]``, ``logits [B, A]``, ``mask [B, A]``, or a row
                of ``mask`` with no legal action.
        """
        logits = np.asarray(logits)
        mask = np.asarray(mask, dtype=bool)
        value = np.asarray(value)
        if logits.ndim != 2 or mask.shape != logits.shape or value.shape != logits.shape[:1]:
            raise ValueError(f"root shapes must be value [B], policy_logits [B, A], action_mask [B, A]; got "
                             f"{value.shape}, {logits.shape}, {mask.shape}")
        if not mask.any(axis=1).all():
            raise ValueError("every root needs at least one legal action (action_mask row all False)")
        return root_prior(logits, mask, rng, add_noise, cfg.dirichlet_alpha, cfg.exploration_fraction), mask

    def node_logits(self, child: int, logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Prior logits ``[B, A]`` of the nodes expanded as ``child``: the policy logits themselves."""
        return logits

    def actions(self, parent: np.ndarray, edge: np.ndarray) -> np.ndarray:
        """The actions of the selected edges: ``parent [B]`` int32 node ids (unused: every node has the
        same edges), ``edge [B]`` int64 -> ``[B]`` int64 action ids."""
        return edge


class SampledEdges:
    """Sampled MuZero's edges: ``K`` actions drawn per node from the Gaussian policy head.

    Args:
        batch: roots ``B``; num_nodes: ``N = simulations + 1`` node slots per root; k: samples per node.
        low, high: the Box bounds (actions are squashed into them, :func:`xfer.mcts.gaussian.squash`).
        action_dim: ``D``.

    Arrays (node-major like the tree): ``samples [N, B, K, D]`` float64 pre-squash ``u``, ``actions
    [N, B, K, D]`` float32 squashed ``a``; node ``n`` of root ``b`` owns ``[n, b]``, written when the
    node is expanded (root: :meth:`root`).

    Sampling rule: inner nodes draw from ``beta = pi`` (prior uniform ``1 / K``). The root draws from
    ``pi`` for evaluation and reanalyse, and in self-play (``add_noise``) from ``pi^(1/tau)`` with
    ``tau = cfg.sample_temperature`` and corrects the prior by ``pi / beta``
    (:func:`xfer.mcts.gaussian.sampled_prior`), then mixes in MuZero's Dirichlet noise over the ``K``
    edges (``dirichlet_alpha``, ``exploration_fraction``). Hubert et al. name ``beta``'s temperature
    and noise as the exploration means without fixing one recipe; this is ours.
    """

    def __init__(self, batch: int, num_nodes: int, k: int, low: float, high: float, action_dim: int) -> None:
        if k < 1:
            raise ValueError(f"a sampled search needs k >= 1 samples per node, got {k}")
        self.num_edges = k
        self.B, self.D, self.low, self.high = batch, action_dim, float(low), float(high)
        self.samples = np.zeros((num_nodes, batch, k, action_dim))
        self.actions_ = np.zeros((num_nodes, batch, k, action_dim), np.float32)
        self._arange = np.arange(batch)

    def _check(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, log_sigma = gaussian.split_params(params)
        if mu.shape != (self.B, self.D):
            raise ValueError(f"policy parameters must be [B, 2D] = [{self.B}, {2 * self.D}] for a Box of "
                             f"{self.D} dims, got {np.shape(params)}")
        return mu, log_sigma

    def _store(self, node: int, u: np.ndarray) -> None:
        self.samples[node] = u
        self.actions_[node] = gaussian.squash(u, self.low, self.high)

    def root(self, value: np.ndarray, params: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator,
             add_noise: bool, cfg: SearchConfig) -> tuple[np.ndarray, np.ndarray]:
        """Sample the roots' ``K`` actions and return ``(prior [B, K] float64, legal [B, K] all True)``.

        ``params [B, 2D]``: the roots' policy head (mean, log std); ``mask`` is ignored (a Box has no
        illegal actions).

        Raises:
            ValueError: ``params`` or ``value`` of the wrong shape.
        """
        mu, log_sigma = self._check(params)
        if np.shape(value) != (self.B,):
            raise ValueError(f"root value must be [B] = [{self.B}], got {np.shape(value)}")
        tau = float(cfg.sample_temperature) if add_noise else 1.0
        u = gaussian.sample(mu, log_sigma, self.num_edges, rng, tau)
        self._store(0, u)
        log_pi = gaussian.log_prob(u, mu, log_sigma)
        log_beta = log_pi if tau == 1.0 else gaussian.log_prob(u, mu, log_sigma + 0.5 * math.log(tau))
        prior = gaussian.sampled_prior(log_pi, log_beta)
        legal = np.ones(prior.shape, bool)
        if add_noise and cfg.exploration_fraction > 0.0:
            prior = dirichlet_mix(prior, legal, rng, cfg.dirichlet_alpha, cfg.exploration_fraction)
        return prior, legal

    def node_logits(self, child: int, params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Sample ``K`` actions from ``pi`` for every root's node ``child`` (``params [B, 2D]``) and
        return their prior as logits ``[B, K]`` (``beta = pi``: uniform, all zeros)."""
        mu, log_sigma = self._check(params)
        self._store(child, gaussian.sample(mu, log_sigma, self.num_edges, rng))
        return np.zeros((self.B, self.num_edges))

    def actions(self, parent: np.ndarray, edge: np.ndarray) -> np.ndarray:
        """The squashed actions of the selected edges: ``parent [B]`` int32, ``edge [B]`` int64 ->
        ``[B, D]`` float32."""
        return self.actions_[parent, self._arange, edge]
