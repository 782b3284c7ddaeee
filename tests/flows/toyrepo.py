"""A throwaway git + DVC repo whose dvc.yaml has the pipeline's stage groups (collect, teacher and
finetune as ``foreach``) and output shapes (cached outputs plus ``cache: false`` metrics and plots)
with tiny real commands, for testing the flow mechanics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# The stage commands of the toy pipeline. Each call appends to attempts/<name>.count (outside DVC's
# view), then exits with the code in control/<name>.exit if that file exists ("CODE" or "CODE TIMES":
# fail only the first TIMES attempts), else writes its output from its inputs.
TOY_PY = '''\
import json, pathlib, sys
name, out, *inputs = sys.argv[1:]
root = pathlib.Path(".")
(root / "attempts").mkdir(exist_ok=True)
counter = root / "attempts" / f"{name}.count"
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
control = root / "control" / f"{name}.exit"
if control.exists():
    code, *times = control.read_text().split()
    if not times or n <= int(times[0]):
        print(f"toy {name}: failing on purpose (attempt {n})", flush=True)
        sys.exit(int(code))
text = name + ":" + ",".join(pathlib.Path(p).read_text().strip() for p in inputs)
pathlib.Path(out).parent.mkdir(parents=True, exist_ok=True)
if name == "report":
    pathlib.Path(out).write_text("# Toy report\\n\\n" + text + "\\n")
    pathlib.Path("metrics/summary.json").write_text(json.dumps({  # the shape xfer's report stage writes
        "runs": {"t-xtra": {"target": "t", "run": "xtra", "score": 1.5, "hns": 0.25},
                 "t-scratch": {"target": "t", "run": "scratch", "score": 0.5, "hns": 0.125}},
        "aggregate": {"xtra": {"hns": {"mean": 0.25, "median": 0.25, "iqm": 0.25}},
                      "scratch": {"hns": {"mean": 0.125, "median": 0.125, "iqm": 0.125}}},
        "baseline_run": "scratch"}))
else:
    pathlib.Path(out).write_text(text + "\\n")
    # stage metrics (and the teacher's curve) as `cache: false` outputs, like xfer's stages
    stem = pathlib.Path("metrics") / name.replace("@", "_")
    stem.parent.mkdir(exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps({"stage": name, "inputs": len(inputs)}))
    if name.startswith("teacher@"):
        stem.with_suffix(".tsv").write_text("step\\tloss\\n1\\t0.5\\n")
print(f"toy {name}: wrote {out}", flush=True)
'''

# Stage groups deliberately listed out of pipeline order: the flow must order them itself.
DVC_YAML = '''\
stages:
  report:
    cmd: python toy.py report reports/report.md metrics/eval.json
    deps: [toy.py, metrics/eval.json]
    outs: [reports/report.md, metrics/summary.json]
  finetune:
    foreach: ${runs}
    do:
      cmd: python toy.py finetune@${item} finetune/${item}.txt student.txt
      deps: [toy.py, student.txt]
      outs: ["finetune/${item}.txt"]
      metrics:
        - metrics/finetune_${item}.json:
            cache: false
  collect:
    foreach: ${pretrain_games}
    do:
      cmd: python toy.py collect@${item} data/${item}.txt
      deps: [toy.py]
      outs: ["data/${item}.txt"]
      metrics:
        - metrics/collect_${item}.json:
            cache: false
  teacher:
    foreach: ${pretrain_games}
    do:
      cmd: python toy.py teacher@${item} teachers/${item}.txt data/${item}.txt
      deps: ["toy.py", "data/${item}.txt"]
      outs: ["teachers/${item}.txt"]
      metrics:
        - metrics/teacher_${item}.json:
            cache: false
      plots:
        - metrics/teacher_${item}.tsv:
            cache: false
  distill:
    cmd: python toy.py distill student.txt teachers/g1.txt teachers/g2.txt
    deps: [toy.py, teachers/g1.txt, teachers/g2.txt]
    outs: [student.txt]
    metrics:
      - metrics/distill.json:
          cache: false
  evaluate:
    cmd: python toy.py evaluate metrics/eval.json finetune/xtra.txt finetune/scratch.txt
    deps: [toy.py, finetune/xtra.txt, finetune/scratch.txt]
    outs: [metrics/eval.json]
    metrics:
      - metrics/evaluate.json:
          cache: false
'''

PARAMS_YAML = "pretrain_games: [g1, g2]\nruns: [xtra, scratch]\n"

PIPELINE_ORDER = ["collect@g1", "collect@g2", "teacher@g1", "teacher@g2", "distill",
                  "finetune@xtra", "finetune@scratch", "evaluate", "report"]


def _run(argv: list[str], cwd: Path) -> None:
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True, text=True)


def make_toy_repo(root: Path, remote: Path | None = None) -> Path:
    """A git + DVC repo at ``root`` with the toy pipeline (and a local-directory DVC remote)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "toy.py").write_text(TOY_PY)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "params.yaml").write_text(PARAMS_YAML)
    (root / ".gitignore").write_text("attempts/\ncontrol/\n")
    _run(["git", "init", "-q"], root)
    _run([sys.executable, "-m", "dvc", "init", "-q"], root)
    _run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], root)
    if remote is not None:
        remote.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "dvc", "remote", "add", "-d", "local", str(remote)], root)
    return root


def toy_params_command(params) -> list[str]:
    """Stand-in for ``xfer params``: writes the toy params.yaml (pretrain_games from the params)."""
    games = params.pretrain_games or ["g1", "g2"]
    text = f"pretrain_games: {json.dumps(games)}\nruns: [xtra, scratch]\n"
    return [sys.executable, "-c", f"import pathlib; pathlib.Path('params.yaml').write_text({text!r})"]
