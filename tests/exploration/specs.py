"""Tiny task specs and hand-written references the exploration tests share (no code of
``xfer.exploration`` is called here)."""

from __future__ import annotations

import numpy as np

from xfer.envs.spec import Box, Discrete, EnvSpec, ObservationSpec

STATES = EnvSpec("toy", "walk", ObservationSpec("state", (6,)), Discrete(3), (0, 1, 2), 100)
"""``[6]`` float32 states, ``Discrete(3)``."""

BOX = EnvSpec("toy", "reach", ObservationSpec("state", (5,)), Box(-1.0, 1.0, (4,)), None, 100)
"""``[5]`` float32 states, ``Box(-1, 1, (4,))`` actions."""

PIXELS = EnvSpec("toy", "screen", ObservationSpec("pixels", (6, 96, 96), stack=2), Discrete(5), (0, 2, 4), 100)
"""Two stacked RGB frames ``[6, 96, 96]`` uint8 (oldest first), ``Discrete(5)`` with 3 legal actions."""


def grey_48(obs: np.ndarray) -> np.ndarray:
    """``[N, 6, 96, 96]`` uint8 -> ``[N, 1, 48, 48]`` float64: the last RGB frame's channel mean in 2x2
    block means."""
    last = obs[:, 3:].astype(np.float64).mean(1)
    n = len(obs)
    return last.reshape(n, 48, 2, 48, 2).mean((2, 4))[:, None]


def normalise_by_hand(seen: list[np.ndarray], x: np.ndarray, clip: float) -> np.ndarray:
    """Whiten ``x`` with the moments of every row of ``seen`` pooled with RND's prior (count 1e-4,
    mean 0, variance 1), clipped: ``clip((x - mean) / sqrt(var + 1e-8), -clip, clip)`` in float64."""
    rows = np.concatenate([np.asarray(s, np.float64) for s in seen])
    n = 1e-4 + len(rows)
    mean = rows.sum(0) / n
    var = (1e-4 * 1.0 + np.square(rows).sum(0)) / n - mean**2
    return np.clip((x - mean) / np.sqrt(var + 1e-8), -clip, clip)


def leaky(x: np.ndarray) -> np.ndarray:
    """LeakyReLU with torch's default slope 0.01."""
    return np.where(x > 0, x, 0.01 * x)
