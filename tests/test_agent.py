"""``xfer.agent``: one builder for any suite (issue 14).

A toy suite exists only here: a deterministic walk on a line with a state-vector observation and
``Discrete(3)`` actions. Put in the suite table, it gets an agent through ``build_agent`` that takes a
real training step and a real search, with no Atari number anywhere on the way.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.specs import ATARI
from xfer.actor import evaluate, evaluate_random
from xfer.agent import build_agent, build_model, model_meta
from xfer.checkpoint import load_model, save_model
from xfer.config import LossConfig, NetConfig, OptimConfig, SearchConfig
from xfer.envs import suites
from xfer.envs.spec import Box, Discrete, EnvSpec, ObservationSpec
from xfer.envs.vector import VectorStep
from xfer.inference import search_policy
from xfer.replay.targets import Batch


class LineWalk:
    """Position ``x`` in ``0..4``, start at 2; actions 0 = left, 1 = stay, 2 = right; reward 1 on
    reaching 4 (the episode ends). Observation ``[one-hot of x (5)]`` float32."""

    def __init__(self) -> None:
        self.x = 2

    def obs(self) -> np.ndarray:
        return np.eye(5, dtype=np.float32)[self.x]

    def step(self, a: int) -> tuple[np.ndarray, float, bool]:
        self.x = int(np.clip(self.x + a - 1, 0, 4))
        done = self.x == 4
        return self.obs(), float(done), done


class ToyConfig:
    """The toy suite's one-task env config (what :func:`xfer.envs.suites.make_vector_env` dispatches on)."""

    game, stack, clip_rewards = "walk", 1, False


class VectorLineWalk:
    """``num_envs`` :class:`LineWalk` copies as a :class:`xfer.envs.vector.VectorEnv` (20-step cap)."""

    def __init__(self, cfg: ToyConfig, num_envs: int, seed: int) -> None:
        self.num_envs, self.action_mask = num_envs, np.ones(3, bool)
        self.envs = [LineWalk() for _ in range(num_envs)]
        self.t = np.zeros(num_envs, np.int64)

    def reset(self, seed=None):
        self.envs = [LineWalk() for _ in range(self.num_envs)]
        obs = np.stack([e.obs() for e in self.envs])
        return obs, {"frame": obs}

    def step(self, actions):
        n = self.num_envs
        out = [e.step(int(a)) for e, a in zip(self.envs, actions)]
        self.t += 1
        reward = np.array([o[1] for o in out], np.float32)
        term = np.array([o[2] for o in out])
        trunc = ~term & (self.t >= 20)
        final = np.stack([o[0] for o in out])
        ret = np.where(term | trunc, reward, np.nan)
        length = np.where(term | trunc, self.t, -1)
        for i in np.flatnonzero(term | trunc):
            self.envs[i], self.t[i] = LineWalk(), 0
        obs = np.stack([e.obs() for e in self.envs])
        return VectorStep(obs, reward, term, trunc, np.zeros(n, bool), obs, np.where((term | trunc)[:, None], final, 0),
                          ret, length, np.zeros(n, np.int64))

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def line_spec(protocol: object, task: str) -> EnvSpec:
    if task != "walk":
        raise ValueError(f"unknown toy task {task!r}; tasks: walk")
    return EnvSpec("toy", task, ObservationSpec("state", (5,)), Discrete(3), (0, 1, 2), max_episode_steps=20)


@pytest.fixture
def toy(monkeypatch) -> EnvSpec:
    monkeypatch.setitem(suites.SUITES, "toy", suites.Suite(line_spec, ToyConfig, VectorLineWalk))
    return suites.env_spec("toy", None, "walk")


def _batch(spec: EnvSpec, B: int = 8, K: int = 3, seed: int = 0) -> Batch:
    """``B`` unrolls of ``K`` random steps from the toy env, with n-step-free targets (reward as value)."""
    rng = np.random.default_rng(seed)
    D, A = spec.observation.shape[0], spec.num_actions
    obs = np.zeros((B, K + 1, D), np.float32)
    actions = rng.integers(0, A, size=(B, K))
    rewards = np.zeros((B, K), np.float32)
    for b in range(B):
        env = LineWalk()
        obs[b, 0] = env.obs()
        for k in range(K):
            obs[b, k + 1], rewards[b, k], _ = env.step(int(actions[b, k]))
    ones = lambda *s: np.ones(s, np.float32)  # noqa: E731
    return Batch(obs=obs, actions=actions.astype(np.int64), value_prefix=np.cumsum(rewards, axis=1),
                 value=np.zeros((B, K + 1), np.float32), policy=np.full((B, K + 1, A), 1.0 / A, np.float32),
                 mask_value_prefix=ones(B, K), mask_value=ones(B, K + 1), mask_policy=ones(B, K + 1),
                 mask_obs=ones(B, K + 1), weights=ones(B), action_mask=np.ones((B, A), bool),
                 segment_ids=np.arange(B, dtype=np.int64), positions=np.zeros(B, np.int64))


def test_a_toy_suite_with_state_vectors_trains_and_searches(toy):
    agent = build_agent(toy, NetConfig(size="tiny", precision="fp32"), OptimConfig(), LossConfig(),
                        value_prefix_horizon=5, train_steps=10, seed=0)
    net = agent.net
    assert net.num_actions == 3 and net.obs_shape == (5,)
    assert net.represent(torch.zeros(2, 5)).shape == (2, NetConfig(size="tiny").spec().channels, 1, 1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    result = agent.learner.step(_batch(toy))
    assert all(np.isfinite(v) for v in result.metrics.values()) and result.metrics["loss"] > 0
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items() if v.is_floating_point())
    # a search over the toy's 3 actions from state-vector roots
    obs = np.stack([LineWalk().obs(), np.eye(5, dtype=np.float32)[0]])
    out = search_policy(net, obs, np.ones((2, 3), bool), SearchConfig(num_simulations=8),
                        np.random.default_rng(0), add_noise=False)
    assert out.visit_counts.shape == (2, 3) and (out.visit_counts.sum(1) == 8).all()
    assert np.allclose(out.policy.sum(1), 1.0)


