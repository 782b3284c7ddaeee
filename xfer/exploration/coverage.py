"""How much of a game an agent visits: the number of distinct cells among the observations it saw
(Go-Explore's cell representation, Ecoffet et al. 2021; the exploration measure of reward-free
pretraining, Walker et al. 2023, reference.md section 6).

A pixel observation's cell is its last frame, averaged over its channels, area-downsampled to
``cell_height x cell_width`` (block means) and quantised to ``levels`` grey levels; a state vector's
cell is the vector rounded to multiples of ``state_resolution``. The cell's bytes are hashed to 64 bits
(BLAKE2b), so keys are the same on every host, and coverage counts distinct keys. Everything is
exact integer arithmetic on uint8 pixels (no float rounding decides a level).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from xfer.envs.spec import ObservationSpec
from xfer.exploration.config import CoverageConfig
from xfer.exploration.features import check_observations


def _bounds(size: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each of ``cells`` windows over ``size`` (adaptive pooling's:
    ``floor(i * size / cells)`` to ``ceil((i + 1) * size / cells)``)."""
    i = np.arange(cells)
    return (i * size) // cells, -((-(i + 1) * size) // cells)


def _hash_rows(rows: np.ndarray) -> np.ndarray:
    """``[N, ...]`` array -> ``[N]`` uint64: the 8-byte BLAKE2b digest of each row's bytes, little endian."""
    rows = np.ascontiguousarray(rows)
    return np.array([int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8).digest(), "little") for r in rows],
                    dtype=np.uint64)


def cell_images(obs: np.ndarray, spec: ObservationSpec, cfg: CoverageConfig) -> np.ndarray:
    """Pixel observations ``[N, stack * C, H, W]`` uint8 -> their cell images ``[N, cell_height, cell_width]``
    uint8, levels ``0 .. levels - 1``.

    The last frame's ``C`` channels are summed; each cell is the block ``[floor(i H / h), ceil((i+1) H / h))
    x [floor(j W / w), ceil((j+1) W / w))`` (exact block means when ``h`` divides ``H`` and ``w`` ``W``);
    its level is ``floor(v * levels / 256)`` of the block's mean grey value ``v``, in integers.

    Raises:
        ValueError: not pixels, or ``obs`` not a batch ``[N >= 1, *spec.shape]``.
    """
    if spec.kind != "pixels":
        raise ValueError(f"cell images are of pixel observations, not {spec.kind}")
    arr = check_observations(obs, spec)
    channels, height, width = spec.frame_shape
    grey = arr[:, -channels:].astype(np.int64).sum(1)  # [N, H, W], channel sums
    integral = np.zeros((len(arr), height + 1, width + 1), dtype=np.int64)
    integral[:, 1:, 1:] = grey.cumsum(1).cumsum(2)
    r0, r1 = _bounds(height, cfg.cell_height)
    c0, c1 = _bounds(width, cfg.cell_width)
    block = (integral[:, r1][:, :, c1] - integral[:, r0][:, :, c1]
             - integral[:, r1][:, :, c0] + integral[:, r0][:, :, c0])  # [N, h, w] sums over channels and block
    pixels = (r1 - r0)[:, None] * (c1 - c0)[None, :] * channels
    return ((block * cfg.levels) // (256 * pixels)).astype(np.uint8)


def cell_keys(obs: np.ndarray, spec: ObservationSpec, cfg: CoverageConfig) -> np.ndarray:
    """The cell of each observation as a 64-bit key: ``[N]`` uint64.

    Pixels (uint8 ``[N, stack * C, H, W]``): the bytes of :func:`cell_images` (only the last frame
    counts: older frames of the stack are earlier cells). States (``[N, D]``): the little-endian int64
    bytes of ``round(x / state_resolution)`` (in float64; halves round to even). Keys are the 8-byte
    BLAKE2b digests of those bytes, the same on every host.

    Raises:
        ValueError: ``obs`` not a batch ``[N >= 1, *spec.shape]``.
    """
    if spec.kind == "pixels":
        return _hash_rows(cell_images(obs, spec, cfg))
    arr = check_observations(obs, spec).astype(np.float64)
    return _hash_rows(np.round(arr / cfg.state_resolution).astype("<i8"))


class Coverage:
    """The distinct cells (:func:`cell_keys`) among every observation given to :meth:`observe`.

    Args:
        spec: the observations' spec (pixels or states).
        cfg: the cell representation.
    """

    def __init__(self, spec: ObservationSpec, cfg: CoverageConfig) -> None:
        self.spec, self.cfg = spec, cfg
        self._cells: set[int] = set()

    @property
    def count(self) -> int:
        """Distinct cells seen so far."""
        return len(self._cells)

    def observe(self, obs: np.ndarray) -> int:
        """Add the cells of ``obs [N, *spec.shape]``; returns how many of them were new (0 .. N).

        Raises:
            ValueError: ``obs`` not a batch ``[N >= 1, *spec.shape]``.
        """
        before = len(self._cells)
        self._cells.update(int(k) for k in cell_keys(obs, self.spec, self.cfg))
        return len(self._cells) - before

    def state(self) -> dict[str, torch.Tensor]:
        """``{"cells": [count] int64}``: the keys sorted as unsigned, their bits viewed as int64
        (safetensors-friendly)."""
        keys = np.sort(np.fromiter(self._cells, dtype=np.uint64, count=len(self._cells)))
        return {"cells": torch.from_numpy(keys.view(np.int64).copy())}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Replace the cells seen by those of :meth:`state`.

        Raises:
            ValueError: keys other than ``cells``, or not a 1-d int64 tensor.
        """
        if set(state) != {"cells"}:
            raise ValueError(f"Coverage state needs the key cells, got {sorted(state)}")
        cells = state["cells"]
        if cells.ndim != 1 or cells.dtype != torch.int64:
            raise ValueError(f"Coverage cells must be [K] int64, got {tuple(cells.shape)} {cells.dtype}")
        self._cells = {int(k) for k in cells.cpu().numpy().view(np.uint64)}
