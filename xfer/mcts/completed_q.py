"""Completed-Q policy targets for small simulation budgets (Danihelka et al. 2022, "Policy
improvement by planning with Gumbel", sections 4-5; the target EfficientZero V2 also uses).

With few simulations the normalised visit counts of a pUCT search stay close to uniform (16
simulations over 6 actions visit each action two or three times), so a policy trained on them
barely moves. The completed-Q target instead improves the network prior with the search's action
values directly::

    pi'(a) = softmax(logits(a) + sigma(q_hat(a)))      over legal actions
    sigma(q) = (c_visit + max_b N(b)) * c_scale * q

where ``q_hat`` is the root children's Q, *completed* for unvisited actions by the mixed value
``v_mix`` and min-max normalised over the root's legal children. Everything here is a pure
function of the root statistics a search already returns, so the search itself is unchanged.
"""

from __future__ import annotations

import numpy as np

from xfer.mcts.tree import masked_softmax


def mixed_value(value: np.ndarray, prior: np.ndarray, visits: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``v_mix`` ``[B]`` (Danihelka et al. 2022, eq. 33): the network value interpolated with the
    prior-weighted Q of the visited children.

    ``v_mix = (v + sum_b N(b) * sum_{visited} pi(b) q(b) / sum_{visited} pi(b)) / (1 + sum_b N(b))``

    Args:
        value: ``[B]`` root value of the network (initial inference).
        prior: ``[B, A]`` network prior (softmax over legal actions, no noise).
        visits: ``[B, A]`` root child visit counts.
        q: ``[B, A]`` root child Q (any value where unvisited).
    """
    visited = visits > 0
    n_sum = visits.sum(axis=1)
    p_vis = np.where(visited, prior, 0.0)
    p_sum = p_vis.sum(axis=1)
    weighted = np.where(visited, p_vis * np.nan_to_num(q), 0.0).sum(axis=1) / np.maximum(p_sum, 1e-12)
    mix = (value + n_sum * weighted) / (1.0 + n_sum)
    return np.where(p_sum > 0, mix, value)


def completed_q_policy(
    logits: np.ndarray,
    mask: np.ndarray,
    visits: np.ndarray,
    q: np.ndarray,
    value: np.ndarray,
    c_visit: float = 50.0,
    c_scale: float = 0.1,
    range_floor: float = 0.0,
) -> np.ndarray:
    """Improved policy ``[B, A]`` float64 from one search's root statistics.

    Args:
        logits: ``[B, A]`` network policy logits at the root (no Dirichlet noise).
        mask: ``[B, A]`` bool legal actions; illegal actions get probability exactly 0.
        visits: ``[B, A]`` root child visit counts; q: ``[B, A]`` their Q (nan where unvisited).
        value: ``[B]`` the network's root value.
        c_visit, c_scale: the sigma constants (50 and 0.1 in the paper).
        range_floor: smallest range ``max - min`` used to normalise the completed Q, in value
            units (the paper: 1e-8). With a floor of, say, 1.0 (one clipped reward) Q differences
            far below it move the target little instead of being stretched to [0, 1]: an untrained
            model's noise then does not turn into a near-deterministic target and behaviour.

    Returns:
        Rows summing to 1 over legal actions. With equal completed Q values the result is the
        prior itself; a higher Q raises an action's probability by up to ``exp(sigma(1))``.
    """
    mask = np.asarray(mask, dtype=bool)
    visits = np.asarray(visits, dtype=np.float64)
    prior = masked_softmax(logits, mask)
    v_mix = mixed_value(np.asarray(value, np.float64), prior, visits, np.asarray(q, np.float64))
    completed = np.where(visits > 0, np.nan_to_num(np.asarray(q, np.float64)), v_mix[:, None])
    lo = np.where(mask, completed, np.inf).min(axis=1, keepdims=True)
    hi = np.where(mask, completed, -np.inf).max(axis=1, keepdims=True)
    q_hat = (completed - lo) / np.maximum(hi - lo, max(range_floor, 1e-8))
    sigma = (c_visit + visits.max(axis=1, keepdims=True)) * c_scale * q_hat
    return masked_softmax(np.asarray(logits, np.float64) + sigma, mask)
