"""Read and validate an offline dataset (XTRA offline datasets, seed 003 sec 3.1).

:class:`DatasetReader` opens ``manifest.json`` eagerly (cheap) and the shards lazily: each shard's
size and SHA-256 are checked the first time it is loaded (``verify=True``), so opening a large
dataset costs one small JSON read. Shards are decoded with ``allow_pickle=False``. Every failure
raises a :class:`~xfer.data.format.DatasetError` subclass whose message names the culprit file and
the dataset directory and says what to do.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from xfer.config import describe_validation_error
from xfer.data.format import (
    MANIFEST_FILE,
    SCHEMA_VERSION,
    CorruptShardError,
    DatasetMismatchError,
    DatasetNotFoundError,
    InvalidManifestError,
    Manifest,
    SchemaVersionError,
)
from xfer.fileio import sha256_file
from xfer.replay.segment import Segment
from xfer.replay.serialize import segments_from_arrays


def _remedy(path: Path, game: str | None = None) -> str:
    """What to do about a bad dataset: re-run the stage that writes it, or pull it again."""
    return (
        f"re-create it (e.g. `dvc repro collect@{game or path.name}`, or `dvc pull {path}` if it is "
        "tracked by DVC)"
    )


class DatasetReader:
    """Validated, lazily loaded view of one dataset directory.

    Args:
        path: the dataset directory (holding ``manifest.json``). When it is missing but
            ``<path>.old`` holds a dataset (a writer crashed between its two renames), that recovery
            copy is read instead; :attr:`path` then points at it.
        verify: check each shard's size and SHA-256 against the manifest the first time it is
            loaded (a full-file hash; :meth:`verify_all` checks every shard at once).

    Attributes:
        path: directory actually read.
        manifest: the validated :class:`~xfer.data.format.Manifest`.

    Raises (constructor):
        DatasetNotFoundError: neither ``path`` nor its recovery copy exists, or no ``manifest.json``.
        InvalidManifestError: the manifest is not JSON or does not match the schema.
        SchemaVersionError: the manifest's ``schema_version`` is not the one this xfer reads.
        DatasetMismatchError: the manifest's totals do not add up over its shards.
    """

    def __init__(self, path: str | os.PathLike[str], verify: bool = True) -> None:
        path = Path(path)
        if not path.is_dir():
            old = path.parent / (path.name + ".old")
            if (old / MANIFEST_FILE).is_file():
                path = old
            elif path.exists():
                raise DatasetNotFoundError(f"offline dataset path {path} is not a directory; {_remedy(path)}")
            else:
                raise DatasetNotFoundError(f"offline dataset {path} does not exist; {_remedy(path)}")
        self.path = path
        self.verify = verify
        self.manifest = self._read_manifest()
        self._verified: set[int] = set()
        self._segment_offsets = np.concatenate(
            [[0], np.cumsum([s.num_segments for s in self.manifest.shards])]
        ).astype(np.int64)

    def _read_manifest(self) -> Manifest:
        mpath = self.path / MANIFEST_FILE
        if not mpath.is_file():
            raise DatasetNotFoundError(
                f"offline dataset {self.path} has no {MANIFEST_FILE} (an incomplete copy or not a dataset); "
                f"{_remedy(self.path)}"
            )
        try:
            data = json.loads(mpath.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidManifestError(f"{mpath} is not valid JSON ({exc}); {_remedy(self.path)}") from exc
        if not isinstance(data, dict):
            raise InvalidManifestError(
                f"{mpath} must hold a JSON object, got {type(data).__name__}; {_remedy(self.path)}"
            )
        game = data.get("game") if isinstance(data.get("game"), str) else None
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            writer = data.get("packages", {}).get("xfer") if isinstance(data.get("packages"), dict) else None
            hint = f" (written by xfer {writer})" if writer else ""
            raise SchemaVersionError(
                f"{mpath} has schema_version {version!r}{hint}; this xfer reads schema_version "
                f"{SCHEMA_VERSION}: {_remedy(self.path, game)} with this xfer, or read it with the xfer that wrote it"
            )
        try:
            manifest = Manifest.model_validate(data)
        except ValidationError as exc:
            problems = describe_validation_error(exc)
            raise InvalidManifestError(
                f"{mpath} does not match the manifest schema ({problems}); {_remedy(self.path, game)}"
            ) from exc
        problems = manifest.count_problems()
        if problems:
            raise DatasetMismatchError(
                f"{mpath} is inconsistent: {'; '.join(problems)}; the manifest was edited or damaged, "
                f"{_remedy(self.path, game)}"
            )
        return manifest

    # ------------------------------------------------------------------ properties
    def __len__(self) -> int:
        """Agent steps (transitions) in the dataset."""
        return self.manifest.num_transitions

    @property
    def game(self) -> str:
        """Game name of every segment."""
        return self.manifest.game

    @property
    def action_mask(self) -> np.ndarray:
        """Legal actions, bool ``[A]`` (a fresh copy)."""
        return np.asarray(self.manifest.action_mask, dtype=bool)

    @property
    def num_shards(self) -> int:
        """Number of shard files."""
        return len(self.manifest.shards)

    @property
    def shard_transitions(self) -> np.ndarray:
        """Agent steps per shard, int64 ``[num_shards]``."""
        return np.asarray([s.num_transitions for s in self.manifest.shards], dtype=np.int64)

    def segment_offset(self, shard: int) -> int:
        """Dataset-wide id of the first segment of ``shard`` (ids follow manifest order)."""
        return int(self._segment_offsets[shard])

    def __repr__(self) -> str:
        m = self.manifest
        return (
            f"DatasetReader({str(self.path)!r}, game={m.game!r}, transitions={m.num_transitions}, "
            f"segments={m.num_segments}, shards={len(m.shards)})"
        )

    # ------------------------------------------------------------------ checks
    def check_action_mask(self, expected: np.ndarray) -> None:
        """Raise unless the dataset's legal actions equal ``expected`` (bool ``[A]``).

        Raises:
            DatasetMismatchError: different length or legal set; the message lists both as full-action ids.
        """
        expected = np.asarray(expected, dtype=bool)
        mine = self.action_mask
        if mine.shape != expected.shape or not np.array_equal(mine, expected):
            raise DatasetMismatchError(
                f"offline dataset {self.path} (game {self.game!r}) has legal actions "
                f"{np.flatnonzero(mine).tolist()} of {len(mine)}, but {np.flatnonzero(expected).tolist()} of "
                f"{len(expected)} were expected; use the dataset of the right game, or re-collect it with "
                f"the current env (`dvc repro collect@{self.game}`)"
            )

    def _shard_path(self, i: int) -> Path:
        if not 0 <= i < self.num_shards:
            raise IndexError(f"shard index {i} out of range for {self.num_shards} shards in {self.path}")
        return self.path / self.manifest.shards[i].file

    def _corrupt(self, i: int, what: str) -> CorruptShardError:
        return CorruptShardError(
            f"shard {self.manifest.shards[i].file} of offline dataset {self.path} {what}; "
            f"{_remedy(self.path, self.game)}"
        )

    def verify_shard(self, i: int) -> None:
        """Check shard ``i``'s existence, size and SHA-256 against the manifest.

        Raises:
            IndexError: no shard ``i``.
            CorruptShardError: missing, wrong size (truncated/extended) or checksum mismatch.
        """
        path = self._shard_path(i)
        info = self.manifest.shards[i]
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise self._corrupt(i, "is missing") from None
        if size != info.bytes:
            raise self._corrupt(i, f"has {size} bytes but the manifest records {info.bytes} (truncated or overwritten)")
        digest = sha256_file(path)
        if digest != info.sha256:
            raise self._corrupt(i, f"fails its checksum (sha256 {digest[:12]}..., manifest {info.sha256[:12]}...)")
        self._verified.add(i)

    def verify_all(self) -> None:
        """Verify every shard (size and SHA-256); one error lists every bad shard.

        Raises:
            CorruptShardError: at least one shard is missing, of the wrong size or fails its checksum.
        """
        problems = []
        for i in range(self.num_shards):
            try:
                self.verify_shard(i)
            except CorruptShardError as exc:
                problems.append(str(exc).split("; ")[0])
        if problems:
            raise CorruptShardError(
                f"{len(problems)} of {self.num_shards} shards of offline dataset {self.path} are bad: "
                f"{' | '.join(problems)}; {_remedy(self.path, self.game)}"
            )

    # ------------------------------------------------------------------ loading
    def load_shard(self, i: int) -> list[Segment]:
        """Decode shard ``i`` into its segments (frames ``[T + stack, 3, H, W]`` uint8 etc.).

        The segments' arrays are views into the shard's decompressed arrays (the whole shard stays
        in memory while any of its segments is referenced).

        Raises:
            IndexError: no shard ``i``.
            CorruptShardError: missing, fails verification (``verify=True``, first load only), or not
                a decodable npz of segment arrays.
            DatasetMismatchError: decodes, but its segment/transition counts, game, action mask,
                frame shape or stack differ from the manifest.
        """
        path = self._shard_path(i)
        if self.verify and i not in self._verified:
            self.verify_shard(i)
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            segments = segments_from_arrays(arrays)
        except FileNotFoundError:
            raise self._corrupt(i, "is missing") from None
        except (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError, KeyError, TypeError) as exc:
            raise self._corrupt(i, f"cannot be decoded ({type(exc).__name__}: {exc})") from exc
        self._check_shard(i, segments)
        return segments

    def _check_shard(self, i: int, segments: list[Segment]) -> None:
        info, m = self.manifest.shards[i], self.manifest
        problems = []
        transitions = sum(len(s) for s in segments)
        if len(segments) != info.num_segments:
            problems.append(f"{len(segments)} segments (manifest: {info.num_segments})")
        if transitions != info.num_transitions:
            problems.append(f"{transitions} transitions (manifest: {info.num_transitions})")
        mask = np.asarray(m.action_mask, dtype=bool)
        for s in segments:
            if s.game != m.game:
                problems.append(f"a segment of game {s.game!r} (manifest: {m.game!r})")
            elif np.shape(s.action_mask) != mask.shape or not np.array_equal(s.action_mask, mask):
                problems.append("a segment with another action_mask than the manifest's")
            elif list(s.frames.shape[1:]) != m.frame_shape or s.stack != m.stack:
                problems.append(
                    f"a segment with frames {list(s.frames.shape[1:])} / stack {s.stack} "
                    f"(manifest: {m.frame_shape} / {m.stack})"
                )
            elif s.visit_dist.shape[1:] != mask.shape:
                problems.append(f"a segment with visit_dist {s.visit_dist.shape} for {len(mask)} actions")
            else:
                continue
            break
        if problems:
            raise DatasetMismatchError(
                f"shard {info.file} of offline dataset {self.path} holds {', '.join(problems)}; the shard and "
                f"manifest do not belong together, {_remedy(self.path, self.game)}"
            )

    def iter_segments(self) -> Iterator[Segment]:
        """All segments in manifest order, one shard in memory at a time (errors as :meth:`load_shard`)."""
        for i in range(self.num_shards):
            yield from self.load_shard(i)
