"""A throwaway git + DVC checkout with the Meta-World pipeline (metaworld/dvc.yaml) and micro params: real
Meta-World (ML1 reach-v3 from states: its training goals for pretraining, its test goals for zero-shot and
finetuning), real stages, one seed, one variant.

ML1 rather than ML10: Meta-World builds the benchmark in every stage process, about 1 s for ML1 against
8 s for ML10 on a 2-core CPU. Every evaluation plays whole 500-step Meta-World episodes, so the episode
counts stay at 1: the budgets below are far too small to learn anything, they only exercise every stage.
"""

from pathlib import Path

from tests.pipeline_repo import make_pipeline_dir_repo

MICRO = [
    "benchmark=ML1", "train_tasks=[reach-v3]", "test_tasks=[reach-v3]", "seeds=[0]", "device=cpu",
    "eval_episodes=1", "random_episodes=1",
    "pretrain.env_steps=120", "finetune.env_steps=120", "pretrain.start_transitions=50", "pretrain.num_envs=2",
    "pretrain.batch_size=8", "pretrain.eval_every=120", "pretrain.eval_episodes=1", "pretrain.checkpoint_every=120",
    "pretrain.replay.segment_length=20", "pretrain.mcts.num_simulations=2", "pretrain.mcts.num_samples=2",
]


def make_metaworld_repo(d: Path, overrides: list[str] = MICRO) -> Path:
    """Create the checkout in ``d`` (git init, dvc init, the root dvc.yaml for its `code` stage,
    metaworld/dvc.yaml, the default params.yaml, micro metaworld/params.yaml); returns ``d``."""
    return make_pipeline_dir_repo(d, "metaworld", overrides)
