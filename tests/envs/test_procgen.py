"""The Procgen adapter (xfer/envs/procgen.py) on the real package (procgen-mirror, gym3 batching)."""

import numpy as np
import pytest
from pydantic import ValidationError

from xfer.config import ProcgenConfig, ProcgenProtocol, TrainConfig
from xfer.envs import procgen
from xfer.envs.suites import env_spec, make_vector_env


def _play(cfg: ProcgenConfig, num_envs: int, steps: int, seed: int = 0):
    """Random play; yields (step result, level seeds after the step)."""
    rng = np.random.default_rng(seed)
    with make_vector_env(cfg, num_envs, seed) as env:
        env.reset()
        for _ in range(steps):
            r = env.step(rng.integers(0, 15, num_envs))
            yield r, env.level_seeds()


def test_observations_are_stacked_64px_rgb_frames_oldest_first():
    with make_vector_env(ProcgenConfig(game="bigfish", stack=3), 2, 0) as env:
        obs, info = env.reset()
        assert obs.shape == (2, 9, 64, 64) and obs.dtype == np.uint8
        # a new episode's history is its first frame repeated
        assert all(np.array_equal(obs[:, 3 * k:3 * k + 3], info["frame"]) for k in range(3))
        r1 = env.step(np.zeros(2, np.int64))
        r2 = env.step(np.zeros(2, np.int64))
        assert np.array_equal(r2.obs[:, 6:], r2.frame) and np.array_equal(r2.obs[:, 3:6], r1.frame)
        assert np.array_equal(r2.obs[:, :3], info["frame"])
        assert r2.frame.std() > 0  # real pixels, not a blank buffer


def test_rewards_add_up_to_each_finished_episodes_return():
    running = np.zeros(4)
    finished = 0
    for r, _ in _play(ProcgenConfig(game="bigfish"), 4, 600):
        assert r.reward.dtype == np.float32 and not r.life_loss.any()
        running += r.reward
        over = r.terminated | r.truncated
        for i in np.flatnonzero(over):
            assert r.episode_return[i] == pytest.approx(running[i])
            assert (r.episode_length[i] >= procgen.EPISODE_STEPS) == bool(r.truncated[i])
            running[i] = 0.0
            finished += 1
        assert np.isnan(r.episode_return[~over]).all() and (r.episode_length[~over] == -1).all()
    assert finished > 0 and running.sum() >= 0


def test_train_levels_repeat_and_test_levels_are_others():
    train = ProcgenConfig(game="coinrun", num_levels=3, start_level=5)
    seeds = set()
    for _, level in _play(train, 8, 300):
        seeds |= set(level.tolist())
    assert seeds <= {5, 6, 7} and len(seeds) >= 2
    with make_vector_env(train.model_copy(update={"split": "test"}), 16, 0) as env:
        _, info = env.reset()
    test_levels = set(info["level_seed"].tolist())
    assert len(test_levels) == 16 and not test_levels & {5, 6, 7}


def test_the_same_seed_plays_the_same_levels_and_frames():
    cfg = ProcgenConfig(game="coinrun", num_levels=0)
    runs = []
    for seed in (3, 3, 4):
        with make_vector_env(cfg, 4, seed) as env:
            obs, info = env.reset()
            r = env.step(np.arange(4))
            runs.append((info["level_seed"], r.obs))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][0], runs[2][0])


def test_the_spec_follows_the_protocol():
    spec = env_spec("procgen", ProcgenProtocol(stack=15), "starpilot")
    assert spec.observation.shape == (45, 64, 64) and spec.num_actions == 15 and spec.action_mask().all()
    assert spec.score_range == (1.5, 35.0) and spec.max_episode_steps == 1000
    assert env_spec("procgen", ProcgenProtocol(distribution_mode="easy"), "starpilot").score_range == (2.5, 64.0)


def test_normalised_scores_use_the_modes_constants():
    assert procgen.normalised_score("coinrun", "hard", 7.5) == pytest.approx(0.5)
    assert procgen.normalised_score("fruitbot", "hard", -0.5) == pytest.approx(0.0)
    assert procgen.normalised_score("bigfish", "easy", 40.0) == pytest.approx(1.0)
    assert len(procgen.GAMES) == 16 and set(procgen.SCORE_RANGES["easy"]) == set(procgen.GAMES)


def test_bad_input_is_refused_before_any_environment_exists(monkeypatch):
    def no_env(*a, **k):
        raise AssertionError("an environment was created")

    monkeypatch.setattr(procgen.VectorProcgen, "_make", no_env)
    with pytest.raises(ValueError, match="unknown Procgen game 'coinrn' \\(did you mean 'coinrun'\\?\\); games: bigfish"):
        make_vector_env(ProcgenConfig(game="coinrn"), 2, 0)
    with pytest.raises(ValueError, match="num_envs"):
        make_vector_env(ProcgenConfig(), 0, 0)
    with pytest.raises(ValueError, match="no Procgen score constants for mode 'medium'; modes: hard, easy"):
        procgen.score_range("coinrun", "medium")
    with pytest.raises(ValidationError, match="'train' or 'test'"):
        TrainConfig(env={"suite": "procgen", "split": "validation"})
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        TrainConfig(env={"suite": "procgen", "num_levels": -1})
    with pytest.raises(ValidationError, match="'easy' or 'hard'"):
        TrainConfig(env={"suite": "procgen", "distribution_mode": "medium"})


def test_actions_outside_the_space_are_refused():
    with make_vector_env(ProcgenConfig(), 2, 0) as env:
        with pytest.raises(RuntimeError, match="reset"):
            env.step(np.zeros(2, np.int64))
        env.reset()
        with pytest.raises(ValueError, match=r"\[0, 15\)"):
            env.step(np.array([0, 15]))
        with pytest.raises(ValueError, match="shape"):
            env.step(np.zeros(3, np.int64))


def test_a_procgen_train_config_round_trips_and_atari_hashes_are_unchanged():
    cfg = TrainConfig(env={"suite": "procgen", "game": "maze", "num_levels": 10})
    assert isinstance(cfg.env, ProcgenConfig) and TrainConfig.model_validate(cfg.model_dump()) == cfg
    # Atari's suite key stays out of the dump: hashes, sidecars and manifests as before Procgen
    assert "suite" not in TrainConfig().env.model_dump()
