"""Named presets for ``xfer train``: nested dicts merged over :class:`xfer.config.TrainConfig` defaults.

- ``paper``: EfficientZero Atari100k settings (reference.md section 2); meant for GPU workers.
- ``cpu``: small but real settings that learn on a 2-core CPU within minutes (tiny network with
  zero-initialised heads, 16 simulations with completed-Q targets and acting, batch 32, Adam, one
  training step per agent step; evaluation: 32 greedy episodes capped at 500 agent steps every
  1,250 agent steps). Same code paths as ``paper``. Measured (benchmarks/results/learning.md,
  seventh round): on UpNDown, 2,500 agent steps (13-19 minutes), the greedy agent starts at the
  uniform-random agent's level and ends 1.8-3.4x above it in 4 of 4 seeds; on Qbert the same budget is not
  enough (about as many runs end below random as above).
"""

from __future__ import annotations

from typing import Any

import yaml

from xfer.config import TrainConfig, deep_merge

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "cpu": {
        # Zero-initialised heads (EfficientZero's public code): the untrained agent plays like the
        # random one instead of a lucky or unlucky fixed line (learning.md, seventh round).
        "net": {"size": "tiny", "precision": "auto", "zero_init_heads": True, "latent_scaling": "minmax"},
        # Measured with 0.997 per agent step (learning.md, seventh round); EfficientZero's own value,
        # the default elsewhere, is 0.997 per frame = 0.997^4 per agent step.
        "discount": 0.997,
        # Small-budget search (Danihelka et al. 2022 targets and acting, every root action tried once,
        # Q differences under one clipped reward kept soft): benchmarks/results/learning.md.
        "mcts": {"num_simulations": 16, "policy_target": "completed_q", "root_expand_all": True,
                 "q_range_floor": 1.0},
        # Measured with min-max scaled latents and reanalyse by the latest weights without root noise
        # (learning.md, seventh round); EfficientZero's Atari settings, the defaults, are the opposite.
        "replay": {"capacity": 50_000, "reanalyse_fraction": 0.25, "off_policy_age_scale": 5_000,
                   "segment_length": 100, "reanalyse_network": "latest", "reanalyse_noise": False},
        "optim": {"kind": "adam", "lr": 0.001, "weight_decay": 1e-5, "lr_decay_steps": 1_000_000},
        "num_envs": 4,
        "batch_size": 32,
        "train_ratio": 1.0,
        "start_transitions": 500,
        "self_play_refresh": 25,
        "target_refresh": 100,
        "eval_every": 1_250,
        "eval_episodes": 32,
        "eval_max_steps": 500,
        "checkpoint_every": 1_000,
    },
}


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["mcts.num_simulations=8", "optim.lr=0.01"]`` -> nested dict (values parsed as YAML scalars).

    Raises:
        ValueError: an item without ``=``.
    """
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


SUITE_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Continuous control (Sampled MuZero): visit-fraction targets over the sampled actions (completed-Q
    # needs every action's prior) and seed 000 Table A.1's search and replay settings; the cpu preset's
    # budget is smaller (8 samples of 16 simulations), and an evaluation episode is Meta-World's 500 steps.
    "metaworld": {
        "paper": {"mcts": {"num_simulations": 50, "num_samples": 20}, "replay": {"reanalyse_fraction": 0.95},
                  "eval_max_steps": 500},
        "cpu": {"mcts": {"policy_target": "visits", "root_expand_all": False, "num_samples": 8},
                "eval_episodes": 8, "eval_max_steps": 500, "eval_every": 2_000},
    },
}
"""Preset changes for a suite, merged over the preset and under the user's overrides."""


def build_train_config(preset: str, overrides: dict[str, Any]) -> TrainConfig:
    """Merge a preset, its changes for the run's suite (:data:`SUITE_PRESETS`, by ``env.suite`` in
    ``overrides``) and the overrides into a validated :class:`TrainConfig`.

    Raises:
        ValueError: unknown preset; pydantic.ValidationError: bad keys or values.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    suite = overrides.get("env", {}).get("suite", "atari")
    base = deep_merge(PRESETS[preset], SUITE_PRESETS.get(suite, {}).get(preset, {}))
    return TrainConfig.model_validate(deep_merge(base, overrides))
