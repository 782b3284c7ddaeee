import numpy as np
import pytest
import torch

from tests.replay.test_targets import index, make_segment
from tests.specs import ATARI_INPUT
from xfer.config import LossConfig, OptimConfig
from xfer.learner import Learner, learning_rate
from xfer.nets.efficientzero import build_network
from xfer.nets.sizes import net_spec
from xfer.replay.targets import build_batch, network_bootstrap


def test_learning_rate_schedule():
    cfg = OptimConfig(lr=0.2, warmup_fraction=0.01, lr_decay_steps=100, lr_decay_rate=0.1)
    assert learning_rate(0, 1000, cfg) == pytest.approx(0.2 / 10)
    assert learning_rate(9, 1000, cfg) == pytest.approx(0.2)
    assert learning_rate(99, 1000, cfg) == pytest.approx(0.2)
    assert learning_rate(100, 1000, cfg) == pytest.approx(0.02)


def real_batch(seed=0):
    rng = np.random.default_rng(seed)
    seg = make_segment(T=12, rewards=rng.integers(0, 2, 12))
    seg.frames[:] = rng.integers(0, 256, seg.frames.shape, dtype=np.uint8)
    seg = type(seg)(**{**seg.__dict__, "frames": np.repeat(np.repeat(seg.frames, 24, 2), 24, 3)})
    idx = index(seg, [0, 3, 6, 9])
    zero = network_bootstrap(lambda o: np.zeros(len(o), np.float32))
    return build_batch(idx, 5, 5, 10**9, 12, 0.997, 5, 0.0, zero, None, rng)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_learner_overfits_a_fixed_batch(precision):
    torch.manual_seed(0)
    net = build_network(net_spec("tiny"), *ATARI_INPUT, precision=precision)
    learner = Learner(net, OptimConfig(kind="adam", lr=3e-3, warmup_fraction=0.0), LossConfig(), 5, 100,
                      augment=False)
    batch = real_batch()
    first = learner.step(batch).metrics["loss"]
    for _ in range(30):
        last = learner.step(batch)
    assert last.metrics["loss"] < 0.7 * first
    assert last.priorities.shape == (4,) and np.all(last.priorities >= 0)
    assert learner.step_count == 31


def test_target_network_refresh_copies_weights():
    net = build_network(net_spec("tiny"), *ATARI_INPUT)
    learner = Learner(net, OptimConfig(), LossConfig(), 5, 10, augment=True)
    learner.step(real_batch(1))
    p_online = next(learner.net.parameters())
    p_target = next(learner.target_net.parameters())
    assert not torch.equal(p_online, p_target)
    learner.refresh_target()
    assert torch.equal(next(learner.net.parameters()), next(learner.target_net.parameters()))


def test_random_shift_is_a_translation_of_the_padded_image():
    from xfer.augment import augment, random_shift

    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    g = torch.Generator().manual_seed(0)
    y = random_shift(x, pad=2, generator=g)
    assert y.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    for i in range(2):
        hits = [(dy, dx) for dy in range(5) for dx in range(5) if torch.equal(padded[i, :, dy:dy + 8, dx:dx + 8], y[i])]
        assert hits, "output is not a crop of the padded input"
    obs = torch.full((3, 12, 96, 96), 128, dtype=torch.uint8)
    out = augment(obs)
    assert out.dtype == torch.float32 and out.shape == obs.shape
    assert out.is_contiguous(memory_format=torch.channels_last)  # the layout the convolutions want
    assert torch.all((out - 128 / 255).abs() <= 0.1 * 128 / 255 + 1e-6)  # intensity within 1 +- 2*0.05
    assert augment(obs, dtype=torch.bfloat16).dtype == torch.bfloat16


