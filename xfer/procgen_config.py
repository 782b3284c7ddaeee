"""Typed, frozen configuration of the Procgen pipeline: the whole ``procgen/params.yaml``
(:class:`ProcgenPipelineConfig`) and its run names (seed 000 sections 3-4, appendix A)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from xfer.config import (
    FrozenModel,
    ProcgenConfig,
    TrainConfig,
    deep_merge,
    describe_validation_error,
)

Levels = Annotated[int, Field(ge=1)] | Literal["all"]
"""Training levels of a Procgen run: ``num_levels`` levels from level 0, or ``all`` (the full
distribution, ``num_levels = 0``)."""


class ProcgenPipelineConfig(FrozenModel):
    """The whole ``procgen/params.yaml`` of the Procgen pipeline (seed 000 sections 3-4, appendix A):
    every ``game`` x ``variant`` x ``levels`` x ``seed`` is one run (``procgen/dvc.yaml`` fans
    ``train@<game>-<variant>-<levels>-<seed>`` out over them), evaluated on its training levels and
    zero-shot on the full level distribution; ``report`` pools them. Unknown keys anywhere are errors.

    ``train`` is a complete :class:`TrainConfig` (``env.game``, ``env.num_levels``, ``seed`` and
    ``device`` are set per run); each variant is a dict of :class:`TrainConfig` keys merged over it
    (dicts key by key), e.g. ``{loss: {spr: 10.0}}`` or the Q-learning baseline's
    ``{agent: {kind: ql}, loss: {policy: 0.0}, replay: {unroll_steps: 1}}``.
    """

    preset: str = "procgen"
    games: list[str] = Field(min_length=1, description="Procgen games (xfer.envs.procgen.GAMES)")
    levels: list[Levels] = Field(min_length=1, description="training levels per run: counts from level 0, or all")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    device: Literal["cpu", "cuda"] = "cpu"
    train: TrainConfig = TrainConfig(env=ProcgenConfig())
    variants: dict[str, dict[str, Any]] = Field(min_length=1, description="variant name -> TrainConfig keys over train")
    random_episodes: int = Field(32, ge=1, description="episodes of the uniform-random agent per run and split")
    reference: dict[str, float] = Field(
        default_factory=dict, description="paper figures shown beside each variant's mean normalised test score "
        "over games (Table A.2 of seed 000 at 500 levels, 30M frames; set by the paper preset only)")

    @model_validator(mode="after")
    def _check(self) -> ProcgenPipelineConfig:
        if self.train.env.suite != "procgen":
            raise ValueError("train.env must be a Procgen env config (env.suite: procgen)")
        for key, values in (("games", self.games), ("levels", self.levels), ("seeds", self.seeds)):
            if len(set(values)) != len(values):
                raise ValueError(f"{key} has duplicates: {values}")
        if min(self.seeds) < 0:
            raise ValueError(f"seeds must be non-negative, got {self.seeds}")
        for name in self.variants:
            if not re.fullmatch(r"[a-z0-9_]+", name):
                raise ValueError(f"variant name {name!r}: use lower-case letters, digits and _ (it names run folders)")
            try:
                self.run_config(self.games[0], name, self.levels[0], self.seeds[0])
            except ValidationError as exc:
                raise ValueError(f"variants.{name} does not validate over train: "
                                 f"{describe_validation_error(exc)}") from None
        unknown = sorted(set(self.reference) - set(self.variants))
        if unknown:
            raise ValueError(f"reference names variants that do not exist: {unknown} (variants: {sorted(self.variants)})")
        return self

    def run_config(self, game: str, variant: str, levels: int | str, seed: int) -> TrainConfig:
        """The :class:`TrainConfig` of one run: ``train``, the variant's keys over it, then the game,
        its training levels (``all``: ``num_levels = 0``), the seed and the device.

        Raises:
            KeyError: an unknown variant. pydantic.ValidationError: a variant that does not validate.
        """
        env = {"game": game, "split": "train", "num_levels": 0 if levels == "all" else int(levels)}
        merged = deep_merge(self.train.model_dump(), self.variants[variant])
        return TrainConfig.model_validate(deep_merge(merged, {"env": env, "seed": seed, "device": self.device}))


def procgen_run_name(game: str, variant: str, levels: int | str, seed: int) -> str:
    """``<game>-<variant>-<levels>-<seed>``: a Procgen run's folder and DVC item name."""
    return f"{game}-{variant}-{levels}-{seed}"
