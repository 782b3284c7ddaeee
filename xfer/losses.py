"""EfficientZero loss and the self-supervised terms of seed 000 as pure functions and named terms
(XTRA appendix A, Eq. 3; Ye et al. 2021; seed 000 sec 3).

Each term (:class:`LossTerm`) is a name, a weight and a function of the unroll's outputs and targets;
the learner sums its active terms (:func:`total_loss`) and logs each as ``loss_<name>``. Per sample: ``sum_k [ w_vp * CE(value_prefix) + w_v * CE(value) + w_p * CE(policy)
+ w_c * (-cos(consistency)) ]`` with two-hot categorical value/value-prefix targets. The caller
weights samples by importance weights and scales by ``1/K`` (gradient scale of EfficientZero).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from xfer.config import LossConfig
from xfer.mcts.gaussian import LOG_STD_MAX, LOG_STD_MIN
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
    obs: torch.Tensor | None = None
    """The unroll's observations ``[B, K+1, *obs_shape]`` as given (uint8 pixels or float32 states)."""
    reconstruction: torch.Tensor | None = None
    """Decoded latents ``s_0..s_K`` ``[B, K+1, *obs_shape]`` float32 (pixels in [0, 1]), when a term
    needs ``"reconstruction"``."""
    target_proj: torch.Tensor | None = None
    """The target network's projection of ``o_{t+1}..o_{t+K}`` ``[B, K, D]`` (no gradient), when a
    term needs ``"target_projection"``."""


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
    sampled: torch.Tensor | None = None
    """Box actions (Sampled MuZero): the pre-squash sampled actions each policy target is over,
    ``[B, K+1, S, D]`` float32 (``policy`` is then ``[B, K+1, S]``, their visit fractions); ``None`` for
    discrete actions."""


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


