"""EfficientZero loss as pure functions and named terms (XTRA appendix A, Eq. 3; Ye et al. 2021).

Each term (:class:`LossTerm`) is a name, a weight and a function of the unroll's outputs and targets;
the learner sums its active terms (:func:`total_loss`) and logs each as ``loss_<name>``. Per sample: ``sum_k [ w_vp * CE(value_prefix) + w_v * CE(value) + w_p * CE(policy)
+ w_c * (-cos(consistency)) ]`` with two-hot categorical value/value-prefix targets. The caller
weights samples by importance weights and scales by ``1/K`` (gradient scale of EfficientZero).
"""

from __future__ import annotations

from collections.abc import Callable
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


def value_term(out: UnrollOutputs, tgt: TorchTargets) -> torch.Tensor:
    """Value cross-entropy against two-hot targets, summed over the ``K + 1`` unroll steps: ``[B]``."""
    support = (out.value_logits.shape[-1] - 1) // 2
    return (categorical_ce(out.value_logits, scalar_to_two_hot(tgt.value, support)) * tgt.mask_value).sum(1)


def value_prefix_term(out: UnrollOutputs, tgt: TorchTargets) -> torch.Tensor:
    """Value-prefix cross-entropy against two-hot targets, summed over the ``K`` unrolled steps: ``[B]``."""
    support = (out.value_logits.shape[-1] - 1) // 2
    ce = categorical_ce(out.value_prefix_logits, scalar_to_two_hot(tgt.value_prefix, support))
    return (ce * tgt.mask_value_prefix).sum(1)


def policy_term(out: UnrollOutputs, tgt: TorchTargets) -> torch.Tensor:
    """Policy cross-entropy against the search's policy targets, summed over ``K + 1`` steps: ``[B]``."""
    return (categorical_ce(out.policy_logits, tgt.policy) * tgt.mask_policy).sum(1)


def consistency_term(out: UnrollOutputs, tgt: TorchTargets) -> torch.Tensor:
    """EfficientZero's self-supervised consistency (SimSiam negative cosine between the projected unrolled
    latents and the projections of the real next observations), summed over ``K`` steps: ``[B]``."""
    return (negative_cosine(out.proj_pred, out.proj_target) * tgt.mask_obs[:, 1:]).sum(1)


@dataclass(frozen=True)
class LossTerm:
    """One term of the per-sample loss.

    ``name``: logged as ``loss_<name>`` (the metric columns come from the active terms);
    ``weight``: its factor in the sum; ``fn(out, tgt) -> [B]`` float32, the unweighted per-sample
    term summed over the unroll. A new self-supervised loss (reconstruction, contrastive, SPR) is a
    function and a term here.
    """

    name: str
    weight: float
    fn: Callable[[UnrollOutputs, TorchTargets], torch.Tensor]


def efficientzero_terms(weights: LossConfig) -> tuple[LossTerm, ...]:
    """EfficientZero's four terms with the weights of the ``loss`` section (XTRA appendix A, Eq. 3)."""
    return (LossTerm("value", weights.value, value_term),
            LossTerm("value_prefix", weights.value_prefix, value_prefix_term),
            LossTerm("policy", weights.policy, policy_term),
            LossTerm("consistency", weights.consistency, consistency_term))


def total_loss(out: UnrollOutputs, tgt: TorchTargets,
               terms: tuple[LossTerm, ...]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(loss [B], parts)``: ``loss = sum_t weight_t * fn_t(out, tgt)`` in the order of ``terms``;
    ``parts`` maps each term's name to its unweighted ``[B]`` values (for logging and analysis).

    Raises:
        ValueError: no terms, or two with one name.
    """
    if not terms or len({t.name for t in terms}) != len(terms):
        raise ValueError(f"loss terms must be non-empty with distinct names, got {[t.name for t in terms]}")
    parts = {t.name: t.fn(out, tgt) for t in terms}
    loss = terms[0].weight * parts[terms[0].name]
    for t in terms[1:]:
        loss = loss + t.weight * parts[t.name]
    return loss, parts


def loss_metric_names(terms: tuple[LossTerm, ...]) -> list[str]:
    """The per-term metric names a learner with ``terms`` reports: ``loss_<name>`` in term order."""
    return [f"loss_{t.name}" for t in terms]
