"""The reconstruction decoder (xfer/nets/decoder.py) and its place in the network and checkpoints."""

import pytest
import torch

from xfer import checkpoint as ckpt
from xfer.agent import build_model, model_meta
from xfer.config import NetConfig, ProcgenProtocol
from xfer.envs.suites import env_spec
from xfer.nets.efficientzero import EfficientZeroNet
from xfer.nets.sizes import net_spec


@pytest.mark.parametrize("obs_shape", [(12, 96, 96), (12, 64, 64), (9, 50, 50), (39,)])
def test_the_decoder_maps_a_latent_back_to_the_observation_shape(obs_shape):
    net = EfficientZeroNet(net_spec("tiny", decoder=True), 15, obs_shape).eval()
    obs = torch.zeros(2, *obs_shape, dtype=torch.uint8 if len(obs_shape) == 3 else torch.float32)
    with torch.no_grad():
        out = net.decode(net.represent(obs))
    assert out.shape == (2, *obs_shape) and out.dtype == torch.float32
    if len(obs_shape) == 3:
        assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0


def test_a_network_without_a_decoder_says_how_to_get_one():
    net = EfficientZeroNet(net_spec("tiny"), 15, (12, 64, 64))
    assert net.decoder is None
    with pytest.raises(RuntimeError, match="net.decoder=true"):
        net.decode(torch.zeros(1, 32, 4, 4))


def test_a_decoder_model_saves_and_loads_with_its_decoder(tmp_path):
    spec = env_spec("procgen", ProcgenProtocol(), "coinrun")
    cfg = NetConfig(size="tiny", decoder=True)
    net = build_model(spec, cfg, seed=0).eval()
    ckpt.save_model(tmp_path / "m.safetensors", net, model_meta(spec, cfg, {"coinrun": spec}, 0, 0, "h"))
    loaded, meta = ckpt.load_model(tmp_path / "m.safetensors")
    assert meta.spec["decoder"] and loaded.decoder is not None
    latent = torch.rand(1, 32, 4, 4)
    assert torch.equal(net.decode(latent), loaded.decode(latent))
