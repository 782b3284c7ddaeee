"""The Prefect flow driving the real exploration pipeline (explore/dvc.yaml: real stages, real UpNDown,
micro params) against a real Prefect API server on loopback; its form, command line, stage routing and
artifacts."""

import json
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from tests.explore_repo import make_explore_repo

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_flow_runs_the_real_exploration_pipeline_and_dvc_records_it(prefect_server, tmp_path, monkeypatch):
    from flows import explore
    from flows.explore_params import ExploreParams
    from tests.pipeline_repo import published_artifacts, sh

    # one torch thread per stage command: see tests/flows/test_metaworld.py (2 cores shared with the server)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    repo = make_explore_repo(tmp_path / "repo")
    state = explore.explore_pipeline(params=ExploreParams(write_params=False), repo=str(repo), return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert [s["stage"] for s in result["stages"]] == [
        "code", *(f"explore/dvc.yaml:{s}" for s in ("explore@UpNDown-mz-0", "random@UpNDown-0",
                                                    "transfer@UpNDown-mz-all-0", "scratch@UpNDown-mz-0", "evaluate",
                                                    "report"))]
    assert all(s["status"] == "ran" for s in result["stages"])
    summary = json.loads((repo / "explore" / "metrics" / "summary.json").read_text())
    assert set(summary["games"]) == {"UpNDown"} and set(summary["games"]["UpNDown"]["agents"]) == {"mz"}
    # every stage is in explore/dvc.lock: nothing left to run
    status = sh("dvc status explore/dvc.yaml", repo).stdout
    assert "up to date" in status, status
    published = published_artifacts()
    assert {"explore-report", "explore-summary"} <= set(published)
    assert set(result["artifacts"]) == {"explore-report", "explore-summary"}
    rows = published["explore-summary"].data
    rows = json.loads(rows) if isinstance(rows, str) else rows
    assert rows[0]["name"] == "UpNDown" and "agents.mz.transfers.all.mean_score.mean" in rows[0]


def test_the_explore_command_line_builds_the_form_and_xfer_params_takes_its_overrides():
    from flows import explore
    from flows.explore_params import ExploreParams
    from flows.params import params_command
    from xfer.exploration.config import ExplorePipelineConfig
    from xfer.params import PIPELINE_FILES, build_params

    args = explore.build_parser().parse_args(["--games", "UpNDown,Breakout", "--seeds", "0,1", "--device", "cuda",
                                              "--explore-env-steps", "5000", "--finetune-env-steps", "2000",
                                              "--intrinsic", "disagreement", "--keep-params", "--push"])
    params = explore.params_from_args(args)
    assert params == ExploreParams(games=["UpNDown", "Breakout"], seeds=[0, 1], device="cuda", explore_env_steps=5000,
                                   finetune_env_steps=2000, intrinsic="disagreement", push=True, write_params=False)
    argv = params_command(params)
    i = argv.index("params")
    assert argv[i:i + 5] == ["params", "--pipeline", "explore", "--preset", "default"]
    sets = [argv[j + 1] for j in range(i, len(argv) - 1) if argv[j] == "--set"]
    assert sets == ['games=["UpNDown", "Breakout"]', "seeds=[0, 1]", 'device="cuda"', "explore.env_steps=5000",
                    "finetune.env_steps=2000", 'intrinsic.kind="disagreement"']
    # the keys are explore/params.yaml's: `xfer params --pipeline explore` takes them as they are
    preset_dir = PIPELINE_FILES["explore"][0]
    cfg = ExplorePipelineConfig.model_validate(build_params("default", sets, preset_dir, pipeline="explore"))
    assert (cfg.games, cfg.seeds, cfg.device, cfg.intrinsic.kind) == (["UpNDown", "Breakout"], [0, 1], "cuda",
                                                                      "disagreement")
    assert cfg.explore_config("Breakout", "mz", 1).env_steps == 5000
    assert cfg.finetune_config("UpNDown", "ql", 0).env_steps == 2000
    # emptied lists and unset fields: the preset's
    assert ExploreParams(games=[], seeds=[]).overrides() == {} == ExploreParams(games=" , ").overrides()
    assert ExploreParams(games="UpNDown, Breakout").games == ["UpNDown", "Breakout"]
    with pytest.raises(ValueError, match="duplicates"):
        ExploreParams(games=["UpNDown", "UpNDown"])
    with pytest.raises(ValueError, match="non-negative"):
        ExploreParams(seeds=[-1])
    with pytest.raises(ValueError):
        ExploreParams(intrinsic="count")
    assert explore.main(["--seeds", "0,0"]) == 2
    assert explore.main(["--explore-env-steps", "0"]) == 2
    assert explore.main(["--parallel", "2"]) == 2  # parallel dispatch is for distributed mode only
    assert explore.main(["--distributed", "--parallel", "0"]) == 2
    res = subprocess.run([sys.executable, "flows/explore.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and "explore/dvc.yaml" in res.stdout and "--intrinsic" in res.stdout, res.stderr


def test_the_form_offers_every_explore_preset():
    from flows.explore_params import ExplorePreset

    presets = {p.stem for p in (ROOT / "presets" / "explore").glob("*.yaml") if not p.name.startswith("_")}
    assert set(get_args(ExplorePreset)) == presets


def test_explore_stages_map_to_their_pipeline_and_pool_and_the_stage_flow_takes_their_params():
    from pydantic import TypeAdapter

    from flows.artifacts import PIPELINE_DIRS
    from flows.explore_params import ExploreParams
    from flows.metaworld_params import MetaWorldParams
    from flows.params import AnyParams
    from flows.routing import order_stages, pool_for_stage, stage_pipeline

    stages = ["explore/dvc.yaml:explore@UpNDown-mz-0", "explore/dvc.yaml:random@UpNDown-0",
              "explore/dvc.yaml:transfer@UpNDown-mz-all-0", "explore/dvc.yaml:scratch@UpNDown-mz-0",
              "explore/dvc.yaml:evaluate", "explore/dvc.yaml:report"]
    assert order_stages(stages) == stages  # explore/dvc.yaml's own order (`dvc stage list`)
    assert [pool_for_stage(s) for s in stages] == ["gpu", "cpu", "gpu", "gpu", "gpu", "cpu"]
    assert {stage_pipeline(s) for s in stages} == {"explore"}
    assert PIPELINE_DIRS["explore"] == Path("explore")
    adapter = TypeAdapter(AnyParams)
    sent = ExploreParams(games=["Breakout"], intrinsic="rnd").model_dump(mode="json")  # as _run_remote sends them
    assert adapter.validate_python(sent) == ExploreParams(games=["Breakout"], intrinsic="rnd")
    assert isinstance(adapter.validate_python({"pipeline": "metaworld"}), MetaWorldParams)
