"""How an agent turns observations into actions, for self-play and for evaluation.

Two agents act here:

- **search** (:class:`~xfer.config.SearchConfig`): MuZero/EfficientZero. Self-play samples from the
  root visit counts (or the completed-Q policy, :func:`acting_scores`) at a temperature, with Dirichlet
  root noise; evaluation takes their argmax without noise (reference.md section 1). Where the planning
  ablations turn search off (``search_for_acting`` / ``search_at_eval`` false; Hamrick et al. 2021),
  the agent samples from (self-play) or takes the argmax of (evaluation) what
  ``mcts.without_search`` gives instead: the policy head, or a one-step look-ahead.
- **Q-learning** (:class:`QActing`): the controlled baseline of seed 000 appendix A.2, epsilon-greedy
  on one-step ``Q(s, a) = r_hat(s, a) + gamma V(g(s, a))`` (:func:`xfer.qlearning.one_step_q_values`).

:func:`act` is the one entry point; both return the :class:`~xfer.inference.PolicyOutput` that
self-play stores with each step (policy target, root value).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xfer.config import SearchConfig
from xfer.inference import PolicyOutput, search_policy
from xfer.mcts import select_action
from xfer.nets.efficientzero import EfficientZeroNet
from xfer.qlearning import box_candidates, epsilon_greedy, one_step_q_values


@dataclass(frozen=True)
class QActing:
    """Epsilon-greedy acting on one-step Q-values (seed 000 appendix A.2).

    ``epsilon``: probability of a uniform legal action; ``discount``: per agent step (``Q = r_hat +
    discount * V``); ``num_samples``: on a Box action space, the uniform sample of actions the maximum is
    taken over (:func:`xfer.qlearning.box_candidates`).
    """

    epsilon: float
    discount: float
    num_samples: int = 20


Acting = SearchConfig | QActing
"""How an agent acts: by search (MuZero) or epsilon-greedy on Q-values (the Q-learning baseline)."""


def acting_scores(out: PolicyOutput, mcts: SearchConfig) -> np.ndarray:
    """What an agent acts on after a search, ``[B, A]``: the root visit counts (EfficientZero), or with
    ``mcts.policy_target = "completed_q"`` the completed-Q improved policy. With few simulations the
    visits follow the prior, so acting on them ignores what the search learned about Q (Danihelka et
    al. 2022 act on the improved policy too); acting on it keeps behaviour and policy target the same."""
    return out.policy if mcts.policy_target == "completed_q" else out.visit_counts


@torch.no_grad()
def q_policy(net: EfficientZeroNet, obs: np.ndarray, mask: np.ndarray, acting: QActing, rng: np.random.Generator,
             device: str | torch.device = "cpu") -> tuple[np.ndarray, PolicyOutput]:
    """Epsilon-greedy actions ``[B]`` int64 and the step's :class:`PolicyOutput`: ``policy`` the
    epsilon-greedy distribution ``[B, A]`` over legal actions, ``root_value`` ``max_a Q`` (legal),
    ``visit_counts`` zeros, ``prior_value`` the value head. ``obs`` as :func:`search_policy`.

    A Box network scores ``acting.num_samples`` uniform actions per state instead (``mask`` unused) and
    returns actions ``[B, D]`` float32, with the candidates as the output's ``actions`` (and their
    pre-squash values as ``samples``) and the distribution over them as ``policy``."""
    net.eval()
    o = torch.from_numpy(obs).to(device)
    root = net.initial_inference(o)
    cand = None
    if net.action_dim:
        cand = box_candidates(rng, len(obs), acting.num_samples, net.action_dim)
        mask = np.ones((len(obs), acting.num_samples), bool)
    q = one_step_q_values(net, root.latent, acting.discount,
                          None if cand is None else torch.from_numpy(cand)).float().cpu().numpy()
    q_legal = np.where(mask, q, -np.inf)
    greedy = q_legal.argmax(axis=1)
    legal_n = mask.sum(axis=1, keepdims=True)
    policy = (acting.epsilon * mask / legal_n).astype(np.float32)
    policy[np.arange(len(q)), greedy] += 1.0 - acting.epsilon
    actions = epsilon_greedy(q, mask, acting.epsilon, rng)
    value = root.value.float().cpu().numpy()
    out = PolicyOutput(policy, q_legal.max(axis=1).astype(np.float32), np.zeros(q.shape, np.int32), value)
    if cand is not None:
        out.actions, out.samples = cand, np.arctanh(np.clip(cand, -1 + 1e-6, 1 - 1e-6)).astype(np.float32)
        return cand[np.arange(len(obs)), actions], out
    return actions, out


def act(net: EfficientZeroNet, obs: np.ndarray, mask: np.ndarray, acting: Acting, rng: np.random.Generator,
        explore: bool, temperature: float = 1.0, device: str | torch.device = "cpu") -> tuple[np.ndarray, PolicyOutput]:
    """Actions ``[B]`` int64 for observations ``obs`` (``[B, C, H, W]`` uint8 or ``[B, D]`` float32)
    with legal actions ``mask`` ``[B, A]`` bool, and the step's :class:`PolicyOutput`.

    A Box network (Sampled MuZero) acts on its root's sampled actions the same way (the most visited
    one in evaluation, visit counts at ``temperature`` in self-play) and returns the chosen actions
    ``[B, D]`` float32 in the normalised box ``[-1, 1]^D``, which Box suites take as they are
    (Meta-World's own bounds; a suite with other bounds rescales in its adapter).

    ``explore``: self-play (root noise, sampling at ``temperature``; Q-learning: its epsilon) or
    evaluation (no noise, argmax; Q-learning: the epsilon it was given). Draws from ``rng``.
    """
    if isinstance(acting, QActing):
        return q_policy(net, obs, mask, acting, rng, device)
    searched = acting.search_for_acting if explore else acting.search_at_eval
    out = search_policy(net, obs, mask, acting, rng, add_noise=explore, use_search=searched, device=device)
    if searched:
        edge = select_action(acting_scores(out, acting), temperature if explore else 1.0, rng, deterministic=not explore)
    elif explore:
        edge = np.array([rng.choice(len(p), p=p) for p in out.policy])
    else:
        edge = np.argmax(out.policy, axis=1)
    if out.actions is not None:  # Sampled MuZero: the chosen edge's sampled action
        return out.actions[np.arange(len(edge)), edge], out
    return edge, out
