"""The Meta-World adapter (xfer/envs/metaworld.py) on the real package (metaworld 3.x, MuJoCo, EGL).

The environments use ML1 (one task's goals: about a second to build) rather than ML10 (several
seconds); the ML10 / ML45 splits are checked from Meta-World's class tables, without simulators.
"""

import warnings

import numpy as np
import pytest
from pydantic import ValidationError

from xfer.config import MetaWorldConfig, MetaWorldProtocol, TrainConfig
from xfer.envs import metaworld as mw
from xfer.envs.spec import Box
from xfer.envs.suites import env_spec, make_vector_env

REACH = MetaWorldConfig(benchmark="ML1", task="reach-v3")


def _step_zeros(env, n: int = 2):
    return env.step(np.zeros((n, 4), np.float32))


def test_the_ml10_and_ml45_splits_are_the_papers():
    train = ["reach", "push", "pick-place", "door-open", "drawer-close", "button-press-topdown", "peg-insert-side",
             "window-open", "sweep", "basketball"]
    test = ["drawer-open", "door-close", "shelf-place", "sweep-into", "lever-pull"]
    assert mw.benchmark_tasks("ML10", "train") == tuple(f"{t}-v3" for t in train)
    assert mw.benchmark_tasks("ML10", "test") == tuple(f"{t}-v3" for t in test)
    ml45_test = ["bin-picking", "box-close", "hand-insert", "door-lock", "door-unlock"]
    assert mw.benchmark_tasks("ML45", "test") == tuple(f"{t}-v3" for t in ml45_test)
    assert len(mw.benchmark_tasks("ML45", "train")) == 45 and len(mw.benchmark_tasks("ML1", "test")) == 50


def test_the_spec_follows_the_protocol():
    spec = env_spec("metaworld", MetaWorldProtocol(), "reach-v3")
    assert spec.observation.kind == "state" and spec.observation.shape == (39,)
    assert spec.action_space == Box(-1.0, 1.0, (4,)) and spec.legal_actions is None
    assert spec.max_episode_steps == 500 and spec.score_range is None
    assert env_spec("metaworld", MetaWorldProtocol(reward_history=3), "reach-v3").observation.shape == (42,)
    # the bare protocol takes a task of either split; a one-task config only its own split's
    assert env_spec("metaworld", MetaWorldProtocol(), "lever-pull-v3").task == "lever-pull-v3"
    pixels = env_spec("metaworld", MetaWorldProtocol(observation="pixels", stack=3), "push-v3").observation
    assert (pixels.kind, pixels.shape, pixels.stack, pixels.frame_shape) == ("pixels", (9, 96, 96), 3, (3, 96, 96))
    plane = MetaWorldProtocol(observation="pixels", stack=2, frame_size=64, reward_history=1)
    assert env_spec("metaworld", plane, "push-v3").observation.shape == (8, 64, 64)


def test_bad_tasks_and_configs_are_refused_before_any_environment_exists(monkeypatch):
    def no_env(*a, **k):
        raise AssertionError("an environment was created")

    monkeypatch.setattr(mw.VectorMetaWorld, "_make", no_env)
    monkeypatch.setattr(mw, "benchmark", no_env)
    with pytest.raises(ValueError, match=r"unknown Meta-World task 'reach' for ML10 train \(did you mean "
                                         r"'reach-v3'\?\); ML10 train tasks: reach-v3, push-v3, .*basketball-v3$"):
        make_vector_env(MetaWorldConfig(task="reach"), 2, 0)
    with pytest.raises(ValueError, match="'drawer-open-v3' is an ML10 test task, not a train task: set split: test"):
        make_vector_env(MetaWorldConfig(task="drawer-open-v3"), 2, 0)
    with pytest.raises(ValueError, match="'reach-v3' is an ML10 train task, not a test task: set split: train"):
        make_vector_env(MetaWorldConfig(task="reach-v3", split="test"), 2, 0)
    with pytest.raises(ValueError, match="unknown Meta-World task 'bin-picking-v3' for ML10"):
        env_spec("metaworld", MetaWorldProtocol(), "bin-picking-v3")
    with pytest.raises(ValueError, match="num_envs"):
        make_vector_env(REACH, 0, 0)
    with pytest.raises(ValidationError, match="reward_history is 0 or 1"):
        MetaWorldConfig(observation="pixels", reward_history=2)
    with pytest.raises(ValidationError, match="'ML1', 'ML10' or 'ML45'"):
        TrainConfig(env={"suite": "metaworld", "benchmark": "ML5"})


