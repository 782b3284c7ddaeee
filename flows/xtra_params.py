"""The XTRA pipeline's form: what a run of ``xtra-pipeline`` asks for (preset and overrides of params.yaml)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

Preset = Literal["default", "cpu-demo", "shooter", "maze", "diverse"]


class PipelineParams(BaseModel):
    """What to run: a params preset plus overrides (rendered as a form in the Prefect UI).

    Field names follow params.yaml (``xfer params`` rejects unknown keys): ``targets`` is a list, ``seed``
    the pretraining stages' seed and ``seeds`` the finetuning seeds (dvc.yaml runs every finetuning run
    once per seed). For convenience ``target="Game"`` is accepted as input and mapped onto ``targets``.
    """

    pipeline: Literal["xtra"] = Field("xtra", description="which pipeline (fixed: xtra)")
    preset: Preset = Field("default", description="params preset: default = small CPU pipeline; cpu-demo = "
                           "xtra vs scratch vs no task weights, 3 seeds, about 2 h on 2 CPU cores; "
                           "shooter / maze / diverse = paper-scale setups for GPU workers")
    pretrain_games: list[str] | None = Field(None, description="pretraining games (offline datasets); "
                                             "empty = the preset's")
    targets: list[str] | None = Field(None, description="target games for finetuning (unseen in "
                                      "pretraining); empty = the preset's")
    seed: int | None = Field(None, ge=0, description="seed of the pretraining stages (params.yaml `seed`; "
                             "empty = preset's)")
    seeds: list[int] | None = Field(None, description="finetuning seeds: every finetuning run is repeated once "
                                    "per seed (params.yaml `seeds`; empty = preset's)")
    collect_env_steps: int | None = Field(None, gt=0, description="collect.env_steps (empty = preset's)")
    teacher_train_steps: int | None = Field(None, gt=0, description="teacher.train_steps (empty = preset's)")
    distill_train_steps: int | None = Field(None, gt=0, description="distill.train_steps (empty = preset's)")
    finetune_env_steps: int | None = Field(None, gt=0, description="finetune.env_steps (empty = preset's)")
    push: bool = Field(False, description="after each stage, push its outputs and run-cache entry to the DVC remote "
                       "(xfer push --run-cache)")
    pull: bool = Field(False, description="dvc repro --pull: reuse outputs other hosts pushed (local mode)")
    write_params: bool = Field(True, description="write params.yaml from preset + overrides first "
                               "(off: use the checkout's params.yaml as it is)")

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        target = data.pop("target", None)
        if target is not None:
            if data.get("targets") not in (None, [target]):
                raise ValueError("give either target or targets, not both")
            data["targets"] = [target]
        return data

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int] | None) -> list[int] | None:
        if not v:
            return None  # an emptied list in the form means "the preset's"
        if len(set(v)) != len(v) or min(v) < 0:
            raise ValueError(f"seeds must be distinct non-negative ints, got {v}")
        return v

    @field_validator("pretrain_games", "targets")
    @classmethod
    def _games(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        v = [g.strip() for g in v if g.strip()]
        if not v:
            return None  # an emptied list in the form means "the preset's"
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate games: {v}")
        return v

    def overrides(self) -> dict[str, Any]:
        """The ``xfer params --set`` overrides these params ask for (keys as in params.yaml)."""
        out: dict[str, Any] = {}
        if self.pretrain_games is not None:
            out["pretrain_games"] = self.pretrain_games
        if self.targets is not None:
            out["targets"] = self.targets
        if self.seed is not None:
            out["seed"] = self.seed
        if self.seeds is not None:
            out["seeds"] = self.seeds
        for key, val in (("collect.env_steps", self.collect_env_steps),
                         ("teacher.train_steps", self.teacher_train_steps),
                         ("distill.train_steps", self.distill_train_steps),
                         ("finetune.env_steps", self.finetune_env_steps)):
            if val is not None:
                out[key] = val
        return out
