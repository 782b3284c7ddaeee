"""What an exploration pipeline run asks for (the Prefect UI's form): a preset of ``presets/explore/`` plus
overrides, written to ``explore/params.yaml`` by ``xfer params --pipeline explore`` (plain pydantic, no
Prefect: :mod:`flows.params` and :mod:`flows.explore` both use it)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

# The presets of presets/explore/ (files not starting with `_`); tests/flows/test_explore.py checks the folder.
ExplorePreset = Literal["default", "gpu_atari", "gpu_procgen", "gpu_metaworld"]


class ExploreParams(BaseModel):
    """Preset and overrides of the exploration pipeline (keys as in ``explore/params.yaml``); an emptied
    list in the form means "the preset's". The agents (MuZero, the Q-learning baseline) and the transfers
    (which parts of the exploration checkpoint a finetuning run starts from) are the preset's."""

    pipeline: Literal["explore"] = Field("explore", description="which pipeline (fixed: explore)")
    preset: ExplorePreset = Field(
        "default", description="default = UpNDown, MuZero and Q-learning, 2 seeds, 1,000 agent steps of "
        "reward-free exploration on RND then 1,000 of finetuning (transfers all / encoder against scratch), "
        "about a quarter of an hour on 2 CPU cores; gpu_atari (4 Atari games, 100k + 100k agent steps), "
        "gpu_procgen (4 Procgen games, 5M + 5M frames), gpu_metaworld (3 ML1 tasks from states, 2M + 2M agent "
        "steps) = MuZero and Q-learning, RND at the paper's widths, four transfers, 3 seeds (GPU)")
    games: list[str] | None = Field(None, description="games of the preset's suite: Atari games (e.g. [UpNDown]), "
                                    "Procgen games (gpu_procgen) or Meta-World tasks (gpu_metaworld); empty = the "
                                    "preset's")
    seeds: list[int] | None = Field(None, description="seeds: every explore / random / transfer / scratch run once "
                                    "per seed (empty = the preset's)")
    device: Literal["cpu", "cuda"] | None = Field(None, description="where the runs train (empty = the preset's)")
    explore_env_steps: int | None = Field(None, gt=0, description="explore.env_steps: agent steps of reward-free "
                                          "exploration per run, and of the random agent (empty = the preset's)")
    finetune_env_steps: int | None = Field(None, gt=0, description="finetune.env_steps: agent steps per transfer "
                                           "and per scratch run (empty = the preset's)")
    intrinsic: Literal["rnd", "disagreement"] | None = Field(
        None, description="intrinsic.kind: the exploration reward, Random Network Distillation (rnd) or ensemble "
        "disagreement (empty = the preset's)")
    push: bool = Field(False, description="after each stage, push its outputs and run-cache entry to the DVC remote")
    pull: bool = Field(False, description="dvc repro --pull: reuse outputs other hosts pushed (local mode)")
    write_params: bool = Field(True, description="write explore/params.yaml from preset + overrides first "
                               "(off: use the checkout's as it is)")

    @field_validator("games", mode="before")
    @classmethod
    def _games(cls, v: Any) -> Any:
        if isinstance(v, str):  # a comma separated string from a command line or a hand-written form
            v = v.split(",")
        if isinstance(v, list):
            v = [g.strip() if isinstance(g, str) else g for g in v if not (isinstance(g, str) and not g.strip())]
        return v

    @field_validator("games", "seeds")
    @classmethod
    def _lists(cls, v: list | None) -> list | None:
        if not v:
            return None  # an emptied list in the form means "the preset's"
        if len(set(v)) != len(v):
            raise ValueError(f"duplicates: {v}")
        if any(isinstance(x, int) and x < 0 for x in v):
            raise ValueError(f"seeds must be non-negative: {v}")
        return v

    def overrides(self) -> dict[str, Any]:
        """The ``xfer params --set`` overrides these params ask for (keys as in explore/params.yaml)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in ("games", "seeds", "device") if getattr(self, k) is not None}
        for key, val in (("explore.env_steps", self.explore_env_steps),
                         ("finetune.env_steps", self.finetune_env_steps), ("intrinsic.kind", self.intrinsic)):
            if val is not None:
                out[key] = val
        return out