def test_a_state_vector_model_saves_and_loads_with_its_sidecar(toy, tmp_path):
    from xfer import checkpoint as ckpt

    net = build_model(toy, NetConfig(size="tiny", precision="fp32"), seed=0)
    meta = model_meta(toy, NetConfig(size="tiny"), {"walk": toy}, step=1, env_steps=20, config_hash="toy")
    assert meta.obs_shape == [5] and meta.action_maps == {"walk": [0, 1, 2]}
    ckpt.save_model(tmp_path / "m.safetensors", net, meta)
    loaded, read = ckpt.load_model(tmp_path / "m.safetensors")
    assert loaded.obs_shape == (5,) and read == meta.model_copy(update={"weights_sha256": read.weights_sha256})
    x = torch.from_numpy(np.stack([LineWalk().obs()]))
    assert torch.equal(net.eval().initial_inference(x).value, loaded.initial_inference(x).value)


def test_evaluation_plays_any_suite_through_its_vector_env(toy):
    # the actor never names a suite: the toy's env config finds its vector env in the suite table
    net = build_model(toy, NetConfig(size="tiny", precision="fp32"), seed=0).eval()
    scores = evaluate(net, ToyConfig(), SearchConfig(num_simulations=4), episodes=3, max_steps=25, seed=0)
    assert scores.shape == (3,) and set(scores) <= {0.0, 1.0}
    # random legal actions reach x = 4 within 20 steps from x = 2 in most episodes
    random = evaluate_random(ToyConfig(), episodes=20, max_steps=25, seed=0)
    assert random.shape == (20,) and 0.5 < random.mean() <= 1.0


def test_an_env_config_no_suite_takes_is_refused():
    with pytest.raises(TypeError, match="dict is no suite's env config; suites take AtariConfig"):
        suites.make_vector_env({"game": "Pong"}, 1, 0)


def test_the_toy_task_is_validated_before_anything_is_built(toy):
    with pytest.raises(ValueError, match="unknown toy task 'run'; tasks: walk"):
        suites.env_spec("toy", None, "run")
    with pytest.raises(ValueError, match="unknown suite 'toys'; suites: .*atari.*toy"):
        suites.env_spec("toys", None, "walk")


def test_a_box_action_space_builds_a_gaussian_policy_network(tmp_path):
    spec = EnvSpec("toy", "reach", ObservationSpec("state", (39,)), Box(-1.0, 1.0, (4,)), None, 500)
    assert (spec.action_dim, spec.policy_actions) == (4, 0)
    with pytest.raises(ValueError, match=r"continuous actions .*Sampled MuZero"):
        spec.num_actions  # noqa: B018 - the discrete width does not exist for a Box
    net = build_model(spec, NetConfig(size="tiny", precision="fp32"), seed=0).eval()
    root = net.initial_inference(torch.zeros(3, 39))
    assert root.policy_logits.shape == (3, 8)  # mean and log std of a 4-dim Gaussian
    step = net.recurrent_inference(root.latent, root.lstm_state, torch.full((3, 4), 0.5))
    assert step.latent.shape == root.latent.shape and step.policy_logits.shape == (3, 8)
    # the action reaches the dynamics: another action, another next latent
    other = net.recurrent_inference(root.latent, root.lstm_state, torch.full((3, 4), -0.5))
    assert not torch.allclose(step.latent, other.latent)
    meta = model_meta(spec, NetConfig(size="tiny"), {"reach": spec}, step=0, env_steps=0, config_hash="x")
    assert (meta.num_actions, meta.action_dim, meta.action_maps) == (0, 4, {"reach": []})
    save_model(tmp_path / "m.safetensors", net, meta)
    loaded, back = load_model(tmp_path / "m.safetensors")
    assert back.action_dim == 4 and loaded.action_dim == 4
    assert torch.equal(loaded.initial_inference(torch.zeros(3, 39)).policy_logits, root.policy_logits)
    with pytest.raises(ValueError, match="Box needs low < high"):
        Box(1.0, -1.0, (4,))
    with pytest.raises(ValueError, match="a Box action space has no legal_actions"):
        EnvSpec("toy", "reach", ObservationSpec("state", (39,)), Box(-1.0, 1.0, (4,)), (0,), 500)


def test_legal_actions_must_lie_in_the_discrete_space():
    with pytest.raises(ValueError, match="legal_actions must be distinct ids in 0..2"):
        EnvSpec("toy", "walk", ObservationSpec("state", (5,)), Discrete(3), (0, 3), 20)
    with pytest.raises(ValueError, match="pixel observations are"):
        ObservationSpec("pixels", (12, 96, 96), stack=5)


def test_atari_networks_and_sidecars_come_from_the_spec():
    net = build_model(ATARI, NetConfig(size="tiny", precision="fp32"), seed=0)
    assert net.num_actions == ATARI.num_actions and net.obs_shape == ATARI.observation.shape
    meta = model_meta(ATARI, NetConfig(size="tiny"), {"Breakout": ATARI}, step=3, env_steps=40, config_hash="x")
    assert (meta.num_actions, meta.obs_shape) == (18, [12, 96, 96])
    assert meta.action_maps == {"Breakout": [0, 1, 3, 4]} and meta.games == ["Breakout"]
    seeded = build_model(ATARI, NetConfig(size="tiny", precision="fp32"), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), seeded.state_dict().values(), strict=True))
