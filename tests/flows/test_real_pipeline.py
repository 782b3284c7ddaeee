"""The Prefect flow driving the real XTRA pipeline (real stages, real Atari games, micro params)
against a real Prefect API server on loopback."""

import json

import pytest

from tests.pipeline_repo import make_pipeline_repo, published_artifacts


# about 2-3 min on a quiet 2-core machine; the whole pipeline, so a loaded machine needs more than
# the suite's default 600 s
@pytest.mark.timeout(1800)
def test_flow_runs_the_real_pipeline(prefect_server, tmp_path):
    from flows import pipeline

    repo = make_pipeline_repo(tmp_path / "repo")
    state = pipeline.xtra_pipeline(params=pipeline.PipelineParams(write_params=False), repo=str(repo),
                                   return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    names = [s["stage"] for s in result["stages"]] if isinstance(result, dict) and "stages" in result else []
    assert "report" in json.dumps(result) and "distill" in json.dumps(result), names
    assert (repo / "reports" / "report.md").exists()
    summary = json.loads((repo / "metrics" / "summary.json").read_text())
    assert set(summary["runs"]) == {"DemonAttack-xtra", "DemonAttack-scratch"}
    keys = set(published_artifacts())
    assert "xtra-report" in keys and "xtra-summary" in keys
