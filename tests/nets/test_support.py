import math

import pytest
import torch

from xfer.nets.support import (
    inverse_scalar_transform,
    logits_to_scalar,
    scalar_to_two_hot,
    scalar_transform,
)


def test_scalar_transform_matches_hand_values():
    # h(3) = sqrt(4) - 1 + 0.003 = 1.003 ; h(-3) = -1.003 (no sign flip of the linear term)
    x = torch.tensor([3.0, -3.0, 0.0, 8.0])
    expected = torch.tensor([1.003, -1.003, 0.0, 2.0 + 0.008])
    assert torch.allclose(scalar_transform(x), expected, atol=1e-6)


@pytest.mark.parametrize("value", [-250.0, -7.5, -1.0, 0.0, 0.25, 1.0, 42.0, 299.0])
def test_inverse_is_exact(value):
    x = torch.tensor([value], dtype=torch.float64)
    assert torch.allclose(inverse_scalar_transform(scalar_transform(x)), x, atol=1e-6)


def test_two_hot_splits_between_neighbours():
    # h(3) = 1.003 -> bins 1 and 2 of the support -2..2 get 0.997 and 0.003
    probs = scalar_to_two_hot(torch.tensor([3.0]), support_size=2)[0]
    expected = torch.tensor([0.0, 0.0, 0.0, 0.997, 0.003])
    assert torch.allclose(probs, expected, atol=1e-5)
    assert math.isclose(float(probs.sum()), 1.0, rel_tol=1e-6)


def test_two_hot_clamps_out_of_range():
    probs = scalar_to_two_hot(torch.tensor([1e6, -1e6]), support_size=3)
    assert probs[0, -1] == 1.0 and probs[1, 0] == 1.0


def test_logits_to_scalar_recovers_two_hot_value():
    x = torch.tensor([-12.5, 0.0, 3.0, 77.0])
    logits = torch.log(scalar_to_two_hot(x, 10) + 1e-12)
    assert torch.allclose(logits_to_scalar(logits), x, atol=1e-3)
