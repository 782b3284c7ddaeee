"""dvc.yaml's stages: each depends on the code it runs (through the ``code`` stage's fingerprints, see
tests/stages/test_code.py) and declares exactly the params its code reads."""

import ast
from pathlib import Path

import pytest
import yaml

from xfer.stages.code import ENTRY_POINTS

ROOT = Path(__file__).resolve().parents[2]


# every pipeline's dvc.yaml, by the prefix `dvc repro` names its stages with from the repo root
DVC_FILES = {"": ROOT / "dvc.yaml", "procgen/dvc.yaml:": ROOT / "procgen" / "dvc.yaml",
             "metaworld/dvc.yaml:": ROOT / "metaworld" / "dvc.yaml", "explore/dvc.yaml:": ROOT / "explore" / "dvc.yaml"}
ROOT_MODELS = {"procgen/": "ProcgenPipelineConfig", "metaworld/": "MetaWorldPipelineConfig",
               "explore/": "ExplorePipelineConfig"}
"""dvc.yaml folder -> the params model of its pipeline (the root's: PipelineConfig)."""


def _stages() -> dict[str, dict]:
    out = {}
    for prefix, path in DVC_FILES.items():
        stages = yaml.safe_load(path.read_text())["stages"]
        out |= {prefix + name: s.get("do", s) for name, s in stages.items()}
    return out


def _code_dep(name: str, module: str) -> str:
    """The fingerprint a stage depends on, relative to its dvc.yaml's folder."""
    up = "../" * name.split(":")[0].count("/") if ":" in name else ""
    return f"{up}code-deps/{module}.json"


def _module(stage: dict) -> str:
    cmd = stage["cmd"].split()
    assert cmd[:2] == ["xfer", "stage"], f"unexpected command {stage['cmd']!r}"
    return cmd[2]


@pytest.mark.parametrize("name", sorted(set(_stages()) - {"code"}))
def test_stage_depends_on_the_code_it_runs_through_its_fingerprint(name):
    # its code is code-deps/<module>.json (the import closure the `code` stage writes), not a pasted list
    stage = _stages()[name]
    deps = stage.get("deps", [])
    assert _code_dep(name, _module(stage)) in deps, f"dvc.yaml stage {name!r} misses its code fingerprint"
    pasted = [d for d in deps if "xfer" in d.split("/")[:2]]
    assert not pasted, f"dvc.yaml stage {name!r} lists code directly ({pasted}); the `code` stage covers it"


def test_the_package_is_declared_once_by_the_code_stage():
    code = _stages()["code"]
    assert code["cmd"] == "xfer stage code" and code["deps"] == ["xfer"]
    outs = {next(iter(o)) if isinstance(o, dict) else o: o for o in code["outs"]}
    assert set(outs) == {f"code-deps/{m}.json" for m in ENTRY_POINTS}
    # committed like metrics: a fresh clone sees which code produced dvc.lock's outputs
    assert all(isinstance(o, dict) and next(iter(o.values())) == {"cache": False} for o in outs.values())
    used = {_module(s) for n, s in _stages().items() if n != "code"}
    assert used == set(ENTRY_POINTS), "ENTRY_POINTS in xfer/stages/code.py and dvc.yaml's stages differ"


def test_evaluate_depends_on_the_students_zero_shot_metrics():
    assert "metrics/distill.json" in _stages()["evaluate"]["deps"]  # it copies them into evaluate.json


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


# ---- params: each stage declares exactly the params.yaml keys its code reads (issue 13 item 5) -------
# (its resume hash, xfer.stages.common.params_hash, then covers exactly the keys DVC reruns it for)

PYDANTIC_WHOLE = {"model_dump", "model_copy", "model_dump_json"}  # methods that read a whole section


CONFIG_MODULES = ("xfer/config.py", "xfer/xtra_config.py", "xfer/procgen_config.py", "xfer/metaworld_config.py",
                  "xfer/exploration/config.py")
"""The modules that hold params models (the pipelines' models import xfer/config.py's core models)."""


def _config_classes() -> dict[str, dict]:
    """The params models of :data:`CONFIG_MODULES`: fields (name -> model class name or None for a leaf)
    and methods or properties (name -> attributes of ``self`` they read), bases merged in."""
    classes: dict[str, dict] = {}
    for node in (n for m in CONFIG_MODULES for n in ast.parse((ROOT / m).read_text()).body):
        if not isinstance(node, ast.ClassDef):
            continue
        fields: dict[str, str | None] = {}
        methods: dict[str, set[str]] = {}
        for base in node.bases:
            if isinstance(base, ast.Name) and base.id in classes:
                fields.update(classes[base.id]["fields"])
                methods.update(classes[base.id]["methods"])
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                ann = item.annotation
                fields[item.target.id] = ann.id if isinstance(ann, ast.Name) else None
            elif isinstance(item, ast.FunctionDef):
                methods[item.name] = {n.attr for n in ast.walk(item) if isinstance(n, ast.Attribute)
                                      and isinstance(n.value, ast.Name) and n.value.id == "self"}
        classes[node.name] = {"fields": fields, "methods": methods}
    return classes


def _resolve(classes: dict, cls: str, prefix: str, chain: list[str]) -> set[str]:
    """params.yaml keys read by ``<object of cls at prefix>.<chain...>``."""
    if not chain:
        return {prefix}
    head, rest = chain[0], chain[1:]
    info = classes[cls]
    if head in info["fields"]:
        path = f"{prefix}.{head}" if prefix else head
        sub = info["fields"][head]
        return _resolve(classes, sub, path, rest) if sub in classes else {path}
    if head in info["methods"]:  # a property or method: the fields of self it reads
        return set().union(*(_resolve(classes, cls, prefix, [a]) for a in info["methods"][head])) or {prefix}
    assert head in PYDANTIC_WHOLE, f"unknown params attribute {prefix}.{head}"
    return {prefix}


