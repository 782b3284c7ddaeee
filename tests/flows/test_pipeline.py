"""The xtra-pipeline flow against a real Prefect API server, on a toy DVC pipeline with the real stage
groups: ordering, one task run per stage, DVC skipping unchanged stages, failures and retries, artifacts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.flows.toyrepo import PIPELINE_ORDER, make_toy_repo

ROOT = Path(__file__).resolve().parents[2]


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _task_runs(flow_run_id, expected: int, timeout: float = 30.0):
    """Task runs of a flow run, read back from the API (waits until ``expected`` are recorded)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout
    with _client() as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            done = [r for r in runs if r.state is not None and r.state.is_final()]
            if len(done) >= expected or time.monotonic() > deadline:
                return runs
            time.sleep(0.5)


def _attempts(repo: Path) -> dict[str, int]:
    return {p.name.removesuffix(".count"): int(p.read_text()) for p in (repo / "attempts").glob("*.count")}


def _outputs(repo: Path) -> dict[str, float]:
    files = [*repo.glob("data/*.txt"), *repo.glob("teachers/*.txt"), repo / "student.txt",
             *repo.glob("finetune/*.txt"), repo / "metrics/eval.json", repo / "reports/report.md"]
    return {str(p.relative_to(repo)): p.stat().st_mtime_ns for p in files}


@pytest.fixture(scope="module")
def toy_run(prefect_server, tmp_path_factory):
    """One toy repo, the flow run twice on it. The report stage fails once (exit 1) on purpose, so its
    task run retries once within the first flow run."""
    import flows.pipeline as pipeline
    import flows.stage_tasks as stage_tasks
    from tests.flows.toyrepo import toy_params_command

    mp = pytest.MonkeyPatch()
    mp.setattr(pipeline, "run_stage", pipeline.run_stage.with_options(retry_delay_seconds=0))
    mp.setattr(stage_tasks, "params_command", toy_params_command)
    repo = make_toy_repo(tmp_path_factory.mktemp("toy") / "repo")
    (repo / "control").mkdir()
    (repo / "control" / "report.exit").write_text("1 1")
    try:
        params = pipeline.PipelineParams(pretrain_games=["g1", "g2"])
        first = pipeline.xtra_pipeline(params=params, repo=str(repo), return_state=True)
        attempts_after_first = _attempts(repo)
        outputs_after_first = _outputs(repo)
        second = pipeline.xtra_pipeline(params=params, repo=str(repo), return_state=True)
    finally:
        mp.undo()
    return {"repo": repo, "first": first, "second": second, "attempts_after_first": attempts_after_first,
            "outputs_after_first": outputs_after_first}


def test_every_stage_runs_once_in_order_as_its_own_task_run(toy_run):
    first = toy_run["first"]
    assert first.is_completed(), first.message
    summary = first.result()
    assert [s["stage"] for s in summary["stages"]] == PIPELINE_ORDER
    assert all(s["status"] == "ran" for s in summary["stages"])
    # each stage's command ran exactly once (report: once failing on purpose, then once more)
    assert toy_run["attempts_after_first"] == {**{s: 1 for s in PIPELINE_ORDER}, "report": 2}
    lock = yaml.safe_load((toy_run["repo"] / "dvc.lock").read_text())
    assert sorted(lock["stages"]) == sorted(PIPELINE_ORDER)

    runs = _task_runs(first.state_details.flow_run_id, expected=len(PIPELINE_ORDER) + 2)
    stage_runs = sorted((r for r in runs if r.name in PIPELINE_ORDER), key=lambda r: r.start_time)
    assert [r.name for r in stage_runs] == PIPELINE_ORDER  # one task run per stage, in dependency order
    assert all(r.state.is_completed() for r in stage_runs)
    assert {r.name: r.run_count for r in stage_runs}["report"] == 2  # retried within the same task run
    assert sum(r.name.startswith("apply-params") for r in runs) == 1


def test_second_run_with_unchanged_inputs_reruns_nothing(toy_run):
    second = toy_run["second"]
    assert second.is_completed(), second.message
    statuses = {s["stage"]: s["status"] for s in second.result()["stages"]}
    assert statuses == {s: "unchanged" for s in PIPELINE_ORDER}
    assert _attempts(toy_run["repo"]) == toy_run["attempts_after_first"]  # no stage command ran
    assert _outputs(toy_run["repo"]) == toy_run["outputs_after_first"]


