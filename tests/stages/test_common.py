"""xfer/stages/common.py: the params a stage declares in dvc.yaml are the params its resume hash covers."""

import hashlib
from pathlib import Path

import pytest
import yaml

from xfer.stages.common import StageInputError, declared_params, params_hash
from xfer.xtra_config import PipelineConfig

ROOT = Path(__file__).resolve().parents[2]


def params(**changes: int) -> PipelineConfig:
    """The committed params.yaml with dotted keys (``teacher__train_steps=+1``) raised by the given amount."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, delta in changes.items():
        *path, leaf = key.split("__")
        node = raw
        for part in path:
            node = node[part]
        node[leaf] += delta
    return PipelineConfig.model_validate(raw)


@pytest.fixture
def p(monkeypatch):
    monkeypatch.chdir(ROOT)  # the checkout's dvc.yaml, read only
    return params()


def test_declared_params_fill_in_the_item(p):
    keys = declared_params("finetune", {"run": "xtra"})
    assert "finetune.runs.xtra" in keys and not any("${" in k for k in keys)
    assert "seed" in declared_params("teacher") and "collect" not in declared_params("teacher")
    with pytest.raises(StageInputError, match="needs an item"):
        declared_params("finetune")


def test_missing_dvc_yaml_or_stage_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(StageInputError, match="no stage 'nope'"):
        declared_params("nope", dvc_yaml=ROOT / "dvc.yaml")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StageInputError, match="run pipeline stages from the checkout"):
        declared_params("teacher")


def test_resume_hash_follows_exactly_the_declared_params(p):
    base = params_hash(p, "teacher")
    # bc's setting: DVC does not rerun the teacher, nor does its hash move
    assert params_hash(params(baselines__bc__train_steps=1), "teacher") == base
    assert params_hash(params(teacher__train_steps=1), "teacher") != base
    assert params_hash(p, "teacher", extra={"game": "Pong"}) != params_hash(p, "teacher", extra={"game": "Qbert"})


def test_a_finetune_runs_hash_ignores_the_other_runs(p):
    runs = sorted(p.finetune.runs)
    assert len(runs) >= 2, "the default preset has several finetune runs"
    mine, other = runs[0], runs[1]
    base = params_hash(p, "finetune", {"run": mine})
    assert params_hash(params(**{f"finetune__runs__{other}__extra_train_steps": 1}), "finetune", {"run": mine}) == base
    assert params_hash(params(**{f"finetune__runs__{mine}__extra_train_steps": 1}), "finetune", {"run": mine}) != base


def test_a_resume_key_names_the_stages_params_and_its_code(tmp_path):
    from xfer.stages.common import code_fingerprint, resume_key

    (tmp_path / "pipe").mkdir()
    dvc_yaml = tmp_path / "pipe" / "dvc.yaml"
    dvc_yaml.write_text("stages:\n  train:\n    cmd: xfer stage procgen_train\n    deps:\n"
                        "      - ../code-deps/procgen_train.json\n      - data\n  plain:\n    cmd: echo\n")
    assert code_fingerprint("train", dvc_yaml) == "unknown"  # run by hand before `xfer stage code`
    (tmp_path / "code-deps").mkdir()
    (tmp_path / "code-deps" / "procgen_train.json").write_text("v1")
    one = resume_key("abc", "train", dvc_yaml)
    assert one == "abc-" + hashlib.md5(b"v1").hexdigest()[:12]
    (tmp_path / "code-deps" / "procgen_train.json").write_text("v2")
    assert resume_key("abc", "train", dvc_yaml) != one
    assert code_fingerprint("plain", dvc_yaml) == ""
    with pytest.raises(StageInputError, match="has no stage 'nope'"):
        code_fingerprint("nope", dvc_yaml)
