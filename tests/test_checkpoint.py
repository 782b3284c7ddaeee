"""Model checkpoints (xfer.checkpoint): weights + sidecar, round trips, corrupt and mismatched files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from torch import nn

import xfer.checkpoint as ckpt
from tests.specs import ATARI
from xfer.checkpoint import (
    CheckpointCorruptError,
    CheckpointError,
    CheckpointFormatError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    ModelMeta,
    load_model,
    read_model_meta,
    save_model,
)
from xfer.fileio import sha256_file
from xfer.nets.efficientzero import EfficientZeroNet
from xfer.nets.sizes import net_spec

OBS_SIZE = 32  # small input keeps the nets cheap; the latent is 2x2


def _net(size: str = "tiny", seed: int = 0) -> EfficientZeroNet:
    torch.manual_seed(seed)
    net = EfficientZeroNet(net_spec(size), ATARI.num_actions, (ATARI.observation.shape[0], OBS_SIZE, OBS_SIZE))
    # Non-default BatchNorm buffers so that eval outputs depend on them round-tripping.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(7)
    return net.eval()


def _meta(net: EfficientZeroNet, size: str = "tiny") -> ModelMeta:
    return ModelMeta(
        size=size,
        spec=net.spec.to_dict(),
        num_actions=net.num_actions,
        obs_shape=list(net.obs_shape),
        games=["Pong", "Breakout"],
        action_maps={"Pong": [0, 1, 3, 4, 11, 12], "Breakout": [0, 1, 3, 4]},
        step=123,
        env_steps=4567,
        config_hash="abcdef012345",
    )


def _outputs(net: EfficientZeroNet) -> list[torch.Tensor]:
    obs = torch.randint(0, 256, (2, 12, OBS_SIZE, OBS_SIZE), generator=torch.Generator().manual_seed(1)).to(
        torch.uint8
    )
    with torch.no_grad():
        root = net.initial_inference(obs)
        rec = net.recurrent_inference(root.latent, root.lstm_state, torch.tensor([3, 17]))
    return [root.latent, root.value_logits, root.policy_logits, rec.value_prefix_logits, rec.latent]


@pytest.fixture()
def saved(tmp_path: Path) -> tuple[Path, EfficientZeroNet]:
    net = _net()
    path = tmp_path / "model.safetensors"
    save_model(path, net, _meta(net))
    return path, net


# ---- model checkpoints ---------------------------------------------------------------------
def test_model_round_trip_identical_outputs(saved: tuple[Path, EfficientZeroNet]) -> None:
    path, net = saved
    loaded, meta = load_model(path, expected_size="tiny")
    assert not loaded.training
    for a, b in zip(_outputs(net), _outputs(loaded)):
        assert torch.equal(a, b)
    original, restored = net.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for k in original:
        assert original[k].dtype == restored[k].dtype and torch.equal(original[k], restored[k]), k
    assert restored["representation_net.net.1.num_batches_tracked"].dtype == torch.int64
    assert meta == read_model_meta(path)


def test_sidecar_fields(saved: tuple[Path, EfficientZeroNet]) -> None:
    path, net = saved
    data = json.loads(path.with_suffix(".json").read_text())
    # a discrete model's sidecar leaves out action_dim (0), so it reads byte for byte as before Box actions
    assert set(data) == set(ModelMeta.model_fields) - {"action_dim"}
    assert data["format_version"] == 2 and data["architecture"] == "efficientzero"
    assert data["size"] == "tiny" and data["spec"] == net.spec.to_dict()
    assert (data["num_actions"], data["obs_shape"]) == (18, [12, OBS_SIZE, OBS_SIZE])
    assert data["action_maps"]["Breakout"] == [0, 1, 3, 4] and data["games"] == ["Pong", "Breakout"]
    assert (data["step"], data["env_steps"], data["config_hash"]) == (123, 4567, "abcdef012345")
    assert data["weights_sha256"] == sha256_file(path)
    assert not list(path.parent.glob(".*tmp*"))  # no temporary files left behind


def test_truncated_weights_reported_corrupt(saved: tuple[Path, EfficientZeroNet]) -> None:
    path, _ = saved
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointCorruptError, match="corrupt") as info:
        load_model(path)
    assert "sha256" in str(info.value) and str(path) in str(info.value)
    read_model_meta(path)  # the sidecar alone is still fine


def test_unreadable_safetensors_header(saved: tuple[Path, EfficientZeroNet]) -> None:
    path, _ = saved
    path.write_bytes(b"\x00" * 64)
    sidecar = path.with_suffix(".json")
    data = json.loads(sidecar.read_text())
    data["weights_sha256"] = sha256_file(path)
    sidecar.write_text(json.dumps(data))
    with pytest.raises(CheckpointFormatError, match="safetensors"):
        load_model(path)


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"format_version": 3}', "unknown format_version 3"),
        ('{"format_version": 1, "size": "tiny"}', "schema"),
    ],
)
def test_bad_sidecar(saved: tuple[Path, EfficientZeroNet], text: str, match: str) -> None:
    path, _ = saved
    path.with_suffix(".json").write_text(text)
    with pytest.raises(CheckpointFormatError, match=match) as info:
        load_model(path)
    assert str(path.with_suffix(".json")) in str(info.value)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("architecture", "muzero", "unsupported architecture"),
        ("size", "huge", "unknown network size"),
        ("extra_field", 1, "extra"),
        ("weights_sha256", "", "no weights_sha256"),
        ("action_maps", {"Pong": [0, 18]}, "action_maps"),
    ],
)
def test_sidecar_schema_violations(
    saved: tuple[Path, EfficientZeroNet], field: str, value: object, match: str
) -> None:
    path, _ = saved
    sidecar = path.with_suffix(".json")
    data = json.loads(sidecar.read_text())
    data[field] = value
    sidecar.write_text(json.dumps(data))
    with pytest.raises(CheckpointFormatError, match=match):
        read_model_meta(path)


def test_sidecar_spec_must_match_size(saved: tuple[Path, EfficientZeroNet]) -> None:
    path, _ = saved
    sidecar = path.with_suffix(".json")
    data = json.loads(sidecar.read_text())
    data["spec"] = net_spec("ez").to_dict()
    sidecar.write_text(json.dumps(data))
    with pytest.raises(CheckpointFormatError, match="spec does not match size 'tiny'"):
        read_model_meta(path)


def test_support_size_override_allowed(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = EfficientZeroNet(net_spec("tiny", support_size=5), ATARI.num_actions, (ATARI.observation.shape[0], OBS_SIZE, OBS_SIZE))
    save_model(tmp_path / "m.safetensors", net, _meta(net))
    loaded, meta = load_model(tmp_path / "m.safetensors")
    assert loaded.spec.support_size == 5 and meta.spec["support_size"] == 5


def test_action_encoding_round_trips_and_old_sidecars_read_as_plane(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = EfficientZeroNet(net_spec("tiny", action_encoding="one_hot"), ATARI.num_actions, (ATARI.observation.shape[0], OBS_SIZE, OBS_SIZE)).eval()
    save_model(tmp_path / "m.safetensors", net, _meta(net))
    loaded, meta = load_model(tmp_path / "m.safetensors")
    assert loaded.spec.action_encoding == "one_hot" and loaded.dynamics_net.conv.in_channels == 32 + 18
    # a sidecar written before the field existed describes the a / 18 plane network
    plane = EfficientZeroNet(net_spec("tiny"), ATARI.num_actions, (ATARI.observation.shape[0], OBS_SIZE, OBS_SIZE))
    save_model(tmp_path / "old.safetensors", plane, _meta(plane))
    sidecar = tmp_path / "old.json"
    data = json.loads(sidecar.read_text())
    del data["spec"]["action_encoding"]
    sidecar.write_text(json.dumps(data))
    assert read_model_meta(tmp_path / "old.safetensors").to_net_spec().action_encoding == "plane"
    # ... and before latent_scaling existed, every network min-max scaled its latents
    del data["spec"]["latent_scaling"]
    sidecar.write_text(json.dumps(data))
    assert read_model_meta(tmp_path / "old.safetensors").to_net_spec().latent_scaling == "minmax"
    data["spec"]["action_encoding"] = "embedding"
    sidecar.write_text(json.dumps(data))
    with pytest.raises(CheckpointFormatError, match="unknown action encoding 'embedding'"):
        read_model_meta(tmp_path / "old.safetensors")


def test_missing_files_name_the_path(saved: tuple[Path, EfficientZeroNet], tmp_path: Path) -> None:
    path, _ = saved
    absent = tmp_path / "absent.safetensors"
    with pytest.raises(CheckpointNotFoundError, match="absent.safetensors"):
        load_model(absent)
    path.with_suffix(".json").unlink()
    with pytest.raises(CheckpointNotFoundError, match=r"model\.json") as info:
        read_model_meta(path)
    assert isinstance(info.value, CheckpointError)
    with pytest.raises(CheckpointFormatError, match="not its sidecar"):
        load_model(path.with_suffix(".json"))


def test_expected_size_checked_before_hashing_or_building(
    saved: tuple[Path, EfficientZeroNet], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = saved
    path.write_bytes(b"truncated")  # would fail the sha check if it came first

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("network built before the size check")

    monkeypatch.setattr(ckpt, "EfficientZeroNet", boom)
    with pytest.raises(CheckpointMismatchError, match="is size 'tiny' but --size ez was requested"):
        load_model(path, expected_size="ez")


def test_ez_weights_under_tiny_sidecar(saved: tuple[Path, EfficientZeroNet], tmp_path: Path) -> None:
    path, _ = saved
    ez = _net("ez")
    ez_path = tmp_path / "ez.safetensors"
    save_model(ez_path, ez, _meta(ez, "ez"))
    assert load_model(ez_path, expected_size="ez")[1].size == "ez"
    # Swap in the ez weights and make the tiny sidecar's checksum agree with them.
    path.write_bytes(ez_path.read_bytes())
    sidecar = path.with_suffix(".json")
    data = json.loads(sidecar.read_text())
    data["weights_sha256"] = sha256_file(path)
    sidecar.write_text(json.dumps(data))
    with pytest.raises(CheckpointMismatchError, match="do not fit") as info:
        load_model(path)
    assert "unexpected keys" in str(info.value) and "shape/dtype mismatches" in str(info.value)


def test_obs_shape_mismatch(saved: tuple[Path, EfficientZeroNet]) -> None:
    path, _ = saved
    sidecar = path.with_suffix(".json")
    data = json.loads(sidecar.read_text())
    data["obs_shape"][0] = 3
    sidecar.write_text(json.dumps(data))
    with pytest.raises(CheckpointMismatchError, match=r"representation_net\.net\.0\.weight"):
        load_model(path)


def test_a_version_1_sidecar_reads_as_pixels(saved: tuple[Path, EfficientZeroNet]) -> None:
    # sidecars written before state-vector inputs (obs_channels, obs_size) still load
    path, net = saved
    sidecar = path.with_suffix(".json")
    data = json.loads(sidecar.read_text())
    channels, _, size = data.pop("obs_shape")
    sidecar.write_text(json.dumps({**data, "format_version": 1, "obs_channels": channels, "obs_size": size}))
    loaded, meta = load_model(path)
    assert meta.obs_shape == [12, OBS_SIZE, OBS_SIZE] and meta.format_version == 2
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), loaded.state_dict().values(), strict=True))


def test_obs_shape_is_pixels_or_a_state_vector() -> None:
    net = _net()
    with pytest.raises(ValidationError, match="obs_shape must be"):
        ModelMeta.model_validate({**_meta(net).model_dump(), "obs_shape": [12, 96]})


def test_save_model_rejects_inconsistent_meta(tmp_path: Path) -> None:
    net = _net()
    with pytest.raises(ValueError, match="obs_shape"):
        save_model(tmp_path / "m.safetensors", net, _meta(net).model_copy(update={"obs_shape": [12, 96, 96]}))
    with pytest.raises(ValueError, match=r"\.safetensors"):
        save_model(tmp_path / "m.pt", net, _meta(net))
    assert not list(tmp_path.iterdir())


def test_same_weights_same_bytes(tmp_path: Path) -> None:
    # safetensors writes its metadata in a random order: without canonical headers two saves of the
    # same weights differed (2 variants in 20 saves), and a rerun stage invalidated everything after it
    net = _net()
    blobs = set()
    for i in range(20):
        path = tmp_path / f"m{i}.safetensors"
        save_model(path, net, _meta(net))
        blobs.add(path.read_bytes())
    assert len(blobs) == 1
    blob = blobs.pop()
    assert ckpt.canonical_safetensors(blob) == blob  # already canonical
    loaded, _ = load_model(tmp_path / "m0.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), net.state_dict().values()))


def test_canonical_safetensors_rejects_what_is_not_safetensors() -> None:
    with pytest.raises(ValueError, match="not a safetensors file"):
        ckpt.canonical_safetensors(b"\x00" * 4)
    with pytest.raises(ValueError, match="beyond the end"):
        ckpt.canonical_safetensors((1000).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match="not JSON"):
        ckpt.canonical_safetensors((2).to_bytes(8, "little") + b"{x")


def test_eval_checkpoint_reports_a_bad_checkpoint_in_one_line(tmp_path):
    # issue 13 (messages): a wrong or corrupt checkpoint gave a traceback
    from pathlib import Path

    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"not a safetensors file")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_checkpoint.py"
    res = subprocess.run([sys.executable, str(script), str(bad), "--game", "Pong"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert str(bad) in res.stderr or bad.name in res.stderr
