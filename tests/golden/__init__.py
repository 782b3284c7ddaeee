"""Golden figures: what a behaviour-preserving redesign must leave identical (issue 14).

Three kinds, each a plain JSON-able dict computed by a function here and recorded in this folder:

- ``search.json``: a search on fixed inputs (a seeded tiny network, fixed observations and legal
  actions, seeded noise): visit counts, policy targets and root values, both policy targets;
- ``train.json``: a short seeded ``xfer train`` on Breakout: the final weights and every logged loss
  and evaluation;
- ``pipeline.json``: the micro pipeline of ``tests/stages/test_pipeline.py`` (collect, teachers,
  student, baselines, two finetune runs over two seeds, evaluate): the weights of every model, the
  datasets' shard bytes, every metric column and the evaluation scores.

Weights are compared as the sorted list of per-tensor SHA-256 digests (names and order of the
modules may change, values may not); metrics column by column (columns may be added, not changed).
Exact float figures hold on one kind of host only: each file records torch's version and CPU
capability, and a check on another kind of host is skipped with the command that re-records them:

    python -m tests.golden --record            # search and train figures (about a minute)
    python -m tests.golden --record --pipeline # also the micro pipeline (about 5 minutes)

Record them *before* a change that must not change behaviour, never to make a failing check pass.
"""

from __future__ import annotations

import csv
import hashlib
import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def _cpu_flags() -> str:
    """SHA-256 (12 hex digits) of the CPU's model name and feature flags (``/proc/cpuinfo``): two hosts
    with the same torch capability level can still take different kernels (AMX, VNNI, ...)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    keep = sorted({line for line in lines if line.startswith(("model name", "flags"))})
    return hashlib.sha256("\n".join(keep).encode()).hexdigest()[:12]


def host() -> dict:
    """What the exact figures depend on besides the code: torch version and CPU kernels."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu": _cpu_flags()}


def load(name: str) -> dict | None:
    """The recorded figures ``name`` (``search``, ``train``, ``pipeline``), None when not recorded."""
    path = HERE / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def save(name: str, figures: dict) -> Path:
    """Record ``figures`` with this host's description; returns the file written."""
    path = HERE / f"{name}.json"
    path.write_text(json.dumps({"host": host(), "figures": figures}, indent=1, sort_keys=True) + "\n")
    return path


def weight_digests(path: Path) -> list[str]:
    """Sorted SHA-256 digests of every tensor in a ``.safetensors`` file (independent of names and order)."""
    from safetensors.torch import load_file

    return sorted(hashlib.sha256(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()
                  for t in load_file(str(path)).values())


def tsv_columns(path: Path) -> dict[str, list[str]]:
    """A TSV log as ``{column: [cells as written]}``."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return {k: [r[k] for r in rows] for k in (rows[0] if rows else {})}


@contextmanager
def one_thread():
    """Run torch on one thread (results independent of the host's core count), then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------- search
def search_figures() -> dict:
    """Searches on fixed inputs: a seeded ``tiny`` network, 6 fixed ``[12, 96, 96]`` uint8 stacks
    (three with Breakout's 4 legal actions of 18, three with all 18), 16 simulations, with and
    without root noise, for both policy targets. Returns visit counts, policy targets and root values."""
    from tests.specs import ATARI
    from xfer.agent import build_model
    from xfer.config import NetConfig, SearchConfig
    from xfer.inference import search_policy

    rng = np.random.default_rng(123)
    obs = rng.integers(0, 256, size=(6, 12, 96, 96), dtype=np.uint8)
    mask = np.ones((6, 18), bool)
    mask[:3] = False
    mask[:3, [0, 1, 3, 4]] = True
    out = {}
    with one_thread():
        net = build_model(ATARI, NetConfig(size="tiny", precision="fp32", latent_scaling="none"), "cpu", seed=0)
        for target in ("visits", "completed_q"):
            cfg = SearchConfig(num_simulations=16, policy_target=target, root_expand_all=target == "completed_q")
            for noise in (False, True):
                res = search_policy(net, obs, mask, cfg, np.random.default_rng(7), add_noise=noise)
                out[f"{target}-noise{int(noise)}"] = {
                    "visit_counts": res.visit_counts.tolist(),
                    "policy": [[float(x) for x in row] for row in res.policy],
                    "root_value": [float(x) for x in res.root_value],
                    "prior_value": [float(x) for x in res.prior_value],
                }
    return out


# ----------------------------------------------------------------------------------------- train
TRAIN_ARGS = ["train", "--game", "Breakout", "--env-steps", "120", "--size", "tiny", "--preset", "cpu",
              "--no-progress", "--seed", "3",
              "--set", "mcts.num_simulations=4", "--set", "batch_size=8", "--set", "start_transitions=40",
              "--set", "num_envs=2", "--set", "eval_episodes=2", "--set", "eval_max_steps=40",
              "--set", "replay.segment_length=20", "--set", "checkpoint_every=40", "--set", "eval_every=60",
              "--set", "train_ratio=0.25"]


def train_figures(out: Path) -> dict:
    """A short seeded ``xfer train`` (:data:`TRAIN_ARGS`, one torch thread) into ``out``: the final
    weights, the training and evaluation logs, and the summary's scores."""
    from xfer.cli import main

    with one_thread():
        assert main([*TRAIN_ARGS, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    return {
        "weights": weight_digests(out / "model.safetensors"),
        "train.tsv": tsv_columns(out / "metrics" / "train.tsv"),
        "eval.tsv": tsv_columns(out / "metrics" / "eval.tsv"),
        "summary": {k: summary[k] for k in ("env_steps", "train_steps", "first_eval_score", "final_eval_score",
                                            "random_eval_score")},
    }


# -------------------------------------------------------------------------------------- pipeline
def pipeline_figures(d: Path) -> dict:
    """Figures of a micro pipeline checkout ``d`` after ``dvc repro`` (``tests/pipeline_repo.py``)."""
    out: dict = {"weights": {}, "shards": {}, "tsv": {}, "json": {}}
    for f in sorted(d.glob("models/**/*.safetensors")) + sorted(d.glob("runs/**/*.safetensors")):
        out["weights"][str(f.relative_to(d))] = weight_digests(f)
    for f in sorted(d.glob("data/**/*")):
        if f.is_file() and not f.name.endswith(".json"):
            out["shards"][str(f.relative_to(d))] = hashlib.sha256(f.read_bytes()).hexdigest()
    for f in sorted(d.glob("metrics/**/*.tsv")) + sorted(d.glob("runs/**/*.tsv")):
        out["tsv"][str(f.relative_to(d))] = tsv_columns(f)
    evaluation = json.loads((d / "metrics" / "evaluate.json").read_text())
    out["json"]["metrics/evaluate.json"] = evaluation
    return out


def compare(recorded, now, where: str = "") -> list[str]:
    """Differences between recorded and current figures, one line each (empty: identical). Keys
    present only now (a new metric column, a new file) are allowed; a missing or changed one is not."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        diffs = []
        for k in recorded:
            if k not in now:
                diffs.append(f"{where}/{k}: missing now")
            else:
                diffs += compare(recorded[k], now[k], f"{where}/{k}")
        return diffs
    return [] if recorded == now else [f"{where}: recorded {str(recorded)[:120]} now {str(now)[:120]}"]
