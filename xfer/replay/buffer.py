"""Prioritised replay over game segments (Schaul et al. 2016, as used by EfficientZero).

Sampling probability ``P(i) = p_i^alpha / sum_j p_j^alpha`` over all stored transitions; importance
weights ``w_i = (N P(i))^-beta / max_j w_j``. New transitions get the current maximum priority.
Whole segments are evicted oldest first once more than ``capacity`` transitions are stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xfer.replay.segment import Segment


@dataclass
class SampleIndex:
    """Indices of a sampled batch: ``segment_ids [B]`` int64 (stable ids), ``positions [B]`` int64
    start step within each segment, ``weights [B]`` float32 importance weights, ``flat [B]`` int64
    positions in the priority array at sampling time."""

    segments: list[Segment]
    segment_ids: np.ndarray
    positions: np.ndarray
    weights: np.ndarray
    flat: np.ndarray


class PrioritizedReplay:
    """A FIFO store of :class:`Segment` objects with per-transition priorities.

    Args:
        capacity: maximum number of transitions kept (whole segments are evicted).
        alpha: priority exponent (0.6 in EfficientZero).
        eps: added to priorities so none is zero.
    """

    def __init__(self, capacity: int, alpha: float = 0.6, eps: float = 1e-6) -> None:
        self.capacity = capacity
        self.alpha = alpha
        self.eps = eps
        self.segments: list[Segment] = []
        self.priorities: list[np.ndarray] = []
        self.ids: list[int] = []
        self.next_id = 0
        self.total_added = 0
        self.max_priority = 1.0

    def __len__(self) -> int:
        return sum(len(s) for s in self.segments)

    def add(self, segment: Segment, priorities: np.ndarray | None = None) -> None:
        """Store a segment; its transitions get ``priorities`` ``[T]`` or the max priority so far."""
        if priorities is None:
            priorities = np.full(len(segment), self.max_priority, dtype=np.float64)
        elif len(priorities) != len(segment):
            raise ValueError(f"got {len(priorities)} priorities for a segment of {len(segment)} steps")
        self.segments.append(segment)
        self.priorities.append(np.asarray(priorities, dtype=np.float64).copy())
        self.ids.append(self.next_id)
        self.next_id += 1
        self.total_added += len(segment)
        self.max_priority = max(self.max_priority, float(np.max(priorities)))
        while len(self) > self.capacity and len(self.segments) > 1:
            self.segments.pop(0)
            self.priorities.pop(0)
            self.ids.pop(0)

    def sample(self, batch_size: int, beta: float, rng: np.random.Generator) -> SampleIndex:
        """Draw ``batch_size`` start transitions by priority (with replacement).

        Raises:
            ValueError: if the buffer is empty.
        """
        if not self.segments:
            raise ValueError("cannot sample from an empty replay buffer")
        pri = np.concatenate(self.priorities) ** self.alpha
        probs = pri / pri.sum()
        flat = rng.choice(len(probs), size=batch_size, p=probs)
        lengths = np.array([len(s) for s in self.segments])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        seg_idx = np.searchsorted(starts, flat, side="right") - 1
        positions = flat - starts[seg_idx]
        weights = (len(probs) * probs[flat]) ** (-beta)
        weights = (weights / weights.max()).astype(np.float32)
        return SampleIndex(
            segments=[self.segments[i] for i in seg_idx],
            segment_ids=np.asarray([self.ids[i] for i in seg_idx], dtype=np.int64),
            positions=positions.astype(np.int64),
            weights=weights,
            flat=flat,
        )

    def update_priorities(self, segment_ids: np.ndarray, positions: np.ndarray, values: np.ndarray) -> None:
        """Set new priorities ``values [B]`` (e.g. L1 value errors); evicted segments are skipped."""
        where = {sid: i for i, sid in enumerate(self.ids)}
        for sid, pos, val in zip(segment_ids.tolist(), positions.tolist(), np.asarray(values).tolist()):
            i = where.get(sid)
            if i is not None:
                self.priorities[i][pos] = val + self.eps
                self.max_priority = max(self.max_priority, val + self.eps)

    # ---- resume support ------------------------------------------------------------------------
    def state_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        """Flatten the buffer into numpy arrays (for ``arrays.npz``) and a JSON-able dict."""
        from xfer.replay.serialize import segments_to_arrays

        arrays = segments_to_arrays(self.segments)
        arrays["priorities"] = np.concatenate(self.priorities) if self.priorities else np.zeros(0)
        meta = {"ids": self.ids, "next_id": self.next_id, "total_added": self.total_added,
                "max_priority": self.max_priority}
        return arrays, meta

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Inverse of :meth:`state_arrays`."""
        from xfer.replay.serialize import segments_from_arrays

        self.segments = segments_from_arrays(arrays)
        pri = arrays["priorities"]
        bounds = np.cumsum([0] + [len(s) for s in self.segments])
        self.priorities = [pri[a:b].astype(np.float64) for a, b in zip(bounds[:-1], bounds[1:])]
        self.ids = list(meta["ids"])
        self.next_id = int(meta["next_id"])
        self.total_added = int(meta["total_added"])
        self.max_priority = float(meta["max_priority"])
