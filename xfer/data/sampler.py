"""Memory-bounded sampling of start positions from many offline datasets.

Serves XTRA's finetuning stage (seed 003 sec 3.1), which draws offline batches from up to 8 source
games every step next to the online replay: holding every dataset's frames decompressed would take
``27.6 KB x transitions`` per game (about 2.8 GB for 100k steps at 96x96 RGB), so each game keeps only
a few shards resident and rotates through its shards over time.

Per game, :class:`OfflineSampler` holds at most ``max_cached_shards`` decoded shards. Start positions
are uniform over the transitions of the resident shards. After every ``rotate_every`` sampled
transitions of a game, one shard that is not resident (drawn with probability proportional to its
transitions) is loaded and the shard that has been resident longest is evicted; over time every
shard is visited, each in proportion to its size. Until a game has more shards than
``max_cached_shards`` its whole dataset is resident and nothing rotates.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from xfer.data.reader import DatasetReader
from xfer.replay.buffer import SampleIndex
from xfer.replay.segment import Segment


@dataclass
class _GameCache:
    """Resident shards of one game and the flat index over their segments."""

    shards: OrderedDict[int, list[Segment]] = field(default_factory=OrderedDict)
    segments: list[Segment] = field(default_factory=list)
    segment_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ends: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    since_rotation: int = 0
    loads: int = 0


class OfflineSampler:
    """Draws start transitions from several offline datasets with bounded memory.

    Args:
        readers: label -> :class:`~xfer.data.reader.DatasetReader`; labels are the names used by
            :meth:`sample` (normally the reader's game) and keep their insertion order.
        max_cached_shards: resident decoded shards per game (>= 1). Memory is about
            ``len(readers) * max_cached_shards * shard size`` (27.6 KB per transition at 96x96).
        rotate_every: sampled transitions of a game between two shard rotations (>= 1).
        seed: seed of the sampler's ``np.random.Generator`` (shard choice, positions, splits).

    Shards are loaded lazily on the first :meth:`sample` of a game; loading errors
    (:class:`~xfer.data.format.CorruptShardError`, ...) propagate from there. Not thread-safe.

    Raises (constructor):
        ValueError: no readers, ``max_cached_shards < 1`` or ``rotate_every < 1``.
    """

    def __init__(
        self,
        readers: dict[str, DatasetReader],
        max_cached_shards: int = 2,
        rotate_every: int = 1000,
        seed: int = 0,
    ) -> None:
        if not readers:
            raise ValueError("OfflineSampler needs at least one dataset reader")
        if max_cached_shards < 1:
            raise ValueError(f"max_cached_shards must be >= 1, got {max_cached_shards}")
        if rotate_every < 1:
            raise ValueError(f"rotate_every must be >= 1, got {rotate_every}")
        self.readers = dict(readers)
        self.games = list(self.readers)
        self.max_cached_shards = int(max_cached_shards)
        self.rotate_every = int(rotate_every)
        self.rng = np.random.default_rng(seed)
        self._caches = {game: _GameCache() for game in self.games}

    # ------------------------------------------------------------------ cache management
    def _reader(self, game: str) -> DatasetReader:
        try:
            return self.readers[game]
        except KeyError:
            raise KeyError(f"no offline dataset for {game!r}; this sampler has {self.games}") from None

    def _pick_shard(self, game: str, exclude: set[int]) -> int | None:
        """A non-resident shard, with probability proportional to its transitions (None if none)."""
        sizes = self.readers[game].shard_transitions.astype(np.float64)
        if exclude:
            sizes[list(exclude)] = 0.0
        total = sizes.sum()
        if total <= 0:
            return None
        return int(self.rng.choice(len(sizes), p=sizes / total))

    def _load(self, game: str, shard: int) -> None:
        cache = self._caches[game]
        segments = self.readers[game].load_shard(shard)
        while len(cache.shards) >= self.max_cached_shards:
            cache.shards.popitem(last=False)  # the shard resident longest
        cache.shards[shard] = segments
        cache.loads += 1
        self._reindex(game)

    def _reindex(self, game: str) -> None:
        cache, reader = self._caches[game], self.readers[game]
        segments, ids = [], []
        for shard, segs in cache.shards.items():
            offset = reader.segment_offset(shard)
            segments.extend(segs)
            ids.extend(range(offset, offset + len(segs)))
        cache.segments = segments
        cache.segment_ids = np.asarray(ids, dtype=np.int64)
        cache.lengths = np.asarray([len(s) for s in segments], dtype=np.int64)
        cache.ends = np.cumsum(cache.lengths)

    def _ensure(self, game: str, batch_size: int) -> _GameCache:
        reader = self._reader(game)
        cache = self._caches[game]
        if not cache.shards:
            for _ in range(min(self.max_cached_shards, reader.num_shards)):
                shard = self._pick_shard(game, set(cache.shards))
                if shard is None:
                    break
                self._load(game, shard)
        elif cache.since_rotation >= self.rotate_every:
            cache.since_rotation = 0
            shard = self._pick_shard(game, set(cache.shards))
            if shard is not None:
                self._load(game, shard)
        cache.since_rotation += batch_size
        return cache

    # ------------------------------------------------------------------ sampling
    def sample(self, game: str, batch_size: int) -> SampleIndex:
        """Uniform start transitions of ``game`` from its resident shards.

        Rotates the game's cache first when ``rotate_every`` transitions were sampled since the last
        rotation (at most one shard is loaded per call).

        Returns:
            :class:`~xfer.replay.buffer.SampleIndex` with ``segments`` (``batch_size`` references),
            ``segment_ids`` int64 ``[B]`` (dataset-wide segment ids in manifest order: stable per
            (shard, segment)), ``positions`` int64 ``[B]`` with ``0 <= positions[b] < len(segments[b])``,
            ``weights`` float32 ones ``[B]`` and ``flat`` int64 ``arange(B)`` (no priorities offline).
            The referenced segments keep their shard in memory until the batch is dropped.

        Raises:
            KeyError: unknown game label.
            ValueError: ``batch_size < 1``.
            DatasetError: a shard fails to load (see :meth:`DatasetReader.load_shard`).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        cache = self._ensure(game, batch_size)
        flat = self.rng.integers(0, int(cache.ends[-1]), size=batch_size)
        seg = np.searchsorted(cache.ends, flat, side="right")
        starts = cache.ends[seg] - cache.lengths[seg]
        return SampleIndex(
            segments=[cache.segments[i] for i in seg],
            segment_ids=cache.segment_ids[seg],
            positions=(flat - starts).astype(np.int64),
            weights=np.ones(batch_size, dtype=np.float32),
            flat=np.arange(batch_size, dtype=np.int64),
        )

    def split(self, batch_size: int) -> dict[str, int]:
        """Per-game counts summing to ``batch_size``: ``batch_size // G`` each, the remainder given
        to randomly chosen games (one extra each), so no game is favoured over many steps.

        Raises:
            ValueError: ``batch_size < 1``.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        base, extra = divmod(batch_size, len(self.games))
        counts = np.full(len(self.games), base, dtype=np.int64)
        counts[self.rng.choice(len(self.games), size=extra, replace=False)] += 1
        return {g: int(c) for g, c in zip(self.games, counts)}

    def sample_uniform(self, batch_size: int) -> dict[str, SampleIndex]:
        """Split ``batch_size`` evenly over games (:meth:`split`) and :meth:`sample` each.

        Every game gets at least one start when ``batch_size >= len(games)``; games drawing zero
        (only when ``batch_size`` is smaller) are left out of the result.

        Returns:
            label -> :class:`~xfer.replay.buffer.SampleIndex`, in reader order.
        """
        return {g: self.sample(g, n) for g, n in self.split(batch_size).items() if n > 0}

    # ------------------------------------------------------------------ introspection
    def resident_shards(self) -> dict[str, list[int]]:
        """Label -> indices of resident shards, oldest first."""
        return {g: list(c.shards) for g, c in self._caches.items()}

    def resident_bytes(self) -> int:
        """Bytes of the arrays of all resident segments (:meth:`Segment.nbytes`; frames dominate)."""
        return sum(s.nbytes() for c in self._caches.values() for segs in c.shards.values() for s in segs)

    def shard_loads(self) -> dict[str, int]:
        """Label -> shards loaded so far (initial fill plus rotations)."""
        return {g: c.loads for g, c in self._caches.items()}
