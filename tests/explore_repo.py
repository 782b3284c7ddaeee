"""A throwaway git + DVC checkout with the exploration pipeline (explore/dvc.yaml) and micro params: real
UpNDown, real stages, one agent (MuZero), one transfer (every part), one seed: explore, random, transfer,
scratch, evaluate and the report, a few seconds of training each on a 2-core CPU.

The agents and transfers are dicts that ``--set`` merges into the preset's, so the micro params come from a
preset of their own (:func:`micro_preset`: the default preset with MuZero and the `all` transfer only),
written into the checkout; the budgets are overrides on it. Far too small to learn anything: they only
exercise every stage.
"""

from pathlib import Path

import yaml

from tests.pipeline_repo import ROOT, make_pipeline_dir_repo

MICRO = [
    "seeds=[0]", "device=cpu", "random_episodes=1", "explore.env_steps=40", "finetune.env_steps=40",
    "train.start_transitions=16", "train.num_envs=2", "train.batch_size=8", "train.eval_every=40",
    "train.eval_episodes=1", "train.eval_max_steps=20", "train.checkpoint_every=40",
    "train.replay.segment_length=10", "train.mcts.num_simulations=2", "coverage.every=10",
    "intrinsic.frame_size=36", "evaluate.episodes=1",
]


def micro_preset() -> dict:
    """The default exploration preset with one agent (``mz``) and one transfer (``all``), named ``micro``."""
    data = yaml.safe_load((ROOT / "presets" / "explore" / "default.yaml").read_text())
    return {**data, "preset": "micro", "agents": {"mz": data["agents"]["mz"]},
            "transfers": {"all": data["transfers"]["all"]}}


def make_explore_repo(d: Path, overrides: list[str] = MICRO) -> Path:
    """Create the checkout in ``d`` (git init, dvc init, the root dvc.yaml for its `code` stage,
    explore/dvc.yaml, the default params.yaml, explore/params.yaml from the micro preset and
    ``overrides``); returns ``d``."""
    return make_pipeline_dir_repo(d, "explore", overrides, preset="micro", presets={"micro": micro_preset()})