def _is_params(node: ast.AST) -> bool:
    """``p`` or ``self.p``: the PipelineConfig in xfer's stage code."""
    return (isinstance(node, ast.Name) and node.id == "p") or (
        isinstance(node, ast.Attribute) and node.attr == "p" and isinstance(node.value, ast.Name)
        and node.value.id == "self")


def _stage_functions(module: Path) -> list[ast.AST]:
    """The stage module's code plus every function of xfer/stages it imports and calls with the params
    (``train_config(p, ...)``, ``zero_shot(net, p, ...)``), and so on through their imports."""

    def imported(path: Path, tree: ast.AST) -> dict[str, tuple[Path, ast.FunctionDef]]:
        found = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xfer.stages."):
                src = Path(*node.module.split(".")).with_suffix(".py")
                defs = {f.name: f for f in ast.parse((ROOT / src).read_text()).body if isinstance(f, ast.FunctionDef)}
                found |= {a.name: (src, defs[a.name]) for a in node.names if a.name in defs}
        return found

    todo: list[tuple[Path, ast.AST]] = [(module, ast.parse((ROOT / module).read_text()))]
    seen: dict[tuple[Path, str], ast.AST] = {}
    while todo:
        path, tree = todo.pop()
        key = (path, getattr(tree, "name", ""))
        if key in seen:
            continue
        seen[key] = tree
        names = imported(path, ast.parse((ROOT / path).read_text()))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names \
                    and any(_is_params(a) for a in [*node.args, *(k.value for k in node.keywords)]):
                todo.append(names[node.func.id])
    return list(seen.values())


def params_read(module: Path, root: str = "PipelineConfig") -> set[str]:
    """Every params.yaml key (dotted, as dvc.yaml names them) the stage in ``module`` reads; ``root``: the
    params model of its pipeline (``ProcgenPipelineConfig`` for procgen/dvc.yaml's stages)."""
    classes = _config_classes()
    reads: set[str] = set()
    for tree in _stage_functions(module):
        parents = {id(c): n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_params(node.value) and not _is_params(node):
                chain, top = [node.attr], node
                while isinstance(parents.get(id(top)), ast.Attribute):
                    top = parents[id(top)]
                    chain.append(top.attr)
                reads |= _resolve(classes, root, "", chain)
    # params_hash(p, stage) hashes what dvc.yaml declares: it reads the declaration, so it does not count
    return reads


def test_params_read_sees_properties_and_helpers():
    reads = params_read(Path("xfer/stages/teacher.py"))
    assert "evaluate.zero_shot_episodes" in reads  # through the property evaluate.pretrained_episodes
    assert {"mcts", "discount", "value_prefix_horizon"} <= reads  # p.search, a PipelineConfig property
    assert "env" in reads and "teacher" in reads  # train_config(p, ...) and p.teacher
    assert "finetune" not in reads


# Reads that only check which item DVC asked for (a foreach stage's --game / --target / --run / --seed):
# declaring them would rerun every item when one is added. The item's own settings are declared.
ITEM_CHECKS = {
    "init": {"finetune.runs"},  # the run's own `init` is declared: finetune.runs.${key}.init
    "collect": {"pretrain_games"},
    "teacher": {"pretrain_games"},
    "finetune": {"targets", "seeds", "finetune.runs",  # the run's entry is declared: finetune.runs.${item.run}
                 "seed"},  # train_config's default seed, replaced by --seed
    # the variant's entry is declared: variants.${item.variant}
    "procgen/dvc.yaml:train": {"games", "levels", "seeds", "variants"},
    "metaworld/dvc.yaml:pretrain": {"seeds", "variants"},
    "metaworld/dvc.yaml:finetune": {"seeds", "variants"},
    "metaworld/dvc.yaml:scratch": {"seeds", "variants"},
    # the agent's and transfer's entries are declared: agents.${item.agent}, transfers.${item.transfer}
    "explore/dvc.yaml:explore": {"games", "seeds", "agents", "transfers"},
    "explore/dvc.yaml:random": {"games", "seeds", "transfers"},
    "explore/dvc.yaml:transfer": {"games", "seeds", "agents", "transfers"},
    "explore/dvc.yaml:scratch": {"games", "seeds", "agents", "transfers"},
}


@pytest.mark.parametrize("name", sorted(_stages()))
def test_stage_declares_exactly_the_params_it_reads(name):
    stage = _stages()[name]
    declared = {k for k in stage.get("params", []) if isinstance(k, str)} | ITEM_CHECKS.get(name, set())
    root = next((m for d, m in ROOT_MODELS.items() if name.startswith(d)), "PipelineConfig")
    reads = params_read(Path(f"xfer/stages/{stage['cmd'].split()[2]}.py"), root)
    undeclared = sorted(r for r in reads if not any(r == d or r.startswith(d + ".") for d in declared))
    unused = sorted(d for d in declared
                    if not any(r == d or r.startswith(d + ".") or d.startswith(r + ".") for r in reads))
    assert not undeclared, f"dvc.yaml stage {name!r} reads params it does not declare: {undeclared}"
    assert not unused, f"dvc.yaml stage {name!r} declares params its code never reads: {unused}"
