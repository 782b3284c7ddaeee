"""Atari100k env wrapper, against the real ALE (fast: the whole file runs in well under a minute)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xfer.config import AtariConfig
from xfer.envs import atari
from xfer.envs.atari import (
    ATARI_GAMES,
    AtariEnv,
    VectorAtari,
    action_mask,
    clip_reward,
    make_atari,
    minimal_action_map,
    validate_game,
)
from xfer.envs.scores import REFERENCE_SCORES, human_normalised_score


@pytest.fixture
def pong():
    env = make_atari(AtariConfig(game="Pong"), seed=0)
    yield env
    env.close()


def _frames_of(obs: np.ndarray) -> np.ndarray:
    """[stack*3, H, W] -> [stack, 3, H, W]."""
    return obs.reshape(-1, 3, *obs.shape[1:])


def test_obs_shape_dtype_and_reset_fills_stack(pong):
    obs, info = pong.reset()
    assert obs.shape == (12, 96, 96) and obs.dtype == np.uint8
    assert info["frame"].shape == (3, 96, 96) and info["frame"].dtype == np.uint8
    assert info["life_loss"] is False and info["raw_reward"] == 0.0
    frames = _frames_of(obs)
    for k in range(4):
        np.testing.assert_array_equal(frames[k], info["frame"])
    assert obs.max() > 0  # a real screen, not the zero buffer


def test_stack_ordering_oldest_first(pong):
    obs, info = pong.reset()
    history = [info["frame"]]
    for t in range(6):
        obs, _, term, trunc, info = pong.step(0 if t % 2 else 3)
        assert not (term or trunc)
        history.append(info["frame"])
        np.testing.assert_array_equal(obs[-3:], info["frame"])
        frames = _frames_of(obs)
        expected = [history[max(0, len(history) - 4 + k)] for k in range(4)]
        for k in range(4):
            np.testing.assert_array_equal(frames[k], expected[k])
    # Pong's screen changes within six steps, so ordering is actually exercised.
    assert not np.array_equal(history[0], history[-1])


def test_returned_arrays_are_copies(pong):
    obs, info = pong.reset()
    frame = info["frame"].copy()
    obs2, *_ = pong.step(0)
    obs[:] = 0
    info["frame"][:] = 0
    np.testing.assert_array_equal(pong.observation(), obs2)
    np.testing.assert_array_equal(_frames_of(obs2)[0], frame)


def test_same_seed_same_trajectory():
    cfg = AtariConfig(game="Pong")
    outs = []
    for _ in range(2):
        with make_atari(cfg, seed=7) as env:
            obs, _ = env.reset()
            for a in [0, 1, 3, 4, 11, 12] * 3:
                obs, *_ = env.step(a)
            outs.append(obs)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_noops_at_reset_are_one_to_noop_max(pong):
    counts = set()
    pong.reset(seed=0)
    for _ in range(80):  # unseeded resets continue the seeded no-op stream (no ROM reload)
        pong.reset()
        counts.add(pong.ale.getEpisodeFrameNumber())
    assert min(counts) >= 1 and max(counts) <= 30
    assert len(counts) > 10


def test_pong_mask_matches_minimal_set(pong):
    mask = action_mask("Pong")
    assert mask.shape == (18,) and mask.dtype == np.bool_
    assert mask.sum() == 6
    minimal = [a.value for a in pong.ale.getMinimalActionSet()]
    assert np.flatnonzero(mask).tolist() == sorted(minimal)
    amap = minimal_action_map("Pong")
    assert amap.dtype == np.int64 and amap.tolist() == minimal
    np.testing.assert_array_equal(pong.action_mask, mask)
    np.testing.assert_array_equal(pong.minimal_action_map, amap)
    mask[:] = False  # the cache hands out copies
    assert action_mask("Pong").sum() == 6


def test_every_full_action_steps(pong):
    pong.reset()
    for a in range(18):
        obs, *_ = pong.step(a)
        assert obs.shape == (12, 96, 96)
    pong.step(np.int64(5))
    with pytest.raises(ValueError):
        pong.step(18)
    with pytest.raises(ValueError):
        pong.step(-1)


def test_step_before_reset_raises():
    with make_atari(AtariConfig(game="Pong"), seed=0) as env, pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_unknown_game_raises_before_creating_env(monkeypatch):
    def no_make(*args, **kwargs):
        raise AssertionError("gym.make must not be reached for an unknown game")

    monkeypatch.setattr(atari.gym, "make", no_make)
    with pytest.raises(ValueError, match="Pong") as err:
        AtariEnv(AtariConfig(game="Pongg"), seed=0)
    assert "ATARI_GAMES" in str(err.value)
    with pytest.raises(ValueError, match="MsPacman"):
        make_atari(AtariConfig(game="mspacman"), seed=0)
    with pytest.raises(ValueError):
        VectorAtari(AtariConfig(game="NoSuchGame"), num_envs=2, seed=0)
    with pytest.raises(ValueError):
        action_mask("NoSuchGame")


def test_game_list():
    assert validate_game("Pong") == "Pong"
    for game in ["Pong", "Breakout", "MsPacman", "RoadRunner", "Carnival", "Pooyan", *REFERENCE_SCORES]:
        assert game in ATARI_GAMES


def test_life_loss_is_not_terminal_in_breakout():
    rng = np.random.default_rng(0)
    with make_atari(AtariConfig(game="Breakout"), seed=0) as env:
        _, info = env.reset()
        assert info["lives"] == 5
        for _ in range(3000):
            _, _, term, trunc, info = env.step(int(rng.choice([0, 1, 3, 4])))
            if info["life_loss"]:
                break
        else:
            pytest.fail("no life lost in 3000 random steps")
        assert not term and not trunc
        assert info["lives"] == 4 == env.lives
        for _ in range(5):  # the same game goes on
            _, _, term, trunc, info = env.step(1)
            assert not info["life_loss"] and not term and not trunc
            assert info["lives"] == 4


def test_raw_reward_and_episode_return():
    """Pong until the first two points: raw rewards are +-1 and add up to the running return."""
    with make_atari(AtariConfig(game="Pong"), seed=1) as env:
        env.reset()
        rewards = []
        for _ in range(400):
            _, r, term, trunc, info = env.step(0)
            assert isinstance(r, float) and r == info["raw_reward"]
            rewards.append(r)
            if sum(x != 0 for x in rewards) >= 2:
                break
        assert sum(x != 0 for x in rewards) == 2
        assert set(rewards) <= {-1.0, 0.0, 1.0}
        assert env.episode_return == sum(rewards) and env.episode_length == len(rewards)


def test_clip_reward():
    assert clip_reward(0.0) == 0.0 and clip_reward(7.0) == 1.0 and clip_reward(-200) == -1.0
    assert isinstance(clip_reward(np.float32(3.0)), float)
    out = clip_reward(np.array([-5.0, 0.0, 0.5, 100.0]))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [-1.0, 0.0, 1.0, 1.0])


def test_clone_restore_replays_exactly(pong):
    pong.reset()
    for _ in range(20):
        pong.step(3)
    snap = pong.clone_state()
    actions = [0, 4, 11, 12, 1, 3] * 3
    first = [pong.step(a)[0] for a in actions]
    pong.restore_state(snap)
    second = [pong.step(a)[0] for a in actions]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert pong.episode_length == 20 + len(actions)


def test_vector_env_auto_resets_with_episode_stats():
    # 1000 frames = 250 agent steps minus the 1..30 no-op frames at reset.
    cfg = AtariConfig(game="Pong", max_episode_frames=1000)
    with VectorAtari(cfg, num_envs=2, seed=3) as venv:
        obs, info = venv.reset()
        assert obs.shape == (2, 12, 96, 96) and obs.dtype == np.uint8
        assert info["frame"].shape == (2, 3, 96, 96)
        returns = np.zeros(2)
        finished = {}
        for t in range(260):
            out = venv.step(np.array([0, 0]))
            assert out.obs.shape == (2, 12, 96, 96) and out.reward.dtype == np.float32
            for arr, dtype in [
                (out.terminated, np.bool_),
                (out.truncated, np.bool_),
                (out.life_loss, np.bool_),
            ]:
                assert arr.shape == (2,) and arr.dtype == dtype
            returns += out.reward
            done = out.terminated | out.truncated
            for i in range(2):
                if done[i] and i not in finished:
                    finished[i] = t + 1
                    assert out.truncated[i] and not out.terminated[i]
                    assert out.episode_length[i] == t + 1
                    assert 243 <= out.episode_length[i] <= 250
                    assert out.episode_return[i] == pytest.approx(returns[i])
                    # same-step reset: the returned stack is the new episode's first frame x4
                    frames = _frames_of(out.obs[i])
                    for k in range(4):
                        np.testing.assert_array_equal(frames[k], out.frame[i])
                    assert out.final_frame[i].any()
                    returns[i] = 0.0
                elif not done[i]:
                    assert math.isnan(out.episode_return[i]) and out.episode_length[i] == -1
                    assert not out.final_frame[i].any()
                    np.testing.assert_array_equal(out.obs[i, -3:], out.frame[i])
        assert set(finished) == {0, 1}
        with pytest.raises(ValueError):
            venv.step(np.array([0, 0, 0]))


def test_vector_env_i_is_seeded_with_seed_plus_i():
    cfg = AtariConfig(game="Pong")
    with VectorAtari(cfg, num_envs=2, seed=11) as venv, make_atari(cfg, seed=12) as single:
        venv.reset()
        single.reset()
        assert venv.envs[1].ale.getEpisodeFrameNumber() == single.ale.getEpisodeFrameNumber()


def test_human_normalised_score():
    assert human_normalised_score("Pong", 14.6) == pytest.approx(1.0)
    assert human_normalised_score("Pong", -20.7) == pytest.approx(0.0)
    assert human_normalised_score("Pong", 0.0) == pytest.approx(20.7 / 35.3)
    assert human_normalised_score("Boxing", 6.1) == pytest.approx(0.5)
    assert human_normalised_score("Breakout", 59.3) == pytest.approx(2.0)
    assert human_normalised_score("RoadRunner", 11.5 - 7833.5) == pytest.approx(-1.0)
    for game in ["Carnival", "Pooyan"]:
        with pytest.raises(KeyError, match="random agent"):
            human_normalised_score(game, 100.0)
    assert all(human > rand for rand, human in REFERENCE_SCORES.values())
