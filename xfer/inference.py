"""Glue between the torch world model and the search backends.

A search backend (:class:`SearchBackend`, chosen by ``mcts.backend`` from :data:`SEARCH_BACKENDS`)
takes the network and the root's initial inference as torch tensors and returns the root statistics
(:class:`xfer.mcts.SearchResult`); how it moves data between the network and its tree is its own
business. The ``numpy`` backend (:func:`numpy_search`) runs :func:`xfer.mcts.run_search` through
:class:`NetworkSearchModel`, which keeps every tree node's latent state ``[B, N, C, h, w]`` and LSTM
state ``[B, N, H]`` in preallocated tensors indexed by node id, so the tree only passes node indices
and actions. :func:`search_policy` runs initial inference + the search for a batch of observations
(self-play, evaluation and reanalyse all use it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from xfer.config import ReplayConfig, SearchConfig
from xfer.mcts import RecurrentStep, RootInputs, SearchResult, run_search
from xfer.mcts.edges import SampledEdges
from xfer.nets.efficientzero import EfficientZeroNet, RootOutput


class NetworkSearchModel:
    """Adapter from :class:`EfficientZeroNet` to the search's node-indexed recurrent calls.

    Args:
        net: the network (used in eval mode, without gradients).
        latent: root latents ``[B, C, h, w]``; num_nodes: ``simulations + 1``.
    """

    def __init__(self, net: EfficientZeroNet, latent: torch.Tensor, num_nodes: int) -> None:
        self.net = net
        B = latent.shape[0]
        self.batch = torch.arange(B, device=latent.device)
        self.latents = torch.empty((B, num_nodes, *latent.shape[1:]), device=latent.device)
        self.latents[:, 0] = latent
        H = net.spec.lstm_hidden
        self.h = torch.zeros((B, num_nodes, H), device=latent.device)
        self.c = torch.zeros((B, num_nodes, H), device=latent.device)

    @torch.no_grad()
    def recurrent(self, parent: np.ndarray, action: np.ndarray, child: np.ndarray, reset_lstm: np.ndarray) -> RecurrentStep:
        dev = self.latents.device
        parent_t = torch.from_numpy(np.asarray(parent, dtype=np.int64)).to(dev)
        child_t = torch.from_numpy(np.asarray(child, dtype=np.int64)).to(dev)
        keep = torch.from_numpy(~np.asarray(reset_lstm, dtype=bool)).to(dev).float().unsqueeze(-1)
        latent = self.latents[self.batch, parent_t]
        h = (self.h[self.batch, parent_t] * keep).unsqueeze(0)
        c = (self.c[self.batch, parent_t] * keep).unsqueeze(0)
        # action ids [B] int64, or a Box network's action vectors [B, D] float32 (never cast to ids)
        dtype = np.float32 if self.net.action_dim else np.int64
        act = torch.from_numpy(np.asarray(action, dtype=dtype)).to(dev)
        out = self.net.recurrent_inference(latent, (h, c), act)
        self.latents[self.batch, child_t] = out.latent
        self.h[self.batch, child_t] = out.lstm_state[0][0]
        self.c[self.batch, child_t] = out.lstm_state[1][0]
        return RecurrentStep(
            value_prefix=out.value_prefix.float().cpu().numpy(),
            value=out.value.float().cpu().numpy(),
            policy_logits=out.policy_logits.float().cpu().numpy(),
        )


SearchBackend = Callable[[EfficientZeroNet, RootOutput, np.ndarray, SearchConfig, np.random.Generator, bool],
                         SearchResult]
"""``backend(net, root, action_mask [B, A] bool, cfg, rng, add_noise) -> SearchResult``: a search from the
roots of ``root`` (the network's initial inference, torch tensors on the network's device)."""


def numpy_search(net: EfficientZeroNet, root: RootOutput, action_mask: np.ndarray, cfg: SearchConfig,
                 rng: np.random.Generator, add_noise: bool) -> SearchResult:
    """The ``numpy`` backend: :func:`xfer.mcts.run_search` over :class:`NetworkSearchModel`.

    A network with a Gaussian policy head (``net.action_dim > 0``, a Box action space) searches over
    ``cfg.num_samples`` sampled actions per node (Sampled MuZero, :class:`xfer.mcts.edges.SampledEdges`)
    in the normalised box ``[-1, 1]^D`` (the actor rescales to the environment's bounds); ``action_mask``
    is then unused."""
    model = NetworkSearchModel(net, root.latent, cfg.num_simulations + 1)
    inputs = RootInputs(root.value.float().cpu().numpy(), root.policy_logits.float().cpu().numpy(), action_mask)
    edges = (SampledEdges(len(inputs.value), cfg.num_simulations + 1, cfg.num_samples, -1.0, 1.0, net.action_dim)
             if net.action_dim else None)
    return run_search(model, inputs, cfg, rng, add_noise, edges)


SEARCH_BACKENDS: dict[str, SearchBackend] = {"numpy": numpy_search}
"""``mcts.backend`` -> its search (a plain table: a new backend is a function and a row here)."""


@dataclass
class PolicyOutput:
    """Search (or prior) result for B observations: ``policy [B, A]`` float32 policy target
    (normalised visit counts or completed-Q policy, see ``SearchConfig.policy_target``; the prior
    without search), ``root_value [B]`` float32, ``visit_counts [B, A]`` int32 (zeros without
    search), ``prior_value [B]`` the network's value estimate.

    A Box network's (Sampled MuZero) are over the ``K`` sampled actions of each root (``A = K``), given
    as ``actions [B, K, D]`` float32 in ``[-1, 1]`` and ``samples [B, K, D]`` float32 pre-squash;
    ``None`` for discrete actions."""

    policy: np.ndarray
    root_value: np.ndarray
    visit_counts: np.ndarray
    prior_value: np.ndarray
    actions: np.ndarray | None = None
    samples: np.ndarray | None = None


def masked_softmax(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Softmax over legal actions: ``[B, A]`` float with mask ``[B, A]`` bool -> ``[B, A]``."""
    z = np.where(mask, logits, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@torch.no_grad()
def search_policy(
    net: EfficientZeroNet,
    obs: np.ndarray,
    action_mask: np.ndarray,
    cfg: SearchConfig,
    rng: np.random.Generator,
    add_noise: bool,
    use_search: bool = True,
    device: str | torch.device = "cpu",
    chunk: int = 1024,
) -> PolicyOutput:
    """Run the network (and the search of ``cfg.backend`` when ``use_search``) on observations.

    Args:
        obs: ``[B, *observation.shape]``: uint8 stacked frames ``[B, C, H, W]`` or float32 state vectors ``[B, D]``.
        action_mask: ``[B, A]`` bool legal actions (unused by a Box network, whose search samples
            ``cfg.num_samples`` actions per node; without search it returns that many samples of the
            policy with a uniform policy over them).
        add_noise: Dirichlet noise at the roots (self-play), off for evaluation/reanalyse.
        use_search: False gives what ``cfg.without_search`` names (planning ablations: no search):
            the network prior, or a one-step look-ahead (the search cut at ``max_depth = 1``).
        chunk: roots per search call (bounds memory of the node buffers).
    """
    if not use_search and cfg.without_search == "one_step":
        cfg, use_search = cfg.model_copy(update={"max_depth": 1}), True
    net.eval()
    parts = []
    for s in range(0, len(obs), chunk):
        o = torch.from_numpy(obs[s : s + chunk]).to(device)
        m = action_mask[s : s + chunk]
        root = net.initial_inference(o)
        logits = root.policy_logits.float().cpu().numpy()
        value = root.value.float().cpu().numpy()
        if not use_search and net.action_dim:  # K samples of the policy, uniform over them (beta = pi)
            edges = SampledEdges(len(value), 1, cfg.num_samples, -1.0, 1.0, net.action_dim)
            prior = edges.root(value, logits, None, rng, False, cfg)[0].astype(np.float32)
            parts.append(PolicyOutput(prior, value, np.zeros(prior.shape, np.int32), value, edges.actions_[0].copy(),
                                      edges.samples[0].astype(np.float32)))
            continue
        if not use_search:
            prior = masked_softmax(logits, m)
            parts.append(PolicyOutput(prior, value, np.zeros(prior.shape, np.int32), value))
            continue
        res = SEARCH_BACKENDS[cfg.backend](net, root, m, cfg, rng, add_noise)
        parts.append(PolicyOutput(res.policy.astype(np.float32), res.root_value, res.visit_counts, value,
                                  res.actions, res.samples))
    return PolicyOutput(*(None if getattr(parts[0], f) is None else np.concatenate([getattr(p, f) for p in parts])
                          for f in PolicyOutput.__dataclass_fields__))


def reanalyse_policy_fn(
    target_net: EfficientZeroNet,
    latest_net: EfficientZeroNet,
    replay: ReplayConfig,
    search: SearchConfig,
    rng: np.random.Generator,
    device: str | torch.device = "cpu",
):
    """The policy function of reanalyse (MuZero Reanalyse; EfficientZero's reanalyse worker).

    Returns ``fn(obs [M, C, H, W] uint8, mask [M, A] bool) -> policy targets [M, A] float32`` (a Box
    network: ``(visit fractions [M, S], pre-squash sampled actions [M, S, D])``, a fresh sample) that
    searches (or, with ``search.search_for_targets`` false, does what ``search.without_search``
    names: the planning ablations' one-step look-ahead targets) with ``target_net`` (``replay.reanalyse_network == "target"``, EfficientZero) or
    ``latest_net`` (``"latest"``), with Dirichlet root noise when ``replay.reanalyse_noise``
    (EfficientZero re-searches with noise on). Draws noise and tie-breaks from ``rng``.
    """

    def fn(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        net = target_net if replay.reanalyse_network == "target" else latest_net
        out = search_policy(net, obs, mask, search, rng, add_noise=replay.reanalyse_noise,
                            use_search=search.search_for_targets, device=device)
        return out.policy if out.samples is None else (out.policy, out.samples)

    return fn
