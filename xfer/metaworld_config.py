"""Typed, frozen configuration of the Meta-World pipeline: the whole ``metaworld/params.yaml``
(:class:`MetaWorldPipelineConfig`) and its run names (seed 000 section 4, appendix A, Table A.6)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from xfer.config import (
    FrozenModel,
    MCTSConfig,
    MetaWorldConfig,
    TrainConfig,
    deep_merge,
    describe_validation_error,
)

TaskSet = list[str] | Literal["all"]


class MetaWorldPipelineConfig(FrozenModel):
    """The whole ``metaworld/params.yaml`` of the Meta-World pipeline (seed 000 section 4, appendix A,
    Table A.6): per ``variant`` x ``seed``, ``pretrain@<variant>-<seed>`` trains one agent on every
    ``train_tasks`` task of the benchmark's training split at once and evaluates it there (train
    success) and zero-shot on the ``test_tasks`` of the test split; ``finetune@<variant>-<seed>`` trains
    on the test tasks from that agent and ``scratch@<variant>-<seed>`` the same from fresh weights (the
    baseline of the cumulative regret), both evaluated there; ``report`` pools them. Unknown keys
    anywhere are errors.

    ML1 (one task, different goals): ``train_tasks`` and ``test_tasks`` name the same single task; the
    test split holds its other goals. Units: agent steps (Meta-World has no frame skip: 1 step = 1 frame).
    """

    preset: str = "metaworld"
    benchmark: Literal["ML1", "ML10", "ML45"] = "ML10"
    train_tasks: TaskSet = Field("all", description="tasks of the training split to pretrain on (list, or all)")
    test_tasks: TaskSet = Field("all", description="tasks of the test split for zero-shot and finetuning (list, or all)")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    device: Literal["cpu", "cuda"] = "cpu"
    pretrain: TrainConfig = TrainConfig(env=MetaWorldConfig(), mcts=MCTSConfig(policy_target="visits"))
    finetune: dict[str, Any] = Field(
        default_factory=dict, description="TrainConfig keys over pretrain (and the variant) for the finetuning runs, "
        "e.g. {env_steps: 10000000} (the paper: 50M frames pretraining, 10M finetuning)")
    variants: dict[str, dict[str, Any]] = Field(min_length=1, description="variant name -> TrainConfig keys over pretrain")
    eval_episodes: int = Field(8, ge=1, description="greedy evaluation episodes per task (success rate = their mean)")
    random_episodes: int = Field(8, ge=1, description="episodes of the uniform-random agent per test task")
    reference: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="paper success rates beside each variant: variant -> {train, zero_shot, "
        "finetuned} in [0, 1] (Table A.6 of seed 000; set by the paper presets only)")

    @model_validator(mode="after")
    def _check(self) -> MetaWorldPipelineConfig:
        if self.pretrain.env.suite != "metaworld":
            raise ValueError("pretrain.env must be a Meta-World env config (env.suite: metaworld)")
        if len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds must be distinct and non-negative, got {self.seeds}")
        for key in ("train_tasks", "test_tasks"):
            tasks = getattr(self, key)
            if isinstance(tasks, list) and (not tasks or len(set(tasks)) != len(tasks)):
                raise ValueError(f"{key} must be 'all' or a non-empty list without repeats, got {tasks}")
        if self.benchmark == "ML1" and not (isinstance(self.train_tasks, list) and len(self.train_tasks) == 1
                                            and self.test_tasks == self.train_tasks):
            raise ValueError("ML1 is one task with different goals: set train_tasks and test_tasks to the same "
                             "single task, e.g. [reach-v3]")
        for name in self.variants:
            if not re.fullmatch(r"[a-z0-9_]+", name):
                raise ValueError(f"variant name {name!r}: use lower-case letters, digits and _ (it names run folders)")
            try:
                self.pretrain_config(name, self.seeds[0])
                self.finetune_config(name, self.seeds[0])
            except ValidationError as exc:
                raise ValueError(f"variants.{name} does not validate over pretrain (and finetune): "
                                 f"{describe_validation_error(exc)}") from None
        unknown = sorted(set(self.reference) - set(self.variants))
        if unknown:
            raise ValueError(f"reference names variants that do not exist: {unknown} (variants: {sorted(self.variants)})")
        return self

    def tasks(self, split: Literal["train", "test"]) -> str | list[str]:
        """``train_tasks`` or ``test_tasks`` as an env config's ``task`` (a list, or ``all``)."""
        return self.train_tasks if split == "train" else self.test_tasks

    def pretrain_config(self, variant: str, seed: int) -> TrainConfig:
        """The :class:`TrainConfig` of a pretraining run: ``pretrain`` with the variant's keys over it, on
        ``train_tasks`` of the training split, with the benchmark, the seed and the device.

        Raises:
            KeyError: an unknown variant. pydantic.ValidationError: keys that do not validate.
        """
        return self._run_config(self.variants[variant], {}, self.train_tasks, "train", seed)

    def finetune_config(self, variant: str, seed: int) -> TrainConfig:
        """The :class:`TrainConfig` of a finetuning run (and of its scratch baseline): as
        :meth:`pretrain_config` with ``finetune``'s keys over the variant's, on ``test_tasks`` of the test
        split."""
        return self._run_config(self.variants[variant], self.finetune, self.test_tasks, "test", seed)

    def _run_config(self, keys: dict, more: dict, tasks: str | list[str], split: str, seed: int) -> TrainConfig:
        merged = deep_merge(deep_merge(self.pretrain.model_dump(), keys), more)
        env = {"task": tasks, "split": split, "benchmark": self.benchmark}
        return TrainConfig.model_validate(deep_merge(merged, {"env": env, "seed": seed, "device": self.device}))


def metaworld_run_name(variant: str, seed: int) -> str:
    """``<variant>-<seed>``: a Meta-World run's folder (under ``runs/pretrain``, ``runs/finetune`` or
    ``runs/scratch``) and DVC item name."""
    return f"{variant}-{seed}"
