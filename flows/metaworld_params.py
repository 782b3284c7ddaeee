"""What a Meta-World pipeline run asks for (the Prefect UI's form): a preset of ``presets/metaworld/`` plus
overrides, written to ``metaworld/params.yaml`` by ``xfer params --pipeline metaworld`` (plain pydantic, no
Prefect: :mod:`flows.params` and :mod:`flows.metaworld` both use it)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator


class MetaWorldParams(BaseModel):
    """Preset and overrides of the Meta-World pipeline (keys as in ``metaworld/params.yaml``); an emptied
    list in the form means "the preset's". The variants are the preset's (``default``: MuZero only; the
    paper presets: MuZero, its three self-supervised variants and the Q-learning baseline)."""

    pipeline: Literal["metaworld"] = Field("metaworld", description="which pipeline (fixed: metaworld)")
    preset: Literal["default", "paper_ml10", "paper_ml45"] = Field(
        "default", description="default = ML10 from states, 2 training tasks, 1 test task, MuZero, 2 seeds, "
        "short runs on CPU; paper_ml10 / paper_ml45 = every task of the benchmark, pixels, 50M + 10M frames, "
        "MuZero, its self-supervised variants and Q-learning, 3 seeds (GPU)")
    benchmark: Literal["ML1", "ML10", "ML45"] | None = Field(
        None, description="Meta-World benchmark (empty = the preset's); ML1: train_tasks and test_tasks name the "
        "same single task")
    train_tasks: list[str] | Literal["all"] | None = Field(
        None, description="tasks of the benchmark's training split to pretrain on, e.g. [reach-v3], or all "
        "(empty = the preset's)")
    test_tasks: list[str] | Literal["all"] | None = Field(
        None, description="tasks of the test split for zero-shot and finetuning, e.g. [door-close-v3], or all "
        "(empty = the preset's)")
    seeds: list[int] | None = Field(None, description="seeds: every pretrain / finetune / scratch run once per seed "
                                    "(empty = the preset's)")
    device: Literal["cpu", "cuda"] | None = Field(None, description="where the runs train (empty = the preset's)")
    pretrain_env_steps: int | None = Field(None, gt=0, description="pretrain.env_steps: agent steps (= frames) per "
                                           "pretraining run (empty = the preset's)")
    finetune_env_steps: int | None = Field(None, gt=0, description="finetune.env_steps: agent steps per finetuning "
                                           "and per scratch run (empty = the preset's)")
    push: bool = Field(False, description="after each stage, push its outputs and run-cache entry to the DVC remote")
    pull: bool = Field(False, description="dvc repro --pull: reuse outputs other hosts pushed (local mode)")
    write_params: bool = Field(True, description="write metaworld/params.yaml from preset + overrides first "
                               "(off: use the checkout's as it is)")

    @field_validator("train_tasks", "test_tasks", mode="before")
    @classmethod
    def _tasks(cls, v: Any) -> Any:
        if isinstance(v, str):  # a comma separated string from a command line or a hand-written form
            v = [t.strip() for t in v.split(",")]
        if isinstance(v, list):
            v = [t.strip() if isinstance(t, str) else t for t in v if not (isinstance(t, str) and not t.strip())]
            if not v:
                return None
            if v == ["all"]:
                return "all"
            if "all" in v:
                raise ValueError(f"give either all or task names, not both: {v}")
        return v

    @field_validator("train_tasks", "test_tasks", "seeds")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        if isinstance(v, list) and len(set(v)) != len(v):
            raise ValueError(f"duplicates: {v}")
        if v == []:
            return None
        return v

    def overrides(self) -> dict[str, Any]:
        """The ``xfer params --set`` overrides these params ask for (keys as in metaworld/params.yaml)."""
        keys = ("benchmark", "train_tasks", "test_tasks", "seeds", "device")
        out: dict[str, Any] = {k: getattr(self, k) for k in keys if getattr(self, k) is not None}
        for key, val in (("pretrain.env_steps", self.pretrain_env_steps),
                         ("finetune.env_steps", self.finetune_env_steps)):
            if val is not None:
                out[key] = val
        return out
