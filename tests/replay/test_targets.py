"""Targets against hand-computed values. Frame i of the test segment is filled with the value i,
so the fake target-network value of observation o_p (newest frame p + 3) is p itself."""

import numpy as np
import pytest

from xfer.replay.buffer import SampleIndex
from xfer.replay.segment import Segment
from xfer.replay.targets import (
    behaviour_cloning_targets,
    build_batch,
    n_step_value,
    network_bootstrap,
    stored_bootstrap,
    td_horizon,
    unroll_end,
    value_prefix_targets,
)

A = 18


def make_segment(T=8, rewards=None, cuts=None, terminal=False, first_step=0):
    frames = np.stack([np.full((3, 4, 4), i, dtype=np.uint8) for i in range(T + 4)])
    dist = np.zeros((T, A), dtype=np.float32)
    dist[np.arange(T), np.arange(T) % 3] = 1.0
    mask = np.zeros(A, dtype=bool)
    mask[:3] = True
    return Segment(
        frames=frames,
        actions=np.arange(T, dtype=np.int64) % 3,
        rewards=np.asarray(rewards if rewards is not None else np.ones(T), dtype=np.float32),
        raw_rewards=np.zeros(T, dtype=np.float32),
        cuts=np.asarray(cuts if cuts is not None else np.zeros(T), dtype=bool),
        terminal=terminal,
        root_values=np.zeros(T, dtype=np.float32),
        visit_dist=dist,
        action_mask=mask,
        game="Test",
        first_step=first_step,
    )


def value_of_newest_frame(obs):
    return obs[:, -1, 0, 0].astype(np.float32) - 3.0  # o_p -> p


def index(seg, positions):
    positions = np.asarray(positions, dtype=np.int64)
    return SampleIndex([seg] * len(positions), np.zeros(len(positions), np.int64), positions,
                       np.ones(len(positions), np.float32), positions)


def batch(seg, start, unroll_steps, td_steps, total_added, discount, age_scale=10**9, reanalyse_fraction=0.0,
          bootstrap_fn=None, policy_fn=None):
    """build_batch for one sample at ``start``; bootstraps from the fake value o_p -> p by default."""
    return build_batch(index(seg, [start]), unroll_steps=unroll_steps, td_steps=td_steps, age_scale=age_scale,
                       total_added=total_added, discount=discount, value_prefix_horizon=5,
                       reanalyse_fraction=reanalyse_fraction,
                       bootstrap_fn=bootstrap_fn or network_bootstrap(value_of_newest_frame),
                       policy_fn=policy_fn, rng=np.random.default_rng(0))


def test_td_horizon_shrinks_with_age():
    ages = np.array([0, 29_999, 30_000, 90_000, 10**7])
    assert td_horizon(ages, 5, 30_000).tolist() == [5, 5, 4, 2, 1]


def test_value_prefix_restarts_every_horizon():
    r = np.array([[1, 0, 2, 1, 1, 3]], dtype=np.float32)
    assert value_prefix_targets(r, horizon=3).tolist() == [[1, 1, 3, 1, 2, 5]]


def test_n_step_value_plain_bootstrap():
    seg = make_segment(T=8, rewards=[1, 2, 3, 4, 5, 6, 7, 8])
    total, boot, disc = n_step_value(seg, 1, 3, 0.5)
    # 2 + 0.5*3 + 0.25*4 = 4.5, bootstrap from o_4 with 0.5^3
    assert (total, boot, disc) == (4.5, 4, 0.125)


def test_n_step_value_stops_at_life_loss_without_bootstrap():
    seg = make_segment(T=8, rewards=[1, 1, 1, 1, 1, 1, 1, 1], cuts=[0, 0, 1, 0, 0, 0, 0, 0])
    total, boot, disc = n_step_value(seg, 1, 5, 0.5)
    assert (total, boot, disc) == (1 + 0.5, None, 0.0)


def test_n_step_value_segment_end_bootstraps_unless_terminal():
    seg = make_segment(T=8)
    assert n_step_value(seg, 6, 5, 0.5) == (1.5, 8, 0.25)
    seg_t = make_segment(T=8, terminal=True, cuts=[0] * 7 + [1])
    assert n_step_value(seg_t, 6, 5, 0.5) == (1.5, None, 0.0)


def test_build_batch_values_masks_and_actions():
    seg = make_segment(T=8, rewards=[1, 0, 0, 1, 0, 0, 0, 1])
    b = batch(seg, 5, unroll_steps=4, td_steps=2, total_added=8, discount=0.5)
    # positions 5..9, T = 8: values
    # p=5: r5 + .5 r6 + .25 v(o7) = 0 + 0 + .25*7 = 1.75
    # p=6: r6 + .5 r7 + .25 v(o8) = 0 + .5 + .25*8 = 2.5
    # p=7: r7 + .5 v(o8) = 1 + 4 = 5 (segment end after one step)
    # p=8: o_T itself, not terminal: v(o8) = 8 ; p=9: beyond the segment, masked
    assert b.value[0].tolist() == [1.75, 2.5, 5.0, 8.0, 0.0]
    assert b.mask_value[0].tolist() == [1, 1, 1, 1, 0]
    assert b.mask_policy[0].tolist() == [1, 1, 1, 0, 0]
    assert b.mask_obs[0].tolist() == [1, 1, 1, 1, 0]
    assert b.mask_value_prefix[0].tolist() == [1, 1, 1, 0]
    assert b.value_prefix[0, :3].tolist() == [0, 0, 1]
    assert b.actions[0, :3].tolist() == [5 % 3, 6 % 3, 7 % 3]
    assert b.actions[0, 3] in (0, 1, 2)  # random legal action past the end
    # observations: newest frame of o_p is p + 3, clamped at o_T
    assert b.obs[0, :, -1, 0, 0].tolist() == [8, 9, 10, 11, 11]
    assert b.policy[0, 0].argmax() == 5 % 3


