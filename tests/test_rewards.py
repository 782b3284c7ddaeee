"""The reward hooks of the self-play actor (``xfer.rewards``): what is stored for learning."""

import numpy as np
import pytest

from tests.specs import ATARI
from xfer.actor import SelfPlay
from xfer.agent import build_model
from xfer.config import AtariConfig, NetConfig, SearchConfig
from xfer.rewards import StepRewards, clipped, extrinsic, intrinsic, protocol_reward


def _step(raw):
    raw = np.asarray(raw, np.float32)
    n = len(raw)
    return StepRewards(raw=raw, obs=np.zeros((n, 2), np.float32), next_obs=np.ones((n, 2), np.float32),
                       actions=np.arange(n))


def test_extrinsic_clipped_and_the_protocol_switch():
    s = _step([3.0, -0.5, 0.0])
    assert extrinsic(s).tolist() == [3.0, -0.5, 0.0] and extrinsic(s).dtype == np.float32
    assert clipped(s).tolist() == [1.0, -1.0, 0.0]
    assert protocol_reward(True) is clipped and protocol_reward(False) is extrinsic


def test_intrinsic_bonus_alone_or_mixed_with_an_extrinsic_hook():
    s = _step([3.0, -0.5])
    novelty = lambda step: np.abs(step.next_obs - step.obs).sum(1)  # noqa: E731  [N]: 2.0 each
    assert intrinsic(novelty, scale=0.5)(s).tolist() == [1.0, 1.0]  # reward-free: the bonus only
    assert intrinsic(novelty, 0.5, clipped, extrinsic_scale=2.0)(s).tolist() == [3.0, -1.0]
    with pytest.raises(ValueError, match=r"bonus has shape \(1,\), expected \(2,\)"):
        intrinsic(lambda step: np.zeros(1))(s)


def test_self_play_stores_the_hooks_reward_and_keeps_the_raw_one():
    cfg = AtariConfig(game="Breakout")
    net = build_model(ATARI, NetConfig(size="tiny", precision="fp32"), seed=0)
    seen = []

    def hook(step):
        seen.append(step.raw.copy())
        return np.full(step.raw.shape, 0.25, np.float32)

    play = SelfPlay(cfg, num_envs=2, seed=0, segment_length=8, reward=hook)
    try:
        segments = []
        rng = np.random.default_rng(0)
        while len(segments) < 2:
            segments += play.step(net, SearchConfig(num_simulations=2), 1.0, rng, act_uniform=True).segments
    finally:
        play.close()
    assert len(seen) >= 8 and all(r.shape == (2,) for r in seen)
    for seg in segments:
        assert np.all(seg.rewards == 0.25)
        assert seg.raw_rewards.shape == seg.rewards.shape and np.all(seg.raw_rewards >= 0)
