"""On-disk format of an offline dataset (one dataset per game): manifest schema and errors.

Serves the offline datasets of XTRA (seed 003, sec 3.1): per-game trajectories with the behaviour
policy's search statistics, pretrained on offline and replayed next to online data during transfer.

Layout of a dataset directory::

    <dir>/manifest.json        Manifest (this module), written last
    <dir>/shard-00000.npz      np.savez_compressed(**segments_to_arrays(segments of this shard))
    <dir>/shard-00001.npz      ...

Every shard is a zip of ``.npy`` members as written by :func:`xfer.replay.serialize.segments_to_arrays`
(``frames [sum (T + stack), 3, H, W]`` uint8 single frames, stacks are rebuilt on read; per-transition
``actions`` int64 full-space ids, ``rewards``/``raw_rewards``/``root_values`` float32, ``cuts`` bool,
``visit_dist [sum T, A]`` float32; per-segment ``lengths``, ``terminal``, ``first_step``, ``stack``,
``final_value`` float32, ``action_mask [S, A]`` bool, ``games [S]`` unicode). Shards are compressed with
zlib (numpy's default level) and read with ``allow_pickle=False``. Units: one *transition* is one agent
step (``frame_skip`` emulator frames); *frames* here are stored 96x96 RGB agent frames.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1
"""Version of the manifest + shard layout this code writes and reads."""

MANIFEST_FILE = "manifest.json"

_SHARD_FILE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*\.npz$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def shard_file_name(index: int) -> str:
    """File name of shard ``index`` (0-based): ``shard-00000.npz``."""
    return f"shard-{index:05d}.npz"


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
class DatasetError(Exception):
    """Base class of every offline-dataset problem; messages name the culprit path and say what to do."""


class DatasetNotFoundError(DatasetError):
    """The dataset directory or its ``manifest.json`` does not exist."""


class InvalidManifestError(DatasetError):
    """``manifest.json`` exists but is not JSON or does not match the :class:`Manifest` schema."""


class SchemaVersionError(DatasetError):
    """The manifest's ``schema_version`` is not :data:`SCHEMA_VERSION`."""


class CorruptShardError(DatasetError):
    """A shard file is missing, has the wrong size or SHA-256, or cannot be decoded."""


class DatasetMismatchError(DatasetError):
    """A readable dataset disagrees with itself (manifest counts vs. shard contents, game, action
    mask, frame shape) or with what the caller expects (:meth:`DatasetReader.check_action_mask`)."""


