"""Write an offline dataset atomically (XTRA offline datasets, seed 003 sec 3.1).

:class:`DatasetWriter` streams :class:`~xfer.replay.segment.Segment` objects into compressed shards
of about ``shard_transitions`` agent steps each, inside a sibling temporary directory
``<out_dir>.tmp-<pid>``; :meth:`DatasetWriter.close` writes ``manifest.json`` last and swaps the
directory in with two renames (``out_dir`` -> ``<out_dir>.old``, tmp -> ``out_dir``), then deletes
``<out_dir>.old``. A killed writer therefore never leaves a half dataset at ``out_dir`` and never
destroys an existing one (a crash between the two renames leaves the previous dataset at
``<out_dir>.old``, which :class:`~xfer.data.reader.DatasetReader` reads as a recovery copy). One
writer per ``out_dir`` at a time. See :mod:`xfer.data.format` for the layout.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from xfer.data.format import (
    MANIFEST_FILE,
    SCHEMA_VERSION,
    Manifest,
    ShardInfo,
    package_versions,
    shard_file_name,
)

# Same sibling .tmp-<pid> / .old conventions as the training-state writer.
from xfer.fileio import (
    atomic_write_text,
    fsync_dir,
    sha256_file,
    swap_in_directory,
)
from xfer.replay.segment import Segment
from xfer.replay.serialize import segments_to_arrays

DEFAULT_SHARD_TRANSITIONS = 20_000


def _sibling(path: Path, suffix: str) -> Path:
    return path.parent / (path.name + suffix)


class DatasetWriter:
    """Collects segments of one game into a new dataset directory.

    Args:
        out_dir: dataset directory to create or replace (its parent is created if missing).
        game: game name; every added segment must have ``segment.game == game``.
        env_info: JSON-serialisable description of the source env (``manifest.env``), e.g.
            :func:`xfer.data.format.atari_env_info`.
        behaviour_policy: free text stored in the manifest (what acted when collecting).
        annotation: who produced ``root_values``/``visit_dist`` (``"behaviour"`` or
            ``"teacher:<model sha256>"``).
        shard_transitions: a shard is written once its segments hold at least this many agent
            steps (segments are never split; the last shard may be smaller). A shard's decompressed
            frames take about ``shard_transitions * 3 * H * W`` bytes (27.6 KB per step at 96x96),
            which bounds the writer's memory and the readers' per-shard memory.
        suite: environment suite recorded in the manifest.

    Use as a context manager (an exception inside the ``with`` block aborts: the temporary
    directory is removed and any existing ``out_dir`` is kept; a clean exit calls :meth:`close`)
    or call :meth:`close` / :meth:`abort` yourself.

    Raises (constructor):
        ValueError: empty ``game``, ``shard_transitions < 1``, ``env_info`` not JSON-serialisable, or
            ``out_dir`` exists and is not a directory.
        OSError: from the file system.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        game: str,
        env_info: dict[str, Any],
        behaviour_policy: str,
        annotation: str = "behaviour",
        shard_transitions: int = DEFAULT_SHARD_TRANSITIONS,
        suite: str = "atari",
    ) -> None:
        self.out_dir = Path(out_dir)
        if not game:
            raise ValueError("DatasetWriter needs a non-empty game name")
        if shard_transitions < 1:
            raise ValueError(f"shard_transitions must be >= 1, got {shard_transitions}")
        try:
            json.dumps(env_info)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"env_info must be JSON-serialisable: {exc}") from exc
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ValueError(f"dataset path {self.out_dir} exists and is not a directory; remove it or pick another")
        self.game = game
        self.env_info = dict(env_info)
        self.behaviour_policy = behaviour_policy
        self.annotation = annotation
        self.shard_transitions = int(shard_transitions)
        self.suite = suite

        self.tmp_dir = _sibling(self.out_dir, f".tmp-{os.getpid()}")
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        if self.tmp_dir.exists():
            shutil.rmtree(self.tmp_dir)
        self.tmp_dir.mkdir()

        self._pending: list[Segment] = []
        self._pending_transitions = 0
        self._shards: list[ShardInfo] = []
        self._num_segments = 0
        self._num_transitions = 0
        self._num_frames = 0
        self._frame_bytes = 0
        self._action_mask: np.ndarray | None = None
        self._frame_shape: tuple[int, ...] | None = None
        self._stack: int | None = None
        self._state = "open"  # open -> closed | aborted

    # ------------------------------------------------------------------ writing
    @property
    def num_transitions(self) -> int:
        """Agent steps added so far (written or pending)."""
        return self._num_transitions

    def add(self, segment: Segment) -> None:
        """Append one segment; writes a shard when the pending segments reach ``shard_transitions``.

        The segment is not copied: do not modify its arrays until the writer is closed.

        Raises:
            RuntimeError: the writer was closed or aborted.
            ValueError: not a :class:`Segment`; ``segment.game`` differs from the writer's game; its
                ``action_mask`` (bool ``[A]``), frame shape ``[3, H, W]`` or ``stack`` differ from the
                first segment's; ``visit_dist`` is not ``[T, A]``.
            OSError: from the file system while writing a shard.
        """
        if self._state != "open":
            raise RuntimeError(f"DatasetWriter for {self.out_dir} is {self._state}; no more segments can be added")
        if not isinstance(segment, Segment):
            raise ValueError(f"expected a Segment, got {type(segment).__name__}")
        if segment.game != self.game:
            raise ValueError(f"segment of game {segment.game!r} added to the dataset of {self.game!r} at {self.out_dir}")
        mask = np.asarray(segment.action_mask)
        if mask.dtype != np.bool_ or mask.ndim != 1:
            raise ValueError(f"segment action_mask must be a bool [A] array, got {mask.dtype} {mask.shape}")
        if segment.visit_dist.shape != (len(segment), len(mask)):
            raise ValueError(
                f"segment visit_dist has shape {segment.visit_dist.shape}, expected {(len(segment), len(mask))} [T, A]"
            )
        frame_shape = tuple(segment.frames.shape[1:])
        if self._action_mask is None:
            self._action_mask, self._frame_shape, self._stack = mask.copy(), frame_shape, int(segment.stack)
        elif not np.array_equal(mask, self._action_mask):
            raise ValueError(
                f"segment action_mask {np.flatnonzero(mask).tolist()} differs from the dataset's "
                f"{np.flatnonzero(self._action_mask).tolist()} (legal full-action ids) at {self.out_dir}"
            )
        elif frame_shape != self._frame_shape:
            raise ValueError(f"segment frames are {frame_shape}, the dataset's are {self._frame_shape} [3, H, W]")
        elif int(segment.stack) != self._stack:
            raise ValueError(f"segment stack is {segment.stack}, the dataset's is {self._stack}")
        self._pending.append(segment)
        self._pending_transitions += len(segment)
        self._num_segments += 1
        self._num_transitions += len(segment)
        self._num_frames += segment.frames.shape[0]
        self._frame_bytes += segment.frames.nbytes
        if self._pending_transitions >= self.shard_transitions:
            self._flush()

    def extend(self, segments: Iterable[Segment]) -> None:
        """:meth:`add` each segment in order."""
        for segment in segments:
            self.add(segment)

    def _flush(self) -> None:
        if not self._pending:
            return
        arrays = segments_to_arrays(self._pending)
        name = shard_file_name(len(self._shards))
        path = self.tmp_dir / name
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        self._shards.append(
            ShardInfo(
                file=name,
                sha256=sha256_file(path),
                num_segments=len(self._pending),
                num_transitions=self._pending_transitions,
                bytes=path.stat().st_size,
            )
        )
        self._pending = []
        self._pending_transitions = 0

    # ------------------------------------------------------------------ finishing
    def close(self) -> Manifest:
        """Write the last shard and the manifest, then swap the dataset into ``out_dir``.

        Returns:
            The :class:`~xfer.data.format.Manifest` written to ``out_dir/manifest.json``.

        Raises:
            RuntimeError: already closed or aborted.
            ValueError: no segment was added (the temporary directory is removed).
            OSError: from the file system (the temporary directory is removed, ``out_dir`` kept).
        """
        if self._state != "open":
            raise RuntimeError(f"DatasetWriter for {self.out_dir} is already {self._state}")
        try:
            if self._num_transitions == 0:
                raise ValueError(f"no segments were added; refusing to write an empty dataset at {self.out_dir}")
            self._flush()
            assert self._action_mask is not None and self._frame_shape is not None and self._stack is not None
            disk_bytes = sum(s.bytes for s in self._shards)
            manifest = Manifest(
                schema_version=SCHEMA_VERSION,
                game=self.game,
                suite=self.suite,
                num_segments=self._num_segments,
                num_transitions=self._num_transitions,
                num_frames=self._num_frames,
                frame_shape=list(self._frame_shape),
                stack=self._stack,
                action_mask=self._action_mask.tolist(),
                annotation=self.annotation,
                behaviour_policy=self.behaviour_policy,
                env=self.env_info,
                packages=package_versions(),
                shards=self._shards,
                bytes_per_transition=disk_bytes / self._num_transitions,
                raw_bytes_per_transition=self._frame_bytes / self._num_transitions,
            )
            atomic_write_text(self.tmp_dir / MANIFEST_FILE, manifest.to_json())
            fsync_dir(self.tmp_dir)
        except BaseException:
            self.abort()
            raise
        self._swap_in()
        self._state = "closed"
        return manifest

    def _swap_in(self) -> None:
        swap_in_directory(self.tmp_dir, self.out_dir)

    def abort(self) -> None:
        """Discard everything written so far (removes the temporary directory; ``out_dir`` untouched).

        A no-op after :meth:`close` or a previous :meth:`abort`.
        """
        if self._state != "open":
            return
        self._state = "aborted"
        self._pending = []
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
        elif self._state == "open":
            self.close()


def write_dataset(
    out_dir: str | os.PathLike[str],
    segments: Iterable[Segment],
    game: str,
    env_info: dict[str, Any],
    behaviour_policy: str,
    annotation: str = "behaviour",
    shard_transitions: int = DEFAULT_SHARD_TRANSITIONS,
    suite: str = "atari",
) -> Manifest:
    """Write ``segments`` as a complete dataset at ``out_dir`` (atomically) and return its manifest.

    Arguments and errors as :class:`DatasetWriter` and :meth:`DatasetWriter.add` /
    :meth:`DatasetWriter.close`; on any error the existing ``out_dir`` is kept.
    """
    with DatasetWriter(out_dir, game, env_info, behaviour_policy, annotation, shard_transitions, suite) as writer:
        writer.extend(segments)
        return writer.close()