def test_report_and_summary_artifacts_are_published(toy_run):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    flow_run_id = toy_run["first"].state_details.flow_run_id
    with _client() as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    by_key = {a.key: a for a in arts if a.key}
    assert by_key["xtra-report"].type == "markdown"
    assert "# Toy report" in by_key["xtra-report"].data
    runs, agg = by_key["xtra-summary"], by_key["xtra-aggregate"]
    assert runs.type == agg.type == "table"
    rows = json.loads(runs.data) if isinstance(runs.data, str) else runs.data
    assert {r["name"]: r["score"] for r in rows} == {"t-xtra": 1.5, "t-scratch": 0.5}
    rows = json.loads(agg.data) if isinstance(agg.data, str) else agg.data
    assert {r["name"]: r["hns.iqm"] for r in rows} == {"xtra": 0.25, "scratch": 0.125}
    progress = [a for a in arts if a.type == "progress"]
    assert progress and float(progress[0].data) == 100.0


def _failing_run(tmp_path, code: str):
    import flows.pipeline as pipeline

    repo = make_toy_repo(tmp_path / "repo")
    (repo / "control").mkdir()
    (repo / "control" / "collect@g1.exit").write_text(code)
    state = pipeline.xtra_pipeline(params=pipeline.PipelineParams(), repo=str(repo), return_state=True)
    return repo, state


def test_failing_stage_fails_the_flow_run_naming_the_stage_and_is_retried(prefect_server, fast_retries, tmp_path):
    repo, state = _failing_run(tmp_path, "1")
    assert state.is_failed()
    assert "stage 'collect@g1' failed" in state.message and "exited with 1" in state.message
    assert _attempts(repo) == {"collect@g1": 3}  # 1 try + 2 retries, and nothing downstream ran
    with _client() as client:
        fr = client.read_flow_run(state.state_details.flow_run_id)
    assert fr.state.is_failed()
    runs = _task_runs(state.state_details.flow_run_id, expected=3)
    (stage_run,) = [r for r in runs if r.name == "collect@g1"]
    assert stage_run.state.is_failed() and stage_run.run_count == 3


def test_bad_input_exit_code_2_is_not_retried(prefect_server, fast_retries, tmp_path):
    repo, state = _failing_run(tmp_path, "2")
    assert state.is_failed()
    assert "stage 'collect@g1' failed" in state.message and "not retried" in state.message
    assert _attempts(repo) == {"collect@g1": 1}


def _clones(tmp_path: Path, *names: str, s3=None) -> dict[str, Path]:
    """An origin toy repo (committed; its DVC remote a local directory, or with ``s3`` (tests/conftest.py's
    server) a prefix of that S3 bucket) and git clones of it, one per host."""
    origin = make_toy_repo(tmp_path / "origin", remote=None if s3 else tmp_path / "dvc-remote")
    if s3 is not None:
        dvc = [sys.executable, "-m", "dvc"]
        subprocess.run([*dvc, "remote", "add", "-d", "s3", f"s3://{s3.bucket}/{tmp_path.name}"], cwd=origin,
                       check=True)
        subprocess.run([*dvc, "remote", "modify", "s3", "endpointurl", s3.endpoint], cwd=origin, check=True)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "add", "-A"], cwd=origin, check=True)
    subprocess.run([*git, "commit", "-qm", "toy"], cwd=origin, check=True)
    hosts = {}
    for name in names:
        subprocess.run(["git", "clone", "-q", str(origin), str(tmp_path / name)], check=True)
        hosts[name] = tmp_path / name
    return hosts


