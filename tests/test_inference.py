"""Reanalyse's policy function: which network re-searches, and whether root noise is on."""

import numpy as np
import pytest
import torch

from tests.specs import ATARI_INPUT
from xfer.config import ReplayConfig, SearchConfig
from xfer.inference import reanalyse_policy_fn
from xfer.nets.efficientzero import build_network
from xfer.nets.sizes import net_spec


def _net_preferring(action: int):
    torch.manual_seed(0)
    net = build_network(net_spec("tiny"), *ATARI_INPUT, zero_init_heads=True).eval()
    with torch.no_grad():
        net.prediction_net.policy_head[-1].bias[action] = 6.0  # a strong prior, same everywhere
    return net


def test_reanalyse_searches_with_the_configured_network_and_noise():
    target, latest = _net_preferring(2), _net_preferring(4)
    obs = np.random.default_rng(0).integers(0, 256, (6, 12, 96, 96), dtype=np.uint8)
    mask = np.zeros((6, 18), bool)
    mask[:, :6] = True
    search = SearchConfig(num_simulations=8)

    def policy(**replay):
        fn = reanalyse_policy_fn(target, latest, ReplayConfig(**replay), search, np.random.default_rng(1))
        return fn(obs, mask)

    # EfficientZero's reanalyse worker: the target network (the default)
    assert ReplayConfig().reanalyse_network == "target" and ReplayConfig().reanalyse_noise
    assert (policy(reanalyse_noise=False).argmax(1) == 2).all()
    assert (policy(reanalyse_network="latest", reanalyse_noise=False).argmax(1) == 4).all()
    # root noise changes the visit distribution (same generator seed, same network)
    clean, noisy = policy(reanalyse_noise=False), policy(reanalyse_noise=True)
    assert not np.allclose(clean, noisy)
    assert (noisy[:, 6:] == 0).all()


def test_the_search_backend_is_a_validated_setting_and_numpy_runs_the_batched_tree():
    import pydantic

    from xfer.inference import SEARCH_BACKENDS, numpy_search

    assert SEARCH_BACKENDS == {"numpy": numpy_search} and SearchConfig().backend == "numpy"
    with pytest.raises(pydantic.ValidationError, match="numpy"):
        SearchConfig(backend="torch")
