"""The Prefect flow driving the real Procgen pipeline (procgen/dvc.yaml: real stages, a real Procgen
game, micro params) against a real Prefect API server on loopback; and its form and command line."""

import json

import pytest

from tests.procgen_repo import make_procgen_repo


@pytest.mark.timeout(1800)
def test_flow_runs_the_real_procgen_pipeline_and_dvc_records_it(prefect_server, tmp_path):
    from flows import procgen
    from flows.procgen_params import ProcgenParams
    from tests.pipeline_repo import published_artifacts, sh

    repo = make_procgen_repo(tmp_path / "repo")
    # the form's overrides are written through `xfer params --pipeline procgen` (here: one variant's seed list)
    params = ProcgenParams(seeds=[0])
    assert params.overrides() == {"seeds": [0]}
    state = procgen.procgen_pipeline(params=ProcgenParams(write_params=False), repo=str(repo), return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    stages = [s["stage"] for s in result["stages"]]
    assert stages[0] == "code" and stages[-1] == "procgen/dvc.yaml:report"
    assert {s for s in stages if "train@" in s} == {f"procgen/dvc.yaml:train@bigfish-{v}-{lv}-0"
                                                   for v in ("mz", "mz_spr", "ql") for lv in (5, "all")}
    assert all(s["status"] == "ran" for s in result["stages"])
    summary = json.loads((repo / "procgen" / "metrics" / "summary.json").read_text())
    assert set(summary["aggregate"]) == {f"{v}/{lv}" for v in ("mz", "mz_spr", "ql", "random") for lv in (5, "all")}
    assert "| ql | all |" in (repo / "procgen" / "reports" / "report.md").read_text()
    # every stage is in procgen/dvc.lock: a plain `dvc repro` of the pipeline has nothing left to do
    status = sh("dvc status procgen/dvc.yaml", repo).stdout
    assert "up to date" in status, status
    repro = sh("dvc repro procgen/dvc.yaml", repo).stdout
    assert "Running stage" not in repro, repro
    keys = set(published_artifacts())
    assert {"procgen-report", "procgen-summary", "procgen-aggregate"} <= keys


def test_the_procgen_command_line_builds_the_form_and_refuses_bad_lists():
    from flows import procgen
    from flows.params import params_command
    from flows.procgen_params import ProcgenParams

    args = procgen.build_parser().parse_args(["--games", "coinrun,bigfish", "--levels", "10,all", "--seeds", "0,1",
                                              "--env-steps", "5000"])
    params = ProcgenParams(preset=args.preset, games=args.games, levels=args.levels, seeds=args.seeds,
                           env_steps=args.env_steps)
    argv = params_command(params)
    assert argv[argv.index("params"):argv.index("params") + 5] == ["params", "--pipeline", "procgen", "--preset",
                                                                   "default"]
    assert "games=[\"coinrun\", \"bigfish\"]" in argv and "levels=[10, \"all\"]" in argv
    assert "train.env_steps=5000" in argv
    with pytest.raises(ValueError, match="duplicates"):
        ProcgenParams(games=["coinrun", "coinrun"])
    assert procgen.main(["--seeds", "0,0"]) == 2
