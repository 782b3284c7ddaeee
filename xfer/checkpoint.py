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

Training state
    A directory with ``tensors.safetensors`` (torch tensors: model/target weights, optimizer
    moments, torch RNG), ``arrays.npz`` (numpy arrays: replay buffer, priorities; no object dtype)
    and ``meta.json`` (JSON counters, numpy RNG states, config hash, plus the SHA-256 of the other
    two files). :func:`save_training_state` writes a complete sibling ``<name>.tmp-<pid>`` directory,
    then swaps it in with two renames (``<name>`` -> ``<name>.old``, tmp -> ``<name>``) and deletes
    ``<name>.old``; :func:`load_training_state` recovers from ``<name>.old`` when a crash fell
    between the renames. One writer per directory at a time.

Nothing here uses ``torch.load`` or pickle: ``.npz`` files are read with ``allow_pickle=False``
and optimizer states are flattened into tensors plus JSON (:func:`optimizer_state_to_flat`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from xfer.config import describe_validation_error
from xfer.nets import SIZES, EfficientZeroNet, NetSpec, net_spec
from xfer.nets.efficientzero import resolve_precision

MODEL_FORMAT_VERSION = 1
TRAINING_STATE_FORMAT_VERSION = 1
FLAT_STATE_FORMAT_VERSION = 1

TENSORS_FILE = "tensors.safetensors"
ARRAYS_FILE = "arrays.npz"
META_FILE = "meta.json"

_SUPPORTED_ARCHITECTURES = ("efficientzero",)
_NP_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


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


# ---------------------------------------------------------------------------------------------
# Small atomic-file helpers
# ---------------------------------------------------------------------------------------------
def fsync_dir(directory: Path) -> None:
    """Flush a directory entry (renames, creations) to disk; a no-op where unsupported."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or all of the new one.

    Writes a temporary file in the same directory (created with mode ``0o666`` minus the umask),
    fsyncs it, ``os.replace``-s it over ``path`` and fsyncs the directory. Missing parent
    directories are created. On any error the temporary file is removed and the error re-raised
    (``OSError`` from the file system).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Lower-case hex SHA-256 of a file's bytes, read in 1 MiB chunks. Raises ``OSError``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cpu_copy(t: torch.Tensor) -> torch.Tensor:
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
        format_version: sidecar schema version; only ``1`` exists.
        architecture: ``"efficientzero"`` (the only one this code builds).
        size: ``"tiny"``, ``"ez"`` or ``"ez-l"`` (:data:`xfer.nets.SIZES`).
        spec: ``NetSpec.to_dict()`` of the network; must equal the preset of ``size`` except for
            ``support_size``, ``action_encoding`` and ``latent_scaling`` (the overrides
            :class:`xfer.config.NetConfig` offers); a sidecar written before ``action_encoding`` /
            ``latent_scaling`` existed reads as ``"plane"`` / ``"minmax"`` (what it was built with).
        num_actions: policy-head width (18 = full Atari action space).
        obs_channels: input planes (12 = 3 RGB x 4 frames).
        obs_size: input height = width in pixels (96).
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
    num_actions: int = Field(ge=1)
    obs_channels: int = Field(ge=1)
    obs_size: int = Field(ge=16)
    games: list[str]
    action_maps: dict[str, list[int]]
    step: int = Field(ge=0)
    env_steps: int = Field(ge=0)
    config_hash: str
    weights_sha256: str = ""

    @field_validator("format_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != MODEL_FORMAT_VERSION:
            raise ValueError(f"unknown format_version {v}; this xfer reads version {MODEL_FORMAT_VERSION}")
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
        return {"action_encoding": "plane", "latent_scaling": "minmax", **v}

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
        preset = net_spec(self.size, support, spec["action_encoding"], spec["latent_scaling"]).to_dict()  # ValueError if unknown
        differ = sorted(k for k in preset if spec[k] != preset[k] or type(spec[k]) is not type(preset[k]))
        if differ:
            raise ValueError(f"spec does not match size {self.size!r} (differs in {differ})")
        unknown_games = sorted(set(self.action_maps) - set(self.games))
        if unknown_games:
            raise ValueError(f"action_maps names games not in games: {unknown_games}")
        for game, ids in self.action_maps.items():
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
            (spec, num_actions, obs_channels, obs_size).
        OSError: from the file system.
    """
    path = Path(path)
    _check_weights_suffix(path, ValueError)
    actual = {
        "spec": net.spec.to_dict(),
        "num_actions": net.num_actions,
        "obs_channels": net.obs_channels,
        "obs_size": net.obs_size,
    }
    differ = [k for k, v in actual.items() if getattr(meta, k) != v]
    if differ:
        raise ValueError(
            f"ModelMeta disagrees with the network in {differ}; build meta from the net being saved"
        )
    state = {k: _cpu_copy(v) for k, v in net.state_dict().items()}
    blob = canonical_safetensors(safetensors.torch.save(state, metadata={"format": "pt",
                                                                          "architecture": meta.architecture}))
    meta = meta.model_copy(update={"weights_sha256": hashlib.sha256(blob).hexdigest()})
    atomic_write_bytes(path, blob)
    atomic_write_text(
        _sidecar_path(path), json.dumps(meta.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
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
    if version != MODEL_FORMAT_VERSION:
        raise CheckpointFormatError(
            f"sidecar {sidecar} has unknown format_version {version!r}; this xfer reads version "
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
        ``(net, meta)``: ``EfficientZeroNet(NetSpec(**meta.spec), meta.num_actions,
        meta.obs_channels, meta.obs_size)`` with the stored weights, on ``device``, in eval mode
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
    net = EfficientZeroNet(meta.to_net_spec(), meta.num_actions, meta.obs_channels, meta.obs_size)
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


# ---------------------------------------------------------------------------------------------
# Training (resume) state
# ---------------------------------------------------------------------------------------------
def _sibling(directory: Path, suffix: str) -> Path:
    return directory.parent / (directory.name + suffix)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale_tmp_dirs(directory: Path) -> None:
    """Delete ``<name>.tmp-<pid>`` siblings left by writers that are no longer running."""
    prefix = directory.name + ".tmp-"
    for entry in directory.parent.iterdir():
        if not entry.name.startswith(prefix) or not entry.is_dir():
            continue
        pid_text = entry.name[len(prefix) :]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not pid_alive(int(pid_text)):
            shutil.rmtree(entry, ignore_errors=True)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an uncompressed ``.npz`` (as ``np.savez`` does) without pickling; streams to disk."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in arrays.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def save_training_state(
    directory: str | os.PathLike[str],
    tensors: dict[str, torch.Tensor],
    arrays: dict[str, np.ndarray],
    meta: dict,
) -> None:
    """Atomically replace the training-state directory ``directory``.

    Args:
        directory: target directory (its parent is created if missing).
        tensors: name -> tensor of any dtype/device/shape; stored as contiguous CPU copies in
            ``tensors.safetensors``.
        arrays: name -> numpy array without object dtype (structured dtypes with object fields
            included); stored in ``arrays.npz``.
        meta: JSON-serialisable dict (counters, RNG states, config hash, ...); stored in
            ``meta.json`` with the SHA-256 of the other two files.

    Leaves ``directory`` holding the new state and no ``.old`` / own ``.tmp-<pid>`` siblings; also
    removes ``.tmp-<pid>`` siblings of writers that are no longer running.

    Raises:
        ValueError: object-dtype array, non-str key, non-tensor/non-array value, a meta that is not
            a JSON-serialisable dict, or ``directory`` existing as a non-directory. Nothing is
            written in these cases.
        OSError: from the file system (the temporary directory is removed).
    """
    directory = Path(directory)
    for name, t in tensors.items():
        if not isinstance(name, str) or not isinstance(t, torch.Tensor):
            raise ValueError(f"tensors must map str to torch.Tensor; got {name!r}: {type(t).__name__}")
    for name, a in arrays.items():
        if not isinstance(name, str) or not isinstance(a, np.ndarray):
            raise ValueError(f"arrays must map str to np.ndarray; got {name!r}: {type(a).__name__}")
        if a.dtype.hasobject:
            raise ValueError(
                f"array {name!r} has object dtype {a.dtype}, which needs pickle; convert it to a numeric array"
            )
    if not isinstance(meta, dict):
        raise ValueError(f"meta must be a dict, got {type(meta).__name__}")
    try:
        meta_text = json.dumps(meta, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"meta is not JSON-serialisable: {exc}") from exc
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"training-state path {directory} exists and is not a directory")

    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(directory, f".tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        safetensors.torch.save_file({k: _cpu_copy(v) for k, v in tensors.items()}, tmp / TENSORS_FILE)
        _write_npz(tmp / ARRAYS_FILE, arrays)
        for name in (TENSORS_FILE, ARRAYS_FILE):
            _fsync_file(tmp / name)
        record = {
            "format_version": TRAINING_STATE_FORMAT_VERSION,
            "sha256": {name: sha256_file(tmp / name) for name in (TENSORS_FILE, ARRAYS_FILE)},
            "meta": json.loads(meta_text),
        }
        with open(tmp / META_FILE, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    swap_in_directory(tmp, directory)


def swap_in_directory(tmp: Path, directory: Path) -> None:
    """Replace ``directory`` by the complete directory ``tmp`` with two renames.

    ``directory`` -> ``<name>.old``, ``tmp`` -> ``directory``, then ``.old`` is deleted. A crash between
    the renames leaves only ``<name>.old``, which readers treat as the latest complete copy; it stays
    the recovery copy until the new directory is in place. Stale ``.tmp-<pid>`` siblings of dead
    writers are removed afterwards.
    """
    old = _sibling(directory, ".old")
    if directory.exists():
        if old.exists():  # stale: a crash after the last swap's second rename
            shutil.rmtree(old)
        os.replace(directory, old)
    os.replace(tmp, directory)
    fsync_dir(directory.parent)
    if old.exists():
        shutil.rmtree(old)
    remove_stale_tmp_dirs(directory)


def has_training_state(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` (or its crash-recovery copy ``<name>.old``) holds a ``meta.json``.

    Cheap: nothing is verified (``load_training_state`` does that). Incomplete ``.tmp-*``
    directories never count.
    """
    directory = Path(directory)
    return (directory / META_FILE).is_file() or (_sibling(directory, ".old") / META_FILE).is_file()


def load_training_state(
    directory: str | os.PathLike[str],
) -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray], dict]:
    """Load and verify a directory written by :func:`save_training_state`.

    Reads ``directory``, or ``<name>.old`` when ``directory`` is missing (a crash between the two
    renames of a save); ``.tmp-*`` directories are ignored. Nothing is renamed: the next save
    cleans up.

    Returns:
        ``(tensors, arrays, meta)``: CPU tensors (dtypes and shapes as saved), numpy arrays, and the
        ``meta`` dict as saved (after a JSON round trip: tuples become lists).

    Raises:
        CheckpointNotFoundError: neither ``directory`` nor ``<name>.old`` exists, or a file inside is
            missing.
        CheckpointFormatError: ``meta.json`` not JSON / wrong structure / unknown format_version;
            tensors or arrays file unreadable.
        CheckpointCorruptError: a file's SHA-256 differs from the one in ``meta.json``.
    """
    directory = Path(directory)
    source = directory
    if not directory.exists():
        old = _sibling(directory, ".old")
        if not old.is_dir():
            raise CheckpointNotFoundError(
                f"training state {directory} does not exist (nor its recovery copy {old.name}); "
                "start training from scratch or check the path"
            )
        source = old
    if not source.is_dir():
        raise CheckpointFormatError(f"training state {source} is not a directory; remove it and start over")
    advice = f"delete {directory} to start training from scratch"
    meta_path = source / META_FILE
    if not meta_path.is_file():
        raise CheckpointNotFoundError(f"training state {source} has no {META_FILE}; {advice}")
    try:
        record = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointFormatError(f"{meta_path} is not valid JSON ({exc}); {advice}") from exc
    if not isinstance(record, dict) or record.get("format_version") != TRAINING_STATE_FORMAT_VERSION:
        version = record.get("format_version") if isinstance(record, dict) else None
        raise CheckpointFormatError(
            f"{meta_path} has unknown format_version {version!r} (this xfer reads "
            f"{TRAINING_STATE_FORMAT_VERSION}); {advice} or use a matching xfer version"
        )
    sums, meta = record.get("sha256"), record.get("meta")
    if not isinstance(sums, dict) or set(sums) != {TENSORS_FILE, ARRAYS_FILE} or not isinstance(meta, dict):
        raise CheckpointFormatError(
            f"{meta_path} lacks the sha256/meta entries of a training state; {advice}"
        )
    for name, expected in sums.items():
        file = source / name
        if not file.is_file():
            raise CheckpointNotFoundError(f"training state file {file} is missing; {advice}")
        actual = sha256_file(file)
        if actual != expected:
            raise CheckpointCorruptError(
                f"training state file {file} is corrupt or truncated: sha256 {actual[:12]}... differs "
                f"from {str(expected)[:12]}... in {meta_path}; {advice}"
            )
    try:
        tensors = safetensors.torch.load_file(source / TENSORS_FILE, device="cpu")
    except Exception as exc:
        raise CheckpointFormatError(
            f"{source / TENSORS_FILE} is not a readable safetensors file ({exc}); {advice}"
        ) from exc
    try:
        with np.load(source / ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:
        raise CheckpointFormatError(
            f"{source / ARRAYS_FILE} is not a readable npz archive ({exc}); {advice}"
        ) from exc
    return tensors, arrays, meta


# ---------------------------------------------------------------------------------------------
# Flattening state dicts (optimizers, schedulers) into tensors + JSON
# ---------------------------------------------------------------------------------------------
_MARKERS = ("__tensor__", "__tuple__", "__items__")


def _child(name: str, key: Any) -> str:
    return f"{name}{key}" if (not name or name.endswith(".")) else f"{name}.{key}"


def _encode(obj: Any, name: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        if name in tensors:
            raise ValueError(f"two state entries flatten to the same tensor name {name!r}")
        tensors[name] = _cpu_copy(obj)
        return {"__tensor__": name}
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, _child(name, i), tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, _child(name, i), tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, _child(name, k), tensors) for k, v in obj.items()}
        items = []
        for k, v in obj.items():
            if not (k is None or isinstance(k, bool | int | float | str)):
                raise ValueError(f"cannot flatten dict key {k!r} of type {type(k).__name__} at {name!r}")
            items.append([k, _encode(v, _child(name, k), tensors)])
        return {"__items__": items}
    raise ValueError(f"cannot flatten value of type {type(obj).__name__} at {name!r} without pickle")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if len(obj) == 1 and next(iter(obj)) in _MARKERS:
            ((marker, value),) = obj.items()
            if marker == "__tensor__":
                if value not in tensors:
                    raise CheckpointFormatError(
                        f"flattened state refers to tensor {value!r}, which is missing"
                    )
                return tensors[value]
            if marker == "__tuple__":
                return tuple(_decode(v, tensors) for v in value)
            return {k: _decode(v, tensors) for k, v in value}
        return {k: _decode(v, tensors) for k, v in obj.items()}
    return obj


def state_dict_to_flat(state: dict, prefix: str = "") -> tuple[dict[str, torch.Tensor], dict]:
    """Split a nested state dict into tensors and a JSON-able description (no pickle).

    Handles nested dicts (any scalar keys, e.g. optimizer param ids), lists, tuples, ``None``,
    bools, ints, floats, strings, numpy scalars (stored as Python scalars) and tensors (stored as
    contiguous CPU copies named ``prefix + dotted path``, e.g. ``"optim.state.0.exp_avg"``).

    Returns:
        ``(tensors, meta)``; ``meta`` is JSON-serialisable and names every tensor it needs.

    Raises:
        ValueError: a value of another type, or two entries mapping to one tensor name.
    """
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(state, prefix, tensors)
    return tensors, {"flat_format": FLAT_STATE_FORMAT_VERSION, "tree": tree}


def state_dict_from_flat(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """Inverse of :func:`state_dict_to_flat`; ``tensors`` may hold extra, unrelated entries.

    Raises:
        CheckpointFormatError: ``meta`` is not a flattened state of a known version, or a tensor it
            names is missing.
    """
    if (
        not isinstance(meta, dict)
        or meta.get("flat_format") != FLAT_STATE_FORMAT_VERSION
        or "tree" not in meta
    ):
        raise CheckpointFormatError(
            f"not a flattened state (flat_format {FLAT_STATE_FORMAT_VERSION} expected); the training state "
            "is corrupt or from another xfer version"
        )
    return _decode(meta["tree"], tensors)


def optimizer_state_to_flat(
    opt_state: dict, prefix: str = "optimizer."
) -> tuple[dict[str, torch.Tensor], dict]:
    """Flatten ``optimizer.state_dict()`` (SGD, Adam, ...) into ``(tensors, meta)``.

    Tensors (momentum buffers, ``exp_avg``, ``exp_avg_sq``, ``step``) are named
    ``f"{prefix}state.<param id>.<key>"``; param groups (with tuples such as Adam's ``betas``)
    go to the JSON ``meta``. Raises ``ValueError`` if ``opt_state`` lacks ``state`` /
    ``param_groups`` or holds a value that cannot be stored without pickle.
    """
    if not isinstance(opt_state, dict) or not {"state", "param_groups"} <= set(opt_state):
        raise ValueError("opt_state must be an optimizer state_dict with 'state' and 'param_groups'")
    return state_dict_to_flat(opt_state, prefix)


def optimizer_state_from_flat(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """Inverse of :func:`optimizer_state_to_flat`: a dict for ``optimizer.load_state_dict``.

    Tensors come back on the CPU; ``load_state_dict`` moves them to the parameters' device.
    Raises :class:`CheckpointFormatError` as :func:`state_dict_from_flat` does, or if the result is
    not an optimizer state.
    """
    state = state_dict_from_flat(tensors, meta)
    if not isinstance(state, dict) or not {"state", "param_groups"} <= set(state):
        raise CheckpointFormatError("flattened state is not an optimizer state_dict")
    return state


# ---------------------------------------------------------------------------------------------
# RNG states
# ---------------------------------------------------------------------------------------------
def _json_safe(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": obj.dtype.str}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def _from_json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__ndarray__", "dtype"}:
            return np.asarray(obj["__ndarray__"], dtype=np.dtype(obj["dtype"]))
        return {k: _from_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_json_safe(v) for v in obj]
    return obj


def rng_state_to_json(np_generator: np.random.Generator) -> dict:
    """JSON-able state of a numpy ``Generator`` (its ``bit_generator.state``; arrays, as in
    MT19937's key, become tagged lists). Python ints may exceed 64 bits (PCG64); ``json`` keeps them."""
    return _json_safe(np_generator.bit_generator.state)


def rng_state_from_json(state: dict) -> np.random.Generator:
    """A new ``np.random.Generator`` in the state saved by :func:`rng_state_to_json`.

    Raises:
        CheckpointFormatError: unknown bit generator or a state numpy rejects.
    """
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _NP_BIT_GENERATORS:
        raise CheckpointFormatError(f"unknown numpy bit generator {name!r} in saved RNG state")
    bit_generator = getattr(np.random, name)()
    try:
        bit_generator.state = _from_json_safe(state)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointFormatError(f"saved numpy RNG state is invalid: {exc}") from exc
    return np.random.Generator(bit_generator)


def torch_rng_state_to_tensors(prefix: str = "rng.torch.") -> dict[str, torch.Tensor]:
    """Torch's global RNG states as uint8 tensors: ``f"{prefix}cpu"`` and, where CUDA is available,
    ``f"{prefix}cuda.<i>"`` per device. Merge into the ``tensors`` of a training state."""
    out = {f"{prefix}cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"{prefix}cuda.{i}"] = s
    return out


def restore_torch_rng_state(tensors: dict[str, torch.Tensor], prefix: str = "rng.torch.") -> None:
    """Set torch's global RNG from :func:`torch_rng_state_to_tensors` output (extra keys ignored).

    CUDA states are restored for devices that exist now; saved CUDA states are ignored on a
    machine without CUDA. Raises :class:`CheckpointFormatError` if the CPU state is missing or
    not a uint8 tensor.
    """
    cpu = tensors.get(f"{prefix}cpu")
    if not isinstance(cpu, torch.Tensor) or cpu.dtype != torch.uint8:
        raise CheckpointFormatError(f"saved torch RNG state {prefix}cpu is missing or not a uint8 tensor")
    torch.set_rng_state(cpu)
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            state = tensors.get(f"{prefix}cuda.{i}")
            if state is not None:
                torch.cuda.set_rng_state(state, i)
