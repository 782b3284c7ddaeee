"""EfficientZero loss as pure functions (XTRA appendix A, Eq. 3; Ye et al. 2021).

Per sample: ``sum_k [ w_vp * CE(value_prefix) + w_v * CE(value) + w_p * CE(policy)
+ w_c * (-cos(consistency)) ]`` with two-hot categorical value/value-prefix targets. The caller
weights samples by importance weights and scales by ``1/K`` (gradient scale of EfficientZero).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from xfer.config import LossConfig
from xfer.nets.support import scalar_to_two_hot


@dataclass
class UnrollOutputs:
    """Network outputs along an unroll of ``K`` steps (float32).

    value_logits ``[B, K+1, 2S+1]``; policy_logits ``[B, K+1, A]``; value_prefix_logits
    ``[B, K, 2S+1]``; proj_pred ``[B, K, D]`` (online projection + predictor of unrolled latents);
    proj_target ``[B, K, D]`` (projection of encoded real observations, no gradient).
    """

    value_logits: torch.Tensor
    policy_logits: torch.Tensor
    value_prefix_logits: torch.Tensor
    proj_pred: torch.Tensor
    proj_target: torch.Tensor


@dataclass
class TorchTargets:
    """Targets on the learner's device; same meaning and shapes as :class:`xfer.replay.targets.Batch`."""

    value_prefix: torch.Tensor
    value: torch.Tensor
    policy: torch.Tensor
    mask_value_prefix: torch.Tensor
    mask_value: torch.Tensor
    mask_policy: torch.Tensor
    mask_obs: torch.Tensor


def categorical_ce(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy ``-sum p log softmax(logits)`` over the last dim: ``[..., N] -> [...]``."""
    return -(target_probs * F.log_softmax(logits, dim=-1)).sum(-1)


def negative_cosine(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SimSiam consistency ``-cos(pred, stopgrad(target))`` over the last dim: ``[..., D] -> [...]``."""
    return -F.cosine_similarity(pred, target.detach(), dim=-1, eps=1e-5)


def efficientzero_loss(
    out: UnrollOutputs, tgt: TorchTargets, weights: LossConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-sample EfficientZero loss.

    Returns:
        ``(loss [B], parts)`` where ``parts`` maps ``value_prefix``, ``value``, ``policy`` and
        ``consistency`` to their per-sample unweighted sums ``[B]`` (for logging and analysis).
    """
    support = (out.value_logits.shape[-1] - 1) // 2
    value_ce = categorical_ce(out.value_logits, scalar_to_two_hot(tgt.value, support))
    prefix_ce = categorical_ce(out.value_prefix_logits, scalar_to_two_hot(tgt.value_prefix, support))
    policy_ce = categorical_ce(out.policy_logits, tgt.policy)
    consistency = negative_cosine(out.proj_pred, out.proj_target)
    parts = {
        "value": (value_ce * tgt.mask_value).sum(1),
        "value_prefix": (prefix_ce * tgt.mask_value_prefix).sum(1),
        "policy": (policy_ce * tgt.mask_policy).sum(1),
        "consistency": (consistency * tgt.mask_obs[:, 1:]).sum(1),
    }
    loss = (
        weights.value * parts["value"]
        + weights.value_prefix * parts["value_prefix"]
        + weights.policy * parts["policy"]
        + weights.consistency * parts["consistency"]
    )
    return loss, parts
