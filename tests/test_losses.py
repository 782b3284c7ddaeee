import math

import torch

from xfer.config import LossConfig
from xfer.losses import TorchTargets, UnrollOutputs, categorical_ce, efficientzero_loss, negative_cosine


def test_categorical_ce_of_uniform_logits_is_log_n():
    ce = categorical_ce(torch.zeros(2, 5), torch.tensor([[1.0, 0, 0, 0, 0], [0.2] * 5]))
    assert torch.allclose(ce, torch.full((2,), math.log(5)))


def test_negative_cosine():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[2.0, 0.0], [-1.0, -1.0]])
    assert torch.allclose(negative_cosine(a, b), torch.tensor([-1.0, 1.0]))


def test_weighted_sum_and_masks_by_hand():
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
    loss, parts = efficientzero_loss(out, tgt, LossConfig())
    # uniform logits: every CE term is log(3) (value/prefix) or log(4) (policy)
    assert math.isclose(float(parts["value"]), 2 * math.log(3), rel_tol=1e-6)
    assert math.isclose(float(parts["value_prefix"]), math.log(3), rel_tol=1e-6)
    assert math.isclose(float(parts["policy"]), math.log(4), rel_tol=1e-6)
    assert math.isclose(float(parts["consistency"]), -1.0 + 0.0, abs_tol=1e-6)
    expected = 0.25 * 2 * math.log(3) + math.log(3) + math.log(4) + 2 * (-1.0)
    assert math.isclose(float(loss), expected, rel_tol=1e-6)