# ---------------------------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------------------------
class ShardInfo(BaseModel):
    """One shard as recorded in the manifest.

    Attributes:
        file: file name inside the dataset directory (no path separators), e.g. ``shard-00000.npz``.
        sha256: lower-case hex SHA-256 of the file's bytes.
        num_segments: segments stored in the shard (>= 1).
        num_transitions: agent steps stored in the shard (sum of segment lengths, >= 1).
        bytes: file size in bytes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str
    sha256: str
    num_segments: int = Field(ge=1)
    num_transitions: int = Field(ge=1)
    bytes: int = Field(ge=1)

    @field_validator("file")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not _SHARD_FILE.match(v) or ".." in v:
            raise ValueError(f"shard file must be a plain *.npz file name inside the dataset, got {v!r}")
        return v

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not _HEX64.match(v):
            raise ValueError("sha256 must be 64 lower-case hex digits")
        return v


class Manifest(BaseModel):
    """``manifest.json`` of an offline dataset (the only file that says what the shards hold).

    Attributes:
        schema_version: :data:`SCHEMA_VERSION` (1).
        game: game/task name; every segment's ``game``.
        suite: environment suite (``"atari"``).
        num_segments: segments over all shards.
        num_transitions: agent steps over all shards (the dataset's length).
        num_frames: stored single frames over all shards, ``sum(T + stack)`` (each segment keeps
            ``stack - 1`` history frames before ``o_0`` plus ``o_0 .. o_T``).
        frame_shape: ``[3, H, W]`` of every stored frame (uint8).
        stack: frames per observation stack of every segment.
        action_mask: ``[A]`` legal actions of the game in full-space ids (``A = 18`` for Atari).
        annotation: who produced ``root_values``/``visit_dist``: ``"behaviour"`` (the acting policy's
            own search) or ``"teacher:<model sha256>"`` (relabelled by a teacher).
        behaviour_policy: free text, e.g. ``"efficientzero-online tiny 2000 steps"``, ``"random+search"``.
        env: JSON description of the source env: ``id`` (``"ALE/Pong-v5"``), ``config`` (the
            :class:`~xfer.config.AtariConfig` dump) and the gymnasium / ale-py versions
            (see :func:`atari_env_info`).
        packages: versions of python, xfer, numpy, torch at write time (:func:`package_versions`).
        shards: the shards, in order; segment ``j`` of shard ``i`` has the dataset-wide segment id
            ``sum(shards[:i].num_segments) + j``.
        bytes_per_transition: on-disk shard bytes / ``num_transitions``.
        raw_bytes_per_transition: ``frames.nbytes`` of all stored uint8 frames / ``num_transitions``,
            i.e. the uncompressed size of the frames alone (``(T + stack) / T * 3 * H * W`` per
            segment); ``raw / bytes_per_transition`` is the compression ratio.
        created: ISO-8601 UTC time, only in manifests written before datasets became byte-identical
            functions of their inputs (issue 13); new manifests leave it out (``None``), so a recomputed
            dataset has the same hash and downstream stages are not invalidated.

    Construction raises ``pydantic.ValidationError`` for ill-typed or out-of-range fields; whether
    the totals add up over ``shards`` is :meth:`count_problems`' business (readers turn it into
    :class:`DatasetMismatchError`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int
    game: str = Field(min_length=1)
    suite: str = "atari"
    num_segments: int = Field(ge=1)
    num_transitions: int = Field(ge=1)
    num_frames: int = Field(ge=2)
    frame_shape: list[int] = Field(min_length=3, max_length=3)
    stack: int = Field(ge=1)
    action_mask: list[bool] = Field(min_length=1)
    annotation: str = Field(min_length=1)
    behaviour_policy: str
    env: dict[str, Any]
    packages: dict[str, str]
    shards: list[ShardInfo] = Field(min_length=1)
    bytes_per_transition: float = Field(ge=0.0)
    raw_bytes_per_transition: float = Field(ge=0.0)
    created: str | None = None

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(f"schema_version {v} is not the supported version {SCHEMA_VERSION}")
        return v

    @field_validator("frame_shape")
    @classmethod
    def _positive_shape(cls, v: list[int]) -> list[int]:
        if any(d < 1 for d in v):
            raise ValueError(f"frame_shape must be positive [C, H, W], got {v}")
        return v

    @field_validator("action_mask")
    @classmethod
    def _some_legal(cls, v: list[bool]) -> list[bool]:
        if not any(v):
            raise ValueError("action_mask has no legal action")
        return v

    @field_validator("shards")
    @classmethod
    def _unique_files(cls, v: list[ShardInfo]) -> list[ShardInfo]:
        names = [s.file for s in v]
        if len(set(names)) != len(names):
            raise ValueError("two shards name the same file")
        return v

    @field_validator("created")
    @classmethod
    def _iso_time(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            dt.datetime.fromisoformat(v)
        except ValueError as exc:
            raise ValueError(f"created must be an ISO-8601 time, got {v!r}") from exc
        return v

    def count_problems(self) -> list[str]:
        """Ways the totals disagree with the per-shard counts (empty when consistent)."""
        problems = []
        for name in ("num_segments", "num_transitions"):
            total = sum(getattr(s, name) for s in self.shards)
            if total != getattr(self, name):
                problems.append(f"{name} is {getattr(self, name)} but the shards add up to {total}")
        if self.num_frames < self.num_transitions + self.num_segments * self.stack:
            problems.append(
                f"num_frames {self.num_frames} < num_transitions + num_segments * stack "
                f"({self.num_transitions} + {self.num_segments} * {self.stack})"
            )
        return problems

    def to_json(self) -> str:
        """Pretty JSON text of the manifest (what ``manifest.json`` holds), newline-terminated."""
        return self.model_dump_json(indent=2, exclude={"created"} if self.created is None else None) + "\n"


# ---------------------------------------------------------------------------------------------
# Provenance helpers
# ---------------------------------------------------------------------------------------------
def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def package_versions() -> dict[str, str]:
    """Versions of python, xfer, numpy and torch (from package metadata; nothing is imported)."""
    return {
        "python": platform.python_version(),
        "xfer": _version("xfer"),
        "numpy": _version("numpy"),
        "torch": _version("torch"),
    }


def atari_env_info(cfg: Any) -> dict[str, Any]:
    """The ``env`` entry of a manifest for an Atari dataset collected with ``cfg``.

    Args:
        cfg: the :class:`xfer.config.AtariConfig` (any pydantic model with ``game``) the env ran with.

    Returns:
        ``{"id": "ALE/<game>-v5", "config": cfg.model_dump(), "ale_kwargs": {...},
        "gymnasium": version, "ale_py": version}``; the kwargs are those :class:`xfer.envs.atari.AtariEnv`
        passes to ``gym.make`` (no sticky actions, no frame skip in the base env, full action space).
    """
    return {
        "id": f"ALE/{cfg.game}-v5",
        "config": cfg.model_dump(mode="json"),
        "ale_kwargs": {"frameskip": 1, "repeat_action_probability": 0.0, "full_action_space": True},
        "gymnasium": _version("gymnasium"),
        "ale_py": _version("ale-py"),
    }
