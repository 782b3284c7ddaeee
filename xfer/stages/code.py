"""Stage ``code``: the code each pipeline stage runs, as one small fingerprint file per stage.

dvc.yaml declares the package once, as this stage's only dependency (``xfer``); every other stage
depends on its own ``code-deps/<stage>.json`` instead of a pasted list of modules. The fingerprint
holds the stage module's import closure (every ``xfer`` source file it imports, directly or not,
anywhere in a file, found statically with :mod:`ast`) and each file's md5. So:

- a change to a module a stage runs changes that stage's fingerprint, and DVC reruns the stage;
- a change to a module it never imports leaves its fingerprint's bytes, and the stage, alone;
- a new import is picked up by the next ``dvc repro``: no list to keep in step with the code.

The stage imports nothing but the standard library (it runs in well under a second) and reads the
sources under the working directory (the DVC checkout), not the installed package.
Outputs: ``code-deps/<stage>.json`` for every stage in :data:`ENTRY_POINTS`.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import sys
from pathlib import Path

#: stage name (dvc.yaml) -> its module under xfer/stages/ (what ``xfer stage NAME`` runs)
ENTRY_POINTS = {name: f"xfer/stages/{name}.py" for name in
                ("collect", "teacher", "distill", "bc", "offline_rl", "init", "finetune", "evaluate", "report",
                 "procgen_train", "procgen_report", "metaworld_pretrain", "metaworld_finetune", "metaworld_report",
                 "explore", "explore_random", "explore_transfer", "explore_evaluate", "explore_report")}
OUT = Path("code-deps")
PACKAGE = "xfer"


def module_file(name: str, root: Path) -> Path | None:
    """``xfer.a.b`` -> ``xfer/a/b.py`` or ``xfer/a/b/__init__.py`` (relative to ``root``), None if neither."""
    base = root / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate.relative_to(root)
    return None


def imported_modules(path: Path, root: Path) -> set[str]:
    """Names of the ``xfer`` modules the file ``root / path`` imports, at any place in the file
    (module level or inside functions), with the parent packages whose ``__init__`` they run.

    Raises:
        SyntaxError: the file is not valid Python (the message names it).
    """
    tree = ast.parse((root / path).read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE:
            names.add(node.module)
            # `from xfer import checkpoint`: a submodule, not an attribute
            names |= {f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}", root)}
    out: set[str] = set()
    for name in names:
        parts = name.split(".")
        out |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}  # parent packages run their __init__
    return out


def code_closure(path: Path, root: Path = Path(".")) -> set[Path]:
    """Every ``xfer`` source file ``path`` runs when imported (itself included), relative to ``root``;
    ``xfer/__init__.py`` (the package marker every command runs) is left out.

    Raises:
        FileNotFoundError: ``path`` does not exist under ``root``.
    """
    if not (root / path).exists():
        raise FileNotFoundError(f"{root / path} not found; run the stage from the pipeline checkout (where dvc.yaml is)")
    seen: set[Path] = set()
    todo = [Path(path)]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo += [f for f in (module_file(n, root) for n in imported_modules(p, root)) if f is not None]
    return seen - {Path(PACKAGE, "__init__.py")}


def fingerprint(entry: str, root: Path = Path(".")) -> dict:
    """``{"entry": entry, "files": {path: md5 hex}}`` over :func:`code_closure` of ``entry``, paths sorted."""
    files = sorted(code_closure(Path(entry), root))
    return {"entry": entry, "files": {str(f): hashlib.md5((root / f).read_bytes()).hexdigest() for f in files}}


def run(out: Path = OUT, root: Path = Path(".")) -> dict[str, int]:
    """Write ``out/<stage>.json`` for every stage of :data:`ENTRY_POINTS`; returns stage -> file count.

    A file is rewritten only when its content changes (its bytes are a pure function of the sources).
    """
    from xfer.fileio import atomic_write_text  # standard library only, like this module

    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for stage, entry in ENTRY_POINTS.items():
        fp = fingerprint(entry, root)
        text = json.dumps(fp, indent=1, sort_keys=True) + "\n"
        target = out / f"{stage}.json"
        if not target.exists() or target.read_text() != text:
            atomic_write_text(target, text)
        counts[stage] = len(fp["files"])
    return counts


def main(argv: list[str] | None = None) -> int:
    """``xfer stage code [--out DIR]``: exit 0, or 2 with one line when a source is missing or not Python."""
    parser = argparse.ArgumentParser(
        prog="xfer stage code",
        description="Write code-deps/<stage>.json: the xfer source files each pipeline stage imports "
                    "(directly or not) and their md5, so DVC reruns exactly the stages whose code changed.")
    parser.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT})")
    args = parser.parse_args(argv)
    try:
        counts = run(args.out)
    except (FileNotFoundError, SyntaxError) as exc:
        print(f"xfer stage code: error: {exc}", file=sys.stderr)
        return 2
    print(" ".join(f"{stage}:{n}" for stage, n in counts.items()) + " files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
