"""One writer per stage instance, and no stage outliving the `dvc repro` that started it: real
processes, real signals (the stage's work is a sleep; the guards are what is tested)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from xfer.params import write_params
from xfer.stages.guard import watched_ancestors

PRESETS = Path(__file__).resolve().parents[2] / "presets"

STAGE = textwrap.dedent("""
    import sys, time
    from xfer.stages.common import stage_cli

    def run(p, args):
        time.sleep(float(sys.argv[1]))
        return {"slept": True}

    sys.exit(stage_cli("teacher", "test stage", run, items=("game",), argv=["--game", "Pong"]))
""")


@pytest.fixture()
def repo(tmp_path, monkeypatch):
    write_params("default", [], tmp_path / "params.yaml", PRESETS)
    (tmp_path / "stage.py").write_text(STAGE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _lock_pid(repo: Path, timeout: float = 30.0) -> int:
    lock = repo / ".xfer-work" / "locks" / "teacher-Pong.lock"
    end = time.time() + timeout
    while time.time() < end:
        if lock.exists() and lock.read_text().strip():
            return int(lock.read_text())
        time.sleep(0.1)
    raise AssertionError("the stage never took its lock")


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def test_second_writer_fails_at_once_naming_the_first(repo):
    first = subprocess.Popen([sys.executable, "stage.py", "60"], cwd=repo, stderr=subprocess.PIPE)
    try:
        pid = _lock_pid(repo)
        assert pid == first.pid
        start = time.time()
        second = subprocess.run([sys.executable, "stage.py", "0"], cwd=repo, capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 2 and time.time() - start < 30
        assert f"stage teacher Pong is already running in this checkout (PID {pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.kill()
        first.wait()
    # the kernel dropped the lock of the killed process: no stale lock
    again = subprocess.run([sys.executable, "stage.py", "0"], cwd=repo, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr


def test_stage_stops_when_the_dvc_process_that_started_it_dies(repo):
    # a stand-in `dvc` that runs the stage through a shell, as DVC does; SIGKILL it and the shell
    # stays (waiting for its child): the stage must notice the dvc process itself
    fake = repo / "bin" / "dvc"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport subprocess, sys\n"
                    "subprocess.run(['sh', '-c', sys.argv[1] + ' ; true'])\n")
    fake.chmod(0o755)
    err = repo / "stage.err"
    dvc = subprocess.Popen([sys.executable, str(fake), f"{sys.executable} stage.py 120 2> {err}"], cwd=repo)
    try:
        stage = _lock_pid(repo)
        chain = watched_ancestors(stage)
        assert chain[-1] == dvc.pid and len(chain) == 2  # the shell, then the dvc process
        os.kill(dvc.pid, signal.SIGKILL)
        dvc.wait()
        end = time.time() + 20
        while time.time() < end and not _gone(stage):
            time.sleep(0.2)
        assert _gone(stage), "the stage outlived its dvc process"
        assert "xfer stage teacher: interrupted; `dvc repro` resumes it from" in err.read_text() or \
            "interrupted; `dvc repro` runs it again" in err.read_text()
    finally:
        subprocess.run(["pkill", "-f", "stage.py 120"], check=False)


def test_stage_run_by_hand_watches_its_parent_only():
    # no dvc process among this test's ancestors: only the parent is watched
    assert watched_ancestors() == [os.getppid()]
