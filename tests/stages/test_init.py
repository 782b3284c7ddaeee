"""Stage init@<run>: the model a finetune run starts from, copied; bad choices are clear errors."""

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from tests.specs import ATARI
from xfer import checkpoint as ckpt
from xfer.agent import build_model, model_meta
from xfer.config import NetConfig
from xfer.stages import init
from xfer.xtra_config import PipelineConfig

ROOT = Path(__file__).resolve().parents[2]


def params(**runs) -> PipelineConfig:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["finetune"]["runs"] = runs
    raw["baseline_run"] = next(iter(runs))
    return PipelineConfig.model_validate(raw)


def save(path: Path) -> bytes:
    net = build_model(ATARI, NetConfig(size="tiny", precision="fp32"), seed=0)
    ckpt.save_model(path, net, model_meta(ATARI, NetConfig(size="tiny"), {"Breakout": ATARI}, 1, 2, "h"))
    return path.read_bytes()


def test_a_run_starts_from_a_copy_of_the_model_it_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models/baselines/bc").mkdir(parents=True)
    weights = save(tmp_path / "models/baselines/bc/model.safetensors")
    p = params(frombc={"init": "bc"}, scratch={"init": "none", "cross_task": False, "task_weights": False})
    record = init.run(p, "frombc", Path("runs/init/frombc"))
    out = tmp_path / "runs/init/frombc"
    assert (out / "model.safetensors").read_bytes() == weights
    assert ckpt.load_model(out / "model.safetensors")[1].weights_sha256 == record["weights_sha256"]
    assert json.loads((out / "init.json").read_text()) == {**record, "source": "models/baselines/bc/model.safetensors"}
    # none: a marker only
    assert init.run(p, "scratch", Path("runs/init/scratch"))["source"] is None
    assert sorted(f.name for f in (tmp_path / "runs/init/scratch").iterdir()) == ["init.json"]


def test_a_missing_model_names_the_stage_that_makes_it_and_replaces_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = params(fromteacher={"init": "teacher:Assault"})
    (tmp_path / "runs/init/fromteacher").mkdir(parents=True)
    (tmp_path / "runs/init/fromteacher/init.json").write_text("old")
    with pytest.raises(FileNotFoundError, match=r"dvc repro teacher@Assault"):
        init.run(p, "fromteacher", Path("runs/init/fromteacher"))
    assert (tmp_path / "runs/init/fromteacher/init.json").read_text() == "old"
    with pytest.raises(init.StageInputError, match="unknown finetune run 'nope'"):
        init.run(p, "nope", Path("runs/init/nope"))


@pytest.mark.parametrize("runs, match", [
    ({"x": {"init": "students"}}, "init"),
    ({"x": {"init": "teacher:Pong"}}, "names no pretraining game"),
    ({"x": {"init": "bc", "transfer": []}}, "must transfer at least one"),
])
def test_bad_init_values_are_refused_by_the_params(runs, match):
    with pytest.raises(ValidationError, match=match):
        params(**runs)
