"""Segments for the offline-dataset tests: small synthetic ones and real Atari frames."""

from __future__ import annotations

import numpy as np

from xfer.config import AtariConfig
from xfer.envs.atari import NUM_FULL_ACTIONS, VectorAtari, clip_reward
from xfer.replay.segment import Segment, SegmentBuilder

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


def atari_segments(game: str, num_transitions: int, segment_length: int = 200, seed: int = 0) -> list[Segment]:
    """Real frames of ``game`` under uniformly random legal actions, cut into segments.

    Behaviour statistics are placeholders: ``visit_dist`` uniform over legal actions, ``root_values``
    zeros. Episode ends close a segment (``terminal`` for game over). Returns segments holding
    exactly ``num_transitions`` agent steps in total (the last one may be shorter).
    """
    cfg = AtariConfig(game=game)
    rng = np.random.default_rng(seed)
    segments: list[Segment] = []
    with VectorAtari(cfg, num_envs=1, seed=seed) as env:
        uniform = env.action_mask / env.action_mask.sum()
        builder = SegmentBuilder(cfg.stack, segment_length, env.action_mask.copy(), game)
        obs, _ = env.reset()
        builder.start(obs[0], 0)
        for step in range(1, num_transitions + 1):
            a = int(rng.choice(env.minimal_action_map))
            out = env.step(np.array([a]))
            over = bool(out.terminated[0] or out.truncated[0])
            seg = builder.add(
                action=a,
                reward=float(clip_reward(float(out.reward[0]))),
                raw_reward=float(out.reward[0]),
                cut=bool(out.life_loss[0]),
                root_value=0.0,
                visit_dist=uniform,
                next_frame=out.final_frame[0] if over else out.frame[0],
                episode_over=over or step == num_transitions,
                terminal=bool(out.terminated[0]),
                next_obs_stack=out.obs[0],
                step_counter=step,
            )
            if seg is not None:
                segments.append(seg)
    return segments
