import numpy as np
import pytest
import torch

from tests.specs import ATARI_INPUT
from xfer.nets.efficientzero import build_network
from xfer.nets.sizes import net_spec
from xfer.transfer import TaskWeights, freeze_representation, transfer_parts
from xfer.xtra_config import TaskWeightConfig


def test_task_weights_follow_appendix_b_by_hand():
    tw = TaskWeights(["A", "B"], TaskWeightConfig(cycle=10, window=4, threshold=0.1, start=20))
    assert not tw.in_window(19) and tw.in_window(20) and tw.in_window(23) and not tw.in_window(24)
    assert tw.in_window(30) and not tw.in_window(34)
    assert tw.as_dict() == {"A": 1.0, "B": 1.0}  # 1 until the first update
    # window 20..23: A above threshold 3 times, B once (0.1 itself does not count: strictly greater)
    cos = [(0.5, -0.2), (0.2, 0.1), (0.11, 0.3), (-0.9, 0.0)]
    updates = [tw.observe(20 + i, np.array(c)) for i, c in enumerate(cos)]
    assert updates == [False, False, False, True]
    assert tw.as_dict() == {"A": 0.75, "B": 0.25}
    # fixed for the rest of the cycle and the next window; next window starts counting from zero
    for i in range(4):
        tw.observe(30 + i, np.array([1.0, 1.0]))
    assert tw.as_dict() == {"A": 1.0, "B": 1.0}
    assert tw.history == [(24, [0.75, 0.25]), (34, [1.0, 1.0])]
    with pytest.raises(ValueError, match="outside"):
        tw.observe(25, np.array([1.0, 1.0]))


def test_task_weight_state_round_trip():
    tw = TaskWeights(["A"], TaskWeightConfig(cycle=5, window=2, start=0))
    tw.observe(0, np.array([0.9]))
    tw2 = TaskWeights(["A"], TaskWeightConfig(cycle=5, window=2, start=0))
    tw2.load(tw.state())
    tw.observe(1, np.array([0.0]))
    tw2.observe(1, np.array([0.0]))
    assert tw.as_dict() == tw2.as_dict() == {"A": 0.5}


def test_window_larger_than_cycle_is_rejected():
    with pytest.raises(ValueError, match="window"):
        TaskWeightConfig(cycle=5, window=6)


def test_transfer_parts_copies_only_the_chosen_modules():
    torch.manual_seed(0)
    src = build_network(net_spec("tiny"), *ATARI_INPUT)
    torch.manual_seed(1)
    dst = build_network(net_spec("tiny"), *ATARI_INPUT)
    before_g = {k: v.clone() for k, v in dst.dynamics_net.state_dict().items()}
    copied = transfer_parts(dst, src, ["h", "f"])
    assert copied == ["representation_net", "projection", "projection_head", "prediction_net"]
    for name in copied:
        for (k, a), b in zip(getattr(dst, name).state_dict().items(), getattr(src, name).state_dict().values()):
            assert torch.equal(a, b), f"{name}.{k} not copied"
    for k, v in dst.dynamics_net.state_dict().items():
        assert torch.equal(v, before_g[k])
    with pytest.raises(ValueError, match="unknown transfer parts"):
        transfer_parts(dst, src, ["x"])
    with pytest.raises(ValueError, match="different architectures"):
        transfer_parts(build_network(net_spec("ez"), *ATARI_INPUT), src, ["h"])


def test_freeze_representation_stops_its_gradients():
    net = build_network(net_spec("tiny"), *ATARI_INPUT)
    assert freeze_representation(net) > 0
    obs = torch.randint(0, 255, (2, 12, 96, 96), dtype=torch.uint8)
    net.train()
    policy, value = net.predict(net.represent(obs))
    (policy.sum() + value.sum()).backward()
    assert all(p.grad is None for p in net.representation_net.parameters())
    assert any(p.grad is not None for p in net.prediction_net.parameters())


def test_a_window_missing_its_last_step_does_not_carry_counts_over():
    # Old bug: a skipped last step left the counts in place, so the next window ended with eta > 1.
    tw = TaskWeights(["A"], TaskWeightConfig(cycle=10, window=4, threshold=0.1, start=0))
    for step in (0, 1, 2):  # step 3, the window's last, is never observed
        tw.observe(step, np.array([1.0]))
    assert tw.as_dict() == {"A": 1.0}  # no update without the last step
    for step in (10, 11, 12, 13):
        tw.observe(step, np.array([1.0]))
    assert tw.as_dict() == {"A": 1.0}  # 4 of 4, not 7 of 4
    for step in (20, 21, 22, 23):
        tw.observe(step, np.array([0.0]) if step % 2 else np.array([0.9]))
    assert tw.as_dict() == {"A": 0.5}
    with pytest.raises(ValueError, match="cosines"):
        tw.observe(30, np.array([1.0, 1.0]))


FINE_PARTS = ["encoder", "dynamics", "reward_head", "prior_heads"]
# which state-dict keys (by prefix) each exploration-transfer part owns (Walker et al. 2023's names)
OWNERS = {"encoder": ("representation_net.", "projection.", "projection_head."),
          "dynamics": ("dynamics_net.conv.", "dynamics_net.bn.", "dynamics_net.blocks."),
          "reward_head": ("dynamics_net.reward_conv.", "dynamics_net.reward_bn.", "dynamics_net.lstm.",
                          "dynamics_net.lstm_bn.", "dynamics_net.value_prefix_head."),
          "prior_heads": ("prediction_net.",)}


@pytest.mark.parametrize("subset", [[p for i, p in enumerate(FINE_PARTS) if mask >> i & 1] for mask in range(16)],
                         ids=lambda s: "+".join(s) or "none")
def test_each_subset_of_exploration_parts_copies_exactly_its_tensors(subset):
    torch.manual_seed(0)
    src = build_network(net_spec("tiny"), *ATARI_INPUT)
    with torch.no_grad():  # every tensor differs (batch-norm scales and statistics too), so a copy is seen
        for t in src.state_dict().values():
            if t.is_floating_point():
                t.add_(0.5)
    torch.manual_seed(1)
    dst = build_network(net_spec("tiny"), *ATARI_INPUT)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    transfer_parts(dst, src, subset)
    s, d = src.state_dict(), dst.state_dict()
    owned = set()
    for key in d:
        owners = [p for p, prefixes in OWNERS.items() if key.startswith(prefixes)]
        assert len(owners) == 1, f"{key} belongs to {owners}: every tensor is in exactly one part"
        owned.add(key)
        if owners[0] in subset:
            assert torch.equal(d[key], s[key]), f"{key} of {owners[0]} not copied"
        else:
            assert torch.equal(d[key], before[key]), f"{key} of {owners[0]} changed though not transferred"
            if d[key].is_floating_point() and d[key].numel() > 1:
                assert not torch.equal(d[key], s[key]), f"{key}: source and fresh net coincide, test is void"
    assert owned == set(d)


def test_xtra_parts_and_exploration_parts_name_the_same_modules():
    torch.manual_seed(0)
    src = build_network(net_spec("tiny"), *ATARI_INPUT)
    a, b = build_network(net_spec("tiny"), *ATARI_INPUT), build_network(net_spec("tiny"), *ATARI_INPUT)
    b.load_state_dict(a.state_dict())
    transfer_parts(a, src, ["h", "g", "f"])
    transfer_parts(b, src, FINE_PARTS)
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), k
    assert transfer_parts(a, src, ["g", "g", "dynamics"])[0] == "dynamics_net"