def test_a_metaworld_train_config_round_trips():
    cfg = TrainConfig(env={"suite": "metaworld", "task": "push-v3", "reward_history": 2})
    assert isinstance(cfg.env, MetaWorldConfig) and TrainConfig.model_validate(cfg.model_dump()) == cfg
    assert cfg.env.game == "push-v3" and MetaWorldProtocol().for_task("lever-pull-v3", "test").split == "test"


def test_state_episodes_are_truncated_at_500_steps_and_reset_in_the_same_step():
    with make_vector_env(REACH, 2, 0) as env:
        assert env.action_mask is None
        with pytest.raises(RuntimeError, match="reset"):
            _step_zeros(env)
        obs, info = env.reset()
        assert obs.shape == (2, 39) and obs.dtype == np.float32 and np.array_equal(info["frame"], obs)
        running = np.zeros(2)
        for t in range(1, 501):
            r = _step_zeros(env)
            assert r.reward.dtype == np.float32 and r.reward.shape == (2,) and r.obs.dtype == np.float32
            assert not r.terminated.any() and not r.life_loss.any() and not r.lives.any()
            running += r.reward
            if t < 500:
                assert not r.truncated.any() and (r.episode_length == -1).all()
                assert np.isnan(r.episode_return).all() and np.isnan(r.episode_success).all()
                last = r.obs
        assert r.truncated.all() and (r.episode_length == 500).all()
        assert r.episode_return == pytest.approx(running, rel=1e-5)
        assert r.episode_success.dtype == np.float64 and set(r.episode_success) <= {0.0, 1.0}
        # the finished episode's last state is final_frame; obs is the next episode's first
        assert not np.array_equal(r.final_frame, last) and not np.array_equal(r.obs, r.final_frame)
        assert np.array_equal(r.frame, r.obs)
        assert _step_zeros(env).episode_length.tolist() == [-1, -1]  # the new episode steps on


def test_pixels_are_stacked_rgb_frames_oldest_first():
    with make_vector_env(REACH.model_copy(update={"observation": "pixels", "stack": 3}), 2, 0) as env:
        obs, info = env.reset()
        assert obs.shape == (2, 9, 96, 96) and obs.dtype == np.uint8 and obs.std() > 0
        assert all(np.array_equal(obs[:, 3 * k:3 * k + 3], info["frame"]) for k in range(3))
        r1 = env.step(np.full((2, 4), 1.0, np.float32))
        r2 = env.step(np.full((2, 4), 1.0, np.float32))
        assert np.array_equal(r2.obs[:, 6:], r2.frame) and np.array_equal(r2.obs[:, 3:6], r1.frame)
        assert np.array_equal(r2.obs[:, :3], info["frame"]) and not np.array_equal(r2.frame, info["frame"])
        assert r2.frame.shape == (2, 3, 96, 96) and r2.final_frame.shape == (2, 3, 96, 96)


def test_the_reward_history_holds_the_previous_rewards_over_ten():
    with make_vector_env(REACH.model_copy(update={"reward_history": 3}), 2, 0) as env:
        obs, _ = env.reset()
        assert obs.shape == (2, 42) and not obs[:, 39:].any()
        rewards = [_step_zeros(env).reward for _ in range(2)]
        r = _step_zeros(env)
        rewards.append(r.reward)
        assert np.allclose(r.obs[:, 39:], np.stack(rewards, 1) / 10, atol=0)
        assert np.all(r.reward > 0)
    cfg = REACH.model_copy(update={"observation": "pixels", "stack": 2, "reward_history": 1, "frame_size": 48})
    with make_vector_env(cfg, 2, 0) as env:
        obs, _ = env.reset()
        assert obs.shape == (2, 8, 48, 48) and not obs[:, 3].any() and not obs[:, 7].any()
        r = _step_zeros(env)
        plane = np.round(np.clip(r.reward / 10, 0, 1) * 255)
        assert np.array_equal(r.obs[:, 7], np.broadcast_to(plane[:, None, None], (2, 48, 48)))
        assert not r.obs[:, 3].any() and np.array_equal(r.frame, r.obs[:, 4:])