@pytest.mark.parametrize("size", ["ez", "ez-l"])
def test_full_size_network_trains_and_searches_on_cpu(size):
    from xfer.config import SearchConfig
    from xfer.inference import search_policy

    net = build_network(net_spec(size), *ATARI_INPUT)
    learner = Learner(net, OptimConfig(), LossConfig(), 5, 10, augment=True)
    result = learner.step(real_batch(2))
    assert np.isfinite(result.metrics["loss"]) and result.priorities.shape == (4,)
    obs = np.random.default_rng(0).integers(0, 256, (2, 12, 96, 96), dtype=np.uint8)
    mask = np.zeros((2, 18), bool)
    mask[:, :6] = True
    out = search_policy(learner.net, obs, mask, SearchConfig(num_simulations=8), np.random.default_rng(0), True)
    assert out.visit_counts.sum(1).tolist() == [8, 8] and out.visit_counts[:, 6:].sum() == 0


def _learner(seed=0):
    torch.manual_seed(seed)
    return Learner(build_network(net_spec("tiny"), *ATARI_INPUT), OptimConfig(kind="adam", lr=1e-3, warmup_fraction=0.0),
                   LossConfig(), 5, 100, augment=False)


def _bn_stats(net):
    return {k: v.clone() for k, v in net.state_dict().items() if "running_" in k}


def test_multi_task_step_forwards_one_pooled_batch():
    # XTRA's code: target and offline samples share one set of batch statistics per step, so the
    # running statistics (acting, reanalyse, evaluation) mix the tasks by their share of the batch.
    from xfer.replay.targets import concat_batches

    a, b = real_batch(1), real_batch(2)
    multi, pooled = _learner(), _learner()
    multi.step_tasks([a, b], [1.0, 1.0])
    pooled.step(concat_batches([a, b]))
    for key, value in _bn_stats(multi.net).items():
        torch.testing.assert_close(value, _bn_stats(pooled.net)[key], msg=key)


@pytest.mark.parametrize("balance", ["sum", "pooled"])
def test_loss_balance(balance):
    a, b, c = real_batch(1), real_batch(2), real_batch(3)
    res = _learner().step_tasks([a, b, c], [1.0, 0.5, 0.25], balance)
    l0, l1, l2 = (res.metrics[f"loss_task{i}"] for i in range(3))
    want = l0 + 0.5 * l1 + 0.25 * l2 if balance == "sum" else 0.5 * l0 + 0.5 * (0.5 * l1 + 0.25 * l2) / 2
    assert res.metrics["loss_total"] == pytest.approx(want, rel=1e-5)
    assert res.metrics["loss"] == pytest.approx(l0) and res.priorities.shape == (4,)
    with pytest.raises(ValueError, match="balance"):
        _learner().step_tasks([a], [1.0], "mean")


def test_gradient_cosines_come_from_the_same_pooled_step():
    a, b = real_batch(1), real_batch(2)
    same = _learner().step_tasks([a, a, b], [1.0, 1.0, 1.0], "pooled", measure_cosines=True)
    assert same.cosines.shape == (2,)
    assert same.cosines[0] == pytest.approx(1.0, abs=1e-5)  # a task against itself
    assert -1.0 <= same.cosines[1] < 0.9999
    assert _learner().step_tasks([a, b], [1.0, 1.0]).cosines is None


def test_frozen_representation_keeps_weights_and_batch_norm_statistics():
    learner = _learner()
    learner.freeze_representation()
    h_before = {k: v.clone() for k, v in learner.net.representation_net.state_dict().items()}
    f_before = [p.clone() for p in learner.net.prediction_net.parameters()]
    for s in range(3):
        learner.step(real_batch(s))
    for k, v in learner.net.representation_net.state_dict().items():
        assert torch.equal(v, h_before[k]), f"representation {k} moved"
    assert any(not torch.equal(p, q) for p, q in zip(learner.net.prediction_net.parameters(), f_before))
    assert all(p.requires_grad is False for p in learner.net.representation_net.parameters())
    optimised = {id(p) for g in learner.optimizer.param_groups for p in g["params"]}
    assert not optimised & {id(p) for p in learner.net.representation_net.parameters()}


