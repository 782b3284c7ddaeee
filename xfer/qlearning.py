"""The controlled Q-learning baseline of seed 000 (appendix A.2): the targets and action values.

The baseline keeps MuZero's network and replay and becomes model-free by how it learns and acts:
``Q(s, a) = r_hat(s, a) + gamma * V(g(s, a))`` from a one-step expansion of the model (reward from
the dynamics' value-prefix head, value from the prediction head), epsilon-greedy acting on it, and
``n``-step Q-learning targets with the target network ``xi``:

    Q_target(s_t, a_t) = sum_{i=0}^{n-1} gamma^i r_{t+i} + gamma^n max_a Q_xi(s_{t+n}, a)      (Eq. 1)

Taking ``r_hat_t = r_t`` (the reward loss is MuZero's own), the value of the state after ``(s_t, a_t)``
is trained on

    V_target = sum_{i=1}^{n-1} gamma^{i-1} r_{t+i} + gamma^{n-1} max_a Q_xi(s_{t+n}, a)          (Eq. 2)

with the value cross-entropy of MuZero. ``QL`` trains the dynamics one step; ``QL+Model`` unrolls
``K = 5`` value-equivalent steps.

Continuous actions (Meta-World): the maximum over the whole action space is out of reach, so, as the
paper does after Sampled MuZero, it is taken over a sample of ``K`` actions (:func:`box_candidates`).
The paper does not say where the sample comes from; the baseline learns no policy (its policy loss is
0), so ours is uniform over the box, drawn afresh for every state (acting and every bootstrap). Units: agent steps; rewards as stored for learning (clipped or not
by the suite's protocol).
"""

from __future__ import annotations

import numpy as np
import torch

from xfer.nets.efficientzero import EfficientZeroNet


def one_step_q_values(net: EfficientZeroNet, latent: torch.Tensor, discount: float,
                      candidates: torch.Tensor | None = None) -> torch.Tensor:
    """``Q(s, a) = r_hat(s, a) + discount * V(g(s, a))`` for every action, by a one-step expansion.

    Args:
        latent: ``[B, C, h, w]`` float32 latent states (from the representation network).
        discount: per agent step.
        candidates: for a Box network, the actions to score, ``[B, K, D]`` float32 in ``[-1, 1]``
            (:func:`box_candidates`); ``None`` for a discrete one (every action id).

    Returns:
        ``[B, A]`` float32 (``A = net.num_actions``; ``[B, K]`` over the candidates of a Box network); the
        reward is the value prefix of one step from a fresh LSTM state, i.e. the first step's reward.
    """
    B = latent.shape[0]
    if candidates is None:
        A = net.num_actions
        actions = torch.arange(A, device=latent.device).repeat(B)
    else:
        A = candidates.shape[1]
        actions = candidates.reshape(B * A, -1).to(latent.device)
    rep = latent.repeat_interleave(A, dim=0)  # [B * A, ...]: every action of sample b together
    out = net.recurrent_inference(rep, net.initial_lstm_state(B * A, latent.device), actions)
    return (out.value_prefix + discount * out.value).view(B, A)


def box_candidates(rng: np.random.Generator, batch: int, k: int, dim: int) -> np.ndarray:
    """``k`` actions per state, uniform in the normalised box: ``[batch, k, dim]`` float32 in ``[-1, 1]``
    (the Q-learning baseline's sample to maximise over on a Box action space)."""
    return rng.uniform(-1.0, 1.0, size=(batch, k, dim)).astype(np.float32)


def epsilon_greedy(q: np.ndarray, legal: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Actions ``[B]`` int64: with probability ``epsilon`` a uniform legal action, else the legal
    argmax of ``q`` ``[B, A]`` (ties to the lowest id). ``legal``: ``[B, A]`` or ``[A]`` bool.

    Raises:
        ValueError: ``epsilon`` outside [0, 1] or a row without a legal action.
    """
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    legal = np.broadcast_to(legal, q.shape)
    if not legal.any(axis=1).all():
        raise ValueError("every row needs a legal action")
    greedy = np.where(legal, q, -np.inf).argmax(axis=1)
    explore = rng.random(len(q)) < epsilon
    uniform = np.array([rng.choice(np.flatnonzero(row)) for row in legal])
    return np.where(explore, uniform, greedy).astype(np.int64)


def nstep_q_target(rewards: np.ndarray, bootstrap_q: np.ndarray, steps: np.ndarray, discount: float) -> np.ndarray:
    """Eq. 1: ``sum_{i<m} gamma^i r_{t+i} + [m = n] gamma^n max_a Q_xi(s_{t+n}, a)``.

    Args:
        rewards: ``[B, n]`` float32, ``r_t .. r_{t+n-1}`` (entries past an episode's end are ignored).
        bootstrap_q: ``[B, A]`` ``Q_xi(s_{t+n}, .)`` (legal actions only: mask the rest to -inf).
        steps: ``[B]`` int, ``m``: the rewards that belong to the episode (``n`` when no terminal
            state comes before ``t + n``; then the target bootstraps, otherwise it does not).

    Returns:
        ``[B]`` float64.
    """
    n = rewards.shape[1]
    k = np.arange(n)
    inside = k[None, :] < steps[:, None]
    ret = (rewards * discount ** k[None, :] * inside).sum(1)
    boot = np.where(steps >= n, discount**n * bootstrap_q.max(axis=1), 0.0)
    return ret + boot


def ql_value_target(rewards: np.ndarray, bootstrap_q: np.ndarray, steps: np.ndarray, discount: float) -> np.ndarray:
    """Eq. 2: the value target of the state after ``(s_t, a_t)``,
    ``sum_{i=1}^{m-1} gamma^{i-1} r_{t+i} + [m = n] gamma^{n-1} max_a Q_xi(s_{t+n}, a)``, i.e.
    ``(Q_target - r_t) / gamma``. Arguments as :func:`nstep_q_target`; ``[B]`` float64.
    """
    return (nstep_q_target(rewards, bootstrap_q, steps, discount) - rewards[:, 0] * (steps > 0)) / discount
