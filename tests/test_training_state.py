"""Resumable training state (xfer.training_state): atomic directory swaps, crash recovery,
corruption checks, optimizer / RNG flattening without pickle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from xfer import training_state
from xfer.checkpoint import CheckpointCorruptError, CheckpointFormatError, CheckpointNotFoundError
from xfer.training_state import (
    has_training_state,
    load_training_state,
    optimizer_state_from_flat,
    optimizer_state_to_flat,
    rng_state_from_json,
    rng_state_to_json,
    save_training_state,
)


def _small_model() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))


def _train_step(model: nn.Module, opt: torch.optim.Optimizer, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(8, 6, generator=g), torch.randn(8, 3, generator=g)
    opt.zero_grad()
    nn.functional.mse_loss(model(x), y).backward()
    opt.step()


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-4),
        lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.8, 0.99)),
    ],
    ids=["sgd-momentum", "adam"],
)
def test_optimizer_state_round_trip(tmp_path: Path, make_opt) -> None:
    torch.manual_seed(0)
    model = _small_model()
    opt = make_opt(model.parameters())
    for seed in range(3):
        _train_step(model, opt, seed)

    opt_tensors, opt_meta = optimizer_state_to_flat(opt.state_dict())
    model_tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    save_training_state(tmp_path / "state", {**model_tensors, **opt_tensors}, {}, {"optimizer": opt_meta})
    tensors, _, meta = load_training_state(tmp_path / "state")

    torch.manual_seed(1)  # the fresh model starts from other weights
    model2 = _small_model()
    model2.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
    opt2 = make_opt(model2.parameters())
    opt2.load_state_dict(optimizer_state_from_flat(tensors, meta["optimizer"]))
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]

    _train_step(model, opt, 99)
    _train_step(model2, opt2, 99)
    for (name, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        assert torch.equal(a, b), name


def test_flat_state_handles_odd_values() -> None:
    state = {
        "state": {0: {"step": 3.0, "buf": None}},
        "param_groups": [{"betas": (0.9, torch.tensor(0.99)), "params": [0], "__odd": 1}],
        "extra": {1.5: "x", None: [1, (2, 3)]},
    }
    tensors, meta = optimizer_state_to_flat(state, prefix="opt.")
    assert list(tensors) == ["opt.param_groups.0.betas.1"]
    back = optimizer_state_from_flat(tensors, json.loads(json.dumps(meta)))
    assert back["state"] == {0: {"step": 3.0, "buf": None}}
    assert back["extra"] == {1.5: "x", None: [1, (2, 3)]}
    betas = back["param_groups"][0]["betas"]
    assert isinstance(betas, tuple) and betas[0] == 0.9 and torch.equal(betas[1], torch.tensor(0.99))
    assert back["param_groups"][0]["__odd"] == 1
    with pytest.raises(CheckpointFormatError, match="missing"):
        optimizer_state_from_flat({}, meta)
    with pytest.raises(ValueError, match="without pickle"):
        optimizer_state_to_flat({"state": {}, "param_groups": [{"fn": object()}]})


@pytest.mark.parametrize("bit_generator", ["PCG64", "MT19937"])
def test_numpy_rng_round_trip(tmp_path: Path, bit_generator: str) -> None:
    rng = np.random.Generator(getattr(np.random, bit_generator)(1234))
    rng.random(17)
    save_training_state(tmp_path / "s", {}, {}, {"rng": rng_state_to_json(rng)})
    _, _, meta = load_training_state(tmp_path / "s")
    restored = rng_state_from_json(meta["rng"])
    assert np.array_equal(rng.random(10), restored.random(10))
    assert np.array_equal(rng.integers(0, 1000, 5), restored.integers(0, 1000, 5))
    with pytest.raises(CheckpointFormatError, match="bit generator"):
        rng_state_from_json({"bit_generator": "os.system"})


def test_torch_rng_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(5)
    save_training_state(tmp_path / "s", training_state.torch_rng_state_to_tensors(), {}, {})
    expected = torch.rand(4)
    torch.manual_seed(6)
    tensors, _, _ = load_training_state(tmp_path / "s")
    training_state.restore_torch_rng_state(tensors)
    assert torch.equal(torch.rand(4), expected)


def _state(tag: int) -> tuple[dict, dict, dict]:
    tensors = {f"t{tag}": torch.full((3,), float(tag)), "count": torch.tensor([tag], dtype=torch.int64)}
    arrays = {
        f"a{tag}": np.arange(4, dtype=np.uint8) + tag,
        "file": np.zeros((2, 2), dtype=np.float32),  # a key np.savez(file, **arrays) could not take
        "rec": np.zeros(2, dtype=[("x", "<i4"), ("y", "<f8")]),
    }
    return tensors, arrays, {"tag": tag, "nested": {"rng": [1, 2**100]}}


def _assert_state(loaded: tuple[dict, dict, dict], tag: int) -> None:
    tensors, arrays, meta = loaded
    want_t, want_a, want_m = _state(tag)
    assert tensors.keys() == want_t.keys() and arrays.keys() == want_a.keys() and meta == want_m
    for k, v in want_t.items():
        assert tensors[k].dtype == v.dtype and torch.equal(tensors[k], v)
    for k, v in want_a.items():
        assert arrays[k].dtype == v.dtype and np.array_equal(arrays[k], v)


def test_training_state_round_trip_and_replace(tmp_path: Path) -> None:
    d = tmp_path / "resume"
    assert not has_training_state(d)
    save_training_state(d, *_state(1))
    assert has_training_state(d)
    _assert_state(load_training_state(d), 1)
    save_training_state(d, *_state(2))
    _assert_state(load_training_state(d), 2)  # old content gone, new content readable
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resume"]
    assert sorted(p.name for p in d.iterdir()) == ["arrays.npz", "meta.json", "tensors.safetensors"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_crash_between_renames_recovers_from_old(tmp_path: Path) -> None:
    d, old = tmp_path / "resume", tmp_path / "resume.old"
    save_training_state(d, *_state(1))
    d.rename(old)  # crash after "resume -> resume.old", before "tmp -> resume"
    stale_tmp = tmp_path / f"resume.tmp-{_dead_pid()}"
    stale_tmp.mkdir()
    (stale_tmp / "meta.json").write_text("{half written")
    assert has_training_state(d)
    _assert_state(load_training_state(d), 1)
    save_training_state(d, *_state(2))
    _assert_state(load_training_state(d), 2)
    assert not old.exists() and not stale_tmp.exists()


def test_crash_after_second_rename_prefers_new(tmp_path: Path) -> None:
    d, old = tmp_path / "resume", tmp_path / "resume.old"
    save_training_state(tmp_path / "prev", *_state(1))
    save_training_state(d, *_state(2))
    (tmp_path / "prev").rename(old)  # crash after "tmp -> resume", before deleting resume.old
    _assert_state(load_training_state(d), 2)
    save_training_state(d, *_state(3))
    _assert_state(load_training_state(d), 3)
    assert not old.exists()


def test_incomplete_first_save_is_no_state(tmp_path: Path) -> None:
    d = tmp_path / "resume"
    tmp = tmp_path / f"resume.tmp-{_dead_pid()}"
    tmp.mkdir()
    save_training_state(tmp_path / "x", *_state(1))
    for f in (tmp_path / "x").iterdir():
        f.rename(tmp / f.name)  # even a complete-looking tmp dir is ignored
    assert not has_training_state(d)
    with pytest.raises(CheckpointNotFoundError, match="resume"):
        load_training_state(d)


def test_training_state_corruption_detected(tmp_path: Path) -> None:
    d = tmp_path / "resume"
    save_training_state(d, *_state(1))
    blob = bytearray((d / "tensors.safetensors").read_bytes())
    blob[-1] ^= 0xFF
    (d / "tensors.safetensors").write_bytes(bytes(blob))
    with pytest.raises(CheckpointCorruptError, match=r"tensors\.safetensors.*corrupt"):
        load_training_state(d)

    save_training_state(d, *_state(1))
    (d / "arrays.npz").write_bytes((d / "arrays.npz").read_bytes()[:50])
    with pytest.raises(CheckpointCorruptError, match=r"arrays\.npz"):
        load_training_state(d)

    save_training_state(d, *_state(1))
    (d / "meta.json").write_text("{oops")
    with pytest.raises(CheckpointFormatError, match="not valid JSON"):
        load_training_state(d)

    save_training_state(d, *_state(1))
    (d / "arrays.npz").unlink()
    with pytest.raises(CheckpointNotFoundError, match=r"arrays\.npz"):
        load_training_state(d)


def test_invalid_training_state_inputs_rejected(tmp_path: Path) -> None:
    d = tmp_path / "resume"
    with pytest.raises(ValueError, match="object dtype"):
        save_training_state(d, {}, {"bad": np.array([1, "a", None], dtype=object)}, {})
    with pytest.raises(ValueError, match="object dtype"):
        save_training_state(d, {}, {"bad": np.zeros(1, dtype=[("o", object)])}, {})
    with pytest.raises(ValueError, match="JSON"):
        save_training_state(d, {}, {}, {"x": object()})
    assert list(tmp_path.iterdir()) == []


