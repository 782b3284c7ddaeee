"""prefect.yaml against a real Prefect API server: `prefect deploy --all` creates the six deployments
with the typed parameter form; (slow) distributed mode with real process workers on two checkouts that
exchange outputs only through a DVC remote and run-cache."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.flows.toyrepo import PIPELINE_ORDER, make_toy_repo

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = {"xtra-pipeline/default": "cpu", "xtra-stage/gpu": "gpu", "xtra-stage/cpu": "cpu",
               "procgen-pipeline/default": "cpu", "metaworld-pipeline/default": "cpu",
               "explore-pipeline/default": "cpu"}
def test_prefect_yaml_deploys_every_deployment_with_a_typed_form(deployed):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deps = {name: client.read_deployment_by_name(name) for name in DEPLOYMENTS}
    for name, pool in DEPLOYMENTS.items():
        assert deps[name].work_pool_name == pool
        assert deps[name].pull_steps and deployed.deploying_host_repo not in str(deps[name].pull_steps)
    assert deps["xtra-pipeline/default"].global_concurrency_limit.limit == 1  # one pipeline run at a time
    schema = deps["xtra-pipeline/default"].parameter_openapi_schema
    assert set(schema["properties"]) == {"params", "repo", "distributed", "parallel"}
    assert "XFER_REPO" in schema["properties"]["repo"]["description"]
    assert "xtra-stage/gpu" in schema["properties"]["distributed"]["description"]
    form = schema["definitions"]["PipelineParams"]["properties"]
    assert {"preset", "pretrain_games", "targets", "seed", "seeds", "collect_env_steps", "teacher_train_steps",
            "distill_train_steps", "finetune_env_steps", "push"} <= set(form)
    assert form["preset"]["enum"] == ["default", "cpu-demo", "shooter", "maze", "diverse"]
    assert set(deps["xtra-stage/gpu"].parameter_openapi_schema["properties"]) >= {"stage", "repo", "pull", "push"}
    procgen = deps["procgen-pipeline/default"].parameter_openapi_schema
    assert deps["procgen-pipeline/default"].global_concurrency_limit.limit == 1
    form = procgen["definitions"]["ProcgenParams"]["properties"]
    assert {"preset", "games", "levels", "seeds", "env_steps", "push", "pull"} <= set(form)
    assert form["preset"]["enum"] == ["default", "paper", "planning"]
    metaworld = deps["metaworld-pipeline/default"].parameter_openapi_schema
    assert deps["metaworld-pipeline/default"].global_concurrency_limit.limit == 1
    assert set(metaworld["properties"]) == {"params", "repo", "distributed", "parallel"}
    form = metaworld["definitions"]["MetaWorldParams"]["properties"]
    assert {"preset", "benchmark", "train_tasks", "test_tasks", "seeds", "device", "pretrain_env_steps",
            "finetune_env_steps", "push", "pull", "write_params"} <= set(form)
    assert form["preset"]["enum"] == ["default", "paper_ml10", "paper_ml45"]
    explore = deps["explore-pipeline/default"].parameter_openapi_schema
    assert deps["explore-pipeline/default"].global_concurrency_limit.limit == 1
    assert set(explore["properties"]) == {"params", "repo", "distributed", "parallel"}
    assert "xtra-stage/gpu" in explore["properties"]["distributed"]["description"]
    form = explore["definitions"]["ExploreParams"]["properties"]
    assert {"preset", "games", "seeds", "device", "explore_env_steps", "finetune_env_steps", "intrinsic", "push",
            "pull", "write_params"} <= set(form)
    assert form["preset"]["enum"] == ["default", "gpu_atari", "gpu_procgen", "gpu_metaworld"]
    # a stage run takes any pipeline's params, told apart by `pipeline`
    stage_defs = deps["xtra-stage/gpu"].parameter_openapi_schema["definitions"]
    assert {"PipelineParams", "ProcgenParams", "MetaWorldParams", "ExploreParams"} <= set(stage_defs)


def test_pull_steps_cd_into_the_workers_checkout(deployed, tmp_path):
    # the first two pull steps as a worker runs them, with this checkout as the worker's XFER_REPO
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        steps = client.read_deployment_by_name("xtra-stage/gpu").pull_steps[:2]
    script = ("import asyncio, json, os, sys\n"
              "from prefect.deployments.steps.core import run_steps\n"
              "asyncio.run(run_steps(json.loads(sys.argv[1])))\n"
              "print(os.getcwd())\n")
    env = deployed.env(XFER_REPO=str(ROOT))
    res = subprocess.run([sys.executable, "-c", script, json.dumps(steps)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == str(ROOT)
    env["XFER_REPO"] = str(tmp_path)  # not a checkout: a clear message
    res = subprocess.run([sys.executable, "-c", script, json.dumps(steps)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "XFER_REPO must name this host's xfer checkout" in res.stderr + res.stdout


def _start_worker(pool: str, checkout: Path, deployed, log: Path, limit: int | None = None) -> subprocess.Popen:
    env = deployed.env(XFER_REPO=str(checkout), PREFECT_WORKER_QUERY_SECONDS="1", XFER_STAGE_POLL_SECONDS="1")
    with open(log, "w") as fh:
        return subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", pool,
                                 *(["--limit", str(limit)] if limit else [])],
                                cwd=checkout, env=env, stdout=fh, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # the process worker shuts down cleanly on SIGINT
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_distributed_mode_runs_heavy_stages_on_gpu_workers_and_light_on_cpu(deployed, tmp_path):
    """Three host checkouts (two gpu workers, one run at a time each, as flows/gpu_workers.py starts them;
    one cpu worker) exchange outputs only through a DVC remote; with parallel=2 the items of each heavy
    group go out together, so both gpu workers take stages, and each stage runs exactly once."""
    from prefect.deployments import run_deployment

    # one "origin" repo, three host checkouts (git clones) and a DVC remote they share
    origin = make_toy_repo(tmp_path / "origin", remote=tmp_path / "dvc-remote")
    shutil.copytree(ROOT / "flows", origin / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "add", "-A"], cwd=origin, check=True)
    subprocess.run([*git, "commit", "-qm", "toy"], cwd=origin, check=True)
    hosts = {name: tmp_path / f"{name}-host" for name in ("gpu0", "gpu1", "cpu")}
    for checkout in hosts.values():
        subprocess.run(["git", "clone", "-q", str(origin), str(checkout)], check=True)
    workers = [_start_worker(name.rstrip("01"), checkout, deployed, tmp_path / f"{name}-worker.log",
                             limit=1 if name.startswith("gpu") else None)
               for name, checkout in hosts.items()]
    try:
        fr = run_deployment("xtra-pipeline/default", as_subflow=False, timeout=420, poll_interval=2,
                            parameters={"params": {"write_params": False}, "distributed": True, "parallel": 2})
    finally:
        for w in workers:
            _stop(w)
    logs = "\n".join(p.read_text()[-3000:] for p in tmp_path.glob("*-worker.log"))
    assert fr.state is not None and fr.state.is_completed(), f"{fr.state}\n{logs}"

    def ran(checkout: Path) -> dict[str, int]:
        return {p.name.removesuffix(".count"): int(p.read_text()) for p in (checkout / "attempts").glob("*.count")}

    heavy = {s for s in PIPELINE_ORDER if s.split("@")[0] in {"collect", "teacher", "distill", "finetune"}}
    gpu0, gpu1 = ran(hosts["gpu0"]), ran(hosts["gpu1"])
    assert set(gpu0) | set(gpu1) == heavy and not set(gpu0) & set(gpu1), (gpu0, gpu1)
    assert gpu0 and gpu1, (gpu0, gpu1)  # a wave's two items went to the two workers at once
    assert set(gpu0.values()) | set(gpu1.values()) == {1}  # no stage ran twice
    assert set(ran(hosts["cpu"])) == {"evaluate", "report"}  # upstream outputs came from the run-cache
    assert "# Toy report" in (hosts["cpu"] / "reports" / "report.md").read_text()
