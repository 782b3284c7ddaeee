"""Ensemble disagreement: the bonus from its modules by hand, training, action spaces, exact resume."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from tests.exploration.specs import BOX, PIXELS, STATES, grey_48, leaky, normalise_by_hand
from xfer.exploration.config import DisagreementConfig, IntrinsicConfig
from xfer.exploration.disagreement import Disagreement
from xfer.rewards import StepRewards

CFG = IntrinsicConfig(disagreement=DisagreementConfig(ensemble=4, feature_dim=8, hidden=32, channels=4))


def transitions(spec, n: int, seed: int) -> StepRewards:
    """``n`` random transitions of ``spec`` (legal action ids, or vectors in the Box)."""
    rng = np.random.default_rng(seed)
    if spec.observation.kind == "pixels":
        obs, nxt = (rng.integers(0, 256, (n, *spec.observation.shape), dtype=np.uint8) for _ in range(2))
    else:
        obs, nxt = (rng.normal(size=(n, *spec.observation.shape)).astype(np.float32) for _ in range(2))
    if spec.legal_actions is None:
        actions = rng.uniform(-1, 1, (n, *spec.action_space.shape)).astype(np.float32)
    else:
        actions = rng.choice(spec.legal_actions, n)
    return StepRewards(np.zeros(n, np.float32), obs, nxt, actions)


def encoded_actions(spec, actions: np.ndarray) -> np.ndarray:
    if spec.legal_actions is None:
        return actions.reshape(len(actions), -1).astype(np.float64)
    return np.eye(spec.action_space.n)[actions]


@pytest.mark.parametrize("spec", [STATES, BOX, PIXELS], ids=["discrete", "box", "pixels"])
def test_bonus_is_the_variance_of_the_ensemble(spec):
    dis = Disagreement(spec, CFG, seed=2)
    seen = []
    for k in range(3):
        step = transitions(spec, 5, seed=k)
        prep = (lambda o: o.astype(np.float64)) if spec.observation.kind == "state" else grey_48
        seen.append(prep(step.next_obs))  # statistics of next observations only
        z = torch.as_tensor(normalise_by_hand(seen, prep(step.obs), CFG.rnd.obs_clip), dtype=torch.float32)
        with torch.no_grad():
            phi = dis.encoder(z).double().numpy()
        x = np.concatenate([phi, encoded_actions(spec, step.actions)], 1)
        w = {k: v.detach().double().numpy() for k, v in copy.deepcopy(dis.models).named_parameters()}
        members = []
        for e in range(4):
            h = leaky(x @ w["w1"][e] + w["b1"][e])
            h = leaky(h @ w["w2"][e] + w["b2"][e])
            members.append(h @ w["w3"][e] + w["b3"][e])
        want = np.var(np.stack(members), axis=0).mean(1)
        got = dis(step)
        assert got.dtype == np.float32 and got.shape == (5,)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-8)
    assert dis.calls == 3 and np.isfinite(dis.last_loss)


@pytest.mark.parametrize("spec", [STATES, BOX], ids=["discrete", "box"])
def test_disagreement_falls_on_repeated_transitions(spec):
    cfg = IntrinsicConfig(disagreement=DisagreementConfig(ensemble=4, feature_dim=8, hidden=32, lr=3e-3))
    dis = Disagreement(spec, cfg, seed=0)
    step = transitions(spec, 8, seed=3)
    encoder = {k: v.clone() for k, v in dis.encoder.state_dict().items()}
    first = dis(step).mean()
    for _ in range(100):
        last = dis(step).mean()
    assert last < 0.2 * first
    assert all(torch.equal(v, encoder[k]) for k, v in dis.encoder.state_dict().items())
    assert all(not p.requires_grad for p in dis.encoder.parameters())


def test_a_resumed_disagreement_gives_bit_identical_bonuses():
    batches = [transitions(BOX, 6, seed=s) for s in range(6)]
    whole = Disagreement(BOX, CFG, seed=5)
    for step in batches[:3]:
        whole(step)
    resumed = Disagreement(BOX, CFG, seed=5)
    resumed.load(whole.state())
    for step in batches[3:]:
        assert np.array_equal(whole(step), resumed(step))
        assert whole.last_loss == resumed.last_loss


def test_seeding_and_the_global_generator():
    step = transitions(PIXELS, 4, seed=0)
    before = torch.random.get_rng_state()
    a, b, c = (Disagreement(PIXELS, CFG, seed=s) for s in (1, 1, 2))
    bonus = a(step)
    assert np.array_equal(bonus, b(step)) and not np.array_equal(bonus, c(step))
    assert torch.equal(before, torch.random.get_rng_state())


def test_bad_actions_raise():
    dis = Disagreement(STATES, CFG, seed=0)
    step = transitions(STATES, 4, seed=0)
    with pytest.raises(ValueError, match=r"ids must lie in 0..2"):
        dis(StepRewards(step.raw, step.obs, step.next_obs, np.array([0, 1, 2, 3])))
    with pytest.raises(ValueError, match=r"\[N\] integer ids"):
        dis(StepRewards(step.raw, step.obs, step.next_obs, np.zeros((4, 2), np.int64)))
    box = Disagreement(BOX, CFG, seed=0)
    step = transitions(BOX, 4, seed=0)
    with pytest.raises(ValueError, match=r"Box actions must be \[N, \*\(4,\)\]"):
        box(StepRewards(step.raw, step.obs, step.next_obs, np.zeros((4, 3), np.float32)))
    with pytest.raises(ValueError, match="3 actions for 4 transitions"):
        box(StepRewards(step.raw, step.obs, step.next_obs, step.actions[:3]))
    with pytest.raises(ValueError, match="obs and next_obs hold 4 and 3"):
        box(StepRewards(step.raw, step.obs, step.next_obs[:3], step.actions))
