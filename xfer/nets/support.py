"""Scalar transform and two-hot categorical supports (MuZero appendix F; EfficientZero).

Values and value prefixes are predicted as categorical distributions over ``2 * S + 1`` integer
bins ``-S..S`` in the *transformed* space ``h(x) = sign(x)(sqrt(|x| + 1) - 1) + eps * x`` with
``eps = 0.001`` (reference.md section 2: this form, not the older variant with a sign flip).
"""

from __future__ import annotations

import torch

EPS = 0.001


def scalar_transform(x: torch.Tensor) -> torch.Tensor:
    """h(x) = sign(x)(sqrt(|x|+1) - 1) + 0.001 x, elementwise, any shape, float."""
    return torch.sign(x) * (torch.sqrt(torch.abs(x) + 1.0) - 1.0) + EPS * x


def inverse_scalar_transform(y: torch.Tensor) -> torch.Tensor:
    """Exact inverse of :func:`scalar_transform`, elementwise, any shape, float."""
    inner = torch.sqrt(1.0 + 4.0 * EPS * (torch.abs(y) + 1.0 + EPS)) - 1.0
    return torch.sign(y) * ((inner / (2.0 * EPS)) ** 2 - 1.0)


def scalar_to_two_hot(x: torch.Tensor, support_size: int) -> torch.Tensor:
    """Encode raw scalars as two-hot distributions over the transformed support.

    Args:
        x: ``[...]`` float raw scalars (e.g. n-step value targets).
        support_size: S; the support has ``2S+1`` bins for ``-S..S``.

    Returns:
        ``[..., 2S+1]`` float32 probabilities; ``h(x)`` is clamped to ``[-S, S]`` and split between
        its two neighbouring integer bins so that the expectation equals ``h(x)``.
    """
    y = scalar_transform(x.float()).clamp(-support_size, support_size)
    low = torch.floor(y)
    frac = y - low
    low_idx = (low + support_size).long()
    high_idx = (low_idx + 1).clamp(max=2 * support_size)
    out = torch.zeros(*x.shape, 2 * support_size + 1, dtype=torch.float32, device=x.device)
    out.scatter_add_(-1, low_idx.unsqueeze(-1), (1.0 - frac).unsqueeze(-1))
    out.scatter_add_(-1, high_idx.unsqueeze(-1), frac.unsqueeze(-1))
    return out


def logits_to_scalar(logits: torch.Tensor) -> torch.Tensor:
    """Expected raw scalar of categorical logits ``[..., 2S+1]`` -> ``[...]`` float32."""
    support_size = (logits.shape[-1] - 1) // 2
    bins = torch.arange(-support_size, support_size + 1, device=logits.device, dtype=torch.float32)
    expected = (torch.softmax(logits.float(), dim=-1) * bins).sum(-1)
    return inverse_scalar_transform(expected)
