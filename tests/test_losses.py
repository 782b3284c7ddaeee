import math

import pytest
import torch

from tests.specs import ATARI_INPUT
from tests.test_learner import real_batch
from xfer.config import LossConfig, OptimConfig
from xfer.learner import Learner
from xfer.losses import (
    LossTerm,
    TorchTargets,
    UnrollOutputs,
    categorical_ce,
    efficientzero_terms,
    negative_cosine,
    total_loss,
)
from xfer.nets.efficientzero import build_network
from xfer.nets.sizes import net_spec


def test_categorical_ce_of_uniform_logits_is_log_n():
    ce = categorical_ce(torch.zeros(2, 5), torch.tensor([[1.0, 0, 0, 0, 0], [0.2] * 5]))
    assert torch.allclose(ce, torch.full((2,), math.log(5)))


def test_negative_cosine():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[2.0, 0.0], [-1.0, -1.0]])
    assert torch.allclose(negative_cosine(a, b), torch.tensor([-1.0, 1.0]))


def _uniform_outputs_and_targets():
    """Uniform logits, two unroll steps, partly masked targets: every term has a hand-computed value."""
    B, K, A = 1, 2, 4  # support size 1: bins -1..1 -> 3 logits
    out = UnrollOutputs(
        value_logits=torch.zeros(B, K + 1, 3),
        policy_logits=torch.zeros(B, K + 1, A),
        value_prefix_logits=torch.zeros(B, K, 3),
        proj_pred=torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]),
        proj_target=torch.tensor([[[1.0, 0.0], [1.0, 0.0]]]),
    )
    tgt = TorchTargets(
        value_prefix=torch.zeros(B, K),
        value=torch.zeros(B, K + 1),
        policy=torch.full((B, K + 1, A), 0.25),
        mask_value_prefix=torch.tensor([[1.0, 0.0]]),
        mask_value=torch.tensor([[1.0, 1.0, 0.0]]),
        mask_policy=torch.tensor([[1.0, 0.0, 0.0]]),
        mask_obs=torch.tensor([[1.0, 1.0, 1.0]]),
    )
    return out, tgt


def test_weighted_sum_and_masks_by_hand():
    out, tgt = _uniform_outputs_and_targets()
    loss, parts = total_loss(out, tgt, efficientzero_terms(LossConfig()))
    # uniform logits: every CE term is log(3) (value/prefix) or log(4) (policy)
    assert math.isclose(float(parts["value"]), 2 * math.log(3), rel_tol=1e-6)
    assert math.isclose(float(parts["value_prefix"]), math.log(3), rel_tol=1e-6)
    assert math.isclose(float(parts["policy"]), math.log(4), rel_tol=1e-6)
    assert math.isclose(float(parts["consistency"]), -1.0 + 0.0, abs_tol=1e-6)
    expected = 0.25 * 2 * math.log(3) + math.log(3) + math.log(4) + 2 * (-1.0)
    assert math.isclose(float(loss), expected, rel_tol=1e-6)


def test_a_new_loss_term_is_summed_and_logged_under_its_name():
    # issue 14: each loss is a named term; a learner's metrics (and so its log columns) follow its terms
    out, tgt = _uniform_outputs_and_targets()
    base, parts = total_loss(out, tgt, efficientzero_terms(LossConfig()))
    extra = LossTerm("latent_l2", 0.5, lambda o, t: o.proj_pred.pow(2).sum((1, 2)))
    loss, parts2 = total_loss(out, tgt, (*efficientzero_terms(LossConfig()), extra))
    assert torch.allclose(loss, base + 0.5 * parts2["latent_l2"]) and set(parts2) == set(parts) | {"latent_l2"}
    with pytest.raises(ValueError, match="distinct names"):
        total_loss(out, tgt, (extra, extra))

    net = build_network(net_spec("tiny"), *ATARI_INPUT, seed=0)
    learner = Learner(net, OptimConfig(), LossConfig(), 5, 10, augment=False,
                      terms=(*efficientzero_terms(LossConfig()), extra))
    assert "loss_latent_l2" in learner.metric_names
    assert learner.step_metric_names(2)[-3:] == ["loss_task0", "loss_task1", "loss_total"]
    metrics = learner.step(real_batch()).metrics
    assert set(metrics) == set(learner.step_metric_names(1)) and metrics["loss_latent_l2"] > 0
