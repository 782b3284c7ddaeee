"""Running statistics of the intrinsic rewards (Burda et al. 2019, "Exploration by Random Network
Distillation", section 2.4; reference.md section 6).

:class:`RunningMeanStd` keeps the mean and variance of a stream of batches (the observation
normalisation of the bonus networks); :class:`ReturnNormaliser` divides each intrinsic reward by the
running standard deviation of the non-episodic discounted intrinsic return, so the bonus has a
steady scale whatever the network widths or the game.
"""

from __future__ import annotations

import numpy as np
import torch

EPSILON_COUNT = 1e-4
"""The count the statistics start from (RND's ``RunningMeanStd(epsilon=1e-4)``), with mean 0 and
variance 1: the first batch then sets them almost alone, and no division by zero happens."""

STD_EPSILON = 1e-8
"""Added to the variance before the square root of :attr:`RunningMeanStd.std` (a constant stream
has variance going to 0; its standard deviation stays at least ``1e-4``)."""


def _as_float64(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device=device, dtype=torch.float64)
    return torch.as_tensor(np.asarray(x), dtype=torch.float64, device=device)


class RunningMeanStd:
    """Mean and variance over every row seen so far, of rows of shape ``shape``, in float64.

    Each :meth:`update` merges a batch's mean and (population) variance into the running ones with
    the parallel formula of Chan, Golub and LeVeque (1979), as RND's ``RunningMeanStd`` does:
    with ``delta = mean_b - mean`` and ``n = count + B``,
    ``mean <- mean + delta * B / n`` and
    ``var <- (var * count + var_b * B + delta^2 * count * B / n) / n``.
    It starts from ``mean = 0``, ``var = 1``, ``count =`` :data:`EPSILON_COUNT`.

    Args:
        shape: the shape of one row (``()`` for a stream of scalars).
        device: where the statistics live (the device of the tensors they normalise).
    """

    def __init__(self, shape: tuple[int, ...] = (), device: str | torch.device = "cpu") -> None:
        self.shape = tuple(int(d) for d in shape)
        self.device = torch.device(device)
        self.mean = torch.zeros(self.shape, dtype=torch.float64, device=self.device)
        """``[*shape]`` float64 running mean."""
        self.var = torch.ones(self.shape, dtype=torch.float64, device=self.device)
        """``[*shape]`` float64 running population variance."""
        self.count = torch.tensor(EPSILON_COUNT, dtype=torch.float64, device=self.device)
        """float64 scalar: rows seen, plus :data:`EPSILON_COUNT`."""

    @property
    def std(self) -> torch.Tensor:
        """``[*shape]`` float64 ``sqrt(var + 1e-8)`` (:data:`STD_EPSILON`)."""
        return torch.sqrt(self.var + STD_EPSILON)

    def update(self, x: np.ndarray | torch.Tensor) -> None:
        """Merge the batch ``x [B, *shape]`` (any real dtype; numpy or torch) into the statistics.

        Raises:
            ValueError: ``x`` is not ``[B, *shape]`` or ``B == 0``.
        """
        xb = _as_float64(x, self.device)
        if xb.ndim != len(self.shape) + 1 or tuple(xb.shape[1:]) != self.shape or xb.shape[0] == 0:
            raise ValueError(f"RunningMeanStd of rows {self.shape} needs a batch [B >= 1, *{self.shape}], "
                             f"got {tuple(xb.shape)}")
        b = float(xb.shape[0])
        batch_mean = xb.mean(0)
        batch_var = xb.var(0, unbiased=False)
        delta = batch_mean - self.mean
        total = self.count + b
        self.mean = self.mean + delta * (b / total)
        m2 = self.var * self.count + batch_var * b + delta.square() * (self.count * b / total)
        self.var = m2 / total
        self.count = total

    def state(self) -> dict[str, torch.Tensor]:
        """``{"mean", "var", "count"}``: float64 CPU copies (``[*shape]``, ``[*shape]``, scalar)."""
        return {"mean": self.mean.cpu().clone(), "var": self.var.cpu().clone(), "count": self.count.cpu().clone()}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state` returned.

        Raises:
            ValueError: missing or extra keys, or tensors of another shape.
        """
        if set(state) != {"mean", "var", "count"}:
            raise ValueError(f"RunningMeanStd state needs keys mean, var, count; got {sorted(state)}")
        for key, want in (("mean", self.shape), ("var", self.shape), ("count", ())):
            if tuple(state[key].shape) != want:
                raise ValueError(f"RunningMeanStd state {key!r} has shape {tuple(state[key].shape)}, expected {want}")
        self.mean = state["mean"].to(device=self.device, dtype=torch.float64).clone()
        self.var = state["var"].to(device=self.device, dtype=torch.float64).clone()
        self.count = state["count"].to(device=self.device, dtype=torch.float64).clone()


class ReturnNormaliser:
    """RND's normalisation of the intrinsic reward (Burda et al. 2019, section 2.4).

    Per environment it keeps the non-episodic discounted intrinsic return ``R <- gamma * R + r``
    (never reset at episode ends: novelty is not bounded by an episode), merges each step's ``[N]``
    returns into a scalar :class:`RunningMeanStd`, and divides each reward by the returns' running
    standard deviation. Units: per agent step (``gamma`` is the discount of one agent step).

    Args:
        gamma: discount per agent step, in ``(0, 1)`` (``IntrinsicConfig.return_discount``).
        num_envs: ``N``, the environments stepped together (one return each).

    Raises:
        ValueError: ``gamma`` outside ``(0, 1)`` or ``num_envs < 1``.
    """

    def __init__(self, gamma: float, num_envs: int) -> None:
        if not 0.0 < gamma < 1.0:
            raise ValueError(f"ReturnNormaliser needs 0 < gamma < 1, got {gamma}")
        if num_envs < 1:
            raise ValueError(f"ReturnNormaliser needs num_envs >= 1, got {num_envs}")
        self.gamma = float(gamma)
        self.num_envs = int(num_envs)
        self.returns = np.zeros(num_envs, dtype=np.float64)
        """``[N]`` float64 discounted intrinsic return of each environment."""
        self.rms = RunningMeanStd(())

    def __call__(self, rewards: np.ndarray) -> np.ndarray:
        """One step's intrinsic rewards ``[N]`` (any real dtype) -> ``r / std(R)`` as ``[N]`` float32,
        after folding ``r`` into the returns and the returns into the statistics.

        Raises:
            ValueError: ``rewards`` is not ``[N]``.
        """
        r = np.asarray(rewards, dtype=np.float64)
        if r.shape != (self.num_envs,):
            raise ValueError(f"ReturnNormaliser of {self.num_envs} envs needs rewards [{self.num_envs}], got {r.shape}")
        self.returns = self.gamma * self.returns + r
        self.rms.update(self.returns)
        return (r / float(self.rms.std)).astype(np.float32)

    def state(self) -> dict[str, torch.Tensor]:
        """``{"returns" [N], "rms.mean", "rms.var", "rms.count"}``: float64 CPU tensors."""
        out = {"returns": torch.from_numpy(self.returns.copy())}
        out.update({f"rms.{k}": v for k, v in self.rms.state().items()})
        return out

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state` returned.

        Raises:
            ValueError: missing or extra keys, or returns of another number of environments.
        """
        if set(state) != {"returns", "rms.mean", "rms.var", "rms.count"}:
            raise ValueError(f"ReturnNormaliser state needs keys returns, rms.mean, rms.var, rms.count; "
                             f"got {sorted(state)}")
        if tuple(state["returns"].shape) != (self.num_envs,):
            raise ValueError(f"ReturnNormaliser state holds {tuple(state['returns'].shape)} returns, "
                             f"expected ({self.num_envs},)")
        self.rms.load({k[4:]: v for k, v in state.items() if k.startswith("rms.")})
        self.returns = state["returns"].to(torch.float64).cpu().numpy().copy()
