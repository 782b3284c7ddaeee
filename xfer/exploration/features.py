"""What the intrinsic-reward models share: observation preprocessing and normalisation, the random
networks, the action encoding, and the exact save/restore of a trained bonus.

Preprocessing follows Random Network Distillation (Burda et al. 2019, section 2.4 and appendix A.4):
a pixel observation ``[stack * C, H, W]`` uint8 keeps only its last frame (the last ``C`` planes of
the frame-major stack), averaged over its channels to one grey plane (values 0..255) and
area-downsampled to ``frame_size x frame_size``; a state vector ``[D]`` is kept as it is. The result
is whitened per element with a :class:`~xfer.exploration.running.RunningMeanStd` and clipped to
``[-clip, clip]``.

The networks are RND's, at CPU-scale widths: three convolutions (``c``, ``2c``, ``2c`` channels,
kernels 8 / 4 / 3, strides 4 / 2 / 1, LeakyReLU) then linear layers for pixels, MLPs for state
vectors. Every network is built from a ``torch.Generator`` (orthogonal weights, zero biases) and
never draws from torch's global random number generator.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from xfer.envs.spec import ActionSpace, Box, Discrete, ObservationSpec
from xfer.exploration.running import RunningMeanStd

MIN_FRAME_SIZE = 36
"""The smallest ``frame_size`` the 8/4/3-kernel, 4/2/1-stride convolutions (no padding) accept."""


def check_observations(obs: np.ndarray, spec: ObservationSpec, name: str = "obs") -> np.ndarray:
    """``obs`` as an array after checking it is a batch ``[N >= 1, *spec.shape]``.

    Raises:
        ValueError: another shape, or an empty batch.
    """
    arr = np.asarray(obs)
    if arr.ndim != len(spec.shape) + 1 or tuple(arr.shape[1:]) != tuple(spec.shape) or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a batch [N >= 1, *{tuple(spec.shape)}] of {spec.kind} observations, "
                         f"got {arr.shape}")
    return arr


def input_shape(spec: ObservationSpec, frame_size: int) -> tuple[int, ...]:
    """The shape of one preprocessed observation: ``(1, frame_size, frame_size)`` for pixels, ``(D,)`` for
    states."""
    return (1, frame_size, frame_size) if spec.kind == "pixels" else tuple(spec.shape)


def preprocess(obs: np.ndarray, spec: ObservationSpec, frame_size: int, device: str | torch.device = "cpu"
               ) -> torch.Tensor:
    """Observations ``[N, *spec.shape]`` -> the bonus networks' float32 input (not yet normalised).

    Pixels (uint8 ``[N, stack * C, H, W]``, oldest frame first): the last frame ``obs[:, -C:]``,
    averaged over its ``C`` channels, area-downsampled (``adaptive_avg_pool2d``: block means) to
    ``[N, 1, frame_size, frame_size]``, grey levels 0..255. States (``[N, D]``): float32 as they are.

    Raises:
        ValueError: ``obs`` is not a batch ``[N >= 1, *spec.shape]``.
    """
    arr = check_observations(obs, spec)
    if spec.kind == "state":
        return torch.as_tensor(np.ascontiguousarray(arr), dtype=torch.float32, device=device)
    channels = spec.frame_shape[0]
    last = torch.as_tensor(np.ascontiguousarray(arr[:, -channels:]), device=device)
    grey = last.to(torch.float32).mean(1, keepdim=True)
    if tuple(grey.shape[-2:]) == (frame_size, frame_size):
        return grey
    return F.adaptive_avg_pool2d(grey, (frame_size, frame_size))


class ObservationNormaliser:
    """Per-element whitening of preprocessed observations with running statistics, clipped (RND's
    observation normalisation).

    Args:
        shape: one preprocessed observation (:func:`input_shape`).
        clip: normalised values are clipped to ``[-clip, clip]``.
        device: where the statistics live.
    """

    def __init__(self, shape: tuple[int, ...], clip: float, device: str | torch.device = "cpu") -> None:
        self.clip = float(clip)
        self.rms = RunningMeanStd(shape, device)

    def update(self, x: torch.Tensor) -> None:
        """Merge ``x [B, *shape]`` into the statistics (:meth:`RunningMeanStd.update`; its errors)."""
        self.rms.update(x)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``clip((x - mean) / std, -clip, clip)`` as float32 ``[B, *shape]`` (``std = sqrt(var + 1e-8)``)."""
        z = (x.to(torch.float64) - self.rms.mean) / self.rms.std
        return z.clamp(-self.clip, self.clip).to(torch.float32)


