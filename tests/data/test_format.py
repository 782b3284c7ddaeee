"""Offline dataset format: round trips, manifest, atomic writes and every bad-input error."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.data.helpers import MASK, synthetic_segments
from xfer.config import AtariConfig
from xfer.data import (
    MANIFEST_FILE,
    SCHEMA_VERSION,
    CorruptShardError,
    DatasetError,
    DatasetMismatchError,
    DatasetNotFoundError,
    DatasetReader,
    DatasetWriter,
    InvalidManifestError,
    Manifest,
    SchemaVersionError,
    atari_env_info,
    write_dataset,
)
from xfer.data.synthetic import random_atari_segments
from xfer.fileio import sha256_file
from xfer.replay.segment import Segment

ENV = {"id": "Fake-v0"}
FIELDS = ("frames", "actions", "rewards", "raw_rewards", "cuts", "root_values", "visit_dist", "action_mask")


def assert_same_segments(a: list[Segment], b: list[Segment]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for name in FIELDS:
            gx, gy = getattr(x, name), getattr(y, name)
            assert gx.dtype == gy.dtype and gx.shape == gy.shape, name
            np.testing.assert_array_equal(gx, gy, err_msg=name)
        assert (x.terminal, x.game, x.first_step, x.stack) == (y.terminal, y.game, y.first_step, y.stack)
        assert type(y.terminal) is bool and type(y.stack) is int
        assert (math.isnan(x.final_value) and math.isnan(y.final_value)) or x.final_value == y.final_value


def _write(path: Path, segments: list[Segment], shard_transitions: int = 25, **kw) -> Manifest:
    return write_dataset(path, segments, "Fake", ENV, "test policy", shard_transitions=shard_transitions, **kw)


@pytest.fixture(scope="module")
def pong(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Segment], Manifest]:
    segments = random_atari_segments("Pong", 600, segment_length=200, seed=1)
    path = tmp_path_factory.mktemp("pong") / "Pong"
    manifest = write_dataset(
        path, segments, "Pong", atari_env_info(AtariConfig(game="Pong")), "random", shard_transitions=400
    )
    return path, segments, manifest


# ---------------------------------------------------------------------------------------------
# Round trips and manifest
# ---------------------------------------------------------------------------------------------
def test_real_atari_round_trip_and_compression(pong):
    path, segments, manifest = pong
    reader = DatasetReader(path)
    assert_same_segments(segments, list(reader.iter_segments()))
    assert len(reader) == 600 and reader.game == "Pong" and reader.num_shards == 2
    assert manifest.frame_shape == [3, 96, 96] and manifest.stack == 4
    assert manifest.env["id"] == "ALE/Pong-v5" and manifest.env["config"]["game"] == "Pong"
    assert manifest.env["ale_py"] and manifest.env["gymnasium"]
    raw = sum(s.frames.nbytes for s in segments) / 600
    assert manifest.raw_bytes_per_transition == pytest.approx(raw)
    # The promised >= 5x over raw uint8 frames (random-policy Pong is far better than that).
    assert manifest.raw_bytes_per_transition >= 5 * manifest.bytes_per_transition


def test_round_trip_many_shards_and_manifest_fields(tmp_path):
    segments = synthetic_segments(9, T=10)
    manifest = _write(tmp_path / "ds", segments, shard_transitions=25, annotation="teacher:abc")
    # shards close at >= 25 transitions: 30 + 30 + 30
    assert [s.num_transitions for s in manifest.shards] == [30, 30, 30]
    assert [s.file for s in manifest.shards] == ["shard-00000.npz", "shard-00001.npz", "shard-00002.npz"]
    assert (manifest.num_segments, manifest.num_transitions, manifest.num_frames) == (9, 90, 9 * 14)
    assert manifest.schema_version == SCHEMA_VERSION and manifest.action_mask == MASK.tolist()
    assert manifest.annotation == "teacher:abc" and manifest.behaviour_policy == "test policy"
    assert set(manifest.packages) >= {"xfer", "numpy", "torch"}
    for info in manifest.shards:
        f = tmp_path / "ds" / info.file
        assert info.sha256 == sha256_file(f) and info.bytes == f.stat().st_size
    on_disk = Manifest.model_validate_json((tmp_path / "ds" / MANIFEST_FILE).read_text())
    assert on_disk == manifest
    assert manifest.bytes_per_transition == pytest.approx(sum(s.bytes for s in manifest.shards) / 90)
    assert manifest.raw_bytes_per_transition == pytest.approx(14 * 3 * 8 * 8 / 10)

    reader = DatasetReader(tmp_path / "ds")
    reader.verify_all()
    assert_same_segments(segments, list(reader.iter_segments()))
    assert_same_segments(segments[3:6], reader.load_shard(1))
    assert reader.segment_offset(2) == 6
    np.testing.assert_array_equal(reader.action_mask, MASK)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no .tmp-* / .old left


def test_same_segments_give_byte_identical_datasets(tmp_path):
    # issue 13: a recomputed dataset must keep its hash (the manifest held a creation time)
    segments = synthetic_segments(5, T=10)
    _write(tmp_path / "a", segments, annotation="teacher:abc")
    _write(tmp_path / "b", segments, annotation="teacher:abc")
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert MANIFEST_FILE in files
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert "created" not in json.loads((tmp_path / "a" / MANIFEST_FILE).read_text())


def test_manifests_with_a_creation_time_still_read(tmp_path):
    _write(tmp_path / "ds", synthetic_segments(2, T=10))
    path = tmp_path / "ds" / MANIFEST_FILE
    old = json.loads(path.read_text()) | {"created": "2026-11-23T18:31:05+00:00"}
    path.write_text(json.dumps(old))
    assert DatasetReader(tmp_path / "ds").manifest.created == "2026-11-23T18:31:05+00:00"


def test_writer_validates_segments(tmp_path):
    seg = synthetic_segments(1)[0]
    with DatasetWriter(tmp_path / "ds", "Fake", ENV, "p") as w:
        w.add(seg)
        with pytest.raises(ValueError, match="game"):
            w.add(synthetic_segments(1, game="Other")[0])
        other_mask = MASK.copy()
        other_mask[5] = True
        with pytest.raises(ValueError, match="action_mask"):
            w.add(synthetic_segments(1, mask=other_mask)[0])
        with pytest.raises(ValueError, match="frames"):
            w.add(synthetic_segments(1, hw=16)[0])
        with pytest.raises(ValueError, match="stack"):
            w.add(synthetic_segments(1, stack=2)[0])
    assert DatasetReader(tmp_path / "ds").manifest.num_segments == 1
    with pytest.raises(ValueError, match="empty"):
        DatasetWriter(tmp_path / "empty", "Fake", ENV, "p").close()
    assert not (tmp_path / "empty").exists() and not list(tmp_path.glob("*.tmp-*"))
    with pytest.raises(ValueError, match="JSON"):
        DatasetWriter(tmp_path / "x", "Fake", {"bad": object()}, "p")


# ---------------------------------------------------------------------------------------------
# Atomicity
# ---------------------------------------------------------------------------------------------
def test_failed_write_keeps_existing_dataset(tmp_path):
    path = tmp_path / "ds"
    first = _write(path, synthetic_segments(4))
    with pytest.raises(RuntimeError, match="boom"):
        with DatasetWriter(path, "Fake", ENV, "p", shard_transitions=10) as w:
            w.extend(synthetic_segments(5, seed=1))  # shards already written into the tmp dir
            assert list(tmp_path.glob("ds.tmp-*"))
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    assert DatasetReader(path).manifest == first

    # A successful rewrite replaces it completely.
    second = _write(path, synthetic_segments(2, seed=3))
    assert DatasetReader(path).manifest == second and second.num_segments == 2
    assert sorted(p.name for p in path.iterdir()) == [MANIFEST_FILE, "shard-00000.npz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_dataset_is_invisible_until_close(tmp_path):
    w = DatasetWriter(tmp_path / "ds", "Fake", ENV, "p", shard_transitions=5)
    w.extend(synthetic_segments(3))
    with pytest.raises(DatasetNotFoundError):
        DatasetReader(tmp_path / "ds")
    w.close()
    assert len(DatasetReader(tmp_path / "ds")) == 30
    with pytest.raises(RuntimeError, match="closed"):
        w.add(synthetic_segments(1)[0])


def test_recovery_copy_is_read_after_crash_between_renames(tmp_path):
    _write(tmp_path / "ds", synthetic_segments(2))
    (tmp_path / "ds").rename(tmp_path / "ds.old")  # as if killed after renaming the old one aside
    reader = DatasetReader(tmp_path / "ds")
    assert reader.path == tmp_path / "ds.old" and len(reader) == 20
    _write(tmp_path / "ds", synthetic_segments(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_stale_tmp_dir_of_dead_writer_is_removed(tmp_path):
    stale = tmp_path / "ds.tmp-999999999"
    stale.mkdir()
    (stale / "shard-00000.npz").write_bytes(b"half")
    _write(tmp_path / "ds", synthetic_segments(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
@pytest.fixture()
def small(tmp_path: Path) -> Path:
    _write(tmp_path / "ds", synthetic_segments(6), shard_transitions=20)  # 3 shards of 2 segments
    return tmp_path / "ds"


def test_missing_dataset_and_manifest(tmp_path, small):
    with pytest.raises(DatasetNotFoundError, match=r"nope does not exist.*dvc repro collect@nope"):
        DatasetReader(tmp_path / "nope")
    (small / MANIFEST_FILE).unlink()
    with pytest.raises(DatasetNotFoundError, match=rf"{small} has no manifest.json"):
        DatasetReader(small)


def test_bad_json_and_bad_schema(small):
    m = small / MANIFEST_FILE
    text = m.read_text()
    m.write_text(text[:-20])
    with pytest.raises(InvalidManifestError, match=r"manifest.json is not valid JSON.*re-create"):
        DatasetReader(small)
    data = json.loads(text)
    data["surprise"] = 1
    del data["game"]
    m.write_text(json.dumps(data))
    with pytest.raises(InvalidManifestError, match=r"game: Field required.*surprise"):
        DatasetReader(small)


def test_wrong_schema_version(small):
    m = small / MANIFEST_FILE
    data = json.loads(m.read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    m.write_text(json.dumps(data))
    with pytest.raises(SchemaVersionError, match=rf"schema_version {SCHEMA_VERSION + 1}.*reads schema_version 1"):
        DatasetReader(small)


def test_manifest_counts_mismatch(small):
    m = small / MANIFEST_FILE
    data = json.loads(m.read_text())
    data["num_transitions"] += 1
    m.write_text(json.dumps(data))
    with pytest.raises(DatasetMismatchError, match="num_transitions is 61 but the shards add up to 60"):
        DatasetReader(small)
    # Per-shard counts that disagree with the shard's contents (checksums off to reach decoding).
    data["num_transitions"] -= 1
    data["shards"][1]["num_transitions"] += 5
    data["shards"][2]["num_transitions"] -= 5
    m.write_text(json.dumps(data))
    reader = DatasetReader(small, verify=False)
    reader.load_shard(0)
    with pytest.raises(DatasetMismatchError, match=r"shard-00001.npz of offline dataset .* holds 20 transitions \(manifest: 25\)"):
        reader.load_shard(1)


def test_shard_of_another_game(small):
    # A decodable shard whose segments belong to another game (e.g. copied from another dataset).
    arrays = dict(np.load(small / "shard-00001.npz"))
    arrays["games"] = np.asarray(["Other"] * 2)
    np.savez_compressed(small / "shard-00001.npz", **arrays)
    reader = DatasetReader(small, verify=False)
    with pytest.raises(DatasetMismatchError, match=r"shard-00001.npz.*game 'Other'"):
        reader.load_shard(1)


def test_action_mask_check(small):
    reader = DatasetReader(small)
    reader.check_action_mask(MASK)
    wrong = MASK.copy()
    wrong[[2, 17]] = True
    with pytest.raises(DatasetMismatchError, match=r"legal actions \[0, 1, 3, 4\] of 18.*\[0, 1, 2, 3, 4, 17\]"):
        reader.check_action_mask(wrong)
    with pytest.raises(DatasetMismatchError, match="of 6 were expected"):
        reader.check_action_mask(np.ones(6, dtype=bool))


def test_truncated_shard(small):
    shard = small / "shard-00001.npz"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    reader = DatasetReader(small)  # opening is cheap and checks no shard
    assert len(reader.load_shard(0)) == 2
    with pytest.raises(CorruptShardError, match=rf"shard-00001.npz of offline dataset {small} has \d+ bytes"):
        reader.load_shard(1)
    with pytest.raises(CorruptShardError, match=r"shard-00001.npz.*cannot be decoded"):
        DatasetReader(small, verify=False).load_shard(1)
    with pytest.raises(CorruptShardError, match=r"1 of 3 shards.*shard-00001.npz"):
        reader.verify_all()


def test_flipped_byte_fails_checksum(small):
    shard = small / "shard-00002.npz"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptShardError, match=rf"shard-00002.npz of offline dataset {small} fails its checksum"):
        DatasetReader(small).load_shard(2)
    with pytest.raises(CorruptShardError, match="shard-00002.npz"):  # zip CRC / zlib catch it too
        DatasetReader(small, verify=False).load_shard(2)


def test_missing_shard(small):
    (small / "shard-00000.npz").unlink()
    with pytest.raises(CorruptShardError, match="shard-00000.npz .* is missing"):
        DatasetReader(small).load_shard(0)
    with pytest.raises(CorruptShardError, match="shard-00000.npz .* is missing"):
        DatasetReader(small, verify=False).load_shard(0)


def test_errors_share_a_base_class_and_pickled_arrays_are_refused(small):
    for cls in (DatasetNotFoundError, SchemaVersionError, CorruptShardError, DatasetMismatchError, InvalidManifestError):
        assert issubclass(cls, DatasetError)
    # An object array in a shard would need pickle: refused as a decoding error, never unpickled.
    arrays = dict(np.load(small / "shard-00000.npz"))
    arrays["games"] = np.asarray(["Fake", "Fake"], dtype=object)
    np.savez_compressed(small / "shard-00000.npz", **arrays)
    with pytest.raises(CorruptShardError, match="cannot be decoded"):
        DatasetReader(small, verify=False).load_shard(0)


def test_manifest_rejects_unsafe_shard_names(small):
    m = small / MANIFEST_FILE
    data = json.loads(m.read_text())
    data["shards"][0]["file"] = "../escape.npz"
    m.write_text(json.dumps(data))
    with pytest.raises(InvalidManifestError, match="plain"):
        DatasetReader(small)
