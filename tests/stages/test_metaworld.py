"""The Meta-World pipeline's params, its stages (``metaworld_pretrain`` and ``metaworld_finetune`` on the
real package, ``metaworld_report`` on hand-made runs) and its cumulative regret."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.pipeline_repo import ROOT
from xfer.config import deep_merge
from xfer.metaworld_config import MetaWorldPipelineConfig, metaworld_run_name
from xfer.params import build_params
from xfer.stages import metaworld_finetune, metaworld_pretrain, metaworld_report
from xfer.stages.common import ParamsError, StageInputError, load_metaworld_params
from xfer.stages.metaworld_eval import cumulative_regret

PRESETS = ROOT / "presets" / "metaworld"


def test_every_metaworld_preset_validates_and_the_params_file_is_the_default_preset():
    for name in ("default", "paper_ml10", "paper_ml45"):
        cfg = MetaWorldPipelineConfig.model_validate(build_params(name, [], PRESETS, pipeline="metaworld"))
        for v in cfg.variants:  # every variant's pretraining and finetuning config builds
            cfg.pretrain_config(v, cfg.seeds[0])
            cfg.finetune_config(v, cfg.seeds[0])
    paper = MetaWorldPipelineConfig.model_validate(build_params("paper_ml45", [], PRESETS, pipeline="metaworld"))
    assert (paper.benchmark, paper.train_tasks, paper.test_tasks) == ("ML45", "all", "all")
    pre, fine = paper.pretrain_config("mz", 0), paper.finetune_config("mz_spr", 2)
    assert (pre.env_steps, fine.env_steps, pre.env.split, fine.env.split) == (50_000_000, 10_000_000, "train", "test")
    assert (pre.env.observation, pre.env.stack, pre.env.reward_history, pre.env.camera) == ("pixels", 15, 1, "corner3")
    assert (pre.mcts.num_simulations, pre.mcts.num_samples, pre.replay.reanalyse_fraction) == (50, 20, 0.95)
    assert (pre.batch_size, pre.optim.lr, fine.loss.spr, fine.seed) == (1024, 1e-4, 1.0, 2)
    assert paper.reference["mz"] == {"train": 0.772, "zero_shot": 0.177, "finetuned": 0.767}
    ml10 = MetaWorldPipelineConfig.model_validate(build_params("paper_ml10", [], PRESETS, pipeline="metaworld"))
    assert ml10.reference["mz_recon"] == {"train": 0.978, "zero_shot": 0.25, "finetuned": 0.975}
    assert ml10.pretrain_config("mz_contr", 0).loss.contrastive == 0.1
    written = yaml.safe_load((ROOT / "metaworld" / "params.yaml").read_text())
    assert written == build_params("default", [], PRESETS, pipeline="metaworld"), \
        "metaworld/params.yaml is stale: run `xfer params --pipeline metaworld --preset default`"


@pytest.mark.parametrize("override, message", [
    ("train_tasks=[reach-v3, reach]", "train_tasks: unknown Meta-World task 'reach' for ML10 train (did you mean"),
    ("test_tasks=[reach-v3]", "test_tasks: Meta-World task 'reach-v3' is an ML10 train task, not a test task"),
    ("train_tasks=[]", "train_tasks must be 'all' or a non-empty list"),
    ("benchmark=ML1", "ML1 is one task with different goals"),
    ("benchmark=ML5", "benchmark: Input should be 'ML1', 'ML10' or 'ML45'"),
    ("pretrain.mcts.policy_target=completed_q", "continuous actions: set mcts.policy_target: visits"),
    ("variants={'MZ big': {}}", "variant name 'MZ big'"),
    ("reference={nope: {train: 0.5}}", "reference names variants that do not exist: ['nope']"),
    ("pretrain.env.suite=procgen", "pretrain.env"),
])
def test_bad_metaworld_params_are_refused_with_the_key_before_any_work(override, message):
    with pytest.raises(ValueError) as info:
        build_params("default", [override], PRESETS, pipeline="metaworld")
    assert message in str(info.value)


def test_ml1_takes_one_task_on_both_splits():
    cfg = MetaWorldPipelineConfig.model_validate(build_params(
        "default", ["benchmark=ML1", "train_tasks=[push-v3]", "test_tasks=[push-v3]"], PRESETS, pipeline="metaworld"))
    assert cfg.finetune_config("mz", 0).env.task == "push-v3"


def test_a_params_file_with_an_unknown_task_fails_to_load_naming_the_choices(tmp_path):
    data = build_params("default", [], PRESETS, pipeline="metaworld")
    data["test_tasks"] = ["door-close-v2"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError, match="unknown Meta-World task 'door-close-v2'.*did you mean 'door-close-v3'"):
        load_metaworld_params(tmp_path / "params.yaml")
    with pytest.raises(ParamsError, match="create it with `xfer params --preset default --pipeline metaworld`"):
        load_metaworld_params(tmp_path / "missing.yaml")


def test_cumulative_regret_counts_failed_episodes_against_agent_steps():
    rows = [{"env_steps": "10", "episode_success": ""}, {"env_steps": "500", "episode_success": "0.0"},
            {"env_steps": "500", "episode_success": "1.0"}, {"env_steps": "700"},
            {"env_steps": "1000", "episode_success": "0.0"}]
    steps, regret = cumulative_regret(rows)
    assert steps.tolist() == [500.0, 1000.0] and regret.tolist() == [1.0, 2.0]  # one point per step


MICRO = {"env_steps": 120, "num_envs": 2, "start_transitions": 40, "batch_size": 8, "train_ratio": 0.25,
         "eval_every": 120, "eval_episodes": 2, "eval_max_steps": 500, "checkpoint_every": 60,
         "replay": {"segment_length": 20}, "mcts": {"num_simulations": 2, "num_samples": 3}}


def _micro_params(**extra) -> MetaWorldPipelineConfig:
    data = build_params("default", [], PRESETS, pipeline="metaworld")
    data = deep_merge(data, {"benchmark": "ML10", "train_tasks": ["reach-v3"], "test_tasks": ["door-close-v3"],
                             "seeds": [0], "eval_episodes": 1, "random_episodes": 1, "pretrain": MICRO,
                             "finetune": {"env_steps": 500, "num_envs": 1, "eval_every": 500}, **extra})
    return MetaWorldPipelineConfig.model_validate(data)


def _stage_dir(tmp_path: Path, monkeypatch) -> Path:
    """A ``metaworld/`` folder with the pipeline's dvc.yaml (the params and code each stage declares) and
    ``../code-deps/`` fingerprints, as the stages find them under ``dvc repro``."""
    pipeline = tmp_path / "metaworld"
    pipeline.mkdir()
    monkeypatch.chdir(pipeline)
    shutil.copy(ROOT / "metaworld" / "dvc.yaml", pipeline / "dvc.yaml")
    (tmp_path / "code-deps").mkdir()
    for stage in ("metaworld_pretrain", "metaworld_finetune"):
        (tmp_path / "code-deps" / f"{stage}.json").write_text('{"files": {"xfer/train.py": "a"}}')
    return pipeline


def test_pretrain_then_finetune_and_scratch_on_the_real_tasks(tmp_path, monkeypatch):
    _stage_dir(tmp_path, monkeypatch)
    p = _micro_params()
    name = metaworld_run_name("mz", 0)
    pre_out = Path("runs") / "pretrain" / name
    summary = metaworld_pretrain.run(p, "mz", 0, pre_out, tmp_path / "work_pre", progress=False)
    assert {f.name for f in pre_out.iterdir()} == {"model.safetensors", "model.json", "metrics", "learning_curve.png",
                                                  "summary.json"}
    assert json.loads((pre_out / "summary.json").read_text()) == summary
    assert json.loads((pre_out / "model.json").read_text())["action_dim"] == 4  # a Box network's sidecar
    assert (summary["frames"], summary["benchmark"]) == (120, "ML10")
    assert set(summary["train"]["tasks"]) == {"reach-v3"} and set(summary["zero_shot"]["tasks"]) == {"door-close-v3"}
    for part in (summary["train"], summary["zero_shot"], summary["random"]["train"], summary["random"]["test"]):
        rates = [t["success"] for t in part["tasks"].values()]
        assert part["success"] == pytest.approx(np.mean(rates)) and all(r in (0.0, 1.0) for r in rates)
    header = (pre_out / "metrics" / "eval.tsv").read_text().splitlines()[0].split("\t")
    assert "success_rate" in header
    with pytest.raises(StageInputError, match=r"variant 'mz_spr' is not in params.yaml's \['mz'\]"):
        metaworld_pretrain.run(p, "mz_spr", 0, pre_out, tmp_path / "work_x", progress=False)
    # finetuning starts from the pretrained weights: at agent step 0 its evaluation is the pretrained agent's
    fine_out = Path("runs") / "finetune" / name
    fine = metaworld_finetune.run(p, "mz", 0, "pretrained", fine_out, tmp_path / "work_fine", progress=False)
    assert fine["start"] == "pretrained" and fine["frames"] == 500 and set(fine["finetuned"]["tasks"]) == {"door-close-v3"}
    regret = (fine_out / "metrics" / "regret.tsv").read_text().splitlines()
    assert fine["episodes"] == 1 and regret[0] == "env_steps\tcumulative_regret"  # one 500-step episode
    assert regret[1:] == [f"500\t{int(fine['cumulative_regret'])}"] and fine["cumulative_regret"] in (0.0, 1.0)
    # (a scratch run is the same code from fresh weights: the flow test runs it, tests/flows/test_metaworld.py)
    with pytest.raises(StageInputError, match="--start must be one of"):
        metaworld_finetune.run(p, "mz", 0, "teacher", fine_out, tmp_path / "work_y", progress=False)


def test_finetuning_refuses_a_missing_or_discrete_checkpoint(tmp_path, monkeypatch):
    _stage_dir(tmp_path, monkeypatch)
    p = _micro_params()
    with pytest.raises(StageInputError, match=r"runs/pretrain/mz-0/model.safetensors not found; run `dvc repro "
                                              r"pretrain@mz-0` first"):
        metaworld_finetune.run(p, "mz", 0, "pretrained", Path("out"), tmp_path / "w", progress=False)
    from tests.specs import ATARI
    from xfer.agent import build_model, model_meta
    from xfer.checkpoint import save_model
    from xfer.config import NetConfig

    net = build_model(ATARI, NetConfig(size="tiny"), seed=0)
    path = metaworld_finetune.pretrained_model("mz", 0)
    path.parent.mkdir(parents=True)
    save_model(path, net, model_meta(ATARI, NetConfig(size="tiny"), {"Breakout": ATARI}, 0, 0, "x"))
    with pytest.raises(StageInputError, match="trained for 18 discrete actions, but the Meta-World tasks act with a "
                                              "Box of 4"):
        metaworld_finetune.run(p, "mz", 0, "pretrained", Path("out"), tmp_path / "w", progress=False)
    assert not Path("out").exists()


def _fake_runs(runs: Path, variant: str, seed: int, train: float, zero: float, fine: float, scratch: float) -> None:
    def task(rate):
        return {"success": rate, "tasks": {"door-close-v3": {"success": rate, "return": 1.0, "successes": [rate]}}}

    for kind, body in (("pretrain", {"frames": 3000, "train": task(train), "zero_shot": task(zero),
                                     "random": {"train": task(0.1), "test": task(0.0)}}),
                       ("finetune", {"frames": 2000, "finetuned": task(fine), "cumulative_regret": 3 - seed}),
                       ("scratch", {"frames": 2000, "finetuned": task(scratch), "cumulative_regret": 4})):
        d = runs / kind / metaworld_run_name(variant, seed)
        (d / "metrics").mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps(body))
        (d / "metrics" / "regret.tsv").write_text("env_steps\tcumulative_regret\n1000\t1\n2000\t"
                                                  f"{body.get('cumulative_regret', 0)}\n")
        (d / "metrics" / "eval.tsv").write_text(f"env_steps\tsuccess_rate\n0\t0.0\n3000\t{train}\n")


def test_the_report_pools_seeds_and_shows_the_paper_beside_ours(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = _micro_params(seeds=[0, 1], variants={"mz": {}, "mz_spr": {"loss": {"spr": 1.0}}},
                      reference={"mz": {"train": 0.976, "zero_shot": 0.265, "finetuned": 0.941}})
    runs = tmp_path / "runs"
    for vi, v in enumerate(p.variants):
        for s in p.seeds:
            _fake_runs(runs, v, s, train=0.5 + 0.1 * s, zero=0.25 * s, fine=0.75, scratch=0.25 + 0.5 * s + 0.1 * vi)
    summary = metaworld_report.run(p, tmp_path / "reports", runs)
    mz = summary["variants"]["mz"]
    assert mz["train"]["mean"] == pytest.approx(0.55) and mz["train"]["se"] == pytest.approx(0.05)
    assert mz["zero_shot"]["mean"] == pytest.approx(0.125) and mz["finetuned"]["se"] == pytest.approx(0.0)
    assert mz["finetuned_minus_scratch"]["difference"] == pytest.approx(0.25)
    assert mz["finetuned_minus_scratch"]["se"] == pytest.approx(0.25)  # scratch: 0.25, 0.75 -> s.e. 0.25
    assert mz["regret_saved"]["difference"] == pytest.approx(4 - 2.5)
    assert mz["random_test"]["mean"] == 0.0 and summary["tasks"]["mz/finetuned/door-close-v3"] == 0.75
    md = (tmp_path / "reports" / "report.md").read_text()
    assert "paper (Table A.6: train / zero-shot / finetuned)" in md
    assert md.split("| mz |")[1].splitlines()[0].rstrip().endswith("97.6% / 26.5% / 94.1% |")
    assert "| *uniform random* |" in md and "+25.0 ± 25.0 pp (+1.0 s.e.)" in md
    assert {f.name for f in (tmp_path / "reports").iterdir()} == {"report.md", "regret.png", "pretraining.png"}
    assert json.loads((tmp_path / "metrics" / "summary.json").read_text())["variants"]["mz"]["train"] == mz["train"]


def test_the_report_names_the_missing_run_and_keeps_the_old_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = _micro_params()
    _fake_runs(tmp_path / "runs", "mz", 0, 0.5, 0.0, 0.5, 0.0)
    shutil.rmtree(tmp_path / "runs" / "scratch")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "report.md").write_text("old")
    with pytest.raises(StageInputError, match=r"runs/scratch/mz-0/summary.json not found; run `dvc repro "
                                              r"scratch@mz-0` first"):
        metaworld_report.run(p, tmp_path / "reports", tmp_path / "runs")
    assert (tmp_path / "reports" / "report.md").read_text() == "old"
