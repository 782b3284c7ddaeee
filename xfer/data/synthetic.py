"""Real Atari frames from a uniformly random policy, as segments: data for tests and benchmarks.

Not imported by :mod:`xfer.data` itself (it starts an ALE emulator); import it directly::

    from xfer.data.synthetic import random_atari_segments
"""

from __future__ import annotations

import numpy as np

from xfer.config import AtariConfig
from xfer.envs.atari import VectorAtari, clip_reward
from xfer.replay.segment import Segment, SegmentBuilder


def random_atari_segments(
    game: str, transitions: int, segment_length: int = 200, seed: int = 0
) -> list[Segment]:
    """Real frames of ``game`` (``AtariConfig(game)``) under uniformly random legal actions, as segments.

    Cut by :class:`~xfer.replay.segment.SegmentBuilder` into segments of ``segment_length`` agent
    steps; episode ends close a segment (``terminal`` for game over). Behaviour statistics are
    placeholders: ``visit_dist`` uniform over legal actions, ``root_values`` zeros. Returns segments
    holding exactly ``transitions`` agent steps in total (the last one may be shorter); the same
    ``seed`` gives the same segments.
    """
    cfg = AtariConfig(game=game)
    rng = np.random.default_rng(seed)
    segments: list[Segment] = []
    with VectorAtari(cfg, num_envs=1, seed=seed) as env:
        uniform = env.action_mask / env.action_mask.sum()
        builder = SegmentBuilder(cfg.stack, segment_length, env.action_mask.copy(), game)
        obs, _ = env.reset()
        builder.start(obs[0], 0)
        for step in range(1, transitions + 1):
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
                episode_over=over or step == transitions,
                terminal=bool(out.terminated[0]),
                next_obs_stack=out.obs[0],
                step_counter=step,
            )
            if seg is not None:
                segments.append(seg)
    return segments
