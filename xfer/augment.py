"""Image augmentation for the learner: random shift and intensity (EfficientZero; DrQ / SPR).

Both act on float observations ``[N, C, H, W]`` and draw one transform per sample (all stacked
frames of a sample get the same transform).
"""

from __future__ import annotations

import torch


def random_shift(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each sample by up to ``pad`` pixels with replicated borders: ``[N, C, H, W] -> same`` (any dtype).

    Equivalent to replicate-padding by ``pad`` and cropping at a random offset (DrQ); implemented
    with clamped indices so uint8 inputs stay uint8 and no padded copy is made.
    """
    n, _, h, w = x.shape
    off = torch.randint(-pad, pad + 1, (n, 2), generator=generator).tolist()
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    out = torch.empty_like(x)
    for i, (dy, dx) in enumerate(off):
        rows = (ar_h + dy).clamp_(0, h - 1)
        cols = (ar_w + dx).clamp_(0, w - 1)
        out[i] = x[i].index_select(1, rows).index_select(2, cols)
    return out


def random_intensity(x: torch.Tensor, scale: float = 0.05, generator: torch.Generator | None = None) -> torch.Tensor:
    """Multiply each sample by ``1 + scale * clamp(N(0, 1), -2, 2)``: ``[N, C, H, W] -> same``."""
    noise = torch.randn(x.shape[0], 1, 1, 1, generator=generator, device="cpu").clamp(-2.0, 2.0).to(x.device)
    return x * (1.0 + scale * noise)


def augment(obs_uint8: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 observations ``[N, C, H, W]`` -> augmented float32 in about [0, 1]."""
    x = random_shift(obs_uint8, generator=generator).float().div_(255.0)
    return random_intensity(x, generator=generator)
