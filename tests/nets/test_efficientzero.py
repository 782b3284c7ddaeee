import pytest
import torch

from tests.specs import ATARI_INPUT
from xfer.nets.efficientzero import build_network
from xfer.nets.sizes import SIZES, net_spec


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_network(net_spec("tiny"), *ATARI_INPUT).eval()


def test_shapes_of_inference(tiny):
    obs = torch.randint(0, 256, (5, 12, 96, 96), dtype=torch.uint8)
    root = tiny.initial_inference(obs)
    assert root.latent.shape == (5, 32, 6, 6)
    assert root.value.shape == (5,) and root.policy_logits.shape == (5, 18)
    assert root.value_logits.shape == (5, 2 * SIZES["tiny"].support_size + 1)
    assert root.lstm_state[0].shape == (1, 5, SIZES["tiny"].lstm_hidden)
    out = tiny.recurrent_inference(root.latent, root.lstm_state, torch.arange(5))
    assert out.latent.shape == root.latent.shape
    assert out.value_prefix.shape == (5,) and out.value.shape == (5,)
    assert out.lstm_state[0].shape == root.lstm_state[0].shape


def test_latent_min_max_scaling_is_an_option():
    # MuZero scales latents to [0, 1]; EfficientZero's Atari config does not (state_norm=False)
    obs = torch.randint(0, 256, (3, 12, 96, 96), dtype=torch.uint8)
    torch.manual_seed(0)
    scaled = build_network(net_spec("tiny", latent_scaling="minmax"), *ATARI_INPUT).eval()
    torch.manual_seed(0)
    plain = build_network(net_spec("tiny"), *ATARI_INPUT).eval()
    assert plain.spec.latent_scaling == "none"
    for net in (scaled, plain):
        root = net.initial_inference(obs)
        step = net.recurrent_inference(root.latent, root.lstm_state, torch.arange(3))
        for latent in (root.latent.flatten(1), step.latent.flatten(1)):
            is_unit = torch.allclose(latent.min(1).values, torch.zeros(3), atol=1e-5) and torch.allclose(
                latent.max(1).values, torch.ones(3), atol=1e-4)
            assert is_unit == (net is scaled)
    with pytest.raises(ValueError, match="latent scaling"):
        net_spec("tiny", latent_scaling="tanh")


def test_action_changes_dynamics(tiny):
    obs = torch.randint(0, 256, (1, 12, 96, 96), dtype=torch.uint8).repeat(2, 1, 1, 1)
    root = tiny.initial_inference(obs)
    out = tiny.recurrent_inference(root.latent, root.lstm_state, torch.tensor([0, 17]))
    assert not torch.allclose(out.latent[0], out.latent[1])


def test_one_hot_action_encoding_gives_each_action_its_own_plane():
    torch.manual_seed(0)
    net = build_network(net_spec("tiny", action_encoding="one_hot"), *ATARI_INPUT).eval()
    c = SIZES["tiny"].channels
    assert net.dynamics_net.conv.in_channels == c + 18  # MuZero appendix F: one plane per action
    assert build_network(net_spec("tiny"), *ATARI_INPUT).dynamics_net.conv.in_channels == c + 1  # a / 18 plane
    # the dynamics' first convolution sees plane a only: zeroing that plane's weights makes a and a
    # NOOP-like "no plane" input identical, while every other action still differs
    with torch.no_grad():
        net.dynamics_net.conv.weight[:, c + 5] = 0.0
        root = net.initial_inference(torch.randint(0, 256, (1, 12, 96, 96), dtype=torch.uint8).repeat(3, 1, 1, 1))
        nxt = net.recurrent_inference(root.latent, root.lstm_state, torch.tensor([5, 5, 6])).latent
        net.dynamics_net.conv.weight[:, c:] = 0.0
        none = net.recurrent_inference(root.latent, root.lstm_state, torch.tensor([6, 6, 6])).latent
    assert torch.allclose(nxt[0], none[0]) and torch.allclose(nxt[0], nxt[1])
    assert not torch.allclose(nxt[2], none[2])


def test_unknown_action_encoding_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown action encoding 'embedding'"):
        net_spec("tiny", action_encoding="embedding")


def test_unknown_size_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown network size 'huge'"):
        net_spec("huge")


@pytest.mark.parametrize("size,blocks", [("ez", 1), ("ez-l", 4)])
def test_paper_sizes_follow_appendix_h(size, blocks):
    spec = net_spec(size)
    assert (spec.channels, spec.repr_blocks, spec.lstm_hidden, spec.support_size) == (64, blocks, 512, 300)
    net = build_network(spec, *ATARI_INPUT).eval()
    with torch.no_grad():
        root = net.initial_inference(torch.zeros(2, 12, 96, 96, dtype=torch.uint8))
    assert root.latent.shape == (2, 64, 6, 6) and root.value_logits.shape == (2, 601)


def test_bf16_representation_stays_close_to_fp32_and_outputs_float32(tiny):
    import copy

    obs = torch.randint(0, 256, (4, 12, 96, 96), dtype=torch.uint8)
    bf16 = copy.deepcopy(tiny).set_precision("bf16")
    ref, low = tiny.initial_inference(obs), bf16.initial_inference(obs)
    assert low.latent.dtype == torch.float32 and low.value.dtype == torch.float32
    assert low.latent.shape == ref.latent.shape
    # bf16 keeps ~3 significant digits; latents are min-max normalised to [0, 1]
    assert (low.latent - ref.latent).abs().max() < 0.05
    assert not torch.equal(low.latent, ref.latent), "bf16 autocast was not applied"
    # a float input (the learner's augmented batch) takes the same path as uint8
    x = obs.float() / 255.0
    assert torch.allclose(tiny.represent(x), ref.latent, atol=1e-5)


def test_precision_auto_resolves_and_unknown_is_a_clear_error():
    from xfer.nets.efficientzero import resolve_precision

    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert resolve_precision("auto", "cpu") == ("bf16" if native else "fp32")
    with pytest.raises(ValueError, match="fp32, bf16 or auto"):
        resolve_precision("fp16")
    with pytest.raises(ValueError, match="unknown precision"):
        build_network(net_spec("tiny"), *ATARI_INPUT).set_precision("half")


def test_seeded_build_is_a_function_of_the_seed_and_leaves_the_global_rng_alone():
    # issue 13: the offline stages built their networks from an unseeded RNG (teachers differed run to run)
    spec = net_spec("tiny")
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = build_network(spec, *ATARI_INPUT, seed=5).state_dict()
    after = torch.rand(3)
    torch.manual_seed(999)
    b = build_network(spec, *ATARI_INPUT, seed=5).state_dict()
    c = build_network(spec, *ATARI_INPUT, seed=6).state_dict()
    assert torch.equal(after, expected_next)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())
