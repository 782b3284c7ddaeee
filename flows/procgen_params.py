"""What a Procgen pipeline run asks for (the Prefect UI's form): a preset of ``presets/procgen/`` plus
overrides, written to ``procgen/params.yaml`` by ``xfer params --pipeline procgen`` (plain pydantic, no
Prefect: :mod:`flows.params` and :mod:`flows.procgen` both use it)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator


class ProcgenParams(BaseModel):
    """Preset and overrides of the Procgen pipeline (keys as in ``procgen/params.yaml``); an emptied list
    in the form means "the preset's"."""

    pipeline: Literal["procgen"] = Field("procgen", description="which pipeline (fixed: procgen)")
    preset: Literal["default", "paper", "planning"] = Field(
        "default", description="default = 2 games, 10 / all levels, MZ / MZ+SPR / QL, about 10 min on 2 CPU cores; "
        "paper = 16 games, 500 levels, 30M frames, every variant (GPU); planning = the planning ablations (GPU)")
    games: list[str] | None = Field(None, description="Procgen games (empty = the preset's)")
    levels: list[int | Literal["all"]] | None = Field(None, description="training levels per run, e.g. 10, 100, "
                                                      "500, all (empty = the preset's)")
    seeds: list[int] | None = Field(None, description="seeds: every run once per seed (empty = the preset's)")
    env_steps: int | None = Field(None, gt=0, description="train.env_steps: frames per run (empty = the preset's)")
    push: bool = Field(False, description="after each stage, push its outputs and run-cache entry to the DVC remote")
    pull: bool = Field(False, description="dvc repro --pull: reuse outputs other hosts pushed (local mode)")
    write_params: bool = Field(True, description="write procgen/params.yaml from preset + overrides first "
                               "(off: use the checkout's as it is)")

    @field_validator("games", "levels", "seeds")
    @classmethod
    def _lists(cls, v: list | None) -> list | None:
        if not v:
            return None
        if len(set(v)) != len(v):
            raise ValueError(f"duplicates: {v}")
        return v

    def overrides(self) -> dict[str, Any]:
        """The ``xfer params --set`` overrides these params ask for (keys as in procgen/params.yaml)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in ("games", "levels", "seeds") if getattr(self, k) is not None}
        if self.env_steps is not None:
            out["train.env_steps"] = self.env_steps
        return out
