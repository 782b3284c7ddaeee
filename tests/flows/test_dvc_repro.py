"""flows/dvc_repro.py: `dvc repro` of one stage through DVC's Python API, with a JSON report of what
happened, on the toy pipeline (real DVC, real stage commands)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.flows.toyrepo import make_toy_repo

SCRIPT = Path(__file__).resolve().parents[2] / "flows" / "dvc_repro.py"


def repro(repo: Path, stage: str, *flags: str) -> tuple[int, dict, str]:
    report = repo / "report.json"
    report.unlink(missing_ok=True)
    res = subprocess.run([sys.executable, str(SCRIPT), stage, "--report", str(report), *flags], cwd=repo,
                         capture_output=True, text=True, timeout=300)
    return res.returncode, json.loads(report.read_text()), res.stdout + res.stderr


def attempts(repo: Path) -> dict[str, int]:
    return {p.name.removesuffix(".count"): int(p.read_text()) for p in (repo / "attempts").glob("*.count")}


@pytest.fixture
def repo(tmp_path):
    repo = make_toy_repo(tmp_path / "toy", remote=tmp_path / "remote")
    subprocess.run("git add -A && git commit -qm toy", shell=True, cwd=repo, check=True, capture_output=True)
    return repo


def test_ran_unchanged_and_restored_come_from_dvc_not_from_its_messages(repo):
    code, report, out = repro(repo, "teacher@g1")
    assert code == 0 and report["stages"] == {"collect@g1": "ran", "teacher@g1": "ran"}
    assert "Running stage 'teacher@g1'" in out  # DVC's own console output still shows
    code, report, _ = repro(repo, "teacher@g1")
    assert code == 0 and report["stages"] == {}  # unchanged: neither ran nor restored
    # outputs gone, the run-cache keeps them: restored, and the command does not run again
    (repo / "teachers" / "g1.txt").unlink()
    code, report, _ = repro(repo, "teacher@g1", "--single-item")
    assert code == 0 and report["stages"] == {"teacher@g1": "restored"}
    assert attempts(repo) == {"collect@g1": 1, "teacher@g1": 1}


def test_a_failing_command_reports_its_exit_code(repo):
    (repo / "control").mkdir()
    (repo / "control" / "collect@g1.exit").write_text("2")
    code, report, out = repro(repo, "teacher@g1")
    assert code == 1 and report["failed"] == "collect@g1" and report["cmd_exit_code"] == 2
    assert "exited with 2" in report["error"] and report["not_restored"] is None
    assert "teacher@g1" not in attempts(repo)


def test_restore_upstream_stops_a_stage_before_its_command_starts(repo):
    code, report, _ = repro(repo, "teacher@g1", "--restore-upstream")
    assert code == 1 and report["not_restored"] == "collect@g1" and report["failed"] is None
    assert not (repo / "attempts").exists()  # no command ran: neither the upstream stage nor this one
    # an exempt group runs, the requested stage always may
    code, report, _ = repro(repo, "teacher@g1", "--restore-upstream", "--may-run", "collect")
    assert code == 0 and report["stages"] == {"collect@g1": "ran", "teacher@g1": "ran"}


def test_bad_stage_name_is_an_error_in_the_report(repo):
    code, report, _ = repro(repo, "nope")
    assert code == 1 and report["error"] and report["stages"] == {}
