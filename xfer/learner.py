"""The learner: owns the parameters, the target network and the optimiser.

``Learner.step(batch)`` unrolls the world model ``K`` steps from the sampled observations
(EfficientZero, Ye et al. 2021), sums its loss terms (:func:`xfer.losses.total_loss`; EfficientZero's four by default), applies
importance weights, the ``1/K`` gradient scale, the 0.5 hidden-state gradient scale per unroll
step, gradient clipping, and an SGD (or Adam) step on the warm-up/step-decay schedule.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from xfer.augment import augment
from xfer.config import LossConfig, OptimConfig
from xfer.losses import (
    LossTerm,
    TorchTargets,
    UnrollOutputs,
    loss_metric_names,
    loss_terms,
    total_loss,
)
from xfer.nets.efficientzero import EfficientZeroNet
from xfer.nets.support import logits_to_scalar
from xfer.replay.targets import Batch, concat_batches
from xfer.transfer import freeze_representation


def learning_rate(step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Learning rate at training ``step``: linear warm-up over ``warmup_fraction * total_steps``,
    then ``lr``, times ``lr_decay_rate`` from ``lr_decay_steps`` on (EfficientZero schedule)."""
    warmup = cfg.warmup_fraction * total_steps
    lr = cfg.lr * min(1.0, (step + 1) / warmup) if warmup >= 1 else cfg.lr
    if step >= cfg.lr_decay_steps:
        lr *= cfg.lr_decay_rate
    return lr


