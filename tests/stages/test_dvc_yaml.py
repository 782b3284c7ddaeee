"""dvc.yaml lists, for every stage, all the code the stage runs: a change to any module a stage
imports (directly or not) must invalidate that stage, or DVC restores stale outputs."""

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _module_file(name: str) -> Path | None:
    """``xfer.a.b`` -> ``xfer/a/b.py`` or ``xfer/a/b/__init__.py`` (relative to the root), None if neither."""
    base = ROOT / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate.relative_to(ROOT)
    return None


def _imports(path: Path) -> set[str]:
    """Names of the ``xfer`` modules ``path`` imports, at any place in the file."""
    tree = ast.parse((ROOT / path).read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.split(".")[0] == "xfer"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "xfer":
            names.add(node.module)
            # `from xfer import checkpoint`: a submodule, not an attribute
            names |= {f"{node.module}.{a.name}" for a in node.names if _module_file(f"{node.module}.{a.name}")}
    out = set()
    for name in names:
        parts = name.split(".")
        out |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}  # parent packages run their __init__
    return out


def code_closure(path: Path) -> set[Path]:
    """Every ``xfer`` source file ``path`` runs when imported (itself included), but ``xfer/__init__.py``."""
    seen: set[Path] = set()
    todo = [path]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo += [f for f in (_module_file(n) for n in _imports(p)) if f is not None]
    return seen - {Path("xfer/__init__.py")}


def _stages() -> dict[str, dict]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: s.get("do", s) for name, s in stages.items()}


@pytest.mark.parametrize("name", sorted(_stages()))
def test_stage_deps_cover_every_module_it_runs(name):
    stage = _stages()[name]
    cmd = stage["cmd"].split()
    assert cmd[:2] == ["xfer", "stage"], f"{name}: unexpected command {stage['cmd']!r}"
    deps = [Path(d) for d in stage.get("deps", []) if "${" not in d]
    missing = sorted(str(f) for f in code_closure(Path(f"xfer/stages/{cmd[2]}.py"))
                     if not any(f == d or d in f.parents for d in deps))
    assert not missing, f"dvc.yaml stage {name!r} runs these modules but does not list them in deps: {missing}"


def test_closure_follows_indirect_imports():
    closure = code_closure(Path("xfer/stages/evaluate.py"))
    assert Path("xfer/mcts/tree.py") in closure  # evaluate -> parallel_eval -> actor -> mcts
    assert Path("xfer/stages/evaluate.py") in closure


@pytest.mark.parametrize("name", ["teacher", "distill", "bc", "offline_rl"])
def test_pretraining_stages_depend_on_the_zero_shot_protocol_only(name):
    # they evaluate with `evaluate.zero_shot_episodes` episodes capped at `evaluate.max_steps`; a change
    # to the final evaluation's `episodes` must not retrain every stage after collect
    params = [k for k in _stages()[name]["params"] if isinstance(k, str) and k.split(".")[0] == "evaluate"]
    assert sorted(params) == ["evaluate.max_steps", "evaluate.zero_shot_episodes"]


def test_cached_outputs_are_ignored_by_git_not_committed():
    # cached outputs (models, datasets, runs) live in the DVC cache and remote; in git they would
    # shadow what `dvc pull` restores (`cache: false` outputs, metrics and the report, are committed)
    import os
    import subprocess

    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        outs = sorted({os.path.relpath(o.fs_path, ROOT) for o in repo.index.outs if o.use_cache})
    assert "models/student" in outs and "models/baselines/bc" in outs and "reports" not in outs
    for path in outs:
        tracked = subprocess.run(["git", "ls-files", "--", path], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split()
        assert tracked == [], f"DVC output {path} is in git: {tracked[:3]}"
        ignored = subprocess.run(["git", "check-ignore", "-q", f"{path}/file"], cwd=ROOT).returncode == 0
        assert ignored, f"git does not ignore DVC output {path} (DVC writes its .gitignore entry: commit it)"
