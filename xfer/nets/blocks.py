"""Convolutional building blocks of the EfficientZero networks (XTRA appendix H)."""

from __future__ import annotations

import torch
from torch import nn


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


class ResidualBlock(nn.Module):
    """Pre-activation-free residual block: conv-BN-ReLU-conv-BN, add skip, ReLU.

    With ``stride=2`` or ``in_ch != out_ch`` it is the "residual downsample block" of appendix H:
    the skip path is a strided 3x3 conv. Input ``[B, in_ch, H, W]`` -> ``[B, out_ch, H/stride, W/stride]``.
    """

    def __init__(self, in_ch: int, out_ch: int | None = None, stride: int = 1) -> None:
        super().__init__()
        out_ch = out_ch or in_ch
        self.conv1 = conv3x3(in_ch, out_ch, stride)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = conv3x3(out_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.skip = conv3x3(in_ch, out_ch, stride) if (stride != 1 or in_ch != out_ch) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.skip is None else self.skip(x)
        return torch.relu(out + identity)


def mlp(sizes: list[int], final_bn: bool = False) -> nn.Sequential:
    """Linear layers with BN + ReLU between them; the last layer is plain (or BN'd if ``final_bn``)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        last = i == len(sizes) - 2
        if not last:
            layers += [nn.BatchNorm1d(sizes[i + 1]), nn.ReLU()]
        elif final_bn:
            layers.append(nn.BatchNorm1d(sizes[i + 1]))
    return nn.Sequential(*layers)


def zero_linear(layer: nn.Linear) -> nn.Linear:
    """Zero a linear layer's weight and bias in place (EfficientZero's public code does this for the
    last layer of the value, value-prefix and policy heads).

    Why it matters for a categorical value head (``2S+1`` bins, expectation taken in the transformed
    space): with random initial weights the bins that no target ever reaches keep random, input-
    dependent, asymmetric mass while training empties them, so the expected value carries an offset of
    the order of one reward. Value targets bootstrap from the target network, which contracts such an
    offset only by ``discount ** td_steps`` (0.985) per target refresh, so it outlives a short run;
    with life-loss cuts (target 0 at the cut) a negative offset makes losing a life look better than
    playing on. Zeroed, every never-targeted bin gets identical updates and keeps identical mass, so
    the tails stay symmetric and the expectation follows the targets. Used when
    ``NetConfig.zero_init_heads`` is on (the default, as EfficientZero's ``init_zero``; on Qbert it
    removed the negative values, on UpNDown it made untrained agents play at the random agent's level:
    benchmarks/results/learning.md, fourth and seventh rounds).
    """
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def normalise_latent(latent: torch.Tensor) -> torch.Tensor:
    """Min-max scale each sample's latent state to [0, 1] (MuZero appendix G; EfficientZero).

    ``[B, C, H, W]`` float -> same shape; constant latents map to 0.
    """
    flat = latent.flatten(1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    scale = (hi - lo).clamp_min(1e-5)
    return ((flat - lo) / scale).view_as(latent)