def test_the_same_seed_plays_the_same_goals_and_observations():
    runs = []
    for seed in (3, 3, 4):
        with make_vector_env(REACH, 3, seed) as env:
            obs, info = env.reset()
            r = env.step(np.random.default_rng(0).uniform(-1, 1, (3, 4)).astype(np.float32))
            runs.append((info["goal_index"], obs, r.obs))
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not np.array_equal(runs[0][0], runs[2][0]) and not np.array_equal(runs[0][1], runs[2][1])
    # ML1's test goals are other goals of the same task
    _, train = mw.goal_tasks(REACH, "reach-v3")
    _, test = mw.goal_tasks(REACH.model_copy(update={"split": "test"}), "reach-v3")
    assert len(train) == len(test) == 50 and not {t.data for t in train} & {t.data for t in test}


def test_the_scripted_expert_succeeds_at_reach_and_standing_still_fails():
    from metaworld.policies import SawyerReachV3Policy

    expert = SawyerReachV3Policy()
    with make_vector_env(REACH, 2, 0) as env:
        obs, _ = env.reset()
        for _ in range(500):
            actions = []
            for i in range(2):
                seen = obs[i].astype(np.float64)
                seen[36:39] = env.envs[i]._target_pos  # ML1 hides the goal; the expert reads it
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "Constant(s) may be too high": hence the clip
                    actions.append(np.clip(expert.get_action(seen), -1, 1))
            r = env.step(np.array(actions, np.float32))
            obs = r.obs
        assert r.truncated.all() and r.episode_success.tolist() == [1.0, 1.0]
        for _ in range(500):
            r = _step_zeros(env)
        assert r.truncated.all() and r.episode_success.tolist() == [0.0, 0.0]


def test_actions_outside_the_box_are_refused_before_any_copy_steps():
    with make_vector_env(REACH, 2, 0) as env:
        env.reset()
        ok = np.zeros((2, 4), np.float32)
        with pytest.raises(ValueError, match=r"shape \(2, 4\) \(float32 \[N, 4\]\), got \(2,\)"):
            env.step(np.zeros(2, np.float32))
        with pytest.raises(ValueError, match=r"entry nan \(env 1, dim 2\) is not finite"):
            env.step(np.where(np.arange(8).reshape(2, 4) == 6, np.nan, ok))
        with pytest.raises(ValueError, match=r"entry 1.5 \(env 0, dim 3\) is above 1.0: .*squash"):
            env.step(np.where(np.arange(8).reshape(2, 4) == 3, 1.5, ok))
        with pytest.raises(ValueError, match=r"entry -2.0 \(env 1, dim 0\) is below -1.0"):
            env.step(np.where(np.arange(8).reshape(2, 4) == 4, -2.0, ok))
        assert [e.curr_path_length for e in env.envs] == [0, 0]
        assert _step_zeros(env).reward.shape == (2,)


def test_no_working_gl_backend_says_what_was_tried(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(mw, "GL_BACKENDS", ("nope",))
    mw.select_gl_backend.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=r"none rendered; tried nope \(.*\)\. set MUJOCO_GL .*egl.*osmesa"):
            mw.select_gl_backend()
    finally:
        mw.select_gl_backend.cache_clear()


def test_a_task_list_or_all_spreads_the_tasks_over_the_copies():
    cfg = MetaWorldConfig(benchmark="ML10", task=["reach-v3", "push-v3"])
    assert cfg.game == "reach-v3+push-v3"
    assert MetaWorldConfig(benchmark="ML10", task=["reach-v3"]).task == "reach-v3"  # a list of one is that task
    with make_vector_env(cfg, 3, 0) as env:
        obs, _ = env.reset()
        assert env.copy_tasks == ["reach-v3", "push-v3", "reach-v3"]
        assert [type(e).__name__ for e in env.envs] == ["SawyerReachEnvV3", "SawyerPushEnvV3", "SawyerReachEnvV3"]
        assert obs.shape == (3, 39)
    assert mw.task_list("ML10", "test", "all") == mw.benchmark_tasks("ML10", "test")
    assert env_spec("metaworld", cfg, cfg.game).task == "reach-v3+push-v3"
    with pytest.raises(ValueError, match="ML1 has one task and different goals"):
        mw.task_list("ML1", "train", "reach-v3+push-v3")
    with pytest.raises(ValueError, match="ML10 test task, not a train task"):
        env_spec("metaworld", cfg, "reach-v3+drawer-open-v3")
    with pytest.raises(ValidationError, match="without repeats"):
        MetaWorldConfig(benchmark="ML10", task=["reach-v3", "reach-v3"])
