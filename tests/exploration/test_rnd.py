"""Random Network Distillation: the bonus from its modules by hand, training, exact resume, seeding."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import safetensors.torch
import torch

from tests.exploration.specs import PIXELS, STATES, grey_48, normalise_by_hand
from xfer.exploration.config import IntrinsicConfig, RNDConfig
from xfer.exploration.features import conv_output_size, preprocess
from xfer.exploration.rnd import RND
from xfer.rewards import StepRewards

CFG = IntrinsicConfig(rnd=RNDConfig(feature_dim=16, hidden=32, channels=4, update_proportion=0.5))


def steps(spec, n: int, count: int, seed: int) -> list[StepRewards]:
    """``count`` random steps of ``n`` transitions of ``spec``'s observations."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        if spec.observation.kind == "pixels":
            obs, nxt = (rng.integers(0, 256, (n, *spec.observation.shape), dtype=np.uint8) for _ in range(2))
        else:
            obs, nxt = (rng.normal(size=(n, *spec.observation.shape)).astype(np.float32) for _ in range(2))
        out.append(StepRewards(np.zeros(n, np.float32), obs, nxt, rng.integers(0, 3, n)))
    return out


@pytest.mark.parametrize("spec", [STATES, PIXELS], ids=["states", "pixels"])
def test_bonus_is_the_mean_squared_error_of_predictor_and_target(spec):
    rnd = RND(spec, CFG, seed=3)
    seen = []
    for step in steps(spec, 6, 3, seed=1):
        x = step.next_obs.astype(np.float64) if spec.observation.kind == "state" else grey_48(step.next_obs)
        seen.append(x)
        predictor = copy.deepcopy(rnd.predictor)  # the bonus is scored before the training step
        z = torch.as_tensor(normalise_by_hand(seen, x, CFG.rnd.obs_clip), dtype=torch.float32)
        with torch.no_grad():
            want = (predictor(z) - rnd.target(z)).double().square().mean(1).numpy()
        got = rnd(step)
        assert got.dtype == np.float32 and got.shape == (6,)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
    assert rnd.calls == 3 and np.isfinite(rnd.last_loss)


def test_pixel_preprocessing_keeps_only_the_last_frame():
    (step,) = steps(PIXELS, 4, 1, seed=2)
    changed = step.next_obs.copy()
    changed[:, :3] = 255 - changed[:, :3]  # the older frame
    a, b = RND(PIXELS, CFG, seed=0), RND(PIXELS, CFG, seed=0)
    x = preprocess(step.next_obs, PIXELS.observation, 48)
    assert x.shape == (4, 1, 48, 48) and x.dtype == torch.float32
    assert torch.equal(x, preprocess(changed, PIXELS.observation, 48))
    np.testing.assert_allclose(x.numpy(), grey_48(step.next_obs), rtol=1e-6)
    assert np.array_equal(a(step), b(StepRewards(step.raw, step.obs, changed, step.actions)))
    newest = step.next_obs.copy()
    newest[:, 3:] = 255 - newest[:, 3:]
    assert not torch.equal(x, preprocess(newest, PIXELS.observation, 48))


def test_the_target_never_changes_and_the_predictor_learns():
    rnd = RND(PIXELS, CFG, seed=0)
    target = {k: v.clone() for k, v in rnd.target.state_dict().items()}
    predictor = {k: v.clone() for k, v in rnd.predictor.state_dict().items()}
    for step in steps(PIXELS, 4, 5, seed=0):
        rnd(step)
    assert all(not p.requires_grad for p in rnd.target.parameters())
    assert all(torch.equal(v, target[k]) for k, v in rnd.target.state_dict().items())
    assert not all(torch.equal(v, predictor[k]) for k, v in rnd.predictor.state_dict().items())


def test_novelty_decays_on_repeated_observations():
    cfg = IntrinsicConfig(rnd=RNDConfig(feature_dim=16, hidden=64, lr=3e-3))
    rnd = RND(STATES, cfg, seed=0)
    (step,) = steps(STATES, 8, 1, seed=5)  # eight distinct states, shown again and again
    first = rnd(step).mean()
    first_loss = rnd.last_loss
    for _ in range(100):
        last = rnd(step).mean()
    assert last < 0.05 * first
    assert rnd.last_loss < 0.05 * first_loss
    # states never trained on stay novel next to the repeated ones
    (fresh,) = steps(STATES, 8, 1, seed=6)
    mixed = np.concatenate([step.next_obs, fresh.next_obs])
    bonus = rnd(StepRewards(np.zeros(16, np.float32), mixed, mixed, np.zeros(16, np.int64)))
    assert bonus[8:].mean() > 5 * bonus[:8].mean()


@pytest.mark.parametrize("spec", [STATES, PIXELS], ids=["states", "pixels"])
def test_a_resumed_rnd_gives_bit_identical_bonuses(spec):
    batches = steps(spec, 5, 6, seed=4)
    whole = RND(spec, CFG, seed=7)
    for step in batches[:3]:
        whole(step)
    saved = safetensors.torch.load(safetensors.torch.save(whole.state()))  # storable without pickle
    resumed = RND(spec, CFG, seed=7)
    resumed.load(saved)
    assert resumed.last_loss == whole.last_loss
    for step in batches[3:]:
        assert np.array_equal(whole(step), resumed(step))
        assert whole.last_loss == resumed.last_loss
    assert all(torch.equal(v, resumed.state()[k]) for k, v in whole.state().items())
    with pytest.raises(ValueError, match="seed 7"):
        RND(spec, CFG, seed=8).load(saved)
    broken = dict(saved)
    del broken["obs_rms.mean"]
    with pytest.raises(ValueError, match="missing keys"):
        RND(spec, CFG, seed=7).load(broken)


def test_seeding_and_the_global_generator():
    batches = steps(STATES, 4, 3, seed=0)
    before = torch.random.get_rng_state()
    a, b, c = RND(STATES, CFG, seed=1), RND(STATES, CFG, seed=1), RND(STATES, CFG, seed=2)
    outs = [(a(s), b(s), c(s)) for s in batches]
    assert torch.equal(before, torch.random.get_rng_state())
    assert all(np.array_equal(x, y) for x, y, _ in outs)
    assert not np.array_equal(outs[0][0], outs[0][2])
    torch.randn(3)  # the bonus is of the seed alone, not of earlier draws of the global generator
    assert np.array_equal(RND(STATES, CFG, seed=1)(batches[0]), outs[0][0])


def test_bad_inputs_raise():
    rnd = RND(STATES, CFG, seed=0)
    (step,) = steps(STATES, 4, 1, seed=0)
    with pytest.raises(ValueError, match=r"batch \[N >= 1, \*\(6,\)\]"):
        rnd(StepRewards(step.raw, step.obs, step.next_obs[:, :5], step.actions))
    with pytest.raises(ValueError, match="frame_size 35 is too small"):
        conv_output_size(35)
    with pytest.raises(ValueError, match="36"):  # the config or the network builder refuses it
        RND(PIXELS, IntrinsicConfig(frame_size=35, rnd=CFG.rnd), seed=0)
    RND(PIXELS, IntrinsicConfig(frame_size=36, rnd=CFG.rnd), seed=0)
    with pytest.raises(ValueError, match="seed >= 0"):
        RND(STATES, CFG, seed=-1)
