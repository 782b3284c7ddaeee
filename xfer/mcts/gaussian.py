"""The policy of Sampled MuZero over a ``Box`` action space (Hubert et al. 2021, section 4), in numpy.

For continuous actions the prediction network's policy head gives ``2 * D`` numbers per state: the
mean ``mu [D]`` and the log standard deviation ``log_sigma [D]`` of a diagonal Gaussian over
*pre-squash* actions ``u`` in R^D. The action the environment and the dynamics network receive is

    a = low + (tanh(u) + 1) / 2 * (high - low)           (every sample lies inside the Box)

The search samples ``K`` actions per node from ``beta`` and plans over that set only. Densities are
taken over ``u``: the tanh change of variables multiplies ``pi(a)`` and ``beta(a)`` by the same
Jacobian, so the ratio ``pi / beta`` of the prior correction and the policy loss's gradient (the
Jacobian does not depend on the network) are the same over ``u`` as over ``a``. Replay therefore
stores the sampled ``u`` (exact) beside the taken action ``a``.

Sampling distribution: ``beta = pi`` (the paper's choice) at every node; at the root of a self-play
search optionally ``beta = pi^(1/tau)`` (for a Gaussian: the same mean, ``sigma * sqrt(tau)``;
``mcts.sample_temperature``), where the prior correction ``pi / beta`` then keeps the search
unbiased.
"""

from __future__ import annotations

import math

import numpy as np

LOG_STD_MIN = -5.0
"""Lower clip of the policy head's log standard deviation (sigma >= 0.0067 in u units)."""
LOG_STD_MAX = 2.0
"""Upper clip of the log standard deviation (sigma <= 7.4: tanh(u) then covers the Box almost uniformly)."""
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def split_params(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``params [B, 2D]`` float (the policy head's output) -> ``(mu [B, D], log_sigma [B, D])`` float64,
    ``log_sigma`` clipped to ``[LOG_STD_MIN, LOG_STD_MAX]``.

    Raises:
        ValueError: ``params`` is not ``[B, 2D]`` with ``D >= 1``.
    """
    p = np.asarray(params, np.float64)
    if p.ndim != 2 or p.shape[1] < 2 or p.shape[1] % 2:
        raise ValueError(f"Gaussian policy parameters are [B, 2D] (mean, log std), got {p.shape}")
    d = p.shape[1] // 2
    return p[:, :d], np.clip(p[:, d:], LOG_STD_MIN, LOG_STD_MAX)


def log_prob(u: np.ndarray, mu: np.ndarray, log_sigma: np.ndarray) -> np.ndarray:
    """Log-density of pre-squash actions ``u [B, K, D]`` under the diagonal Gaussians ``(mu, log_sigma)
    [B, D]`` -> ``[B, K]`` float64 (summed over the ``D`` dimensions)."""
    z = (np.asarray(u, np.float64) - mu[:, None]) * np.exp(-log_sigma)[:, None]
    return (-0.5 * z * z - log_sigma[:, None] - _LOG_SQRT_2PI).sum(axis=-1)


def sample(mu: np.ndarray, log_sigma: np.ndarray, k: int, rng: np.random.Generator,
           temperature: float = 1.0) -> np.ndarray:
    """``k`` pre-squash actions per row from ``N(mu, (sigma * sqrt(temperature))^2)`` -> ``[B, k, D]``
    float64 (``temperature = 1``: the policy itself; ``pi^(1/tau)`` of a Gaussian is this)."""
    eps = rng.standard_normal((mu.shape[0], k, mu.shape[1]))
    return mu[:, None] + np.exp(log_sigma)[:, None] * math.sqrt(temperature) * eps


def squash(u: np.ndarray, low: float, high: float) -> np.ndarray:
    """Pre-squash ``u [..., D]`` -> actions in the Box ``low + (tanh(u) + 1) / 2 * (high - low)``, float32."""
    return (low + (np.tanh(u) + 1.0) * (0.5 * (high - low))).astype(np.float32)


def sampled_prior(log_pi: np.ndarray, log_beta: np.ndarray) -> np.ndarray:
    """The prior the search's pUCT rule uses over ``K`` sampled actions: ``(beta_hat / beta) * pi``
    normalised over the sample (Hubert et al. 2021, eq. 5), ``[B, K]`` float64.

    ``log_pi [B, K]``, ``log_beta [B, K]``: log-densities of each sample under the policy and under
    the distribution it was drawn from. ``beta_hat`` is the empirical distribution of the sample: each
    of the ``K`` draws has mass ``1 / K`` (continuous samples are distinct almost surely; an exact
    repeat keeps its own edge, whose masses add up to the repeated action's ``beta_hat``). With
    ``beta = pi`` the prior is uniform, ``1 / K``.
    """
    w = np.asarray(log_pi, np.float64) - np.asarray(log_beta, np.float64)
    w = np.exp(w - w.max(axis=1, keepdims=True))
    return w / w.sum(axis=1, keepdims=True)
