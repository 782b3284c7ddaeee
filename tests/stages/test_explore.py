"""The exploration pipeline's params and its stages on the real game (UpNDown, micro budgets): explore,
random, transfer, scratch, evaluate and the report, run in-process in a folder holding explore/dvc.yaml."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from tests.pipeline_repo import ROOT
from xfer.exploration.config import ExplorePipelineConfig
from xfer.params import build_params
from xfer.stages import explore, explore_evaluate, explore_random, explore_report, explore_transfer
from xfer.stages.common import StageInputError, write_json

PRESETS = ROOT / "presets" / "explore"
MICRO = [
    "seeds=[0]", "transfers={all: [encoder, dynamics, reward_head, prior_heads], encoder: [encoder]}",
    "random_episodes=1", "explore.env_steps=40", "finetune.env_steps=40", "train.start_transitions=16",
    "train.num_envs=2", "train.batch_size=8", "train.eval_every=40", "train.eval_episodes=1", "train.eval_max_steps=20",
    "train.checkpoint_every=40", "train.replay.segment_length=10", "train.mcts.num_simulations=2",
    "coverage.every=10", "intrinsic.frame_size=36", "evaluate.episodes=2",
]


def test_every_explore_preset_validates_and_the_params_file_is_the_default_preset():
    for name in ("default", "gpu_atari", "gpu_procgen", "gpu_metaworld"):
        cfg = ExplorePipelineConfig.model_validate(build_params(name, [], PRESETS, pipeline="explore"))
        for agent in cfg.agents:
            cfg.explore_config(cfg.games[0], agent, cfg.seeds[0])
            cfg.finetune_config(cfg.games[0], agent, cfg.seeds[0])
    mw = ExplorePipelineConfig.model_validate(build_params("gpu_metaworld", [], PRESETS, pipeline="explore"))
    assert mw.explore_config("push-v3", "mz", 1).env.task == "push-v3"
    written = yaml.safe_load((ROOT / "explore" / "params.yaml").read_text())
    assert written == build_params("default", [], PRESETS, pipeline="explore"), \
        "explore/params.yaml is stale: run `xfer params --pipeline explore --preset default`"


@pytest.mark.parametrize("override, message", [
    ("games=[UpNDwn]", "games:"),
    ("transfers={scratch: [encoder]}", "'scratch' names the runs from fresh weights"),
    ("transfers={all: [encoder, wings]}", "transfers.all"),
    ("transfers={none: []}", "must list distinct parts"),
    ("agents={'MZ big': {}}", "agent name 'MZ big'"),
    ("intrinsic.kind=count", "intrinsic.kind"),
    ("agents={qq: {agent: {kind: ql}}}", "agents.qq with explore does not validate"),
])
def test_bad_explore_params_are_refused_with_the_key_before_any_work(override, message):
    with pytest.raises(ValueError) as info:
        build_params("default", [override], PRESETS, pipeline="explore")
    assert message in str(info.value)


@pytest.fixture()
def pipeline_dir(tmp_path, monkeypatch):
    shutil.copy(ROOT / "explore" / "dvc.yaml", tmp_path / "dvc.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_stages_explore_transfer_and_report_on_the_real_game(pipeline_dir):
    data = build_params("default", MICRO, PRESETS, pipeline="explore")
    data["agents"] = {"mz": {}}  # (an override would merge into the preset's agents)
    p = ExplorePipelineConfig.model_validate(data)
    with pytest.raises(StageInputError, match="dvc repro explore@UpNDown-mz-0"):
        explore_transfer.run(p, "UpNDown", "mz", "all", 0, explore.RUNS / "transfer" / "x", pipeline_dir / "w0", False)
    with pytest.raises(StageInputError, match="agent 'dqn' is not in params.yaml"):
        explore.run(p, "UpNDown", "dqn", 0, explore.RUNS / "explore" / "x", pipeline_dir / "w1", False)

    s = explore.run(p, "UpNDown", "mz", 0, explore.RUNS / "explore" / "UpNDown-mz-0", pipeline_dir / "w2", False)
    run_dir = explore.RUNS / "explore" / "UpNDown-mz-0"
    assert (run_dir / "model.safetensors").exists() and (run_dir / "exploration.png").stat().st_size > 1000
    rows = (run_dir / "metrics" / "exploration.tsv").read_text().splitlines()
    assert [r.split("\t")[0] for r in rows[1:]] == ["10", "20", "30", "40"]
    assert s["exploration"]["curve"][-1] == [40, s["exploration"]["cells"]] and s["exploration"]["cells"] >= 1
    assert s["intrinsic"] == "rnd" and s["env_steps"] == 40

    r = explore_random.run(p, "UpNDown", 0, explore.RUNS / "random" / "UpNDown-0")
    assert r["exploration"]["env_steps"] == 40 and r["exploration"]["curve"][-1][1] == r["exploration"]["cells"]
    assert r["eval"]["episodes"] == 1

    for transfer in ("all", "encoder"):
        t = explore_transfer.run(p, "UpNDown", "mz", transfer, 0, explore.RUNS / "transfer" / f"UpNDown-mz-{transfer}-0",
                                 pipeline_dir / f"w-{transfer}", False)
        assert t["parts"] == p.transfers[transfer] and t["curve"][0][0] == 0 and t["curve"][-1][0] == 40
    sc = explore_transfer.run(p, "UpNDown", "mz", "scratch", 0, explore.RUNS / "scratch" / "UpNDown-mz-0",
                              pipeline_dir / "w-scratch", False)
    assert sc["parts"] == []

    with pytest.raises(StageInputError, match="run `dvc repro evaluate` first"):
        explore_report.run(p)
    shutil.move(explore.RUNS / "scratch", pipeline_dir / "aside")
    with pytest.raises(StageInputError, match="dvc repro scratch@UpNDown-mz-0"):
        explore_evaluate.run(p)
    shutil.move(pipeline_dir / "aside", explore.RUNS / "scratch")
    ev = explore_evaluate.run(p)
    assert list(ev["runs"]) == ["explore:UpNDown-mz-0", "scratch:UpNDown-mz-0", "transfer:UpNDown-mz-all-0",
                                "transfer:UpNDown-mz-encoder-0"]
    assert ev["protocol"] == {"episodes": 2, "max_steps": 20}
    assert {r["max_steps"] for r in ev["runs"].values()} == {20}  # each model's own cap is recorded
    assert all(len(r["scores"]) == 2 and r["mean_score"] == pytest.approx(sum(r["scores"]) / 2)
               for r in ev["runs"].values())
    write_json(explore_evaluate.METRICS, ev)

    summary = explore_report.run(p)
    game = summary["games"]["UpNDown"]
    agent = game["agents"]["mz"]
    assert agent["zero_shot"]["values"] == [ev["runs"]["explore:UpNDown-mz-0"]["mean_score"]]
    assert agent["scratch"]["final_score"]["values"] == [ev["runs"]["scratch:UpNDown-mz-0"]["mean_score"]]
    assert agent["transfers"]["all"]["vs_scratch"]["final_score"]["difference"] == pytest.approx(
        ev["runs"]["transfer:UpNDown-mz-all-0"]["mean_score"] - ev["runs"]["scratch:UpNDown-mz-0"]["mean_score"])
    assert set(game["agents"]["mz"]["transfers"]) == {"all", "encoder"}
    diff = game["agents"]["mz"]["transfers"]["all"]["vs_scratch"]["mean_score"]
    assert diff["difference"] == pytest.approx(game["agents"]["mz"]["transfers"]["all"]["mean_score"]["mean"]
                                               - game["agents"]["mz"]["scratch"]["mean_score"]["mean"])
    assert game["agents"]["mz"]["exploration"]["cells_vs_random"]["difference"] == \
        s["exploration"]["cells"] - r["exploration"]["cells"]
    report = (pipeline_dir / "reports" / "report.md").read_text()
    assert "| mz | all | encoder, dynamics, reward_head, prior_heads |" in report and "uniform random" in report
    assert "| mz | exploration checkpoint, zero-shot |" in report and "the `evaluate` stage, 2 episodes" in report
    assert {"exploration_UpNDown.png", "transfer_UpNDown_mz.png", "variant_UpNDown_all.png",
            "variant_UpNDown_encoder.png"} <= {f.name for f in (pipeline_dir / "reports").iterdir()}
    assert json.loads((pipeline_dir / "metrics" / "summary.json").read_text()) == json.loads(json.dumps(summary))


@pytest.mark.parametrize("preset, game", [("gpu_procgen", "bigfish"), ("gpu_metaworld", "reach-v3")])
def test_explore_and_transfer_stages_run_on_procgen_and_metaworld(preset, game, pipeline_dir):
    """The GPU presets' other suites through the same stages (micro budgets, tiny network, on the CPU):
    Procgen from pixels, and Meta-World from states with Sampled MuZero (RND on the state vector, cells
    on a grid of it)."""
    data = build_params(preset, [f"games=[{game}]", "device=cpu", "train.net.size=tiny", "train.replay.capacity=2000",
                                 "intrinsic.rnd={feature_dim: 16, hidden: 32, channels: 8}", *MICRO],
                        PRESETS, pipeline="explore")
    data["agents"], data["transfers"] = {"mz": {}}, {"all": ["encoder", "dynamics", "reward_head", "prior_heads"]}
    p = ExplorePipelineConfig.model_validate(data)
    s = explore.run(p, game, "mz", 0, explore.RUNS / "explore" / f"{game}-mz-0", pipeline_dir / "w-explore", False)
    assert s["env_steps"] == 40 and s["exploration"]["cells"] >= 1
    assert s["exploration"]["curve"][-1] == [40, s["exploration"]["cells"]]
    t = explore_transfer.run(p, game, "mz", "all", 0, explore.RUNS / "transfer" / f"{game}-mz-all-0",
                             pipeline_dir / "w-transfer", False)
    assert t["parts"] == p.transfers["all"] and t["curve"][-1][0] == 40
    assert (explore.RUNS / "transfer" / f"{game}-mz-all-0" / "model.safetensors").exists()
