"""The Prefect flow driving the real Meta-World pipeline (metaworld/dvc.yaml: real stages, real Meta-World
tasks, micro params) against a real Prefect API server on loopback; its form, command line and artifacts."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.metaworld_repo import make_metaworld_repo


@pytest.mark.timeout(1200)
def test_flow_runs_the_real_metaworld_pipeline_and_dvc_records_it(prefect_server, tmp_path, monkeypatch):
    from flows import metaworld
    from flows.metaworld_params import MetaWorldParams
    from flows.params import params_command
    from tests.metaworld_repo import MICRO
    from tests.pipeline_repo import published_artifacts, sh

    # one torch thread in the stage commands: the training loop's two intra-op threads on a 2-core host
    # that also runs the Prefect server and client spin against each other (measured: 4x slower)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    repo = make_metaworld_repo(tmp_path / "repo")
    # the form's overrides go through `xfer params --pipeline metaworld`: with the other micro keys they
    # write the very params the helper committed
    form = MetaWorldParams(benchmark="ML1", train_tasks=["reach-v3"], test_tasks="reach-v3", seeds=[0],
                           device="cpu", pretrain_env_steps=120, finetune_env_steps=120)
    keys = set(form.overrides())
    sh([*params_command(form), *sum([["--set", s] for s in MICRO if s.split("=")[0] not in keys], [])], repo)
    committed = sh("git show HEAD:metaworld/params.yaml", repo).stdout.splitlines()
    written = (repo / "metaworld" / "params.yaml").read_text().splitlines()
    assert written[1:] == committed[1:]  # the first line records the command

    state = metaworld.metaworld_pipeline(params=MetaWorldParams(write_params=False), repo=str(repo),
                                         return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert [s["stage"] for s in result["stages"]] == ["code", *(f"metaworld/dvc.yaml:{k}@mz-0"
                                                                for k in ("pretrain", "finetune", "scratch")),
                                                      "metaworld/dvc.yaml:report"]
    assert all(s["status"] == "ran" for s in result["stages"])
    summary = json.loads((repo / "metaworld" / "metrics" / "summary.json").read_text())
    assert set(summary["variants"]) == {"mz"}
    # every stage is in metaworld/dvc.lock: nothing left to run
    status = sh("dvc status metaworld/dvc.yaml", repo).stdout
    assert "up to date" in status, status
    published = published_artifacts()
    assert {"metaworld-report", "metaworld-summary", "metaworld-aggregate"} <= set(published)
    assert set(result["artifacts"]) == {"metaworld-report", "metaworld-summary", "metaworld-aggregate"}
    aggregate = published["metaworld-aggregate"].data
    aggregate = json.loads(aggregate) if isinstance(aggregate, str) else aggregate
    assert aggregate[0]["name"] == "mz" and {"train.mean", "zero_shot.mean", "finetuned.mean",
                                             "scratch.mean"} <= set(aggregate[0])


def test_the_metaworld_command_line_builds_the_form_and_refuses_bad_lists():
    from flows import metaworld
    from flows.metaworld_params import MetaWorldParams
    from flows.params import params_command

    args = metaworld.build_parser().parse_args(["--benchmark", "ML10", "--train-tasks", "reach-v3,push-v3",
                                                "--test-tasks", "all", "--seeds", "0,1", "--device", "cuda",
                                                "--pretrain-env-steps", "5000", "--finetune-env-steps", "3000"])
    params = MetaWorldParams(preset=args.preset, benchmark=args.benchmark, train_tasks=args.train_tasks,
                             test_tasks=args.test_tasks, seeds=args.seeds, device=args.device,
                             pretrain_env_steps=args.pretrain_env_steps, finetune_env_steps=args.finetune_env_steps)
    argv = params_command(params)
    assert argv[argv.index("params"):argv.index("params") + 5] == ["params", "--pipeline", "metaworld", "--preset",
                                                                   "default"]
    assert {'benchmark="ML10"', 'train_tasks=["reach-v3", "push-v3"]', 'test_tasks="all"', "seeds=[0, 1]",
            'device="cuda"', "pretrain.env_steps=5000", "finetune.env_steps=3000"} <= set(argv)
    assert MetaWorldParams(train_tasks=[], seeds=[]).overrides() == {}  # emptied lists: the preset's
    with pytest.raises(ValueError, match="duplicates"):
        MetaWorldParams(train_tasks=["reach-v3", "reach-v3"])
    with pytest.raises(ValueError, match="either all or task names"):
        MetaWorldParams(test_tasks=["all", "reach-v3"])
    assert metaworld.main(["--seeds", "0,0"]) == 2
    root = Path(metaworld.__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "flows/metaworld.py", "--help"], cwd=root, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and "metaworld/dvc.yaml" in res.stdout and "--train-tasks" in res.stdout, res.stderr


def test_metaworld_stages_map_to_their_pipeline_and_pool_and_the_stage_flow_takes_their_params():
    from pydantic import TypeAdapter

    from flows.artifacts import summary_tables
    from flows.metaworld_params import MetaWorldParams
    from flows.params import AnyParams
    from flows.procgen_params import ProcgenParams
    from flows.routing import pool_for_stage, stage_pipeline
    from flows.xtra_params import PipelineParams

    assert stage_pipeline("metaworld/dvc.yaml:report") == "metaworld"
    assert stage_pipeline("procgen/dvc.yaml:train@bigfish-mz-all-0") == "procgen"
    assert stage_pipeline("finetune@Pong-xtra-0") == stage_pipeline("report") == "xtra"
    for kind in ("pretrain", "finetune", "scratch"):
        assert pool_for_stage(f"metaworld/dvc.yaml:{kind}@mz-0") == "gpu"
    assert pool_for_stage("metaworld/dvc.yaml:report") == "cpu"
    adapter = TypeAdapter(AnyParams)
    sent = MetaWorldParams(test_tasks="all", seeds=[1]).model_dump(mode="json")  # as _run_remote sends them
    assert adapter.validate_python(sent) == MetaWorldParams(test_tasks="all", seeds=[1])
    assert isinstance(adapter.validate_python({"pipeline": "procgen"}), ProcgenParams)
    assert isinstance(adapter.validate_python({"pipeline": "xtra"}), PipelineParams)

    stat = {"mean": 0.5, "se": 0.1, "seeds": [0.4, 0.6]}
    data = {"variants": {"mz": {"train": stat, "zero_shot": stat, "finetuned": stat, "scratch": stat,
                                "finetuned_minus_scratch": {"difference": 0.0, "se": None, "z": None}}},
            "tasks": {"mz/train/reach-v3": 1.0, "mz/zero_shot/door-close-v3": 0.0, "mz/finetuned/door-close-v3": 0.5,
                      "mz/scratch/door-close-v3": 0.25},
            "seeds": [0, 1], "frames": {"pretrain": 100, "finetune": 50}}
    tables = summary_tables(data, "metaworld")
    assert tables["metaworld-summary"] == [
        {"name": "mz/reach-v3", "train": 1.0, "zero_shot": None, "finetuned": None, "scratch": None},
        {"name": "mz/door-close-v3", "train": None, "zero_shot": 0.0, "finetuned": 0.5, "scratch": 0.25}]
    assert tables["metaworld-aggregate"] == [
        {"name": "mz", "train.mean": 0.5, "train.se": 0.1, "zero_shot.mean": 0.5, "zero_shot.se": 0.1,
         "finetuned.mean": 0.5, "finetuned.se": 0.1, "scratch.mean": 0.5, "scratch.se": 0.1,
         "finetuned_minus_scratch.difference": 0.0, "finetuned_minus_scratch.se": None,
         "finetuned_minus_scratch.z": None}]
