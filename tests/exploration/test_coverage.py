"""Cells and coverage: which observations share a cell, by hand."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from tests.exploration.specs import PIXELS, STATES
from xfer.exploration.config import CoverageConfig
from xfer.exploration.coverage import Coverage, cell_images, cell_keys

CFG = CoverageConfig()


def frames(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *PIXELS.observation.shape), dtype=np.uint8)


def test_cells_of_pixels_depend_on_the_last_frame_only():
    obs = frames(3, seed=0)
    keys = cell_keys(obs, PIXELS.observation, CFG)
    assert keys.dtype == np.uint64 and keys.shape == (3,)
    assert np.array_equal(keys, cell_keys(obs.copy(), PIXELS.observation, CFG))
    older = obs.copy()
    older[:, :3] = 255 - older[:, :3]  # the older frame of the stack
    assert np.array_equal(keys, cell_keys(older, PIXELS.observation, CFG))
    blank = np.zeros_like(obs[:1])
    block = blank.copy()
    block[:, 3:, :24, :24] = 255  # a bright block in the last frame
    a, b = cell_keys(np.concatenate([blank, block]), PIXELS.observation, CFG)
    assert a != b
    faint = blank.copy()
    faint[:, 3:, 0, 0] = 255  # one pixel moves no block mean across a level
    assert cell_keys(faint, PIXELS.observation, CFG)[0] == a


def test_cell_images_are_quantised_block_means():
    cfg = CoverageConfig(cell_height=12, cell_width=8, levels=8)  # 96 / 12 = 8 rows, 96 / 8 = 12 columns a block
    obs = frames(2, seed=1)
    grey = obs[:, 3:].astype(np.float64).mean(1)
    means = grey.reshape(2, 12, 8, 8, 12).mean((2, 4))
    want = np.floor(means * 8 / 256).astype(np.uint8)
    got = cell_images(obs, PIXELS.observation, cfg)
    assert got.dtype == np.uint8 and got.shape == (2, 12, 8)
    np.testing.assert_array_equal(got, want)
    # the default 11 x 8 cells do not divide 96 rows: windows of adaptive pooling, levels 0..7
    default = cell_images(obs, PIXELS.observation, CFG)
    assert default.shape == (2, 11, 8) and default.max() < 8
    window = grey[0, 0:9, 0:12].mean()  # rows floor(0 * 96 / 11) .. ceil(96 / 11) = 0..9
    assert default[0, 0, 0] == int(window * 8 // 256)


def test_cells_of_states_are_rounded_vectors_hashed():
    obs = np.array([[0.0] * 6, [0.01, -0.02, 0.0, 0.0, 0.0, 0.0], [0.03, 0.0, 0.0, 0.0, 0.0, 0.0]], np.float32)
    keys = cell_keys(obs, STATES.observation, CFG)
    assert keys[0] == keys[1] != keys[2]
    digest = hashlib.blake2b(np.zeros(6, "<i8").tobytes(), digest_size=8).digest()
    assert int(keys[0]) == int.from_bytes(digest, "little")  # the same key on every host
    up = np.zeros(6, "<i8")
    up[0] = 1  # round(0.03 / 0.05) = 1
    assert int(keys[2]) == int.from_bytes(hashlib.blake2b(up.tobytes(), digest_size=8).digest(), "little")


def test_coverage_counts_distinct_cells_and_round_trips():
    cov = Coverage(STATES.observation, CFG)
    obs = np.array([[0.0] * 6, [0.01] * 6, [1.0] * 6, [2.0] * 6], np.float32)
    assert cov.observe(obs) == 3 and cov.count == 3
    assert cov.observe(obs[2:]) == 0
    assert cov.observe(np.full((1, 6), 3.0, np.float32)) == 1 and cov.count == 4
    state = cov.state()
    cells = state["cells"]
    assert cells.dtype == torch.int64 and cells.shape == (4,)
    assert np.all(np.diff(cells.numpy().view(np.uint64).astype(np.float64)) > 0)  # sorted as unsigned
    again = Coverage(STATES.observation, CFG)
    again.load(state)
    assert again.count == 4 and again.observe(obs) == 0
    pixels = Coverage(PIXELS.observation, CFG)
    obs = frames(4, seed=2)
    assert pixels.observe(np.concatenate([obs, obs])) == 4


def test_wrong_batches_raise():
    with pytest.raises(ValueError, match=r"batch \[N >= 1, \*\(6, 96, 96\)\]"):
        cell_keys(np.zeros((2, 3, 96, 96), np.uint8), PIXELS.observation, CFG)
    with pytest.raises(ValueError, match=r"batch \[N >= 1, \*\(6,\)\]"):
        Coverage(STATES.observation, CFG).observe(np.zeros(6, np.float32))
    with pytest.raises(ValueError, match="key cells"):
        Coverage(STATES.observation, CFG).load({"keys": torch.zeros(1, dtype=torch.int64)})
