"""A throwaway git + DVC checkout with the Procgen pipeline (procgen/dvc.yaml) and micro params: real
Procgen games, real stages, a few seconds per run on a 2-core CPU."""

from pathlib import Path

from tests.pipeline_repo import make_pipeline_dir_repo

MICRO = [
    "games=[bigfish]", "levels=[5,all]", "seeds=[0]", "random_episodes=2",
    "train.env_steps=80", "train.num_envs=2", "train.start_transitions=40", "train.batch_size=8",
    "train.train_ratio=0.25", "train.eval_every=40", "train.eval_episodes=1", "train.eval_max_steps=20",
    "train.checkpoint_every=40", "train.replay.segment_length=20", "train.mcts.num_simulations=2",
]


def make_procgen_repo(d: Path, overrides: list[str] = MICRO) -> Path:
    """Create the checkout in ``d`` (git init, dvc init, the root dvc.yaml for its `code` stage,
    procgen/dvc.yaml, the default params.yaml, micro procgen/params.yaml); returns ``d``."""
    return make_pipeline_dir_repo(d, "procgen", overrides)
