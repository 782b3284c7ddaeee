"""Image augmentation for the learner: random shift and intensity (EfficientZero; DrQ / SPR).

Both act on float observations ``[N, C, H, W]`` and draw one transform per sample (all stacked
frames of a sample get the same transform).
"""

from __future__ import annotations

import torch


def random_shift(x: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each sample by up to ``pad`` pixels with replicated borders: ``[N, C, H, W] -> same`` (any dtype).

    Equivalent to replicate-padding by ``pad`` and cropping at a random offset (DrQ); implemented
    as one advanced-indexing gather with clamped indices, so uint8 inputs stay uint8 and no padded
    copy is made. The result is in channels-last memory layout (what the convolutions want).
    """
    n, _, h, w = x.shape
    off = torch.randint(-pad, pad + 1, (n, 2, 1), generator=generator).to(x.device)
    rows = (torch.arange(h, device=x.device) + off[:, 0]).clamp_(0, h - 1)  # [N, H]
    cols = (torch.arange(w, device=x.device) + off[:, 1]).clamp_(0, w - 1)  # [N, W]
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    # Advanced indices around a slice put their dims first: [N, H, W, C], i.e. NCHW channels-last.
    return x[batch, :, rows.view(n, h, 1), cols.view(n, 1, w)].permute(0, 3, 1, 2)


def intensity_scale(n: int, scale: float = 0.05, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample factors ``1 + scale * clamp(N(0, 1), -2, 2)``: ``[n, 1, 1, 1]`` float32 (on CPU)."""
    return 1.0 + scale * torch.randn(n, 1, 1, 1, generator=generator).clamp(-2.0, 2.0)


def augment(obs_uint8: torch.Tensor, generator: torch.Generator | None = None,
            dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 observations ``[N, C, H, W]`` -> random shift + intensity, in about [0, 1].

    Returns ``dtype`` (float32, or bfloat16 for a network computing in bf16) in channels-last
    layout; the intensity factor and the 1/255 scaling are one in-place multiply.
    """
    x = random_shift(obs_uint8, generator=generator).to(dtype)
    return x.mul_((intensity_scale(x.shape[0], generator=generator) / 255.0).to(x.device, dtype))