def make_optimizer(net: torch.nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD with momentum and weight decay (EfficientZero) or Adam, over the parameters that need gradients."""
    params = [p for p in net.parameters() if p.requires_grad]
    if cfg.kind == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def batch_to_targets(batch: Batch, device: torch.device) -> TorchTargets:
    """Move the numpy targets of a :class:`Batch` to ``device`` as float32 tensors."""

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x)).to(device)

    return TorchTargets(
        value_prefix=t(batch.value_prefix),
        value=t(batch.value),
        policy=t(batch.policy),
        mask_value_prefix=t(batch.mask_value_prefix),
        mask_value=t(batch.mask_value),
        mask_policy=t(batch.mask_policy),
        mask_obs=t(batch.mask_obs),
        sampled=None if batch.sampled is None else t(batch.sampled),
    )


def unroll(
    net: EfficientZeroNet,
    obs: torch.Tensor,
    actions: torch.Tensor,
    value_prefix_horizon: int,
    hidden_grad_scale: float,
    do_augment: bool,
    decode: bool = False,
    target_net: EfficientZeroNet | None = None,
) -> UnrollOutputs:
    """Unroll the model ``K`` steps in training mode.

    Args:
        obs: ``[B, K+1, C, H, W]`` uint8 stacked observations ``o_t..o_{t+K}`` (states: ``[B, K+1, D]`` float32).
        actions: ``[B, K]`` int64 full-space actions (Box actions: ``[B, K, D]`` float32).
        value_prefix_horizon: the value-prefix LSTM state resets after every this many steps.
        hidden_grad_scale: gradient multiplier on each unrolled latent (0.5 in MuZero/EfficientZero).
        do_augment: apply random shift + intensity to the inputs.
        decode: also decode every latent ``s_0..s_K`` (``UnrollOutputs.reconstruction``; the
            network needs a decoder).
        target_net: when given, also project ``o_{t+1}..o_{t+K}`` (the same augmented inputs) with it
            (``UnrollOutputs.target_proj``, no gradient): SPR and the contrastive loss.
    """
    B, K1 = obs.shape[:2]

    def inputs(o: torch.Tensor) -> torch.Tensor:  # uint8 [N, C, H, W] -> what represent takes
        return augment(o, dtype=net.compute_dtype) if do_augment else o

    latent = net.represent(inputs(obs[:, 0]))
    policy0, value0 = net.predict(latent)
    with torch.no_grad():
        future = inputs(obs[:, 1:].flatten(0, 1))
        target_latent = net.represent(future)
        proj_target = net.project(target_latent, with_predictor=False).view(B, K1 - 1, -1)
        target_proj = (None if target_net is None else
                       target_net.project(target_net.represent(future), with_predictor=False).view(B, K1 - 1, -1))
    state = net.initial_lstm_state(B, obs.device)
    policies, values, prefixes, preds, latents = [policy0], [value0], [], [], [latent]
    for k in range(K1 - 1):
        latent, state, prefix_logits = net.dynamics(latent, state, actions[:, k])
        if latent.requires_grad:
            latent.register_hook(lambda g: g * hidden_grad_scale)
        p, v = net.predict(latent)
        policies.append(p)
        values.append(v)
        prefixes.append(prefix_logits)
        preds.append(net.project(latent, with_predictor=True))
        latents.append(latent)
        if (k + 1) % value_prefix_horizon == 0:
            state = net.initial_lstm_state(B, obs.device)
    reconstruction = None
    if decode:
        decoded = net.decode(torch.cat(latents))  # [(K+1) * B, ...], step-major
        reconstruction = decoded.view(K1, B, *decoded.shape[1:]).transpose(0, 1)
    return UnrollOutputs(
        value_logits=torch.stack(values, 1),
        policy_logits=torch.stack(policies, 1),
        value_prefix_logits=torch.stack(prefixes, 1),
        proj_pred=torch.stack(preds, 1),
        proj_target=proj_target,
        obs=obs,
        reconstruction=reconstruction,
        target_proj=target_proj,
    )


def masked_policy_logits(logits: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
    """Set illegal actions' logits to a large negative number: ``[B, ..., A]`` with mask ``[B, A]``."""
    shape = (action_mask.shape[0],) + (1,) * (logits.dim() - 2) + (action_mask.shape[1],)
    return logits.masked_fill(~action_mask.view(shape), -1e9)


LossBalance = Literal["sum", "pooled"]


@dataclass
class StepResult:
    """Metrics of one training step (floats), new priorities ``[B]`` (L1 value error at k=0) of the
    target batch, and, when asked for, the gradient cosines ``[m]`` of the offline tasks."""

    metrics: dict[str, float]
    priorities: np.ndarray
    cosines: np.ndarray | None = None


class Learner:
    """Owns the online network, its target copy and the optimiser.

    Args:
        net: the online :class:`EfficientZeroNet` (moved to ``device``).
        optim: optimiser settings; loss: loss weights; unroll/horizon from the replay config.
        total_steps: training steps planned (for the warm-up length).
        terms: the loss terms (:class:`xfer.losses.LossTerm`); default the active terms of ``loss``
            (:func:`xfer.losses.loss_terms`: EfficientZero's four, plus reconstruction / contrastive /
            SPR at weight > 0). Each is logged as ``loss_<name>`` (:attr:`metric_names`).
    """

    def __init__(
        self,
        net: EfficientZeroNet,
        optim: OptimConfig,
        loss: LossConfig,
        value_prefix_horizon: int,
        total_steps: int,
        device: str = "cpu",
        augment: bool = True,
        terms: tuple[LossTerm, ...] | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device)
        self.target_net = copy.deepcopy(self.net).eval()
        self.optim_cfg = optim
        self.loss_cfg = loss
        self.loss_terms = terms if terms is not None else loss_terms(loss)
        self.needs = frozenset().union(*(t.needs for t in self.loss_terms))
        self.value_prefix_horizon = value_prefix_horizon
        self.total_steps = max(1, total_steps)
        self.augment = augment
        self.optimizer = make_optimizer(self.net, optim)
        self.frozen: list[torch.nn.Module] = []
        self.lr_override: float | None = None  # a fixed learning rate instead of the schedule (extra steps)
        self.step_count = 0

    @property
    def metric_names(self) -> list[str]:
        """Names of the per-step metrics :meth:`step` reports for one task, in log order: ``loss``,
        ``loss_<term>`` for each active term, ``lr``, ``grad_norm`` (multi-task steps add
        ``loss_task<i>`` and ``loss_total``, see :meth:`step_tasks`)."""
        return ["loss", *loss_metric_names(self.loss_terms), "lr", "grad_norm"]

    def step_metric_names(self, num_tasks: int) -> list[str]:
        """Every metric :meth:`step_tasks` reports for ``num_tasks`` tasks: :attr:`metric_names`, then
        ``loss_task0 .. loss_task{num_tasks - 1}`` and ``loss_total``."""
        return [*self.metric_names, *(f"loss_task{i}" for i in range(num_tasks)), "loss_total"]

    def refresh_target(self) -> None:
        """Copy the online weights into the target network."""
        self.target_net.load_state_dict(self.net.state_dict())

    def freeze_representation(self) -> None:
        """Freeze ``h`` (XTRA Fig. 7b): no gradients, no optimiser state, and its batch norm keeps the
        running statistics it has (the module stays in eval mode during training steps). Call before
        loading a resume state, so the optimiser matches the one that was saved."""
        freeze_representation(self.net)
        self.frozen = [self.net.representation_net]
        self.optimizer = make_optimizer(self.net, self.optim_cfg)

    def train_mode(self) -> None:
        """Put the online network in training mode, frozen modules excepted (see :meth:`freeze_representation`)."""
        self.net.train()
        for module in self.frozen:
            module.eval()

    def compute_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], UnrollOutputs]:
        """Forward pass in train mode: ``(scalar loss, per-sample loss [B], parts, outputs)``; the scalar
        is ``mean_b(importance weight_b * loss_b) / K``."""
        self.train_mode()
        obs = torch.from_numpy(batch.obs).to(self.device)
        actions = torch.from_numpy(batch.actions).to(self.device)
        mask = torch.from_numpy(batch.action_mask).to(self.device)
        out = unroll(self.net, obs, actions, self.value_prefix_horizon, self.loss_cfg.hidden_grad_scale, self.augment,
                     decode="reconstruction" in self.needs,
                     target_net=self.target_net if "target_projection" in self.needs else None)
        if not self.net.action_dim:  # a Box's Gaussian head has no illegal actions
            out.policy_logits = masked_policy_logits(out.policy_logits, mask)
        tgt = batch_to_targets(batch, self.device)
        per_sample, parts = total_loss(out, tgt, self.loss_terms)
        w = torch.from_numpy(batch.weights).to(self.device)
        K = batch.actions.shape[1]
        loss = (w * per_sample).mean() / K
        return loss, per_sample, parts, out

    def step(self, batch: Batch) -> StepResult:
        """One gradient step on ``batch``; returns metrics and new priorities."""
        return self.step_tasks([batch], [1.0])

    def step_tasks(self, batches: list[Batch], task_weights: list[float], balance: LossBalance = "sum",
                   measure_cosines: bool = False) -> StepResult:
        """One gradient step on the tasks of ``batches`` (XTRA Eq. 1), forwarded as ONE pooled batch.

        All tasks go through the network together, so batch norm sees one set of batch statistics
        per step and its running statistics (used for acting, reanalyse and evaluation) mix the tasks
        by their share of the pooled batch, as XTRA's code does; forwarding the tasks one after
        another would leave the running statistics dominated by the last ones (the offline games).
        Per-task losses are means over each task's slice: ``L_i = mean_b(w_b * l_b) / K``.

        Args:
            batches: ``batches[0]`` is the target task; the rest are offline tasks ``1..m``.
            task_weights: ``[1 + m]`` floats, ``task_weights[0]`` the target's (1 in XTRA), then ``eta_i``.
            balance: ``"sum"``: ``sum_i task_weights[i] * L_i`` (the literal Eq. 1); ``"pooled"``:
                ``0.5 * L_0 + 0.5 * (1/m) * sum_{i>=1} eta_i * L_i`` (XTRA's public code), ``L_0``
                alone when ``m = 0``.
            measure_cosines: also return the cosine similarity between the flattened full gradient
                of ``L_0`` and of each ``L_i`` (XTRA Appendix B, Eq. 2), from the same forward pass,
                as ``StepResult.cosines [m]`` float64.

        Returns:
            :class:`StepResult`: metrics (the target's loss parts, ``loss_task{i}`` for every task,
            ``loss_total``), priorities for ``batches[0]`` only.

        Raises:
            ValueError: ``len(task_weights) != len(batches)`` or an unknown ``balance``;
            FloatingPointError: a non-finite loss.
        """
        if len(task_weights) != len(batches):
            raise ValueError(f"{len(batches)} batches but {len(task_weights)} task weights")
        if balance not in ("sum", "pooled"):
            raise ValueError(f"unknown loss balance {balance!r}; choose sum or pooled")
        lr = self.lr_override or learning_rate(self.step_count, self.total_steps, self.optim_cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        pooled = batches[0] if len(batches) == 1 else concat_batches(batches)
        _, per_sample, parts, out = self.compute_loss(pooled)
        w = torch.from_numpy(pooled.weights).to(self.device) * per_sample
        K = pooled.actions.shape[1]
        bounds = np.cumsum([0] + [len(b.weights) for b in batches])
        task_losses = [w[lo:hi].mean() / K for lo, hi in zip(bounds[:-1], bounds[1:])]
        m = len(batches) - 1
        if balance == "pooled" and m > 0:
            total = 0.5 * task_weights[0] * task_losses[0] + (0.5 / m) * sum(
                e * loss for e, loss in zip(task_weights[1:], task_losses[1:]))
        else:
            total = sum(e * loss for e, loss in zip(task_weights, task_losses))
        n0 = bounds[1]
        metrics: dict[str, float] = {"lr": lr, "loss": float(task_losses[0].detach())}
        metrics.update({f"loss_{k}": float(v[:n0].detach().mean()) for k, v in parts.items()})
        metrics.update({f"loss_task{i}": float(loss.detach()) for i, loss in enumerate(task_losses)})
        params = [p for p in self.net.parameters() if p.requires_grad]
        cosines = None
        if measure_cosines and m > 0:
            flats = [torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in
                                zip(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True), params)]
                               ).double()  # float64: a cosine of millions of terms
                     for loss in task_losses]
            cosines = np.asarray([float(torch.nn.functional.cosine_similarity(flats[0], g, dim=0, eps=1e-12))
                                  for g in flats[1:]], dtype=np.float64)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.optim_cfg.grad_clip)
        self.optimizer.step()
        self.step_count += 1
        metrics["grad_norm"] = float(grad_norm)
        metrics["loss_total"] = float(total.detach())
        with torch.no_grad():
            pred_v0 = logits_to_scalar(out.value_logits[:n0, 0])
            target_v0 = torch.from_numpy(batches[0].value[:, 0]).to(self.device)
            priorities = (pred_v0 - target_v0).abs().cpu().numpy()
        if not math.isfinite(metrics["loss_total"]):
            raise FloatingPointError(f"non-finite loss at training step {self.step_count}: {metrics}")
        return StepResult(metrics=metrics, priorities=priorities, cosines=cosines)
