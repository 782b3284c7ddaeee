"""Training targets for EfficientZero from sampled replay positions.

For a sample starting at step ``t`` of a segment with ``T`` steps and ``K`` unroll steps:
- observations ``o_{t..t+K}`` (the last stored observation repeats past the segment end);
- actions ``a_{t..t+K-1}`` (random legal actions past the end);
- value prefix targets for ``k = 1..K``: the undiscounted running sum of clipped rewards since the
  unroll start, restarted every ``value_prefix_horizon`` steps (EfficientZero);
- value targets for ``k = 0..K``: ``z_p = sum_{i<n} gamma^i r_{p+i} + gamma^n v'(o_{p+n})`` with
  the off-policy corrected horizon ``n = clip(td_steps - age // age_scale, 1, td_steps)``, cut at
  learning terminals (life loss, game over) without bootstrap, shortened at the segment end, and
  ``v'`` the target network's value;
- the unroll itself stops at the first learning terminal (:func:`unroll_end`): the position after
  a life loss is absorbing (value target 0, no policy or consistency target), later ones masked;
- policy targets for ``k = 0..K``: the stored root visit distribution, or for the reanalysed
  fraction of samples a fresh search with the latest network (MuZero Reanalyse).
Masks mark which entries exist. Shapes below use ``B`` samples, ``A`` actions.

Box actions (Sampled MuZero): the policy targets are over each root's ``S`` sampled actions, which
come with them (``Batch.sampled``). Reanalyse *resamples*: the fresh search draws a new set of
``S`` actions from the reanalysing network's policy and its visit fractions over that set replace
both the stored set and its distribution (a re-search of the stored set would keep scoring actions
the current policy no longer proposes). Past a segment's end the unroll repeats the segment's last
action (masked like the random legal actions of the discrete case).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from xfer.replay.buffer import SampleIndex
from xfer.replay.segment import Segment

ValueFn = Callable[[np.ndarray], np.ndarray]  # obs [M, C, H, W] uint8 -> values [M] float32
BootstrapFn = Callable[[list[tuple[Segment, int]]], np.ndarray]  # (segment, position) pairs -> values [M]
PolicyFn = Callable[[np.ndarray, np.ndarray], np.ndarray | tuple[np.ndarray, np.ndarray]]
"""(obs [M, ...], mask [M, A]) -> policy targets [M, A]; Box actions: (visit fractions [M, S], their
pre-squash sampled actions [M, S, D])."""


@dataclass
class Batch:
    """A training batch (numpy; the learner moves it to torch).

    obs ``[B, K+1, C, H, W]`` uint8; actions ``[B, K]`` int64; value_prefix ``[B, K]`` float32;
    value ``[B, K+1]`` float32; policy ``[B, K+1, A]`` float32; masks (float32 0/1):
    mask_value_prefix ``[B, K]``, mask_value ``[B, K+1]``, mask_policy ``[B, K+1]``,
    mask_obs ``[B, K+1]`` (observation real, usable as consistency target); weights ``[B]``
    float32 importance weights; action_mask ``[B, A]`` bool; segment_ids/positions ``[B]`` int64.

    State observations: obs ``[B, K+1, D]`` float32. Box actions: actions ``[B, K, D]`` float32, policy
    ``[B, K+1, S]`` over ``sampled [B, K+1, S, D]`` float32 (pre-squash sampled actions), action_mask
    ``[B, 0]``; ``sampled`` is ``None`` for discrete actions.
    """

    obs: np.ndarray
    actions: np.ndarray
    value_prefix: np.ndarray
    value: np.ndarray
    policy: np.ndarray
    mask_value_prefix: np.ndarray
    mask_value: np.ndarray
    mask_policy: np.ndarray
    mask_obs: np.ndarray
    weights: np.ndarray
    action_mask: np.ndarray
    segment_ids: np.ndarray
    positions: np.ndarray
    sampled: np.ndarray | None = None


def concat_batches(batches: list[Batch]) -> Batch:
    """Concatenate batches along the sample axis (every field ``[B_i, ...]`` -> ``[sum B_i, ...]``);
    all batches need the same ``K`` and action count."""
    fields = Batch.__dataclass_fields__
    return Batch(**{f: None if getattr(batches[0], f) is None else np.concatenate([getattr(b, f) for b in batches])
                    for f in fields})


def td_horizon(age: np.ndarray, td_steps: int, age_scale: int) -> np.ndarray:
    """Off-policy corrected TD steps ``clip(td_steps - age // age_scale, 1, td_steps)`` (EfficientZero).

    ``age`` ``[B]`` int64 = transitions collected since the sampled one (units: agent steps).
    """
    return np.clip(td_steps - age // age_scale, 1, td_steps).astype(np.int64)


def value_prefix_targets(rewards: np.ndarray, horizon: int) -> np.ndarray:
    """Running sums of ``rewards [B, K]`` restarted every ``horizon`` steps -> ``[B, K]`` float32."""
    out = np.zeros_like(rewards, dtype=np.float32)
    acc = np.zeros(rewards.shape[0], dtype=np.float32)
    for k in range(rewards.shape[1]):
        if k % horizon == 0:
            acc = np.zeros_like(acc)
        acc = acc + rewards[:, k]
        out[:, k] = acc
    return out


def n_step_value(seg: Segment, p: int, n: int, discount: float) -> tuple[float, int | None, float]:
    """Discounted reward sum of the n-step target at ``p`` and where to bootstrap.

    Returns ``(reward_sum, bootstrap_position or None, bootstrap_discount)``: the target is
    ``reward_sum + bootstrap_discount * v'(o_bootstrap_position)``; ``None`` means no bootstrap
    (a learning terminal was reached, or ``p`` is a true terminal observation).
    """
    total = 0.0
    T = len(seg)
    for i in range(n):
        if p + i >= T:  # segment end: bootstrap from the last observation if it is real
            return total, (None if seg.terminal else T), discount**i
        total += discount**i * float(seg.rewards[p + i])
        if seg.cuts[p + i]:
            return total, None, 0.0
    if p + n >= T and seg.terminal:
        return total, None, 0.0
    return total, p + n, discount**n


def unroll_end(seg: Segment, t: int, unroll_steps: int) -> tuple[int, bool]:
    """Where the unroll from ``t`` stops having real successors: ``(end, terminal)``.

    ``t``, ``end`` are positions in the segment and ``unroll_steps`` (K) a count, all in agent
    steps; raises nothing (``t`` must be ``< len(seg)``, as sampled positions are).

    ``end`` is the first position after a learning terminal (life loss or game over) among the
    unroll's transitions ``t .. t+K-1``, with ``terminal=True``; without one it is the segment end
    ``T`` with the segment's own ``terminal`` flag. Positions ``p > end`` are masked; ``p == end``
    with ``terminal`` is the absorbing state: value target 0, no policy, no consistency target.
    EfficientZero ends a trajectory at every life loss in training, so a dynamics step that loses
    a life leads to value 0; carrying on into the next life would teach the model that dying
    costs nothing (the next life's value follows the fatal action).
    """
    T = len(seg)
    cut = np.flatnonzero(seg.cuts[t : min(t + unroll_steps, T)])
    if cut.size:
        return t + int(cut[0]) + 1, True
    return T, seg.terminal


def network_bootstrap(value_fn: ValueFn) -> BootstrapFn:
    """Bootstrap values from a network: stacks ``o_p`` for every request and calls ``value_fn``."""

    def fn(requests: list[tuple[Segment, int]]) -> np.ndarray:
        return value_fn(np.stack([seg.obs(p) for seg, p in requests]))

    return fn


def stored_bootstrap(requests: list[tuple[Segment, int]]) -> np.ndarray:
    """Bootstrap values from stored root values (teacher annotations in XTRA's offline data).

    ``o_p`` with ``p < T`` uses ``root_values[p]``; the last observation ``o_T`` uses the segment's
    ``final_value`` when it was recorded, else ``root_values[T-1]`` (a one-step-stale estimate).
    """
    out = np.empty(len(requests), dtype=np.float32)
    for i, (seg, p) in enumerate(requests):
        if p < len(seg):
            out[i] = seg.root_values[p]
        else:
            out[i] = seg.final_value if np.isfinite(seg.final_value) else seg.root_values[-1]
    return out


def build_batch(
    index: SampleIndex,
    unroll_steps: int,
    td_steps: int,
    age_scale: int,
    total_added: int,
    discount: float,
    value_prefix_horizon: int,
    reanalyse_fraction: float,
    bootstrap_fn: BootstrapFn,
    policy_fn: PolicyFn | None,
    rng: np.random.Generator,
) -> Batch:
    """Build EfficientZero targets for sampled start positions (see module docstring).

    Args:
        index: sampled segments and start positions.
        total_added: transitions ever added to the buffer (for the off-policy age).
        bootstrap_fn: values for ``(segment, position)`` bootstrap requests: the target network
            (:func:`network_bootstrap`) or stored teacher values (:func:`stored_bootstrap`).
        policy_fn: fresh search policy for reanalyse; ``None`` disables reanalyse.
    """
    K = unroll_steps
    B = len(index.segments)
    seg0 = index.segments[0]
    A = seg0.visit_dist.shape[1]
    obs0 = seg0.obs(0)
    obs = np.zeros((B, K + 1, *obs0.shape), dtype=obs0.dtype)
    box = seg0.sampled is not None
    actions = np.zeros((B, K, *seg0.actions.shape[1:]), dtype=seg0.actions.dtype)
    sampled = np.zeros((B, K + 1, *seg0.sampled.shape[1:]), np.float32) if box else None
    rewards = np.zeros((B, K), dtype=np.float32)
    mask_vp = np.zeros((B, K), dtype=np.float32)
    value = np.zeros((B, K + 1), dtype=np.float32)
    mask_value = np.zeros((B, K + 1), dtype=np.float32)
    policy = np.zeros((B, K + 1, A), dtype=np.float32)
    mask_policy = np.zeros((B, K + 1), dtype=np.float32)
    mask_obs = np.zeros((B, K + 1), dtype=np.float32)
    action_mask = np.stack([s.action_mask for s in index.segments])

    ages = np.array([total_added - (s.first_step + t) for s, t in zip(index.segments, index.positions)])
    horizons = td_horizon(np.maximum(ages, 0), td_steps, age_scale)
    boot_requests: list[tuple[Segment, int]] = []
    boot_slots: list[tuple[int, int, float]] = []
    reanalyse = rng.random(B) < reanalyse_fraction if policy_fn is not None else np.zeros(B, dtype=bool)
    re_obs: list[np.ndarray] = []
    re_slots: list[tuple[int, int]] = []

    for b, (seg, t) in enumerate(zip(index.segments, index.positions.tolist())):
        # The unroll ends at the segment end or at the first learning terminal inside it: past a
        # life loss the dynamics must see an absorbing state (value 0), not the next life.
        T, terminal = unroll_end(seg, t, K)
        legal = np.flatnonzero(seg.action_mask)
        for k in range(K + 1):
            p = t + k
            obs[b, k] = seg.obs(min(p, T))
            mask_obs[b, k] = float(p < T or (p == T and not terminal))
            if k < K:
                if p < T:
                    actions[b, k] = seg.actions[p]
                    rewards[b, k] = seg.rewards[p]
                    mask_vp[b, k] = 1.0
                elif box:
                    actions[b, k] = seg.actions[min(p, len(seg) - 1)]
                else:
                    actions[b, k] = rng.choice(legal)
            if p < T:
                mask_policy[b, k] = 1.0
                if reanalyse[b]:
                    re_obs.append(obs[b, k])
                    re_slots.append((b, k))
                else:
                    policy[b, k] = seg.visit_dist[p]
                    if box:
                        sampled[b, k] = seg.sampled[p]
            if p <= T:
                mask_value[b, k] = 1.0
                if p == T:
                    total, boot, disc = 0.0, (None if terminal else T), 1.0
                else:
                    total, boot, disc = n_step_value(seg, p, int(horizons[b]), discount)
                value[b, k] = total
                if boot is not None:
                    boot_requests.append((seg, boot))
                    boot_slots.append((b, k, disc))

    if boot_requests:
        v = bootstrap_fn(boot_requests)
        for (b, k, disc), vb in zip(boot_slots, v.tolist()):
            value[b, k] += disc * vb
    if re_obs:
        fresh = policy_fn(np.stack(re_obs), action_mask[[b for b, _ in re_slots]])
        if box:
            fresh, fresh_sampled = fresh
            for (b, k), u in zip(re_slots, fresh_sampled):
                sampled[b, k] = u
        for (b, k), pi in zip(re_slots, fresh):
            policy[b, k] = pi

    return Batch(
        obs=obs,
        actions=actions,
        value_prefix=value_prefix_targets(rewards, value_prefix_horizon),
        value=value,
        policy=policy,
        mask_value_prefix=mask_vp,
        mask_value=mask_value,
        mask_policy=mask_policy,
        mask_obs=mask_obs,
        weights=index.weights,
        action_mask=action_mask,
        segment_ids=index.segment_ids,
        positions=index.positions,
        sampled=sampled,
    )


def behaviour_cloning_targets(batch: Batch) -> Batch:
    """The batch with its policy targets replaced by the actions the behaviour policy took (one-hot),
    for behaviour cloning (XTRA section 4's multi-game BC baseline).

    Position ``k < K`` gets ``one_hot(actions[:, k])`` where the action is real
    (``mask_value_prefix[:, k] == 1``, not a random action past the segment's end or a terminal);
    every other position, and ``k = K`` (no action), is masked. Shapes as in :class:`Batch`.

    Raises:
        ValueError: a batch of Box actions (behaviour cloning is XTRA's Atari baseline).
    """
    if batch.sampled is not None:
        raise ValueError("behaviour cloning targets are one-hot over discrete actions; this batch has Box actions")
    B, K = batch.actions.shape
    A = batch.policy.shape[2]
    policy = np.zeros((B, K + 1, A), dtype=np.float32)
    policy[np.arange(B)[:, None], np.arange(K)[None, :], batch.actions] = 1.0
    mask = np.zeros((B, K + 1), dtype=np.float32)
    mask[:, :K] = batch.mask_value_prefix
    policy *= mask[:, :, None]
    return replace(batch, policy=policy, mask_policy=mask)
