"""Network size presets: EfficientZero, EfficientZero-L (XTRA appendix H) and a CPU-scale ``tiny``."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class NetSpec:
    """Hyperparameters of :class:`xfer.nets.EfficientZeroNet`.

    Attributes:
        stem_channels: output planes of the stride-2 input convolution (32 in appendix H).
        channels: latent planes (64); the latent state is ``[channels, 6, 6]`` for 96x96 input.
        stage_blocks: include the residual blocks between down-sampling stages (appendix H lists
            one after the stem, one after the downsample block and one after the first pooling).
        repr_blocks: residual blocks after the last pooling (1 EfficientZero, 4 EfficientZero-L).
        dyn_blocks: residual blocks after the dynamics' residual link (1).
        pred_blocks: residual blocks at the start of the prediction network (1).
        reduced_channels: planes of the 1x1 convolutions in the heads (16).
        fc_hidden: hidden width of the value, policy and value-prefix MLPs (32).
        lstm_hidden: value-prefix LSTM width (512).
        support_size: S; value and value prefix use ``2S+1`` bins (300 -> 601).
        proj_hidden, proj_out, pred_hidden: SimSiam projection 2304->1024->1024->1024 and
            predictor 1024->512->1024 at full size.
        action_encoding: how the dynamics network sees the action: ``"plane"``, one constant plane
            ``a / num_actions`` (EfficientZero's public code, XTRA), or ``"one_hot"``, ``num_actions``
            constant planes, one-hot (MuZero, Schrittwieser et al. 2020, appendix F). Not part of a
            size preset: any size takes either (``xfer.config.NetConfig.action_encoding``).
        latent_scaling: ``"minmax"`` scales every latent state (encoded and after each dynamics
            step) to [0, 1] per sample (MuZero appendix G); ``"none"`` leaves it unscaled, as
            EfficientZero's Atari configuration does (``state_norm=False``). Not part of a size
            preset (``xfer.config.NetConfig.latent_scaling``).
        decoder: also build an observation decoder (:mod:`xfer.nets.decoder`) for the reconstruction
            loss (seed 000, "MZ+Recon"). Not part of a size preset (``xfer.config.NetConfig.decoder``).
    """

    stem_channels: int
    channels: int
    stage_blocks: bool
    repr_blocks: int
    dyn_blocks: int
    pred_blocks: int
    reduced_channels: int
    fc_hidden: int
    lstm_hidden: int
    support_size: int
    proj_hidden: int
    proj_out: int
    pred_hidden: int
    action_encoding: str = "plane"
    latent_scaling: str = "none"
    decoder: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


SIZES: dict[str, NetSpec] = {
    "ez": NetSpec(32, 64, True, 1, 1, 1, 16, 32, 512, 300, 1024, 1024, 512),
    "ez-l": NetSpec(32, 64, True, 4, 1, 1, 16, 32, 512, 300, 1024, 1024, 512),
    "tiny": NetSpec(16, 32, False, 1, 1, 1, 8, 32, 64, 20, 256, 256, 128),
}


ACTION_ENCODINGS = ("plane", "one_hot")
LATENT_SCALINGS = ("minmax", "none")


def net_spec(size: str, support_size: int | None = None, action_encoding: str = "plane",
             latent_scaling: str = "none", decoder: bool = False) -> NetSpec:
    """Look up a size preset, with the value support, the dynamics' action encoding, the latent
    scaling and the decoder (see :class:`NetSpec`) set as given.

    Raises:
        ValueError: an unknown size, action encoding or latent scaling (the message names the valid ones).
    """
    if size not in SIZES:
        raise ValueError(f"unknown network size {size!r}; choose one of {sorted(SIZES)}")
    if action_encoding not in ACTION_ENCODINGS:
        raise ValueError(f"unknown action encoding {action_encoding!r}; choose one of {list(ACTION_ENCODINGS)}")
    if latent_scaling not in LATENT_SCALINGS:
        raise ValueError(f"unknown latent scaling {latent_scaling!r}; choose one of {list(LATENT_SCALINGS)}")
    spec = SIZES[size].to_dict()
    if support_size is not None:
        spec["support_size"] = support_size
    spec["action_encoding"] = action_encoding
    spec["latent_scaling"] = latent_scaling
    spec["decoder"] = decoder
    return NetSpec(**spec)