# ---------------------------------------------------------------------------------------------
# networks
# ---------------------------------------------------------------------------------------------
def _conv_size(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


def conv_output_size(frame_size: int) -> int:
    """Height (= width) of the last convolution's output for a ``frame_size`` input (48 -> 2, 84 -> 7).

    Raises:
        ValueError: ``frame_size`` below :data:`MIN_FRAME_SIZE` (the convolutions would not fit).
    """
    if frame_size < MIN_FRAME_SIZE:
        raise ValueError(f"frame_size {frame_size} is too small for the 8/4/3 convolutions of the bonus "
                         f"networks; use at least {MIN_FRAME_SIZE}")
    return _conv_size(_conv_size(_conv_size(frame_size, 8, 4), 4, 2), 3, 1)


GAIN = math.sqrt(2.0)
"""Orthogonal gain of every layer followed by a LeakyReLU (RND's ``sqrt(2)``); output layers use 1."""


def _init_(net: nn.Sequential, generator: torch.Generator) -> None:
    layers = [m for m in net.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    for i, layer in enumerate(layers):
        nn.init.orthogonal_(layer.weight, gain=1.0 if i == len(layers) - 1 else GAIN, generator=generator)
        nn.init.zeros_(layer.bias)


def random_network(spec: ObservationSpec, frame_size: int, channels: int, hidden: int, out_dim: int,
                   generator: torch.Generator, predictor: bool = False) -> nn.Sequential:
    """A bonus network on preprocessed observations (:func:`preprocess`), float32 on the CPU.

    Pixels ``[B, 1, S, S]``: ``Conv(1, c, 8, stride 4)``, ``Conv(c, 2c, 4, stride 2)``,
    ``Conv(2c, 2c, 3, stride 1)`` each with LeakyReLU, flatten, then ``Linear(out_dim)`` (RND's target,
    the disagreement encoder) or, with ``predictor``, ``Linear(hidden)``, LeakyReLU, ``Linear(out_dim)``
    (RND's predictor: one more hidden layer). States ``[B, D]``: the MLP ``[D, hidden, hidden, out_dim]``
    with LeakyReLU (the same for target and predictor). Output ``[B, out_dim]``.

    Weights are orthogonal (gain ``sqrt(2)`` before a LeakyReLU, 1 at the output), biases zero, drawn
    from ``generator`` only; torch's global generator is left as it was.

    Raises:
        ValueError: a pixel ``frame_size`` below :data:`MIN_FRAME_SIZE`.
    """
    with torch.random.fork_rng(devices=[]):  # the layers' default init draws from the global generator
        if spec.kind == "pixels":
            side = conv_output_size(frame_size)
            layers: list[nn.Module] = [
                nn.Conv2d(1, channels, 8, stride=4), nn.LeakyReLU(),
                nn.Conv2d(channels, 2 * channels, 4, stride=2), nn.LeakyReLU(),
                nn.Conv2d(2 * channels, 2 * channels, 3, stride=1), nn.LeakyReLU(),
                nn.Flatten(),
            ]
            flat = 2 * channels * side * side
            if predictor:
                layers += [nn.Linear(flat, hidden), nn.LeakyReLU(), nn.Linear(hidden, out_dim)]
            else:
                layers += [nn.Linear(flat, out_dim)]
            net = nn.Sequential(*layers)
        else:
            d = spec.shape[0]
            net = nn.Sequential(nn.Linear(d, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU(),
                                nn.Linear(hidden, out_dim))
    _init_(net, generator)
    return net


class EnsembleMLP(nn.Module):
    """``members`` independent MLPs ``[in_dim, hidden, hidden, out_dim]`` (LeakyReLU), evaluated together.

    Parameters ``w{1,2,3} [members, fan_in, fan_out]`` and ``b{1,2,3} [members, 1, fan_out]``; member
    ``e`` computes ``x @ w[e] + b[e]`` layer by layer. Weights orthogonal from ``generator`` (gain
    ``sqrt(2)``, 1 at the output), biases zero.
    """

    def __init__(self, members: int, in_dim: int, hidden: int, out_dim: int, generator: torch.Generator) -> None:
        super().__init__()
        self.members = members
        sizes = [(in_dim, hidden), (hidden, hidden), (hidden, out_dim)]
        for i, (fan_in, fan_out) in enumerate(sizes, start=1):
            w = torch.empty(members, fan_in, fan_out)
            for e in range(members):
                m = torch.empty(fan_out, fan_in)  # as nn.Linear stores it
                nn.init.orthogonal_(m, gain=1.0 if i == len(sizes) else GAIN, generator=generator)
                w[e] = m.T
            self.register_parameter(f"w{i}", nn.Parameter(w))
            self.register_parameter(f"b{i}", nn.Parameter(torch.zeros(members, 1, fan_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [members, B, in_dim]`` float32 -> ``[members, B, out_dim]`` (member ``e`` sees ``x[e]``)."""
        h = F.leaky_relu(torch.baddbmm(self.b1, x, self.w1))
        h = F.leaky_relu(torch.baddbmm(self.b2, h, self.w2))
        return torch.baddbmm(self.b3, h, self.w3)


def action_width(space: ActionSpace) -> int:
    """Entries of an encoded action: ``n`` (one-hot) for ``Discrete(n)``, ``prod(shape)`` for a ``Box``."""
    return space.n if isinstance(space, Discrete) else int(np.prod(space.shape))


def encode_actions(actions: np.ndarray, space: ActionSpace, device: str | torch.device = "cpu") -> torch.Tensor:
    """Actions of ``N`` transitions -> ``[N, action_width(space)]`` float32: one-hot of the ids ``[N]``
    (int) for ``Discrete(n)``; the vectors ``[N, *shape]`` flattened for a ``Box``.

    Raises:
        ValueError: another shape, or a discrete id outside ``0 .. n - 1``.
    """
    a = np.asarray(actions)
    if isinstance(space, Box):
        if a.ndim != len(space.shape) + 1 or tuple(a.shape[1:]) != tuple(space.shape):
            raise ValueError(f"Box actions must be [N, *{tuple(space.shape)}], got {a.shape}")
        return torch.as_tensor(a.reshape(len(a), -1), dtype=torch.float32, device=device)
    if a.ndim != 1 or not (np.issubdtype(a.dtype, np.integer) or np.all(a == np.round(a))):
        raise ValueError(f"Discrete actions must be [N] integer ids, got shape {a.shape} dtype {a.dtype}")
    ids = a.astype(np.int64)
    if len(ids) and (ids.min() < 0 or ids.max() >= space.n):
        raise ValueError(f"Discrete({space.n}) action ids must lie in 0..{space.n - 1}, got {ids.min()}..{ids.max()}")
    return F.one_hot(torch.as_tensor(ids, device=device), space.n).to(torch.float32)


def frozen(net: nn.Module) -> nn.Module:
    """``net`` with ``requires_grad = False`` on every parameter (a fixed random network), in eval mode."""
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


# ---------------------------------------------------------------------------------------------
# exact save / restore
# ---------------------------------------------------------------------------------------------
_ADAM_KEYS = ("step", "exp_avg", "exp_avg_sq")


class TrainedBonus:
    """The state every trained bonus shares (:class:`~xfer.exploration.rnd.RND`,
    :class:`~xfer.exploration.disagreement.Disagreement`): named modules, one Adam optimiser, the
    observation normaliser, the call counter and the last training loss; :meth:`state` and
    :meth:`load` round-trip all of it exactly.

    Subclasses set ``self.modules`` (name -> module), ``self.optimiser``, ``self.obs_norm``,
    ``self.seed``, ``self.calls`` (calls so far) and ``self.last_loss``.
    """

    modules: dict[str, nn.Module]
    optimiser: torch.optim.Adam
    obs_norm: ObservationNormaliser
    seed: int
    calls: int
    last_loss: float

    def call_rng(self) -> np.random.Generator:
        """The generator of this call's random subsets: ``default_rng([seed, calls])`` (stateless in
        between, so a resumed model draws what an uninterrupted one draws)."""
        return np.random.default_rng([self.seed, self.calls])

    def state(self) -> dict[str, torch.Tensor]:
        """Every tensor that determines later bonuses, as CPU copies:
        ``"<module>.<parameter>"`` for each module (``predictor``, ``target``, ...);
        ``"optimiser.<param index>.<step|exp_avg|exp_avg_sq>"`` (Adam, after its first step);
        ``"obs_rms.mean"``, ``"obs_rms.var"``, ``"obs_rms.count"`` (float64); ``"calls"`` and ``"seed"``
        (int64 scalars); ``"last_loss"`` (float64 scalar)."""
        out: dict[str, torch.Tensor] = {}
        for name, module in self.modules.items():
            out.update({f"{name}.{k}": v.detach().cpu().clone() for k, v in module.state_dict().items()})
        for i, entry in self.optimiser.state_dict()["state"].items():
            out.update({f"optimiser.{i}.{k}": torch.as_tensor(entry[k]).detach().cpu().clone() for k in _ADAM_KEYS})
        out.update({f"obs_rms.{k}": v for k, v in self.obs_norm.rms.state().items()})
        out["calls"] = torch.tensor(self.calls, dtype=torch.int64)
        out["seed"] = torch.tensor(self.seed, dtype=torch.int64)
        out["last_loss"] = torch.tensor(self.last_loss, dtype=torch.float64)
        return out

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state` returned (of a model built with the same spec and config); the
        next calls then give bit-identical bonuses to the model that saved it.

        Raises:
            ValueError: missing or unexpected keys, tensors of another shape, or a state saved by a model
                of another seed (the seed draws every later subset: build the model with the saved one).
        """
        expected = {f"{name}.{k}": v for name, m in self.modules.items() for k, v in m.state_dict().items()}
        expected.update({f"obs_rms.{k}": v for k, v in self.obs_norm.rms.state().items()})
        expected.update({"calls": torch.tensor(0), "seed": torch.tensor(0), "last_loss": torch.tensor(0.0)})
        params = [p for g in self.optimiser.param_groups for p in g["params"]]
        adam = {f"optimiser.{i}.{k}" for i in range(len(params)) for k in _ADAM_KEYS}
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected) - adam)
        if missing or unexpected:
            raise ValueError(f"{type(self).__name__} state: missing keys {missing}, unexpected keys {unexpected}")
        for key, ref in expected.items():
            if tuple(state[key].shape) != tuple(ref.shape):
                raise ValueError(f"{type(self).__name__} state {key!r} has shape {tuple(state[key].shape)}, "
                                 f"expected {tuple(ref.shape)}")
        if int(state["seed"]) != self.seed:
            raise ValueError(f"{type(self).__name__} state was saved with seed {int(state['seed'])}, this model "
                             f"has seed {self.seed}")
        opt_state: dict[int, dict[str, torch.Tensor]] = {}
        for key in sorted(set(state) & adam):
            _, i, k = key.split(".")
            if k != "step" and tuple(state[key].shape) != tuple(params[int(i)].shape):
                raise ValueError(f"{type(self).__name__} state {key!r} has shape {tuple(state[key].shape)}, "
                                 f"expected {tuple(params[int(i)].shape)}")
            opt_state.setdefault(int(i), {})[k] = state[key].clone()
        incomplete = [i for i, entry in opt_state.items() if set(entry) != set(_ADAM_KEYS)]
        if incomplete:
            raise ValueError(f"{type(self).__name__} state: Adam state of parameters {incomplete} is incomplete")
        for name, module in self.modules.items():
            prefix = f"{name}."
            module.load_state_dict({k[len(prefix):]: v.clone() for k, v in state.items() if k.startswith(prefix)})
        self.optimiser.load_state_dict({"state": opt_state,
                                        "param_groups": self.optimiser.state_dict()["param_groups"]})
        self.obs_norm.rms.load({k[len("obs_rms."):]: v for k, v in state.items() if k.startswith("obs_rms.")})
        self.calls = int(state["calls"])
        self.last_loss = float(state["last_loss"])