def gaussian_log_prob(params: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Log-density of pre-squash actions ``u [..., S, D]`` under the Gaussian policy ``params [..., 2D]``
    (mean, log std clipped to ``[LOG_STD_MIN, LOG_STD_MAX]``, :mod:`xfer.mcts.gaussian`): ``[..., S]``.
    The tanh squashing's Jacobian is left out: it does not depend on the network."""
    d = params.shape[-1] // 2
    mu = params[..., :d].unsqueeze(-2)
    log_sigma = params[..., d:].clamp(LOG_STD_MIN, LOG_STD_MAX).unsqueeze(-2)
    z = (u - mu) * torch.exp(-log_sigma)
    return (-0.5 * z * z - log_sigma - 0.5 * math.log(2.0 * math.pi)).sum(-1)


def policy_term(out: UnrollOutputs, tgt: TorchTargets) -> torch.Tensor:
    """Policy cross-entropy against the search's policy targets, summed over ``K + 1`` steps: ``[B]``.

    Box actions (``tgt.sampled`` given; Sampled MuZero, Hubert et al. 2021, sec. 4): the target is the
    visit fractions ``w_i`` of the ``S`` sampled actions and the term ``-sum_i w_i log pi(a_i | s)`` with
    the Gaussian policy's density (:func:`gaussian_log_prob`), so only the sampled actions are scored.
    """
    if tgt.sampled is not None:
        ce = -(tgt.policy * gaussian_log_prob(out.policy_logits, tgt.sampled)).sum(-1)
    else:
        ce = categorical_ce(out.policy_logits, tgt.policy)
    return (ce * tgt.mask_policy).sum(1)


def consistency_term(out: UnrollOutputs, tgt: TorchTargets) -> torch.Tensor:
    """EfficientZero's self-supervised consistency (SimSiam negative cosine between the projected unrolled
    latents and the projections of the real next observations), summed over ``K`` steps: ``[B]``."""
    return (negative_cosine(out.proj_pred, out.proj_target) * tgt.mask_obs[:, 1:]).sum(1)


def observation_target(obs: torch.Tensor) -> torch.Tensor:
    """What a decoder should output for ``obs``: uint8 pixels scaled to [0, 1], states as they are."""
    return obs.float() / 255.0 if obs.dtype == torch.uint8 else obs.float()


def reconstruction_term(out: UnrollOutputs, tgt: TorchTargets) -> torch.Tensor:
    """MZ+Recon (seed 000 appendix A.3): for each decoded latent ``s_k`` (``k = 0..K``, ``s_0`` from the
    representation, the rest from the dynamics) against the observation ``o_{t+k}`` (pixels scaled to
    [0, 1]), the mean squared error over the observation's entries plus the largest squared error
    (the paper's max term, which keeps the hardest pixels from being neglected), summed over the
    unroll: ``[B]``."""
    assert out.reconstruction is not None and out.obs is not None, "the unroll did not decode (needs)"
    sq = (out.reconstruction - observation_target(out.obs)).pow(2).flatten(2)  # [B, K+1, entries]
    return ((sq.mean(-1) + sq.amax(-1)) * tgt.mask_obs).sum(1)


def pixel_errors(reconstruction: torch.Tensor, obs: torch.Tensor) -> dict[str, float]:
    """The paper's reconstruction figures: mean and max absolute error, in pixel values 0..255 for
    pixels (``reconstruction`` in [0, 1], ``obs`` uint8), in state units otherwise."""
    scale = 255.0 if obs.dtype == torch.uint8 else 1.0
    err = (reconstruction.float() - observation_target(obs)).abs() * scale
    return {"mean_pixel_error": float(err.mean()), "max_pixel_error": float(err.max())}


def spr_term(out: UnrollOutputs, tgt: TorchTargets) -> torch.Tensor:
    """MZ+SPR (seed 000 sec 3; Schwarzer et al. 2021): ``|| p/|p| - z/|z| ||^2`` between the online
    projection + predictor of each unrolled latent (``proj_pred``) and the target network's projection
    of the real observation (``target_proj``), summed over the ``K`` unrolled steps: ``[B]``
    (``= 2 - 2 cos``; the target network is the periodically refreshed copy)."""
    assert out.target_proj is not None, "the unroll has no target projections (needs)"
    p = F.normalize(out.proj_pred, dim=-1, eps=1e-5)
    z = F.normalize(out.target_proj.detach(), dim=-1, eps=1e-5)
    return ((p - z).pow(2).sum(-1) * tgt.mask_obs[:, 1:]).sum(1)


def contrastive_term(temperature: float, kl_weight: float,
                     negatives: float = 1.0) -> Callable[[UnrollOutputs, TorchTargets], torch.Tensor]:
    """MZ+Contr (seed 000 appendix A.4): an action-conditioned temporal contrastive loss. At each unroll
    step ``k``, the prediction of sample ``b`` (``proj_pred[b, k]``, from the actions taken) must pick
    the target network's projection of its own real observation ``o_{t+k}`` among negatives from the
    batch: cross-entropy over ``cos(p_b, z_c) / temperature``. The negatives are a random
    ``negatives`` fraction of the batch (the paper: 10%; drawn from torch's generator once per call,
    at least one sample; 1.0 takes every other sample without drawing). The ReLIC regulariser
    (Mitrovic et al. 2021) is read here as ``KL(softmax_c cos(p_b, z_c) || softmax_c cos(p_c, z_b))``
    over the same candidates, the matching of ``b`` as seen from the predictions against the same
    from the targets (ReLIC takes it across two augmentations of one input; the unroll has one),
    weighted by ``kl_weight``. Summed over the ``K`` steps: ``[B]``.

    Departures from the paper, documented: the vectors are the SimSiam projection (+ predictor for
    ``p``) rather than its conv + linear critic, and the target encodes the stacked history, not 15
    copies of the current frame.
    """
    if not 0.0 < negatives <= 1.0:
        raise ValueError(f"negatives is a fraction of the batch in (0, 1], got {negatives}")

    def fn(out: UnrollOutputs, tgt: TorchTargets) -> torch.Tensor:
        assert out.target_proj is not None, "the unroll has no target projections (needs)"
        p = F.normalize(out.proj_pred, dim=-1, eps=1e-5).transpose(0, 1)  # [K, B, D]
        z = F.normalize(out.target_proj.detach(), dim=-1, eps=1e-5).transpose(0, 1)
        logits = p @ z.transpose(1, 2) / temperature  # [K, B, B]: row b = prediction b against every target
        B = logits.shape[-1]
        cols = logits.transpose(1, 2)  # row b = target b against every prediction
        if negatives < 1.0:  # candidates of b: itself and the sampled negatives (in both directions)
            chosen = torch.zeros(B, dtype=torch.bool, device=logits.device)
            chosen[torch.randperm(B, device=logits.device)[:max(1, round(negatives * B))]] = True
            keep = chosen[None, :] | torch.eye(B, dtype=torch.bool, device=logits.device)
            # a large finite negative, not -inf: excluded pairs get probability 0 and finite log terms
            logits, cols = logits.masked_fill(~keep, -1e9), cols.masked_fill(~keep, -1e9)
        log_rows = F.log_softmax(logits, dim=-1)
        log_cols = F.log_softmax(cols, dim=-1)
        ce = -torch.diagonal(log_rows, dim1=1, dim2=2)  # [K, B]
        kl = (log_rows.exp() * (log_rows - log_cols)).sum(-1)  # [K, B]
        return ((ce + kl_weight * kl).transpose(0, 1) * tgt.mask_obs[:, 1:]).sum(1)

    return fn


@dataclass(frozen=True)
class LossTerm:
    """One term of the per-sample loss.

    ``name``: logged as ``loss_<name>`` (the metric columns come from the active terms);
    ``weight``: its factor in the sum; ``fn(out, tgt) -> [B]`` float32, the unweighted per-sample
    term summed over the unroll; ``needs``: what the unroll must also compute for it
    (``"reconstruction"``: decoded latents, the network needs a decoder; ``"target_projection"``: the
    target network's projections). A new self-supervised loss is a function and a term here, made
    active in :func:`loss_terms`.
    """

    name: str
    weight: float
    fn: Callable[[UnrollOutputs, TorchTargets], torch.Tensor]
    needs: frozenset[str] = frozenset()


def efficientzero_terms(weights: LossConfig) -> tuple[LossTerm, ...]:
    """EfficientZero's four terms with the weights of the ``loss`` section (XTRA appendix A, Eq. 3)."""
    return (LossTerm("value", weights.value, value_term),
            LossTerm("value_prefix", weights.value_prefix, value_prefix_term),
            LossTerm("policy", weights.policy, policy_term),
            LossTerm("consistency", weights.consistency, consistency_term))


def loss_terms(weights: LossConfig) -> tuple[LossTerm, ...]:
    """The active terms of the ``loss`` section: EfficientZero's four, then each self-supervised term
    of seed 000 whose weight is above 0 (reconstruction, contrastive, SPR)."""
    terms = list(efficientzero_terms(weights))
    if weights.reconstruction > 0:
        terms.append(LossTerm("reconstruction", weights.reconstruction, reconstruction_term,
                              frozenset({"reconstruction"})))
    if weights.contrastive > 0:
        terms.append(LossTerm("contrastive", weights.contrastive,
                              contrastive_term(weights.contrastive_temperature, weights.contrastive_kl,
                                               weights.contrastive_negatives),
                              frozenset({"target_projection"})))
    if weights.spr > 0:
        terms.append(LossTerm("spr", weights.spr, spr_term, frozenset({"target_projection"})))
    return tuple(terms)


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
