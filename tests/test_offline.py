"""The offline training loop's helpers (xfer/offline.py)."""

import pytest
import torch

from tests.specs import ATARI_INPUT
from tests.test_learner import real_batch
from xfer.config import LossConfig, OptimConfig
from xfer.learner import Learner
from xfer.nets.efficientzero import build_network
from xfer.nets.sizes import net_spec
from xfer.offline import LatestCopy


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_latest_copy_holds_the_learners_weights_from_the_first_use_and_refreshes_per_window():
    # the reanalyse copy was a freshly built network until after the first step: random weights
    # from an unseeded RNG searched the first batch, so teachers differed from run to run
    learner = Learner(build_network(net_spec("tiny"), *ATARI_INPUT, seed=0), OptimConfig(), LossConfig(), 5, 10, augment=False)
    latest = LatestCopy(learner, every=2)
    assert _same(latest.get(), learner.net)
    learner.step(real_batch(1))  # step 1: same window, the copy stays at step 0
    assert not _same(latest.get(), learner.net)
    learner.step(real_batch(2))  # step 2: a new window, refreshed on use
    assert _same(latest.get(), learner.net)
    assert latest.get() is not learner.net


def test_latest_copy_rejects_a_bad_period():
    learner = Learner(build_network(net_spec("tiny"), *ATARI_INPUT, seed=0), OptimConfig(), LossConfig(), 5, 10, augment=False)
    with pytest.raises(ValueError, match="every"):
        LatestCopy(learner, every=0)
