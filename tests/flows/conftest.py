"""Fixtures for the flow tests: a real Prefect API server (the test harness: a temporary server
subprocess on loopback with a temporary SQLite database), and prefect.yaml's deployments on it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.flows.toyrepo import toy_params_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def prefect_server():
    """A real Prefect API server (subprocess on loopback, temporary SQLite DB) for the whole session.
    Yields its API URL (for subprocesses: set PREFECT_API_URL to it)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    # a loaded 2-core machine can take well over the default 30 s to start the server
    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


@pytest.fixture
def fast_retries(monkeypatch):
    """run_stage with no delay between retries (same retry count and retry condition)."""
    from flows import pipeline, stage_tasks

    monkeypatch.setattr(pipeline, "run_stage", pipeline.run_stage.with_options(retry_delay_seconds=0))
    monkeypatch.setattr(stage_tasks, "params_command", toy_params_command)
    return pipeline


@dataclass(frozen=True)
class Deployed:
    """The server prefect.yaml was deployed to: its API URL and a PREFECT_HOME for subprocesses."""

    api_url: str
    home: Path
    # a checkout path that exists only on the deploying host: set as XFER_REPO while deploying
    deploying_host_repo: str = "/home/deployer/xfer"

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of a prefect subprocess (CLI, worker) talking to this server, plus ``extra``."""
        env = dict(os.environ, PREFECT_API_URL=self.api_url, PREFECT_HOME=str(self.home), DVC_NO_ANALYTICS="1",
                   **extra)
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        return env


@pytest.fixture(scope="session")
def deployed(prefect_server, tmp_path_factory) -> Deployed:
    """Work pools gpu and cpu (process type) plus `prefect deploy --all --no-prompt` from the repo root,
    once per session."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client:
        for pool in ("gpu", "cpu"):
            try:
                client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            except ObjectAlreadyExists:
                pass
    dep = Deployed(api_url=prefect_server, home=tmp_path_factory.mktemp("prefect-home"))
    # XFER_REPO set in the deploying shell must not be frozen into the deployments (issue 13)
    proc = subprocess.run([sys.executable, "-m", "prefect", "deploy", "--all", "--no-prompt"], cwd=ROOT,
                          env=dep.env(XFER_REPO=dep.deploying_host_repo), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dep