def test_fixed_learning_rate_overrides_the_schedule():
    learner = _learner()
    assert learner.step(real_batch(1)).metrics["lr"] == pytest.approx(1e-3)
    learner.lr_override = 1e-4
    assert learner.step(real_batch(1)).metrics["lr"] == pytest.approx(1e-4)
    assert learner.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def box_batch(seed=0, K=5, S=5):
    """A Box batch (Sampled MuZero) for :data:`tests.test_acting_box.BOX` built the way self-play and
    replay build one: a :class:`SegmentBuilder` fed ``[39]`` states, ``[4]`` actions in ``[-1, 1]`` and each
    root's ``[S, 4]`` sampled set with visit fractions over it, then :func:`build_batch`."""
    from xfer.replay.buffer import SampleIndex
    from xfer.replay.segment import SegmentBuilder

    rng = np.random.default_rng(seed)
    builder = SegmentBuilder(stack=1, segment_length=8, action_mask=np.zeros(0, bool), game="reach")
    builder.start(rng.normal(size=39).astype(np.float32), first_step=0)
    segments = []
    for t in range(16):
        u = rng.normal(size=(S, 4)).astype(np.float32)
        visits = rng.multinomial(8, np.full(S, 1 / S)).astype(np.float32)
        s = rng.normal(size=39).astype(np.float32)
        seg = builder.add(np.tanh(u[visits.argmax()]), float(rng.random()), 0.0, False, 0.0, visits / 8, s,
                          False, False, s, t + 1, sampled=u)
        if seg is not None:
            segments.append(seg)
    positions = np.array([0, 3, 6], np.int64)
    idx = SampleIndex([segments[0], segments[0], segments[1]], np.array([0, 0, 1]), positions,
                      np.ones(3, np.float32), positions)
    zero = network_bootstrap(lambda o: np.zeros(len(o), np.float32))
    return build_batch(idx, K, 5, 10**9, 16, 0.997, 5, 0.0, zero, None, rng)


def test_a_box_learner_step_trains_the_gaussian_policy_head():
    from tests.test_acting_box import BOX
    from xfer.agent import build_agent
    from xfer.config import NetConfig

    batch = box_batch()
    assert batch.obs.shape == (3, 6, 39) and batch.actions.shape == (3, 5, 4)
    assert batch.sampled.shape == (3, 6, 5, 4)
    optim = OptimConfig(kind="adam", lr=1e-3, warmup_fraction=0.0)
    agent = build_agent(BOX, NetConfig(size="tiny", precision="fp32"), optim, LossConfig(),
                        value_prefix_horizon=5, train_steps=10, seed=0)
    head = agent.net.prediction_net.policy_head
    before = [p.detach().clone() for p in head.parameters()]
    result = agent.learner.step(batch)
    assert all(np.isfinite(v) for v in result.metrics.values())
    assert result.metrics["loss_policy"] != 0 and result.priorities.shape == (3,)
    assert any(not torch.equal(b, p) for b, p in zip(before, head.parameters()))


@pytest.mark.parametrize("net_keys, loss_keys", [
    ({"decoder": True}, {"reconstruction": 1.0}),
    ({}, {"contrastive": 0.1}),
    ({}, {"spr": 1.0}),
])
def test_the_self_supervised_terms_train_a_box_agent_from_states(net_keys, loss_keys):
    """Seed 000's Meta-World variants (MZ+Recon, +Contr, +SPR, Table A.6): each term is logged and finite on
    a Box batch of state vectors."""
    from tests.test_acting_box import BOX
    from xfer.agent import build_agent
    from xfer.config import NetConfig

    optim = OptimConfig(kind="adam", lr=1e-3, warmup_fraction=0.0)
    agent = build_agent(BOX, NetConfig(size="tiny", precision="fp32", **net_keys), optim, LossConfig(**loss_keys),
                        value_prefix_horizon=5, train_steps=10, seed=0)
    metrics = agent.learner.step(box_batch()).metrics
    name = f"loss_{next(iter(loss_keys))}"
    assert name in metrics and np.isfinite(metrics[name]) and metrics[name] != 0.0
