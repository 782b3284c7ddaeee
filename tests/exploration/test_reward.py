"""The exploration reward as a part of the online loop: its composition, that self-play stores it and
the value-prefix targets are built from it, and that a resumed run continues it exactly."""

import numpy as np
import pytest
import torch

from tests.specs import ATARI
from xfer.actor import SelfPlay
from xfer.agent import build_model
from xfer.config import AtariConfig, NetConfig
from xfer.envs.spec import Discrete, EnvSpec, ObservationSpec
from xfer.exploration.config import CoverageConfig, IntrinsicConfig
from xfer.exploration.reward import ExplorationReward
from xfer.exploration.rnd import RND
from xfer.exploration.running import ReturnNormaliser
from xfer.presets import build_train_config
from xfer.replay.buffer import SampleIndex
from xfer.replay.targets import build_batch, network_bootstrap
from xfer.rewards import StepRewards, clipped
from xfer.train import Trainer

STATE_SPEC = EnvSpec(suite="toy", task="toy", observation=ObservationSpec("state", (6,)), action_space=Discrete(3),
                     legal_actions=(0, 1, 2), max_episode_steps=100)


def _steps(n: int, num_envs: int = 2, seed: int = 0) -> list[StepRewards]:
    rng = np.random.default_rng(seed)
    return [StepRewards(raw=rng.integers(-2, 3, num_envs).astype(np.float32),
                        obs=rng.normal(size=(num_envs, 6)).astype(np.float32),
                        next_obs=rng.normal(size=(num_envs, 6)).astype(np.float32),
                        actions=rng.integers(0, 3, num_envs)) for _ in range(n)]


def test_reward_is_scaled_normalised_bonus_plus_weighted_extrinsic():
    cfg = IntrinsicConfig(scale=2.0, extrinsic_scale=0.5, return_discount=0.9)
    part = ExplorationReward(STATE_SPEC, cfg, CoverageConfig(), clipped, num_envs=2, seed=3)
    rnd, norm = RND(STATE_SPEC, cfg, seed=3), ReturnNormaliser(0.9, 2)  # the same parts, by hand
    for step in _steps(6):
        expected = 2.0 * norm(rnd(step)) + 0.5 * np.sign(step.raw)
        np.testing.assert_allclose(part(step), expected, rtol=1e-6, atol=1e-7)
    reward_free = ExplorationReward(STATE_SPEC, IntrinsicConfig(normalise_returns=False), CoverageConfig(), clipped,
                                    num_envs=2, seed=3)
    rnd = RND(STATE_SPEC, IntrinsicConfig(), seed=3)
    for step in _steps(3, seed=1):  # extrinsic_scale 0: the game's reward is not in it at all
        np.testing.assert_array_equal(reward_free(step), rnd(step))
    with pytest.raises(ValueError, match="2 environments"):
        reward_free(_steps(1, num_envs=3)[0])


def test_rows_log_cells_bonus_and_extrinsic_collected(tmp_path):
    part = ExplorationReward(STATE_SPEC, IntrinsicConfig(), CoverageConfig(every=4, state_resolution=10.0), clipped,
                             num_envs=2, seed=0)
    part.open(tmp_path, -1)
    total = 0.0
    for i, step in enumerate(_steps(5), start=1):
        part(step)
        total += float(step.raw.sum())
        part.record(2 * i)
    rows = part.log.read()
    assert [int(r["env_steps"]) for r in rows] == [4, 8]
    assert float(rows[-1]["extrinsic_total"]) == pytest.approx(total - float(_steps(5)[-1].raw.sum()))
    assert 1 <= int(rows[-1]["cells"]) <= 8 and float(rows[-1]["bonus_mean"]) > 0.0


def _tiny_net(spec: EnvSpec):
    torch.manual_seed(0)
    return build_model(spec, NetConfig(size="tiny"), "cpu")


def test_intrinsic_reward_reaches_replay_and_the_value_prefix_targets():
    # real Breakout: the rewards self-play stores are the exploration part's, raw scores beside them
    env = AtariConfig(game="Breakout")
    part = ExplorationReward(ATARI, IntrinsicConfig(frame_size=36), CoverageConfig(), clipped, num_envs=2, seed=0)
    given: list[np.ndarray] = []

    def recording(step: StepRewards) -> np.ndarray:
        r = part(step)
        given.append(r)
        return r

    selfplay = SelfPlay(env, num_envs=2, seed=0, segment_length=8, reward=recording)
    cfg = build_train_config("cpu", {"mcts": {"num_simulations": 2}})
    net, rng, segments = _tiny_net(ATARI), np.random.default_rng(0), []
    try:
        while not segments:
            segments += selfplay.step(net, cfg.search, 1.0, rng).segments
    finally:
        selfplay.close()
    seg = segments[0]
    env_index = 0 if seg.first_step % 2 == 0 else 1
    stored = np.array([g[env_index] for g in given[:len(seg.rewards)]], dtype=np.float32)
    np.testing.assert_array_equal(seg.rewards, stored)
    assert np.all(seg.rewards > 0)  # RND's novelty is positive on every new frame; Breakout's score is 0 here
    # the value-prefix targets: running sums of the stored intrinsic rewards over the unroll
    K = 5
    index = SampleIndex([seg], np.zeros(1, np.int64), np.zeros(1, np.int64), np.ones(1, np.float32),
                        np.zeros(1, np.int64))
    batch = build_batch(index, K, 3, 10**9, 100, 0.99, 5, 0.0,
                        network_bootstrap(lambda o: np.zeros(len(o), np.float32)), None, rng)
    np.testing.assert_allclose(batch.value_prefix[0, :K], np.cumsum(stored[:K]), rtol=1e-6)


def test_trainer_saves_and_resumes_the_reward_part(tmp_path):
    cfg = build_train_config("cpu", {"env": {"game": "Breakout"}, "net": {"size": "tiny"},
                                     "mcts": {"num_simulations": 2}, "batch_size": 8, "start_transitions": 16,
                                     "num_envs": 2, "eval_episodes": 1, "eval_max_steps": 10,
                                     "replay": {"segment_length": 8}, "checkpoint_every": 16, "eval_every": 1000,
                                     "train_ratio": 0.25, "env_steps": 24})

    def part() -> ExplorationReward:
        return ExplorationReward(ATARI, IntrinsicConfig(frame_size=36), CoverageConfig(every=8), clipped,
                                 num_envs=2, seed=5)

    first = part()
    Trainer(cfg, tmp_path, progress=False, random_baseline=False, reward=first).run()
    rows = (tmp_path / "metrics" / "exploration.tsv").read_text().splitlines()
    assert [r.split("\t")[0] for r in rows[1:]] == ["8", "16", "24"]
    resumed = part()
    trainer = Trainer(cfg, tmp_path, progress=False, random_baseline=False, reward=resumed)
    assert trainer.resumed
    saved, loaded = first.state(), resumed.state()
    assert saved.keys() == loaded.keys()
    for k in saved:
        assert torch.equal(saved[k], loaded[k]), k
    assert resumed.coverage.count == first.coverage.count > 0
