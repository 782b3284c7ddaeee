"""Observation decoders for the reconstruction loss (seed 000 sec 3, "MZ+Recon"): a decoder mirroring
the representation network maps a latent state back to the observation it encodes.

Pixels: latent ``[B, C, h, w]`` -> ``[B, obs_channels, S, S]`` float32 in [0, 1] (sigmoid): a
3x3 convolution, then stride-2 transposed convolutions (the encoder's four halvings, 6 -> 96 or
4 -> 64 pixels) from ``C`` planes down to ``stem_channels``, a 3x3 convolution to the observation's
channels, and a resize when ``S`` is not ``h * 16``. States: an MLP ``C -> C -> D``.
"""

from __future__ import annotations

import torch
from torch import nn

from xfer.nets.blocks import conv3x3, mlp
from xfer.nets.sizes import NetSpec

UPSAMPLINGS = 4
"""Stride-2 steps of the pixel decoder: the representation network's two stride-2 convolutions and
two stride-2 pools."""


class PixelDecoder(nn.Module):
    """Latent ``[B, C, h, w]`` float32 -> observation ``[B, obs_channels, size, size]`` float32 in [0, 1]."""

    def __init__(self, spec: NetSpec, obs_channels: int, size: int) -> None:
        super().__init__()
        self.size = size
        c, s = spec.channels, spec.stem_channels
        widths = [c, c, max(s, c // 2), s, s]
        layers: list[nn.Module] = [conv3x3(c, c), nn.BatchNorm2d(c), nn.ReLU()]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1), nn.BatchNorm2d(b), nn.ReLU()]
        layers.append(conv3x3(s, obs_channels))
        self.net = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        x = self.net(latent)
        if x.shape[-1] != self.size:
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return torch.sigmoid(x)


class StateDecoder(nn.Module):
    """Latent ``[B, C, 1, 1]`` -> state vector ``[B, D]`` float32 (unbounded)."""

    def __init__(self, spec: NetSpec, obs_dim: int) -> None:
        super().__init__()
        self.net = mlp([spec.channels, spec.channels, obs_dim])

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.net(latent.flatten(1))
