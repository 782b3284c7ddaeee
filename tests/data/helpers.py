"""Small synthetic segments for the offline-dataset tests (real Atari frames:
:func:`xfer.data.synthetic.random_atari_segments`)."""

from __future__ import annotations

import numpy as np

from xfer.envs.atari import NUM_FULL_ACTIONS
from xfer.replay.segment import Segment

MASK = np.zeros(NUM_FULL_ACTIONS, dtype=bool)
MASK[[0, 1, 3, 4]] = True


def synthetic_segment(
    rng: np.random.Generator,
    T: int,
    game: str = "Fake",
    hw: int = 8,
    stack: int = 4,
    mask: np.ndarray = MASK,
    terminal: bool = False,
    final_value: float = float("nan"),
    first_step: int = 0,
) -> Segment:
    """A segment with random contents: frames ``[T + stack, 3, hw, hw]`` uint8, float32 fields
    exactly representable after the float32 round trip."""
    legal = np.flatnonzero(mask)
    dist = rng.random((T, len(mask))).astype(np.float32) * mask
    dist /= dist.sum(1, keepdims=True)
    cuts = rng.random(T) < 0.1
    cuts[-1] |= terminal
    raw = rng.integers(-3, 4, T).astype(np.float32)
    return Segment(
        frames=rng.integers(0, 256, (T + stack, 3, hw, hw), dtype=np.uint8),
        actions=rng.choice(legal, T).astype(np.int64),
        rewards=np.sign(raw),
        raw_rewards=raw,
        cuts=cuts,
        terminal=terminal,
        root_values=rng.standard_normal(T).astype(np.float32),
        visit_dist=dist,
        action_mask=mask.copy(),
        game=game,
        first_step=first_step,
        stack=stack,
        final_value=final_value,
    )


def synthetic_segments(n: int, T: int = 10, seed: int = 0, **kw) -> list[Segment]:
    """``n`` segments of ``T`` steps; every third is terminal, every other has a final value."""
    rng = np.random.default_rng(seed)
    return [
        synthetic_segment(
            rng, T, terminal=i % 3 == 2, final_value=float("nan") if i % 2 else float(np.float32(0.25 * i)),
            first_step=i * T, **kw,
        )
        for i in range(n)
    ]

