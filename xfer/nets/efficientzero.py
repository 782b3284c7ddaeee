"""The EfficientZero world model: representation h, dynamics g, prediction f, projection.

Implements EfficientZero (Ye et al. 2021) with the architecture of XTRA appendix H. Inputs are
stacked pixel observations ``[B, C, S, S]`` uint8 (Atari: ``C = 3 * stack``, ``S = 96``); the latent
state is ``[B, channels, ceil(S / 16), ceil(S / 16)]`` float32 (``6 x 6`` at 96 pixels), min-max scaled to [0, 1] per sample when
``NetSpec.latent_scaling == "minmax"`` (MuZero) and unscaled with ``"none"`` (EfficientZero's Atari
configuration). Actions are ids in ``0 .. num_actions - 1`` (Atari: the full 18-action space), fed
to the dynamics as a constant plane ``a / num_actions`` (EfficientZero) or
as ``num_actions`` one-hot planes (MuZero appendix F), per ``NetSpec.action_encoding``.

Continuous actions (a ``Box`` of ``D`` dims, Meta-World; Sampled MuZero, Hubert et al. 2021): built
with ``action_dim = D`` (and ``num_actions = 0``), the policy head outputs a diagonal Gaussian's mean
and log standard deviation ``[B, 2D]`` (:mod:`xfer.mcts.gaussian`) and the dynamics network takes the
action vector ``[B, D]`` float32 as ``D`` constant planes holding its entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xfer.nets.blocks import ResidualBlock, conv3x3, mlp, normalise_latent, zero_linear
from xfer.nets.decoder import PixelDecoder, StateDecoder
from xfer.nets.sizes import NetSpec
from xfer.nets.support import logits_to_scalar

LSTMState = tuple[torch.Tensor, torch.Tensor]  # (h, c), each [1, B, lstm_hidden]


@dataclass
class RootOutput:
    """Result of :meth:`EfficientZeroNet.initial_inference` for B observations.

    latent ``[B, C, 6, 6]``; lstm_state zeros ``([1, B, H], [1, B, H])``; value ``[B]`` raw scalar;
    value_logits ``[B, 2S+1]``; policy_logits ``[B, A]`` (a Box network: Gaussian parameters ``[B, 2D]``).
    All float32.
    """

    latent: torch.Tensor
    lstm_state: LSTMState
    value: torch.Tensor
    value_logits: torch.Tensor
    policy_logits: torch.Tensor


@dataclass
class RecurrentOutput:
    """Result of :meth:`EfficientZeroNet.recurrent_inference`.

    latent ``[B, C, 6, 6]``; lstm_state ``([1, B, H], [1, B, H])``; value_prefix and value ``[B]``
    raw scalars; value_prefix_logits and value_logits ``[B, 2S+1]``; policy_logits ``[B, A]``.
    """

    latent: torch.Tensor
    lstm_state: LSTMState
    value_prefix: torch.Tensor
    value_prefix_logits: torch.Tensor
    value: torch.Tensor
    value_logits: torch.Tensor
    policy_logits: torch.Tensor


class Representation(nn.Module):
    """h: ``[B, in_ch, 96, 96]`` float in [0, 1] -> ``[B, C, 6, 6]`` (appendix H)."""

    def __init__(self, in_ch: int, spec: NetSpec) -> None:
        super().__init__()
        s, c = spec.stem_channels, spec.channels
        layers: list[nn.Module] = [conv3x3(in_ch, s, 2), nn.BatchNorm2d(s), nn.ReLU()]
        if spec.stage_blocks:
            layers.append(ResidualBlock(s))
        layers.append(ResidualBlock(s, c, stride=2))
        if spec.stage_blocks:
            layers.append(ResidualBlock(c))
        layers.append(nn.AvgPool2d(3, stride=2, padding=1))
        if spec.stage_blocks:
            layers.append(ResidualBlock(c))
        layers.append(nn.AvgPool2d(3, stride=2, padding=1))
        layers += [ResidualBlock(c) for _ in range(spec.repr_blocks)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class StateRepresentation(nn.Module):
    """h for state vectors: ``[B, D]`` float32 -> ``[B, C, 1, 1]``, an MLP ``D -> C -> C`` (batch norm and
    ReLU between the layers, ReLU on the output like the residual tower's). The latent is a ``1 x 1``
    plane of ``C`` channels, so the dynamics and prediction networks serve pixels and states alike."""

    def __init__(self, in_dim: int, spec: NetSpec) -> None:
        super().__init__()
        self.net = mlp([in_dim, spec.channels, spec.channels])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.net(x)).view(x.shape[0], -1, 1, 1)


class Dynamics(nn.Module):
    """g: latent + action planes -> next latent; LSTM value-prefix head (appendix H).

    ``action_planes`` input planes carry the action: 1 for the ``a / num_actions`` plane, ``num_actions``
    for one-hot planes.

    The appendix lists the first dynamics convolution with stride 2, but its residual link adds the
    input state, which needs equal resolution; like the public code we use stride 1.
    """

    def __init__(self, spec: NetSpec, latent_hw: int, action_planes: int = 1) -> None:
        super().__init__()
        c = spec.channels
        self.scale_latent = spec.latent_scaling == "minmax"
        self.conv = conv3x3(c + action_planes, c)
        self.bn = nn.BatchNorm2d(c)
        self.blocks = nn.Sequential(*[ResidualBlock(c) for _ in range(spec.dyn_blocks)])
        self.reward_conv = nn.Conv2d(c, spec.reduced_channels, 1)
        self.reward_bn = nn.BatchNorm2d(spec.reduced_channels)
        flat = spec.reduced_channels * latent_hw * latent_hw
        self.lstm = nn.LSTM(flat, spec.lstm_hidden)
        self.lstm_bn = nn.BatchNorm1d(spec.lstm_hidden)
        self.value_prefix_head = mlp([spec.lstm_hidden, spec.fc_hidden, 2 * spec.support_size + 1])

    def forward(
        self, latent: torch.Tensor, lstm_state: LSTMState, action_plane: torch.Tensor
    ) -> tuple[torch.Tensor, LSTMState, torch.Tensor]:
        x = torch.cat([latent, action_plane], dim=1)
        nxt = torch.relu(self.bn(self.conv(x)) + latent)
        nxt = self.blocks(nxt)
        if self.scale_latent:
            nxt = normalise_latent(nxt)
        r = torch.relu(self.reward_bn(self.reward_conv(nxt))).flatten(1).unsqueeze(0)
        out, new_state = self.lstm(r, lstm_state)
        out = torch.relu(self.lstm_bn(out.squeeze(0)))
        return nxt, new_state, self.value_prefix_head(out)


class Prediction(nn.Module):
    """f: latent ``[B, C, 6, 6]`` -> (policy logits ``[B, A]``, value logits ``[B, 2S+1]``)."""

    def __init__(self, spec: NetSpec, latent_hw: int, num_actions: int) -> None:
        super().__init__()
        c, rc = spec.channels, spec.reduced_channels
        self.blocks = nn.Sequential(*[ResidualBlock(c) for _ in range(spec.pred_blocks)])
        self.value_conv = nn.Sequential(nn.Conv2d(c, rc, 1), nn.BatchNorm2d(rc), nn.ReLU())
        self.policy_conv = nn.Sequential(nn.Conv2d(c, rc, 1), nn.BatchNorm2d(rc), nn.ReLU())
        flat = rc * latent_hw * latent_hw
        self.value_head = mlp([flat, spec.fc_hidden, 2 * spec.support_size + 1])
        self.policy_head = mlp([flat, spec.fc_hidden, num_actions])

    def forward(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.blocks(latent)
        policy = self.policy_head(self.policy_conv(x).flatten(1))
        value = self.value_head(self.value_conv(x).flatten(1))
        return policy, value


class EfficientZeroNet(nn.Module):
    """EfficientZero world model with the SimSiam projection used by the consistency loss.

    Args:
        spec: a :class:`NetSpec` (see :data:`xfer.nets.sizes.SIZES`).
        num_actions: policy-head width and action-plane scale (``EnvSpec.num_actions``; 18 for Atari);
            0 for continuous actions.
        obs_shape: one observation (``EnvSpec.observation.shape``): pixels ``(C, S, S)`` (Atari:
            3 RGB x 4 frames at 96 pixels) get the convolutional representation network, a state
            vector ``(D,)`` the MLP one (:class:`StateRepresentation`, latent ``[C, 1, 1]``).
        action_dim: ``D`` of a ``Box`` action space (0: discrete actions): the policy head is then a
            Gaussian ``[B, 2D]`` and actions enter the dynamics as ``D`` planes of their values.

    Raises:
        ValueError: an ``obs_shape`` that is neither ``(C, S, S)`` nor ``(D,)``; not exactly one of
            ``num_actions``, ``action_dim`` positive.
    """

    def __init__(self, spec: NetSpec, num_actions: int, obs_shape: tuple[int, ...], action_dim: int = 0):
        super().__init__()
        obs_shape = tuple(int(d) for d in obs_shape)
        if not (len(obs_shape) == 1 or (len(obs_shape) == 3 and obs_shape[1] == obs_shape[2])):
            raise ValueError(f"observations must be square pixels (C, S, S) or a state vector (D,), got {obs_shape}")
        if (num_actions > 0) == (action_dim > 0):
            raise ValueError(f"give num_actions (discrete) or action_dim (Box), not both or neither: got "
                             f"num_actions={num_actions}, action_dim={action_dim}")
        self.spec = spec
        self.num_actions = num_actions
        self.action_dim = action_dim
        self.obs_shape = obs_shape
        self.pixels = len(obs_shape) == 3
        # pixels: two stride-2 convs and two stride-2 pools; states: a 1 x 1 latent
        self.latent_hw = -(-obs_shape[1] // 16) if self.pixels else 1
        self.representation_net = (Representation(obs_shape[0], spec) if self.pixels
                                   else StateRepresentation(obs_shape[0], spec))
        planes = action_dim or (num_actions if spec.action_encoding == "one_hot" else 1)
        self.dynamics_net = Dynamics(spec, self.latent_hw, planes)
        self.prediction_net = Prediction(spec, self.latent_hw, 2 * action_dim or num_actions)
        flat = spec.channels * self.latent_hw * self.latent_hw
        self.projection = mlp([flat, spec.proj_hidden, spec.proj_hidden, spec.proj_out], final_bn=True)
        self.projection_head = mlp([spec.proj_out, spec.pred_hidden, spec.proj_out])
        # the reconstruction loss's decoder (seed 000, MZ+Recon): latent -> the observation it encodes
        self.decoder: nn.Module | None = None
        if spec.decoder:
            self.decoder = (PixelDecoder(spec, obs_shape[0], obs_shape[1]) if self.pixels
                            else StateDecoder(spec, obs_shape[0]))
        self.compute_dtype = torch.float32

    def zero_init_heads(self) -> EfficientZeroNet:
        """Zero the last layer of the value, value-prefix and policy heads (EfficientZero's public code
        does; ``NetConfig.zero_init_heads``): every input then starts at value 0, value prefix 0 and a
        uniform prior, and the value bins no target reaches keep identical, symmetric mass (see
        :func:`xfer.nets.blocks.zero_linear`). Returns ``self``."""
        for head in (self.prediction_net.value_head, self.prediction_net.policy_head,
                     self.dynamics_net.value_prefix_head):
            zero_linear(head[-1])
        return self

    def set_precision(self, precision: str) -> EfficientZeroNet:
        """Compute dtype of the representation network: ``"fp32"`` or ``"bf16"`` (autocast; weights,
        latents, all outputs and so the losses stay float32). On 96x96 frames it is most of the cost,
        and bf16 roughly halves it on CPUs with AMX / AVX512-BF16 and on GPUs; the 6x6 latent
        networks are too small to gain from it and stay float32. Returns ``self``.

        Raises:
            ValueError: an unknown precision.
        """
        dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
        if precision not in dtypes:
            raise ValueError(f"unknown precision {precision!r}; choose one of {sorted(dtypes)}")
        self.compute_dtype = dtypes[precision]
        return self

    # ---- the three functions of MuZero -------------------------------------------------------
    def represent(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B, C, S, S]`` uint8 (or float in [0,1]) -> latent ``[B, channels, 6, 6]`` float32 (at 96
        pixels); a state vector ``[B, D]`` float32 -> ``[B, channels, 1, 1]``."""
        if not self.pixels:
            h = self.representation_net(obs.float())
            return normalise_latent(h) if self.spec.latent_scaling == "minmax" else h
        # Channels-last input: oneDNN's convolutions run ~1.8x faster on CPU in this layout.
        x = obs.contiguous(memory_format=torch.channels_last)
        if x.dtype == torch.uint8:
            x = x.to(self.compute_dtype).mul_(1.0 / 255.0)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.compute_dtype == torch.bfloat16):
            h = self.representation_net(x)
        h = h.float()
        return normalise_latent(h) if self.spec.latent_scaling == "minmax" else h

    def dynamics(
        self, latent: torch.Tensor, lstm_state: LSTMState, action: torch.Tensor
    ) -> tuple[torch.Tensor, LSTMState, torch.Tensor]:
        """(latent ``[B,C,6,6]``, lstm state, action ``[B]`` int64 full ids) -> (next latent, state, value-prefix logits).

        The action enters as constant planes ``[B, P, 6, 6]`` float32: ``P = 1`` holding
        ``a / num_actions``, or ``P = num_actions`` one-hot (``spec.action_encoding``); a Box network
        takes ``action [B, D]`` float32 as ``P = D`` planes of its entries."""
        if self.action_dim:
            planes = action.to(latent.dtype).view(-1, self.action_dim)
        elif self.spec.action_encoding == "one_hot":
            planes = torch.nn.functional.one_hot(action, self.num_actions).to(latent.dtype)
        else:
            planes = (action.to(latent.dtype) / self.num_actions).view(-1, 1)
        planes = planes.view(*planes.shape, 1, 1).expand(-1, -1, *latent.shape[-2:])
        return self.dynamics_net(latent, lstm_state, planes)

    def predict(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """latent ``[B,C,6,6]`` -> (policy logits ``[B, A]``, value logits ``[B, 2S+1]``), float32."""
        return self.prediction_net(latent)

    def project(self, latent: torch.Tensor, with_predictor: bool) -> torch.Tensor:
        """SimSiam projection ``[B, C, 6, 6]`` -> ``[B, proj_out]`` (plus predictor head if asked)."""
        z = self.projection(latent.flatten(1))
        return self.projection_head(z) if with_predictor else z

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """The observation a latent encodes, from the decoder: ``[B, C, h, w]`` -> pixels
        ``[B, obs_channels, S, S]`` in [0, 1] (the stacked frames scaled by 1/255) or a state ``[B, D]``.

        Raises:
            RuntimeError: the network was built without a decoder (``NetConfig.decoder``).
        """
        if self.decoder is None:
            raise RuntimeError("this network has no decoder; build it with net.decoder=true")
        return self.decoder(latent)

    def initial_lstm_state(self, batch: int, device: torch.device | None = None) -> LSTMState:
        """Zero LSTM state ``([1, B, H], [1, B, H])``."""
        device = device or next(self.parameters()).device
        zeros = torch.zeros(1, batch, self.spec.lstm_hidden, device=device)
        return zeros, zeros.clone()

    # ---- inference API used by search ---------------------------------------------------------
    def initial_inference(self, obs: torch.Tensor) -> RootOutput:
        """Root inference for observations ``[B, obs_channels, H, W]`` uint8."""
        latent = self.represent(obs)
        policy, value_logits = self.predict(latent)
        return RootOutput(
            latent=latent,
            lstm_state=self.initial_lstm_state(obs.shape[0], obs.device),
            value=logits_to_scalar(value_logits),
            value_logits=value_logits,
            policy_logits=policy,
        )

    def recurrent_inference(self, latent: torch.Tensor, lstm_state: LSTMState, action: torch.Tensor) -> RecurrentOutput:
        """One model step from latent ``[B, C, 6, 6]`` with action ``[B]`` (full-space ids)."""
        nxt, state, prefix_logits = self.dynamics(latent, lstm_state, action)
        policy, value_logits = self.predict(nxt)
        return RecurrentOutput(
            latent=nxt,
            lstm_state=state,
            value_prefix=logits_to_scalar(prefix_logits),
            value_prefix_logits=prefix_logits,
            value=logits_to_scalar(value_logits),
            value_logits=value_logits,
            policy_logits=policy,
        )


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``"auto"`` -> ``"bf16"`` where the hardware computes bf16 natively (CUDA with bf16 support;
    a CPU with AVX512-BF16 or AMX), else ``"fp32"``; ``"fp32"``/``"bf16"`` are returned unchanged.

    Raises:
        ValueError: an unknown precision.
    """
    if precision in ("fp32", "bf16"):
        return precision
    if precision != "auto":
        raise ValueError(f"unknown precision {precision!r}; choose fp32, bf16 or auto")
    if torch.device(device).type == "cuda":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return "bf16" if native else "fp32"


def build_network(spec: NetSpec, num_actions: int, obs_shape: tuple[int, ...], precision: str = "fp32",
                  device: str | torch.device = "cpu", zero_init_heads: bool = False,
                  seed: int | None = None, action_dim: int = 0) -> EfficientZeroNet:
    """Construct an :class:`EfficientZeroNet` with ``num_actions`` actions for observations of
    ``obs_shape`` (pixels ``(C, S, S)`` or a state vector ``(D,)``) on ``device``, computing its representation network in ``precision``
    (``fp32``, ``bf16`` or ``auto``, see :func:`resolve_precision`); ``zero_init_heads`` see
    :meth:`EfficientZeroNet.zero_init_heads`. Stages build it from an environment spec through
    :func:`xfer.agent.build_model`.

    ``seed``: initial weights are a function of ``seed`` alone (drawn from a forked torch RNG seeded
    with it; the global RNG is left as it was). ``None`` draws them from the global torch RNG, so
    they are reproducible only if the caller seeded it; a network whose weights are loaded
    right after (a copy for acting or reanalyse) needs no seed.

    ``action_dim``: ``D`` of a Box action space (then ``num_actions = 0``), see :class:`EfficientZeroNet`.

    Raises:
        ValueError: ``obs_shape`` is neither ``(C, S, S)`` nor ``(D,)``, or the action arguments.
    """
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        net = EfficientZeroNet(spec, num_actions, obs_shape, action_dim)
    if zero_init_heads:
        net.zero_init_heads()
    return net.set_precision(resolve_precision(precision, device)).to(device)
