import torch

from tests.specs import ATARI_INPUT
from xfer.losses import categorical_ce
from xfer.nets.blocks import mlp, zero_linear
from xfer.nets.efficientzero import build_network
from xfer.nets.sizes import net_spec
from xfer.nets.support import logits_to_scalar, scalar_to_two_hot


def test_untrained_heads_are_input_independent():
    torch.manual_seed(0)
    net = build_network(net_spec("tiny"), *ATARI_INPUT, zero_init_heads=True).eval()
    obs = torch.randint(0, 256, (4, 12, 96, 96), dtype=torch.uint8)
    with torch.no_grad():
        root = net.initial_inference(obs)
        out = net.recurrent_inference(root.latent, root.lstm_state, torch.arange(4))
    # uniform over the bins: expectation 0 (up to the scalar transform's epsilon term)
    assert torch.allclose(root.value, torch.zeros(4), atol=1e-4)
    assert torch.allclose(out.value_prefix, torch.zeros(4), atol=1e-4)
    assert torch.equal(root.policy_logits, torch.zeros(4, 18))


def test_heads_are_random_unless_asked():
    torch.manual_seed(0)
    net = build_network(net_spec("tiny"), *ATARI_INPUT).eval()
    with torch.no_grad():
        root = net.initial_inference(torch.randint(0, 256, (2, 12, 96, 96), dtype=torch.uint8))
    assert root.policy_logits.abs().max() > 0


def _held_out_values(zero_last: bool, steps: int) -> torch.Tensor:
    """Train a categorical value head on targets in {0, 1}; its scalar predictions on new inputs."""
    torch.manual_seed(1)
    support = net_spec("tiny").support_size
    head = mlp([64, 32, 2 * support + 1])
    if zero_last:
        zero_linear(head[-1])
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    x, held = torch.randn(256, 64), torch.randn(256, 64)
    target = scalar_to_two_hot((torch.rand(256) < 0.1).float(), support)
    for _ in range(steps):
        loss = categorical_ce(head(x), target).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return logits_to_scalar(head.eval()(held))


def test_zero_initialised_value_head_has_no_spurious_offset():
    # Random initial weights leave asymmetric mass in bins no target reaches: values of +-5 on
    # inputs it was not trained on, from targets in {0, 1} (the offset that bootstrapping carries on).
    assert _held_out_values(zero_last=False, steps=50).abs().max() > 2.0
    v = _held_out_values(zero_last=True, steps=50)
    assert v.min() > -0.05 and v.max() < 1.0