def test_a_second_checkout_restores_every_upstream_stage_including_cache_false_metrics(
        prefect_server, s3_server, fast_retries, tmp_path):
    # issue 13: three checkouts exchange results only through a real S3 store; the pipeline's stage
    # shapes (cached outputs, `cache: false` metrics and plots)
    pipeline = fast_retries
    hosts = _clones(tmp_path, "gpu", "cpu", "third", s3=s3_server)
    heavy = [s for s in PIPELINE_ORDER if pipeline.pool_for_stage(s) == "gpu"]
    for stage in heavy:  # the gpu host runs collect..finetune and pushes each
        assert pipeline.xtra_stage(stage, repo=str(hosts["gpu"]), pull=True, push=True)["status"] == "ran"
    # the cpu host: evaluate restores collect..finetune (outputs *and* cache: false metrics), runs itself
    summary = pipeline.xtra_stage("evaluate", repo=str(hosts["cpu"]), pull=True, push=True)
    assert summary["status"] == "ran"
    assert _attempts(hosts["cpu"]) == {"evaluate": 1}
    for rel in ("metrics/collect_g1.json", "metrics/teacher_g2.tsv", "metrics/distill.json",
                "metrics/finetune_xtra.json"):
        assert (hosts["cpu"] / rel).read_bytes() == (hosts["gpu"] / rel).read_bytes()
    listed = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=f"{tmp_path.name}/runs/")
    assert listed["KeyCount"] >= len(heavy) + 1  # a run-cache entry per stage, in the S3 bucket
    assert pipeline.xtra_stage("report", repo=str(hosts["cpu"]), pull=True, push=True)["status"] == "ran"
    assert _attempts(hosts["cpu"]) == {"evaluate": 1, "report": 1}
    # after a distributed run, `dvc repro --pull` anywhere re-runs nothing
    from flows.stage_tasks import command_env

    res = subprocess.run([sys.executable, "-m", "dvc", "repro", "--pull"], cwd=hosts["third"],
                         env=command_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Running stage" not in res.stdout and not (hosts["third"] / "attempts").exists()
    assert (hosts["third"] / "reports" / "report.md").read_text().startswith("# Toy report")


def test_an_upstream_stage_that_would_run_on_a_worker_is_fatal_and_not_retried(
        prefect_server, fast_retries, tmp_path):
    pipeline = fast_retries
    hosts = _clones(tmp_path, "cpu")  # nothing was pushed: collect@g1 cannot be restored
    state = pipeline.xtra_stage("distill", repo=str(hosts["cpu"]), pull=True, push=True, return_state=True)
    assert state.is_failed()
    assert "upstream stage 'collect@g1' should have been restored" in state.message
    assert "xfer push --run-cache" in state.message
    # stopped before its command started: the upstream stage never ran here, nor did distill
    assert "distill" not in _attempts(hosts["cpu"]) and "collect@g1" not in _attempts(hosts["cpu"])
    runs = _task_runs(state.state_details.flow_run_id, expected=1)
    (stage_run,) = [r for r in runs if r.name == "distill"]
    assert stage_run.run_count == 1  # not retried


def test_distributed_mode_runs_up_to_parallel_items_of_a_wave_at_once(prefect_server, monkeypatch, tmp_path):
    """The dispatch logic of run_stages, with a stand-in for the pools' workers (the real workers:
    tests/flows/test_deployments.py): a wave's items overlap up to `parallel`, never across waves."""
    import threading

    from prefect import flow

    from flows import pipeline
    from flows.xtra_params import PipelineParams

    lock, running, events, peak = threading.Lock(), set(), [], [0]

    def fake_remote(stage, params, pull, push, device="cpu"):
        with lock:
            running.add(stage)
            peak[0] = max(peak[0], len(running))
            events.append(("start", stage))
        time.sleep(0.4)
        with lock:
            running.discard(stage)
            events.append(("end", stage))
        if stage == "collect@bad":
            raise RuntimeError("stage 'collect@bad' failed on the 'gpu' pool")
        return {"stage": stage, "status": "remote"}

    monkeypatch.setattr(pipeline, "_run_remote", fake_remote)

    @flow
    def run(stages: list[str], parallel: int) -> dict:
        return pipeline.run_stages(stages, PipelineParams(write_params=False), str(tmp_path), True, "test", parallel)

    stages = ["code", "collect@a", "collect@b", "collect@c", "teacher@a"]
    result = run(stages, 2)
    assert peak[0] == 2 and sorted(r["stage"] for r in result["stages"]) == sorted(stages)
    at = {(kind, stage): i for i, (kind, stage) in enumerate(events)}
    assert all(at[("end", "code")] < at[("start", s)] for s in stages[1:])
    assert all(at[("end", s)] < at[("start", "teacher@a")] for s in stages[1:4])

    events.clear()
    peak[0] = 0
    result = run(stages, 1)
    assert peak[0] == 1 and [r["stage"] for r in result["stages"]] == stages

    events.clear()
    state = run(["collect@a", "collect@bad", "teacher@a"], 2, return_state=True)
    assert state.is_failed() and "collect@bad" in state.message
    assert ("end", "collect@a") in events and ("start", "teacher@a") not in events  # the wave finished, no more
