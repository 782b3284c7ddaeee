"""OfflineSampler: memory bound, rotation over shards, per-game split, valid positions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.data.helpers import synthetic_segments
from xfer.data import DatasetReader, OfflineSampler, write_dataset


def _dataset(path: Path, game: str, num_segments: int, seed: int, shard_transitions: int = 20) -> DatasetReader:
    segments = synthetic_segments(num_segments, T=10, seed=seed, game=game)
    write_dataset(path, segments, game, {"id": "Fake-v0"}, "test", shard_transitions=shard_transitions)
    return DatasetReader(path)


@pytest.fixture()
def readers(tmp_path: Path) -> dict[str, DatasetReader]:
    # A: 6 shards of 20 steps; B: 2 shards; C: 1 shard.
    return {
        "A": _dataset(tmp_path / "A", "A", 12, seed=0),
        "B": _dataset(tmp_path / "B", "B", 4, seed=1),
        "C": _dataset(tmp_path / "C", "C", 1, seed=2),
    }


def _full_bytes(reader: DatasetReader) -> int:
    return sum(s.nbytes() for s in reader.iter_segments())


def test_memory_bound_and_rotation_visits_every_shard(readers):
    sampler = OfflineSampler({"A": readers["A"]}, max_cached_shards=2, rotate_every=16, seed=0)
    seen: set[int] = set()
    for _ in range(200):
        idx = sampler.sample("A", 8)
        resident = sampler.resident_shards()["A"]
        assert len(resident) <= 2
        seen.update(resident)
        # Every sampled segment comes from a resident shard (ids 2k, 2k+1 belong to shard k).
        assert set((idx.segment_ids // 2).tolist()) <= set(resident)
    assert seen == set(range(6))
    full = _full_bytes(readers["A"])
    assert 0 < sampler.resident_bytes() <= full * 2 / 6 + 1
    assert sampler.shard_loads()["A"] == 2 + 200 * 8 // 16 - 1


def test_positions_ids_and_weights_are_valid(readers):
    sampler = OfflineSampler(readers, max_cached_shards=2, rotate_every=50, seed=1)
    all_segments = {g: list(r.iter_segments()) for g, r in readers.items()}
    for _ in range(20):
        for game in readers:
            idx = sampler.sample(game, 64)
            assert idx.positions.dtype == np.int64 and idx.segment_ids.dtype == np.int64
            np.testing.assert_array_equal(idx.weights, np.ones(64, dtype=np.float32))
            np.testing.assert_array_equal(idx.flat, np.arange(64))
            for seg, sid, pos in zip(idx.segments, idx.segment_ids, idx.positions):
                assert 0 <= pos < len(seg) and seg.game == game
                # ids are stable: the id names the same segment as in a full read of the dataset
                np.testing.assert_array_equal(seg.actions, all_segments[game][sid].actions)


def test_positions_are_uniform_over_resident_transitions(readers):
    sampler = OfflineSampler({"B": readers["B"]}, max_cached_shards=2, seed=2)  # B fits: no rotation
    idx = sampler.sample("B", 40_000)
    flat = idx.segment_ids * 10 + idx.positions  # 4 segments x 10 steps
    counts = np.bincount(flat, minlength=40)
    assert counts.min() > 850 and counts.max() < 1150  # 1000 expected each
    assert sampler.shard_loads()["B"] == 2


def test_rotation_prefers_bigger_shards(tmp_path):
    # Shard 0 holds 30 steps, shard 1 holds 10 (segments are never split): picked 3:1.
    segments = synthetic_segments(3, T=10) + synthetic_segments(1, T=10, seed=5)
    write_dataset(tmp_path / "d", segments, "Fake", {}, "test", shard_transitions=30)
    reader = DatasetReader(tmp_path / "d")
    assert reader.shard_transitions.tolist() == [30, 10]
    picks = [OfflineSampler({"d": reader}, max_cached_shards=1, seed=s).sample("d", 1).segment_ids[0] < 3
             for s in range(400)]
    assert np.mean(picks) == pytest.approx(0.75, abs=0.07)


def test_uniform_split_over_games(readers):
    sampler = OfflineSampler(readers, seed=3)
    totals = dict.fromkeys(readers, 0)
    for _ in range(300):
        batch = sampler.sample_uniform(10)  # 3 games: 3 + 3 + 3 and one extra
        sizes = {g: len(i.positions) for g, i in batch.items()}
        assert sum(sizes.values()) == 10 and sorted(sizes.values()) == [3, 3, 4]
        for g, n in sizes.items():
            totals[g] += n
    assert all(abs(t / 3000 - 1 / 3) < 0.03 for t in totals.values())  # the remainder rotates
    assert {len(i.positions) for i in sampler.sample_uniform(3).values()} == {1}
    assert sum(len(i.positions) for i in sampler.sample_uniform(2).values()) == 2


def test_memory_bound_over_many_games(readers):
    sampler = OfflineSampler(readers, max_cached_shards=1, rotate_every=5, seed=4)
    full = sum(_full_bytes(r) for r in readers.values())
    for _ in range(50):
        sampler.sample_uniform(12)
        assert all(len(s) <= 1 for s in sampler.resident_shards().values())
        assert sampler.resident_bytes() < full


def test_bad_arguments(readers):
    with pytest.raises(ValueError, match="at least one"):
        OfflineSampler({})
    with pytest.raises(ValueError, match="max_cached_shards"):
        OfflineSampler(readers, max_cached_shards=0)
    sampler = OfflineSampler(readers)
    with pytest.raises(KeyError, match="no offline dataset for 'Z'"):
        sampler.sample("Z", 4)
    with pytest.raises(ValueError, match="batch_size"):
        sampler.sample_uniform(0)
