"""The ``code`` stage: each stage's import closure, and DVC rerunning exactly the stages whose code changed."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xfer.stages import code

ROOT = Path(__file__).resolve().parents[2]


def _copy_sources(d: Path) -> Path:
    shutil.copytree(ROOT / "xfer", d / "xfer", ignore=shutil.ignore_patterns("__pycache__"))
    return d


def test_closure_follows_indirect_and_function_level_imports():
    closure = code.code_closure(Path("xfer/stages/evaluate.py"), ROOT)
    assert Path("xfer/mcts/tree.py") in closure  # evaluate -> parallel_eval -> actor -> mcts
    assert Path("xfer/mcts/__init__.py") in closure  # a package's __init__ runs with its modules
    assert Path("xfer/stages/evaluate.py") in closure and Path("xfer/__init__.py") not in closure
    report = code.code_closure(Path("xfer/stages/report.py"), ROOT)
    assert Path("xfer/stats.py") in report and Path("xfer/mcts/tree.py") not in report


def test_fingerprints_change_only_for_stages_whose_code_changed(tmp_path):
    src = _copy_sources(tmp_path)
    code.run(tmp_path / "out", src)
    before = {s: (tmp_path / "out" / f"{s}.json").read_text() for s in code.ENTRY_POINTS}
    assert set(json.loads(before["evaluate"])["files"]) == {
        str(f) for f in code.code_closure(Path("xfer/stages/evaluate.py"), src)}

    tree = src / "xfer/mcts/tree.py"
    tree.write_text(tree.read_text() + "\n# a comment is a change too\n")
    code.run(tmp_path / "out", src)
    after = {s: (tmp_path / "out" / f"{s}.json").read_text() for s in code.ENTRY_POINTS}
    changed = {s for s in before if before[s] != after[s]}
    assert "evaluate" in changed and "collect" in changed and "report" not in changed

    # a new import is picked up without editing any list
    report = src / "xfer/stages/report.py"
    report.write_text(report.read_text() + "\nfrom xfer.mcts import tree  # noqa: E402,F401\n")
    code.run(tmp_path / "out", src)
    files = json.loads((tmp_path / "out" / "report.json").read_text())["files"]
    assert "xfer/mcts/tree.py" in files


def test_a_missing_or_broken_source_is_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys):
    src = _copy_sources(tmp_path)
    monkeypatch.chdir(src)
    (src / "xfer/stages/report.py").write_text("def broken(:\n")
    assert code.main(["--out", "o"]) == 2
    assert "report.py" in capsys.readouterr().err
    (src / "xfer/stages/report.py").unlink()
    assert code.main(["--out", "o"]) == 2
    assert "report.py not found" in capsys.readouterr().err


def _sh(cmd: str, cwd: Path) -> str:
    res = subprocess.run(cmd, cwd=cwd, shell=True, capture_output=True, text=True)
    assert res.returncode == 0, f"{cmd}: {res.stdout[-2000:]}{res.stderr[-2000:]}"
    return res.stdout + res.stderr


@pytest.mark.timeout(300)
def test_dvc_reruns_only_the_stages_whose_code_changed(tmp_path):
    # the real `code` stage of dvc.yaml, and two stand-in stages that depend on their fingerprints
    src = _copy_sources(tmp_path)
    real = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["code"]
    real["cmd"] = f"{sys.executable} -m xfer.stages.code"
    stages = {"code": real} | {
        s: {"cmd": f"echo ran >> {s}.log", "deps": [f"code-deps/{s}.json"]} for s in ("evaluate", "report")}
    (src / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    (src / ".dvcignore").write_text((ROOT / ".dvcignore").read_text())
    _sh("git init -q && git config user.email t@t && git config user.name t && dvc init -q", src)
    _sh("dvc repro -q", src)
    assert (src / "evaluate.log").read_text() == (src / "report.log").read_text() == "ran\n"

    tree = src / "xfer/mcts/tree.py"  # evaluate runs the search; report does not
    tree.write_text(tree.read_text() + "\n# changed\n")
    subprocess.run([sys.executable, "-c", "import xfer.mcts.tree"], cwd=src, check=True)  # leaves __pycache__
    out = _sh("dvc repro", src)
    assert "Running stage 'code'" in out and "Running stage 'evaluate'" in out
    assert "Running stage 'report'" not in out
    assert (src / "evaluate.log").read_text() == "ran\nran\n" and (src / "report.log").read_text() == "ran\n"
    assert "up to date" in _sh("dvc status", src)  # __pycache__ is not code (.dvcignore)
