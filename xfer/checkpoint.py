"""Checkpoints without pickle: model weights (safetensors + JSON sidecar) and resumable training state.

Model checkpoints
    ``model.safetensors`` holds the ``state_dict`` of an :class:`~xfer.nets.EfficientZeroNet`
    (float32 parameters and BatchNorm buffers, including the int64 ``num_batches_tracked``);
    ``model.json`` (the *sidecar*, same stem) holds a :class:`ModelMeta`: the network spec needed to
    rebuild the module, the games and their action maps, counters, the config hash and the SHA-256
    of the weights file. :func:`save_model` replaces the weights first and the sidecar last, each
    atomically, so an interrupted save leaves either a weights file without a sidecar (reported as
    missing) or a sidecar whose ``weights_sha256`` does not match (reported as corrupt) -- never a
    sidecar that silently describes other weights.

Training state lives in :mod:`xfer.training_state`; crash-safe file primitives in :mod:`xfer.fileio`.
Nothing here uses ``torch.load`` or pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import safetensors.torch
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from xfer.config import describe_validation_error
from xfer.fileio import atomic_write_bytes, atomic_write_text, sha256_file
from xfer.nets.efficientzero import EfficientZeroNet, resolve_precision
from xfer.nets.sizes import SIZES, NetSpec, net_spec

MODEL_FORMAT_VERSION = 2
_SUPPORTED_ARCHITECTURES = ("efficientzero",)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
class CheckpointError(Exception):
    """Base class of every checkpoint problem; messages name the file and say what to do."""


class CheckpointNotFoundError(CheckpointError):
    """A weights file, sidecar or training-state directory does not exist."""


class CheckpointFormatError(CheckpointError):
    """A file exists but cannot be parsed: bad JSON, wrong schema, unknown format_version,
    unreadable safetensors header or npz archive."""


class CheckpointCorruptError(CheckpointError):
    """A file's SHA-256 differs from the one recorded when it was saved (corrupt or truncated)."""


class CheckpointMismatchError(CheckpointError):
    """A readable checkpoint does not fit what was asked for: another network size than
    ``expected_size``, or state-dict keys/shapes/dtypes that differ from the network its sidecar
    describes."""



def cpu_copy(t: torch.Tensor) -> torch.Tensor:
    """Detached, contiguous CPU copy sharing no storage (what safetensors needs)."""
    return t.detach().to("cpu").contiguous().clone()


