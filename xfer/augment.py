"""Image augmentation for the learner: random shift and intensity (EfficientZero; DrQ / SPR).

Both act on float observations ``[N, C, H, W]`` and draw one transform per sample (all stacked
frames of a sample get the same transform).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replicate-pad by ``pad`` pixels and crop back at a random offset: ``[N, C, H, W] -> same``."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    off = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator, device="cpu").to(x.device)
    rows = torch.arange(h, device=x.device)[None, :] + off[:, :1]  # [N, H]
    cols = torch.arange(w, device=x.device)[None, :] + off[:, 1:]  # [N, W]
    idx_n = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]  # [N, H, W, C]
    return out.permute(0, 3, 1, 2).contiguous()


def random_intensity(x: torch.Tensor, scale: float = 0.05, generator: torch.Generator | None = None) -> torch.Tensor:
    """Multiply each sample by ``1 + scale * clamp(N(0, 1), -2, 2)``: ``[N, C, H, W] -> same``."""
    noise = torch.randn(x.shape[0], 1, 1, 1, generator=generator, device="cpu").clamp(-2.0, 2.0).to(x.device)
    return x * (1.0 + scale * noise)


def augment(obs_uint8: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 observations ``[N, C, H, W]`` -> augmented float32 in about [0, 1]."""
    x = obs_uint8.float() / 255.0
    return random_intensity(random_shift(x, generator=generator), generator=generator)
