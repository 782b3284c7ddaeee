"""A throwaway git + DVC checkout of the real pipeline with micro params, for end-to-end tests.

It holds copies of dvc.yaml, presets/ and the xfer/ sources the stages depend on, and a
params.yaml from the default preset shrunk to a couple of minutes on a 2-core CPU (real Atari
games, real stages, tiny budgets).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MICRO = [
    "pretrain_games=[Assault,Phoenix]", "targets=[DemonAttack]", "seeds=[0,1]",
    "mcts.num_simulations=4", "replay.segment_length=50",
    "collect.env_steps=200", "collect.shard_transitions=100",
    "collect.train.start_transitions=100", "collect.train.train_ratio=0.05", "collect.train.batch_size=8",
    "collect.train.eval_max_steps=30",
    "teacher.train_steps=6", "teacher.batch_size=8", "teacher.checkpoint_every=3",
    "distill.train_steps=6", "distill.batch_size=8", "distill.checkpoint_every=3",
    "baselines.bc.train_steps=4", "baselines.bc.batch_size=8", "baselines.bc.checkpoint_every=2",
    "baselines.offline_rl.train_steps=4", "baselines.offline_rl.batch_size=8", "baselines.offline_rl.checkpoint_every=2",
    "finetune.env_steps=240", "finetune.offline_batch_size=8", "finetune.train.batch_size=8",
    "finetune.train.start_transitions=120", "finetune.train.train_ratio=0.1", "finetune.train.eval_every=120",
    "finetune.train.eval_episodes=1", "finetune.train.eval_max_steps=30",
    "finetune.task_weights.cycle=6", "finetune.task_weights.window=2", "finetune.task_weights.start=2",
    "evaluate.episodes=1", "evaluate.random_episodes=3", "evaluate.max_steps=40", "evaluate.zero_shot_episodes=1",
]


def sh(cmd, cwd, check=True, timeout=900):
    """Run a command (list or shell string) in ``cwd``; raise with its output tail on failure."""
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, shell=isinstance(cmd, str))
    if check and res.returncode != 0:
        raise AssertionError(f"{cmd} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def make_pipeline_repo(d: Path) -> Path:
    """Create the checkout in directory ``d`` (git init, dvc init, micro params.yaml); returns ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dvc.yaml", d)
    shutil.copytree(ROOT / "presets", d / "presets")
    shutil.copytree(ROOT / "xfer", d / "xfer", ignore=shutil.ignore_patterns("__pycache__"))
    (d / ".gitignore").write_text(".xfer-work/\n")
    sh("git init -q && git config user.email t@t && git config user.name t && dvc init -q", d)
    shutil.copy(ROOT / ".dvcignore", d)  # __pycache__ is not code (the `code` stage depends on xfer/)
    sh([sys.executable, "-m", "xfer.cli", "params", "--preset", "default", *sum([["--set", s] for s in MICRO], [])], d)
    sh("git add -A && git commit -qm init", d)
    return d


def make_pipeline_dir_repo(d: Path, pipeline: str, overrides: list[str], preset: str = "default",
                           presets: dict[str, dict] | None = None) -> Path:
    """Create a checkout in ``d`` with the pipeline of ``<pipeline>/dvc.yaml`` (Procgen, Meta-World,
    exploration): git init, dvc init, the root dvc.yaml (for its `code` stage) with the default params.yaml,
    ``<pipeline>/dvc.yaml`` and ``<pipeline>/params.yaml`` from ``preset`` plus ``overrides``; ``presets``
    (name -> params) are written to the checkout's ``presets/<pipeline>/`` first. Returns ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dvc.yaml", d)
    (d / pipeline).mkdir()
    shutil.copy(ROOT / pipeline / "dvc.yaml", d / pipeline)
    shutil.copytree(ROOT / "presets", d / "presets")
    for name, data in (presets or {}).items():
        (d / "presets" / pipeline / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    shutil.copytree(ROOT / "xfer", d / "xfer", ignore=shutil.ignore_patterns("__pycache__"))
    (d / ".gitignore").write_text(".xfer-work/\n")
    sh("git init -q && git config user.email t@t && git config user.name t && dvc init -q", d)
    shutil.copy(ROOT / ".dvcignore", d)
    sh([sys.executable, "-m", "xfer.cli", "params", "--preset", "default"], d)  # the root dvc.yaml's params
    sh([sys.executable, "-m", "xfer.cli", "params", "--pipeline", pipeline, "--preset", preset,
        *sum([["--set", s] for s in overrides], [])], d)
    sh("git add -A && git commit -qm init", d)
    return d


def published_artifacts() -> dict:
    """The artifacts on the Prefect API server of this process (PREFECT_API_URL), by key."""
    import asyncio

    from prefect import get_client

    async def read() -> dict:
        async with get_client() as client:
            return {a.key: a for a in await client.read_artifacts()}

    return asyncio.run(read())