def _short_list(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


# ---------------------------------------------------------------------------------------------
# Model checkpoints
# ---------------------------------------------------------------------------------------------
class ModelMeta(BaseModel):
    """Sidecar of a model checkpoint (``<weights>.json``).

    Attributes:
        format_version: sidecar schema version: ``2`` (``obs_shape``) is written; ``1`` (pixel inputs
            as ``obs_channels`` and ``obs_size``) is read as ``obs_shape = [obs_channels, obs_size,
            obs_size]``.
        architecture: ``"efficientzero"`` (the only one this code builds).
        size: ``"tiny"``, ``"ez"`` or ``"ez-l"`` (:data:`xfer.nets.SIZES`).
        spec: ``NetSpec.to_dict()`` of the network; must equal the preset of ``size`` except for
            ``support_size``, ``action_encoding`` and ``latent_scaling`` (the overrides
            :class:`xfer.config.NetConfig` offers); a sidecar written before ``action_encoding`` /
            ``latent_scaling`` existed reads as ``"plane"`` / ``"minmax"`` (what it was built with).
        num_actions: policy-head width (the suite's full action space: 18 for Atari); 0 for a Box.
        action_dim: ``D`` of a Box action space (Gaussian policy head of ``2D``, Sampled MuZero); 0
            (and left out of the sidecar, so discrete sidecars are as before) for discrete actions.
        obs_shape: the network's input: ``[C, H, W]`` uint8 pixels (Atari: ``[12, 96, 96]``, 3 RGB
            planes x 4 frames) or ``[D]`` float32 state vectors.
        games: games the weights were trained on.
        action_maps: per game (a subset of ``games``), minimal action index -> full action id in
            ``[0, num_actions)``, no duplicates.
        step: training (gradient) steps taken.
        env_steps: agent steps collected.
        config_hash: :func:`xfer.config.config_hash` of the config that produced the weights.
        weights_sha256: hex SHA-256 of the weights file; leave empty, :func:`save_model` fills it.

    Raises ``pydantic.ValidationError`` on construction with invalid fields (the loaders convert it
    into :class:`CheckpointFormatError`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = MODEL_FORMAT_VERSION
    architecture: str = "efficientzero"
    size: str
    spec: dict
    num_actions: int = Field(ge=0)
    action_dim: int = Field(0, ge=0)
    obs_shape: list[int] = Field(min_length=1, max_length=3)
    games: list[str]
    action_maps: dict[str, list[int]]
    step: int = Field(ge=0)
    env_steps: int = Field(ge=0)
    config_hash: str
    weights_sha256: str = ""

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: object) -> object:
        """A version-1 sidecar (pixel inputs only) -> version 2."""
        if isinstance(data, dict) and data.get("format_version") == 1:
            data = dict(data)
            channels, size = data.pop("obs_channels", None), data.pop("obs_size", None)
            if channels is not None and size is not None:
                data["obs_shape"] = [channels, size, size]
            data["format_version"] = MODEL_FORMAT_VERSION
        return data

    @field_validator("format_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != MODEL_FORMAT_VERSION:
            raise ValueError(f"unknown format_version {v}; this xfer reads versions 1 and {MODEL_FORMAT_VERSION}")
        return v

    @field_validator("obs_shape")
    @classmethod
    def _input_shape(cls, v: list[int]) -> list[int]:
        if len(v) not in (1, 3) or min(v) < 1:
            raise ValueError(f"obs_shape must be [C, H, W] (pixels) or [D] (a state vector) of positive sizes, got {v}")
        return v

    @field_validator("architecture")
    @classmethod
    def _known_architecture(cls, v: str) -> str:
        if v not in _SUPPORTED_ARCHITECTURES:
            raise ValueError(
                f"unsupported architecture {v!r}; this xfer builds {list(_SUPPORTED_ARCHITECTURES)}"
            )
        return v

    @field_validator("size")
    @classmethod
    def _known_size(cls, v: str) -> str:
        if v not in SIZES:
            raise ValueError(f"unknown network size {v!r}; choose one of {sorted(SIZES)}")
        return v

    @field_validator("spec")
    @classmethod
    def _default_action_encoding(cls, v: dict) -> dict:
        return {"action_encoding": "plane", "latent_scaling": "minmax", "decoder": False, **v}

    @field_validator("weights_sha256")
    @classmethod
    def _hex_digest(cls, v: str) -> str:
        if v and (len(v) != 64 or any(c not in "0123456789abcdef" for c in v)):
            raise ValueError("weights_sha256 must be empty or 64 lower-case hex digits")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ModelMeta:
        spec = self.spec
        fields = set(NetSpec.__dataclass_fields__)
        if set(spec) != fields:
            missing, extra = sorted(fields - set(spec)), sorted(set(spec) - fields)
            raise ValueError(f"spec keys differ from NetSpec: missing {missing}, unknown {extra}")
        support = spec["support_size"]
        if not isinstance(support, int) or isinstance(support, bool) or support < 1:
            raise ValueError(f"spec.support_size must be a positive int, got {support!r}")
        preset = net_spec(self.size, support, spec["action_encoding"], spec["latent_scaling"],
                          spec["decoder"]).to_dict()  # ValueError if unknown
        differ = sorted(k for k in preset if spec[k] != preset[k] or type(spec[k]) is not type(preset[k]))
        if differ:
            raise ValueError(f"spec does not match size {self.size!r} (differs in {differ})")
        unknown_games = sorted(set(self.action_maps) - set(self.games))
        if unknown_games:
            raise ValueError(f"action_maps names games not in games: {unknown_games}")
        if (self.num_actions > 0) == (self.action_dim > 0):
            raise ValueError(f"exactly one of num_actions (discrete) and action_dim (Box) must be positive, got "
                             f"num_actions={self.num_actions}, action_dim={self.action_dim}")
        for game, ids in self.action_maps.items():
            if self.action_dim:
                if ids:
                    raise ValueError(f"action_maps[{game!r}] must be empty for a Box action space, got {ids}")
                continue
            if not ids or len(set(ids)) != len(ids) or not all(0 <= a < self.num_actions for a in ids):
                raise ValueError(
                    f"action_maps[{game!r}] must be non-empty distinct ids in [0, {self.num_actions}), got {ids}"
                )
        return self

    def to_net_spec(self) -> NetSpec:
        """The :class:`NetSpec` described by ``spec``."""
        return NetSpec(**self.spec)


def _sidecar_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _check_weights_suffix(path: Path, exc: type[Exception]) -> None:
    if path.suffix != ".safetensors":
        hint = (
            f" (pass the weights file {path.with_suffix('.safetensors')}, not its sidecar)"
            if (path.suffix == ".json")
            else ""
        )
        raise exc(f"model checkpoint path {path} must end in .safetensors{hint}")


def canonical_safetensors(blob: bytes) -> bytes:
    """The same safetensors file with its JSON header written with sorted keys, no spaces, padded
    with spaces to a multiple of 8 bytes (as the format asks): the bytes become a function of the
    tensors and metadata only. ``safetensors`` writes the ``__metadata__`` entries in a random
    order, so saving the same weights twice gave two SHA-256s and every downstream stage retrained.
    The tensor data is kept as it is (its offsets are relative to the end of the header).

    Raises:
        ValueError: ``blob`` is not a safetensors file (header length beyond its end, or not JSON).
    """
    if len(blob) < 8:
        raise ValueError("not a safetensors file: shorter than its 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError("not a safetensors file: header length beyond the end of the data")
    try:
        header = json.loads(blob[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not a safetensors file: header is not JSON ({e})") from e
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blob[8 + n:]


def save_model(path: str | os.PathLike[str], net: EfficientZeroNet, meta: ModelMeta) -> None:
    """Save ``net``'s weights to ``path`` (``*.safetensors``) and ``meta`` to the ``.json`` sidecar.

    The state dict (every parameter and buffer, dtypes kept) is copied to contiguous CPU tensors
    and serialised, byte for byte the same for the same weights and metadata
    (:func:`canonical_safetensors`); ``meta.weights_sha256`` is replaced by the SHA-256 of the bytes written. The
    weights file is replaced atomically first, then the sidecar (see module docstring).

    Raises:
        ValueError: ``path`` does not end in ``.safetensors``, or ``meta`` disagrees with ``net``
            (spec, num_actions, obs_shape).
        OSError: from the file system.
    """
    path = Path(path)
    _check_weights_suffix(path, ValueError)
    actual = {
        "spec": net.spec.to_dict(),
        "num_actions": net.num_actions,
        "action_dim": net.action_dim,
        "obs_shape": list(net.obs_shape),
    }
    differ = [k for k, v in actual.items() if getattr(meta, k) != v]
    if differ:
        raise ValueError(
            f"ModelMeta disagrees with the network in {differ}; build meta from the net being saved"
        )
    state = {k: cpu_copy(v) for k, v in net.state_dict().items()}
    blob = canonical_safetensors(safetensors.torch.save(state, metadata={"format": "pt",
                                                                          "architecture": meta.architecture}))
    meta = meta.model_copy(update={"weights_sha256": hashlib.sha256(blob).hexdigest()})
    atomic_write_bytes(path, blob)
    atomic_write_text(
        _sidecar_path(path), json.dumps(meta.model_dump(mode="json", exclude=None if meta.action_dim else {"action_dim"}), indent=2, sort_keys=True) + "\n"
    )


def read_model_meta(path: str | os.PathLike[str]) -> ModelMeta:
    """Validate a model checkpoint's sidecar without reading the weights (cheap pre-flight check).

    Checks that both the weights file ``path`` and its sidecar exist, that the sidecar is JSON of
    a known ``format_version`` matching the :class:`ModelMeta` schema, and that it records a
    ``weights_sha256``. The weights themselves are only verified by :func:`load_model`.

    Raises:
        CheckpointNotFoundError: weights file or sidecar missing.
        CheckpointFormatError: ``path`` not ``*.safetensors``; sidecar unreadable, not JSON, of an
            unknown format_version, or not matching the schema.
    """
    path = Path(path)
    _check_weights_suffix(path, CheckpointFormatError)
    sidecar = _sidecar_path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(
            f"model weights file {path} does not exist; check the path or re-run the stage that writes it"
        )
    if not sidecar.is_file():
        raise CheckpointNotFoundError(
            f"sidecar {sidecar} of model checkpoint {path} is missing (a save may have been interrupted); "
            "re-run the stage that writes the checkpoint"
        )
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointFormatError(
            f"sidecar {sidecar} of model checkpoint {path} is not valid JSON ({exc}); "
            "re-run the stage that writes the checkpoint"
        ) from exc
    if not isinstance(data, dict):
        raise CheckpointFormatError(f"sidecar {sidecar} must hold a JSON object, got {type(data).__name__}")
    version = data.get("format_version", MODEL_FORMAT_VERSION)
    if version not in (1, MODEL_FORMAT_VERSION):  # version 1 is upgraded on reading (pixel inputs)
        raise CheckpointFormatError(
            f"sidecar {sidecar} has unknown format_version {version!r}; this xfer reads versions 1 and "
            f"{MODEL_FORMAT_VERSION}: upgrade xfer or re-create the checkpoint"
        )
    try:
        meta = ModelMeta.model_validate(data)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        raise CheckpointFormatError(
            f"sidecar {sidecar} does not match the ModelMeta schema ({problems}); "
            "re-create the checkpoint with xfer.checkpoint.save_model"
        ) from exc
    if not meta.weights_sha256:
        raise CheckpointFormatError(
            f"sidecar {sidecar} records no weights_sha256; re-create the checkpoint with xfer.checkpoint.save_model"
        )
    return meta


def load_model(
    path: str | os.PathLike[str], expected_size: str | None = None, device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> tuple[EfficientZeroNet, ModelMeta]:
    """Rebuild the network described by a checkpoint's sidecar and load its weights.

    Order of checks: sidecar (:func:`read_model_meta`), ``expected_size`` (before any hashing or
    building), SHA-256 of the weights file, safetensors header, state-dict keys/shapes/dtypes.

    Args:
        path: the ``*.safetensors`` weights file; its sidecar is ``path.with_suffix(".json")``.
        expected_size: if given, the checkpoint's ``size`` must equal it.
        device: where the returned network lives.
        precision: compute dtype of its representation network (``fp32``, ``bf16``, ``auto``; see
            :func:`xfer.nets.efficientzero.resolve_precision`); weights are stored in float32 either way.

    Returns:
        ``(net, meta)``: ``EfficientZeroNet(NetSpec(**meta.spec), meta.num_actions, tuple(meta.obs_shape))``
        with the stored weights, on ``device``, in eval mode
        (call ``net.train()`` to fine-tune).

    Raises:
        CheckpointNotFoundError, CheckpointFormatError: see :func:`read_model_meta`; also
            CheckpointFormatError for an unreadable safetensors header.
        CheckpointMismatchError: size differs from ``expected_size``, or the weights' keys,
            shapes or dtypes differ from the network the sidecar describes.
        CheckpointCorruptError: the weights file's SHA-256 differs from the sidecar's.
    """
    path = Path(path)
    meta = read_model_meta(path)
    if expected_size is not None and meta.size != expected_size:
        raise CheckpointMismatchError(
            f"checkpoint {path} is size {meta.size!r} but --size {expected_size} was requested; "
            f"pass --size {meta.size} or choose a checkpoint of size {expected_size!r}"
        )
    sidecar = _sidecar_path(path)
    actual_sha = sha256_file(path)
    if actual_sha != meta.weights_sha256:
        raise CheckpointCorruptError(
            f"weights file {path} is corrupt or truncated: its sha256 {actual_sha[:12]}... differs from "
            f"{meta.weights_sha256[:12]}... recorded in {sidecar} (or a save was interrupted); "
            "re-run the stage that writes it"
        )
    try:
        state = safetensors.torch.load_file(path, device="cpu")
    except Exception as exc:  # SafetensorError and friends: header or payload unreadable
        raise CheckpointFormatError(
            f"weights file {path} is not a readable safetensors file ({exc}); re-run the stage that writes it"
        ) from exc
    net = EfficientZeroNet(meta.to_net_spec(), meta.num_actions, tuple(meta.obs_shape), meta.action_dim)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    bad = [
        f"{k}: checkpoint {tuple(state[k].shape)} {state[k].dtype} vs network {tuple(v.shape)} {v.dtype}"
        for k, v in expected.items()
        if k in state and (state[k].shape != v.shape or state[k].dtype != v.dtype)
    ]
    if missing or unexpected or bad:
        parts = []
        if missing:
            parts.append(f"missing keys [{_short_list(missing)}]")
        if unexpected:
            parts.append(f"unexpected keys [{_short_list(unexpected)}]")
        if bad:
            parts.append(f"shape/dtype mismatches [{_short_list(bad, 3)}]")
        raise CheckpointMismatchError(
            f"weights in {path} do not fit the {meta.size!r} network described by {sidecar}: "
            + "; ".join(parts)
            + ". The sidecar describes other weights; re-create the checkpoint with save_model"
        )
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # pragma: no cover - the checks above should catch everything
        raise CheckpointMismatchError(
            f"weights in {path} do not fit the network of {sidecar}: {exc}"
        ) from exc
    return net.set_precision(resolve_precision(precision, device)).to(device).eval(), meta
