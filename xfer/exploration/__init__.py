"""Reward-free exploration (seed 001: Walker et al. 2023; reference.md section 6): intrinsic rewards
(Random Network Distillation, ensemble disagreement) with running normalisation, the reward part the
online loop learns from, and the coverage measure of how much of the game an agent visits."""