def test_build_batch_terminal_and_reanalyse():
    seg = make_segment(T=4, rewards=[0, 0, 0, 1], cuts=[0, 0, 0, 1], terminal=True)

    def fresh_policy(obs, mask):
        out = np.zeros((len(obs), A), dtype=np.float32)
        out[:, 2] = 1.0
        return out

    b = batch(seg, 2, unroll_steps=3, td_steps=5, total_added=4, discount=0.9, reanalyse_fraction=1.0,
              policy_fn=fresh_policy)
    # p=2: 0 + 0.9*1 then cut: 0.9 ; p=3: 1 ; p=4 = T terminal: 0 (valid) ; p=5 masked
    assert b.value[0].tolist() == pytest.approx([0.9, 1.0, 0.0, 0.0])
    assert b.mask_value[0].tolist() == [1, 1, 1, 0]
    assert b.mask_obs[0].tolist() == [1, 1, 0, 0]  # terminal o_T is not a real observation
    assert b.policy[0, :2, 2].tolist() == [1.0, 1.0] and b.policy[0, 2:].sum() == 0


def test_unroll_end_stops_at_first_learning_terminal_in_the_unroll():
    seg = make_segment(T=8, cuts=[0, 0, 1, 0, 0, 1, 0, 0])
    assert unroll_end(seg, 0, 5) == (3, True)  # life lost on transition 2
    assert unroll_end(seg, 3, 2) == (8, False)  # the cut at 5 lies beyond the unroll's transitions
    assert unroll_end(seg, 3, 3) == (6, True)
    assert unroll_end(make_segment(T=4, cuts=[0, 0, 0, 1], terminal=True), 2, 5) == (4, True)


def test_build_batch_life_loss_inside_the_unroll_is_absorbing():
    """Past a life loss the unroll must not continue into the next life: the dynamics step that
    loses the life leads to an absorbing state with value target 0 (EfficientZero ends the
    trajectory there). Before the fix the next life's value (here o_4 -> 4 + ...) followed it."""
    seg = make_segment(T=8, rewards=[1, 1, 1, 1, 1, 1, 1, 1], cuts=[0, 0, 1, 0, 0, 0, 0, 0])
    b = batch(seg, 1, unroll_steps=4, td_steps=5, total_added=8, discount=0.5)
    # p=1: 1 + .5*1 then cut ; p=2: 1 then cut ; p=3: absorbing 0 ; p=4, 5 masked
    assert b.value[0].tolist() == [1.5, 1.0, 0.0, 0.0, 0.0]
    assert b.mask_value[0].tolist() == [1, 1, 1, 0, 0]
    assert b.mask_policy[0].tolist() == [1, 1, 0, 0, 0]
    assert b.mask_obs[0].tolist() == [1, 1, 0, 0, 0]
    assert b.mask_value_prefix[0].tolist() == [1, 1, 0, 0]
    assert b.value_prefix[0, :2].tolist() == [1, 2]
    assert b.actions[0, :2].tolist() == [1, 2]


def test_off_policy_age_shortens_horizon():
    seg = make_segment(T=8, rewards=[1] * 8, first_step=0)
    b = batch(seg, 0, unroll_steps=1, td_steps=3, total_added=25, discount=0.5, age_scale=10)
    # age 25 -> td = clip(3 - 2, 1, 3) = 1: p=0: 1 + 0.5 * v(o1) = 1.5 ; p=1 : 1 + .5*2 = 2
    assert b.value[0].tolist() == [1.5, 2.0]


def test_stored_bootstrap_uses_recorded_root_values():
    seg = make_segment(T=6, rewards=[0] * 6)
    seg.root_values[:] = np.arange(6, dtype=np.float32) * 10
    seg.final_value = 99.0
    b = batch(seg, 2, unroll_steps=1, td_steps=2, total_added=6, discount=0.5, bootstrap_fn=stored_bootstrap)
    # p=2: 0.25 * root_values[4] = 10 ; p=3: 0.25 * root_values[5] = 12.5
    assert b.value[0].tolist() == [10.0, 12.5]
    assert stored_bootstrap([(seg, 6)]).tolist() == [99.0]
    seg.final_value = float("nan")
    assert stored_bootstrap([(seg, 6)]).tolist() == [50.0]


def test_behaviour_cloning_targets_are_the_actions_taken():
    # actions of the test segment are t % 3; a sample at t = 5 of T = 8 has real actions at 5, 6, 7
    seg = make_segment(T=8)
    b = behaviour_cloning_targets(batch(seg, 5, unroll_steps=4, td_steps=2, total_added=8, discount=0.9))
    assert b.mask_policy[0].tolist() == [1, 1, 1, 0, 0]  # past the end (k = 3) and k = K: masked
    assert b.policy[0, :3].argmax(1).tolist() == [5 % 3, 6 % 3, 7 % 3]
    assert b.policy[0, :3].sum(1).tolist() == [1.0, 1.0, 1.0] and b.policy[0, 3:].sum() == 0
    assert b.value.tolist() == batch(seg, 5, 4, 2, 8, 0.9).value.tolist()  # everything else unchanged
