"""The learner: owns the parameters, the target network and the optimiser.

``Learner.step(batch)`` unrolls the world model ``K`` steps from the sampled observations
(EfficientZero, Ye et al. 2021), computes :func:`xfer.losses.efficientzero_loss`, applies
importance weights, the ``1/K`` gradient scale, the 0.5 hidden-state gradient scale per unroll
step, gradient clipping, and an SGD (or Adam) step on the warm-up/step-decay schedule.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from xfer.augment import augment
from xfer.config import LossConfig, OptimConfig
from xfer.losses import TorchTargets, UnrollOutputs, efficientzero_loss
from xfer.nets.efficientzero import EfficientZeroNet
from xfer.nets.support import logits_to_scalar
from xfer.replay.targets import Batch


def learning_rate(step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Learning rate at training ``step``: linear warm-up over ``warmup_fraction * total_steps``,
    then ``lr``, times ``lr_decay_rate`` from ``lr_decay_steps`` on (EfficientZero schedule)."""
    warmup = cfg.warmup_fraction * total_steps
    lr = cfg.lr * min(1.0, (step + 1) / warmup) if warmup >= 1 else cfg.lr
    if step >= cfg.lr_decay_steps:
        lr *= cfg.lr_decay_rate
    return lr


def make_optimizer(net: torch.nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD with momentum and weight decay (EfficientZero) or Adam."""
    if cfg.kind == "sgd":
        return torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


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
    )


def unroll(
    net: EfficientZeroNet,
    obs: torch.Tensor,
    actions: torch.Tensor,
    value_prefix_horizon: int,
    hidden_grad_scale: float,
    do_augment: bool,
) -> UnrollOutputs:
    """Unroll the model ``K`` steps in training mode.

    Args:
        obs: ``[B, K+1, C, H, W]`` uint8 stacked observations ``o_t..o_{t+K}``.
        actions: ``[B, K]`` int64 full-space actions.
        value_prefix_horizon: the value-prefix LSTM state resets after every this many steps.
        hidden_grad_scale: gradient multiplier on each unrolled latent (0.5 in MuZero/EfficientZero).
        do_augment: apply random shift + intensity to the inputs.
    """
    B, K1 = obs.shape[:2]

    def inputs(o: torch.Tensor) -> torch.Tensor:  # uint8 [N, C, H, W] -> what represent takes
        return augment(o, dtype=net.compute_dtype) if do_augment else o

    latent = net.represent(inputs(obs[:, 0]))
    policy0, value0 = net.predict(latent)
    with torch.no_grad():
        target_latent = net.represent(inputs(obs[:, 1:].flatten(0, 1)))
        proj_target = net.project(target_latent, with_predictor=False).view(B, K1 - 1, -1)
    state = net.initial_lstm_state(B, obs.device)
    policies, values, prefixes, preds = [policy0], [value0], [], []
    for k in range(K1 - 1):
        latent, state, prefix_logits = net.dynamics(latent, state, actions[:, k])
        if latent.requires_grad:
            latent.register_hook(lambda g: g * hidden_grad_scale)
        p, v = net.predict(latent)
        policies.append(p)
        values.append(v)
        prefixes.append(prefix_logits)
        preds.append(net.project(latent, with_predictor=True))
        if (k + 1) % value_prefix_horizon == 0:
            state = net.initial_lstm_state(B, obs.device)
    return UnrollOutputs(
        value_logits=torch.stack(values, 1),
        policy_logits=torch.stack(policies, 1),
        value_prefix_logits=torch.stack(prefixes, 1),
        proj_pred=torch.stack(preds, 1),
        proj_target=proj_target,
    )


def masked_policy_logits(logits: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
    """Set illegal actions' logits to a large negative number: ``[B, ..., A]`` with mask ``[B, A]``."""
    shape = (action_mask.shape[0],) + (1,) * (logits.dim() - 2) + (action_mask.shape[1],)
    return logits.masked_fill(~action_mask.view(shape), -1e9)


@dataclass
class StepResult:
    """Metrics of one training step (floats) and new priorities ``[B]`` (L1 value error at k=0)."""

    metrics: dict[str, float]
    priorities: np.ndarray


class Learner:
    """Owns the online network, its target copy and the optimiser.

    Args:
        net: the online :class:`EfficientZeroNet` (moved to ``device``).
        optim: optimiser settings; loss: loss weights; unroll/horizon from the replay config.
        total_steps: training steps planned (for the warm-up length).
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
    ) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device)
        self.target_net = copy.deepcopy(self.net).eval()
        self.optim_cfg = optim
        self.loss_cfg = loss
        self.value_prefix_horizon = value_prefix_horizon
        self.total_steps = max(1, total_steps)
        self.augment = augment
        self.optimizer = make_optimizer(self.net, optim)
        self.step_count = 0

    def refresh_target(self) -> None:
        """Copy the online weights into the target network."""
        self.target_net.load_state_dict(self.net.state_dict())

    def compute_loss(self, batch: Batch, extra_sample_weight: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], UnrollOutputs]:
        """Forward pass: ``(scalar loss, per-sample loss [B], parts, outputs)`` in train mode."""
        self.net.train()
        obs = torch.from_numpy(batch.obs).to(self.device)
        actions = torch.from_numpy(batch.actions).to(self.device)
        mask = torch.from_numpy(batch.action_mask).to(self.device)
        out = unroll(self.net, obs, actions, self.value_prefix_horizon, self.loss_cfg.hidden_grad_scale, self.augment)
        out.policy_logits = masked_policy_logits(out.policy_logits, mask)
        tgt = batch_to_targets(batch, self.device)
        per_sample, parts = efficientzero_loss(out, tgt, self.loss_cfg)
        w = torch.from_numpy(batch.weights).to(self.device)
        if extra_sample_weight is not None:
            w = w * extra_sample_weight
        K = batch.actions.shape[1]
        loss = (w * per_sample).mean() / K
        return loss, per_sample, parts, out

    def step(self, batch: Batch) -> StepResult:
        """One gradient step on ``batch``; returns metrics and new priorities."""
        return self.step_tasks([batch], [1.0])

    def step_tasks(self, batches: list[Batch], task_weights: list[float]) -> StepResult:
        """One gradient step on ``sum_i task_weights[i] * L(batches[i])`` (XTRA Eq. 1).

        ``batches[0]`` is the target task (weight 1 in XTRA); priorities are returned for it only.
        Metrics carry the target's loss parts and ``loss_task{i}`` for every task.
        """
        lr = learning_rate(self.step_count, self.total_steps, self.optim_cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        total = torch.zeros((), device=self.device)
        metrics: dict[str, float] = {"lr": lr}
        first_out = None
        for i, (batch, w) in enumerate(zip(batches, task_weights)):
            loss, _, parts, out = self.compute_loss(batch)
            if i == 0:
                first_out = out
                metrics.update({f"loss_{k}": float(v.detach().mean()) for k, v in parts.items()})
                metrics["loss"] = float(loss.detach())
            metrics[f"loss_task{i}"] = float(loss.detach())
            if w != 0.0:
                total = total + w * loss
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        params = [p for p in self.net.parameters() if p.requires_grad]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.optim_cfg.grad_clip)
        self.optimizer.step()
        self.step_count += 1
        metrics["grad_norm"] = float(grad_norm)
        metrics["loss_total"] = float(total.detach())
        with torch.no_grad():
            pred_v0 = logits_to_scalar(first_out.value_logits[:, 0])
            target_v0 = torch.from_numpy(batches[0].value[:, 0]).to(self.device)
            priorities = (pred_v0 - target_v0).abs().cpu().numpy()
        if not math.isfinite(metrics["loss_total"]):
            raise FloatingPointError(f"non-finite loss at training step {self.step_count}: {metrics}")
        return StepResult(metrics=metrics, priorities=priorities)

    def task_gradient_cosines(self, batches: list[Batch]) -> np.ndarray:
        """Cosine similarity between the flattened full gradient of the target loss (``batches[0]``)
        and of each other task's loss (XTRA Eq. 2); returns ``[len(batches) - 1]`` float64.

        Parameters are not changed; gradients are left cleared.
        """
        params = [p for p in self.net.parameters() if p.requires_grad]
        flats = []
        for batch in batches:
            loss, *_ = self.compute_loss(batch)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            flats.append(torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                                    for g, p in zip(grads, params)]))
        target = flats[0]
        cos = [float(torch.nn.functional.cosine_similarity(target, g, dim=0, eps=1e-12)) for g in flats[1:]]
        return np.asarray(cos, dtype=np.float64)
