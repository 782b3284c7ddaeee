"""Box actions and state observations through replay (Sampled MuZero): the segment builder, the flat
arrays of resume state and offline shards, and the training targets with their sampled actions.

The test episode has hand-readable numbers (``D = 3``, ``S = 4``): state ``o_t = t + [0, 0.25, 0.5]``,
action ``a_t = t / 10 * [1, -1, 0.5]``, reward ``t``, root ``t``'s sampled set ``100 t + [0 .. S*D)``
(pre-squash) with all its visits on sample ``t % S``."""

from __future__ import annotations

import numpy as np
import pytest

from tests.replay.test_targets import index
from tests.replay.test_targets import make_segment as pixel_segment
from xfer.replay.segment import Segment, SegmentBuilder
from xfer.replay.serialize import segments_from_arrays, segments_to_arrays
from xfer.replay.targets import build_batch, concat_batches, network_bootstrap

D, S = 3, 4
NO_MASK = np.zeros(0, bool)  # a Box has no illegal actions


def state(t: int) -> np.ndarray:
    return (t + np.array([0.0, 0.25, 0.5])).astype(np.float32)


def action(t: int) -> np.ndarray:
    return (t / 10 * np.array([1.0, -1.0, 0.5])).astype(np.float32)


def sampled(t: int) -> np.ndarray:
    return (100 * t + np.arange(S * D).reshape(S, D)).astype(np.float32)


def visits(t: int) -> np.ndarray:
    return np.eye(S, dtype=np.float32)[t % S]


def box_segments(steps: int = 6, segment_length: int = 4) -> list[Segment]:
    """One episode of ``steps`` Box transitions (ending in a true terminal) cut into segments."""
    b = SegmentBuilder(stack=1, segment_length=segment_length, action_mask=NO_MASK, game="reach-v3")
    b.start(state(0), first_step=0)
    out = []
    for t in range(steps):
        over = t == steps - 1
        seg = b.add(action(t), float(t), 10.0 * t, False, 0.5 * t, visits(t), state(t + 1), over, over,
                    state(t + 1), t + 1, sampled=sampled(t))
        if seg is not None:
            out.append(seg)
    return out


def test_the_builder_keeps_state_frames_box_actions_and_the_sampled_sets():
    first, second = box_segments()
    assert [len(first), len(second)] == [4, 2]
    assert first.frames.dtype == np.float32 and first.frames.shape == (5, D) and first.stack == 1
    assert first.actions.dtype == np.float32 and first.actions.shape == (4, D)
    assert first.sampled.dtype == np.float32 and first.sampled.shape == (4, S, D)
    assert first.visit_dist.shape == (4, S) and first.action_mask.shape == (0,)
    for t in range(5):
        np.testing.assert_array_equal(first.obs(t), state(t))
    for t in range(4):
        np.testing.assert_array_equal(first.actions[t], action(t))
        np.testing.assert_array_equal(first.sampled[t], sampled(t))
    # the next segment continues from o_4 and ends the episode
    np.testing.assert_array_equal(second.obs(0), state(4))
    np.testing.assert_array_equal(second.sampled, np.stack([sampled(4), sampled(5)]))
    assert second.first_step == 4 and second.terminal and second.cuts.tolist() == [False, True]


def test_box_segments_round_trip_through_flat_arrays_exactly(tmp_path):
    segs = box_segments()
    arrays = segments_to_arrays(segs)
    assert arrays["sampled"].shape == (6, S, D) and arrays["frames"].shape == (5 + 3, D)
    np.savez(tmp_path / "arrays.npz", **arrays)  # as resume state stores them
    with np.load(tmp_path / "arrays.npz") as f:
        back = segments_from_arrays(dict(f))
    assert len(back) == 2
    for a, b in zip(segs, back):
        for name in ("frames", "actions", "rewards", "raw_rewards", "cuts", "root_values", "visit_dist",
                     "sampled", "action_mask"):
            got, want = getattr(b, name), getattr(a, name)
            assert got.dtype == want.dtype and got.shape == want.shape, name
            np.testing.assert_array_equal(got, want, err_msg=name)
        assert (b.terminal, b.first_step, b.stack, b.game) == (a.terminal, a.first_step, a.stack, a.game)
    # discrete segments store no sampled sets
    assert "sampled" not in segments_to_arrays([pixel_segment(T=3)])
    assert segments_from_arrays(segments_to_arrays([pixel_segment(T=3)]))[0].sampled is None


def test_a_segment_whose_sampled_sets_do_not_match_its_visit_distribution_is_refused():
    seg = box_segments()[0]
    fields = {**seg.__dict__}
    with pytest.raises(ValueError, match="do not match visit_dist"):
        Segment(**{**fields, "sampled": np.zeros((4, S + 1, D), np.float32)})  # other S
    with pytest.raises(ValueError, match="do not match visit_dist"):
        Segment(**{**fields, "sampled": np.zeros((3, S, D), np.float32)})  # other T


