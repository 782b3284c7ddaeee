"""Fixtures for the flow tests: a real Prefect API server (the test harness: a temporary server
subprocess on loopback with a temporary SQLite database)."""

from __future__ import annotations

import pytest

from tests.flows.toyrepo import toy_params_command


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
    from flows import pipeline

    monkeypatch.setattr(pipeline, "run_stage", pipeline.run_stage.with_options(retry_delay_seconds=0))
    monkeypatch.setattr(pipeline, "params_command", toy_params_command)
    return pipeline
