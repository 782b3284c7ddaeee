"""Resumable training state: a directory of tensors, arrays and JSON, replaced atomically, without pickle.

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

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from xfer.checkpoint import CheckpointCorruptError, CheckpointFormatError, CheckpointNotFoundError, cpu_copy
from xfer.fileio import fsync_dir, fsync_file, sha256_file, sibling, swap_in_directory

TRAINING_STATE_FORMAT_VERSION = 1
FLAT_STATE_FORMAT_VERSION = 1

TENSORS_FILE = "tensors.safetensors"
ARRAYS_FILE = "arrays.npz"
META_FILE = "meta.json"

_NP_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an uncompressed ``.npz`` (as ``np.savez`` does) without pickling; streams to disk."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in arrays.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)



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
    tmp = sibling(directory, f".tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        safetensors.torch.save_file({k: cpu_copy(v) for k, v in tensors.items()}, tmp / TENSORS_FILE)
        _write_npz(tmp / ARRAYS_FILE, arrays)
        for name in (TENSORS_FILE, ARRAYS_FILE):
            fsync_file(tmp / name)
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



def has_training_state(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` (or its crash-recovery copy ``<name>.old``) holds a ``meta.json``.

    Cheap: nothing is verified (``load_training_state`` does that). Incomplete ``.tmp-*``
    directories never count.
    """
    directory = Path(directory)
    return (directory / META_FILE).is_file() or (sibling(directory, ".old") / META_FILE).is_file()


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
        old = sibling(directory, ".old")
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
        tensors[name] = cpu_copy(obj)
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