def _box_batch(positions, unroll_steps=3, reanalyse_fraction=0.0, policy_fn=None):
    seg = box_segments()[0]  # T = 4, not terminal: o_4 is real
    return seg, build_batch(index(seg, positions), unroll_steps=unroll_steps, td_steps=2, age_scale=10**9,
                            total_added=6, discount=0.5, value_prefix_horizon=5,
                            reanalyse_fraction=reanalyse_fraction,
                            bootstrap_fn=network_bootstrap(lambda o: o[:, 0].copy()), policy_fn=policy_fn,
                            rng=np.random.default_rng(0))


def test_box_batches_carry_states_action_vectors_and_the_stored_sampled_sets():
    seg, b = _box_batch([0, 2])
    assert b.obs.dtype == np.float32 and b.obs.shape == (2, 4, D)
    assert b.actions.dtype == np.float32 and b.actions.shape == (2, 3, D)
    assert b.policy.shape == (2, 4, S) and b.sampled.dtype == np.float32 and b.sampled.shape == (2, 4, S, D)
    assert b.action_mask.shape == (2, 0)
    # sample 0 starts at t = 0: every position is real
    np.testing.assert_array_equal(b.obs[0], np.stack([state(p) for p in range(4)]))
    np.testing.assert_array_equal(b.actions[0], np.stack([action(p) for p in range(3)]))
    np.testing.assert_array_equal(b.sampled[0], np.stack([sampled(p) for p in range(4)]))
    np.testing.assert_array_equal(b.policy[0], np.stack([visits(p) for p in range(4)]))
    # sample 1 starts at t = 2 of T = 4: p = 2, 3 real, o_4 the last observation (value only), p = 5 past it
    np.testing.assert_array_equal(b.obs[1], np.stack([state(2), state(3), state(4), state(4)]))
    assert b.mask_policy[1].tolist() == [1, 1, 0, 0] and b.mask_value_prefix[1].tolist() == [1, 1, 0]
    np.testing.assert_array_equal(b.sampled[1, :2], np.stack([sampled(2), sampled(3)]))
    np.testing.assert_array_equal(b.policy[1, :2], np.stack([visits(2), visits(3)]))
    assert (b.sampled[1, 2:] == 0).all() and (b.policy[1, 2:] == 0).all()
    # the action past the end repeats the segment's last action a_3 (no random legal action exists)
    np.testing.assert_array_equal(b.actions[1], np.stack([action(2), action(3), action(3)]))
    # values as for pixels: p = 2: r2 + .5 r3 + .25 v(o_4) with v = o[0] = 4 -> 2 + 1.5 + 1 = 4.5
    assert b.value[1].tolist() == [4.5, 3 + 0.5 * 4, 4.0, 0.0]


def test_reanalysed_box_targets_take_the_fresh_policy_and_its_new_sampled_set():
    seen = {}

    def fresh(obs, mask):
        """A fake re-search: all visits on sample 1 of a set that is ``-o_p[0]`` everywhere."""
        seen.update(obs=obs.copy(), mask=mask)
        policy = np.tile(np.float32([0.0, 1.0, 0.0, 0.0]), (len(obs), 1))
        samples = np.broadcast_to(-obs[:, :1, None], (len(obs), S, D)).astype(np.float32)
        return policy, samples

    _, b = _box_batch([2], reanalyse_fraction=1.0, policy_fn=fresh)
    # only the real positions p = 2, 3 are re-searched, with the Box's empty masks
    np.testing.assert_array_equal(seen["obs"], np.stack([state(2), state(3)]))
    assert seen["mask"].shape == (2, 0)
    np.testing.assert_array_equal(b.policy[0], [[0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(b.sampled[0, :, 0, 0], [-2.0, -3.0, 0.0, 0.0])
    # the whole stored set is replaced (resampling), not re-scored
    assert (b.sampled[0, 0] == -2.0).all() and (b.sampled[0, 1] == -3.0).all()


def test_concat_batches_keeps_sampled_sets_and_leaves_discrete_batches_without():
    _, a = _box_batch([0, 2])
    _, b = _box_batch([1])
    both = concat_batches([a, b])
    assert both.sampled.shape == (3, 4, S, D) and both.obs.shape == (3, 4, D)
    assert both.actions.shape == (3, 3, D)
    np.testing.assert_array_equal(both.sampled[:2], a.sampled)
    np.testing.assert_array_equal(both.sampled[2], b.sampled[0])
    # discrete pixel batches: no sampled sets, and their dtypes and shapes as before
    seg = pixel_segment(T=8)
    d = build_batch(index(seg, [0, 5]), 3, 2, 10**9, 8, 0.5, 5, 0.0,
                    network_bootstrap(lambda o: np.zeros(len(o), np.float32)), None, np.random.default_rng(0))
    pooled = concat_batches([d, d])
    assert pooled.sampled is None and d.sampled is None
    assert (pooled.obs.dtype, pooled.obs.shape) == (np.uint8, (4, 4, 12, 4, 4))
    assert (pooled.actions.dtype, pooled.actions.shape) == (np.int64, (4, 3))
    assert pooled.policy.shape == (4, 4, 18) and pooled.action_mask.shape == (4, 18)
