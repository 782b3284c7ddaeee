"""Typed settings of reward-free exploration (seed 001: Walker et al. 2023; reference.md section 6)
and of its pipeline (:class:`ExplorePipelineConfig`, ``explore/params.yaml``).

:class:`IntrinsicConfig` chooses the intrinsic reward the exploring agent learns from (Random
Network Distillation by default, ensemble disagreement as the alternative) and how it is
normalised; :class:`CoverageConfig` says how distinct states are counted (the exploration
measure). Frozen pydantic models like every section of :mod:`xfer.config`: unknown keys fail.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from xfer.config import FrozenModel, TrainConfig, deep_merge, describe_validation_error


class RNDConfig(FrozenModel):
    """Random Network Distillation (Burda et al. 2019): a fixed random target network ``f`` and a trained
    predictor ``f_hat`` map the normalised next observation to ``feature_dim`` numbers; the bonus is
    ``mean_j (f_hat(o')_j - f(o')_j)^2`` (the squared error of reference.md section 6 divided by
    ``feature_dim``, so its size does not depend on the width; the return normalisation removes the scale).
    CPU-scale widths; the paper uses 512 features and 84 x 84 frames."""

    feature_dim: int = Field(64, ge=1, description="output features of target and predictor")
    hidden: int = Field(128, ge=1, description="state vectors: hidden width of the MLPs; pixels: width of the last layer")
    channels: int = Field(16, ge=1, description="pixels: channels of the first convolution (doubled in the next two)")
    lr: float = Field(1e-4, gt=0.0, description="Adam learning rate of the predictor (the paper: 1e-4)")
    update_proportion: float = Field(
        0.25, gt=0.0, le=1.0, description="fraction of each step's transitions the predictor trains on (the paper: 0.25)")
    obs_clip: float = Field(5.0, gt=0.0, description="normalised observations are clipped to [-obs_clip, obs_clip]")


class DisagreementConfig(FrozenModel):
    """Ensemble disagreement (Pathak et al. 2019): ``ensemble`` forward models predict the fixed random
    features ``phi(o')`` of the next observation from ``phi(o)`` and the action; the bonus is the
    variance of their predictions, averaged over features. Each model trains on its own bootstrap
    resample of each step's transitions."""

    ensemble: int = Field(5, ge=2, description="forward models in the ensemble")
    feature_dim: int = Field(64, ge=1, description="random features phi of an observation")
    hidden: int = Field(128, ge=1, description="hidden width of each forward model")
    channels: int = Field(16, ge=1, description="pixels: channels of the random encoder's first convolution")
    lr: float = Field(1e-4, gt=0.0, description="Adam learning rate of the forward models")


class IntrinsicConfig(FrozenModel):
    """The reward of the exploration phase: ``scale * r_int / sigma_R + extrinsic_scale * r_ext``.

    ``r_int`` is the bonus of ``kind`` on each transition's next observation; ``sigma_R`` the running
    standard deviation of the discounted intrinsic return ``R_t = return_discount * R_{t-1} + r_int``
    (non-episodic, per environment; RND's normalisation) when ``normalise_returns``. ``r_ext`` is the
    suite protocol's extrinsic reward (Atari: ``sign(r)``), counted only when ``extrinsic_scale != 0``:
    reward-free exploration leaves it at 0. Units: per agent step.
    """

    kind: Literal["rnd", "disagreement"] = "rnd"
    scale: float = Field(1.0, gt=0.0, description="multiplier of the normalised intrinsic reward")
    extrinsic_scale: float = Field(0.0, ge=0.0, description="weight of the extrinsic reward (0: reward-free)")
    normalise_returns: bool = Field(True, description="divide r_int by the running std of its discounted return")
    return_discount: float = Field(0.99, gt=0.0, lt=1.0, description="discount of the intrinsic return, per agent step "
                                   "(RND's gamma_int)")
    frame_size: int = Field(48, ge=36, description="pixels: the last frame is area-downsampled to this height and width "
                            "before the bonus networks (the paper: 84)")
    rnd: RNDConfig = RNDConfig()
    disagreement: DisagreementConfig = DisagreementConfig()


class CoverageConfig(FrozenModel):
    """How distinct states are counted (Go-Explore-style cells): pixels keep the last frame, averaged
    over its channels, area-downsampled to ``cell_height x cell_width`` and quantised to ``levels``
    grey levels; state vectors are rounded to multiples of ``state_resolution``. A cell is the hash
    of those bytes; coverage is the number of distinct cells seen."""

    cell_height: int = Field(11, ge=1, description="pixels: rows of a cell image")
    cell_width: int = Field(8, ge=1, description="pixels: columns of a cell image")
    levels: int = Field(8, ge=2, le=256, description="pixels: grey levels of a cell image")
    state_resolution: float = Field(0.05, gt=0.0, description="state vectors: grid size of a cell")
    every: int = Field(250, ge=1, description="agent steps between two points of the coverage curve")


# ---- the exploration pipeline (explore/params.yaml) -----------------------------------------------

class ExploreEvaluateConfig(FrozenModel):
    """The ``evaluate`` stage's protocol: every final model (the exploration checkpoints zero-shot, every
    transfer and scratch run) greedily, on fresh seeds independent of training, for ``episodes`` episodes
    of at most the finetuning phase's ``eval_max_steps`` agent steps (the random agent's protocol too)."""

    episodes: int = Field(16, ge=1, description="evaluation episodes per final model")


TransferPart = Literal["encoder", "dynamics", "reward_head", "prior_heads"]
"""Parts of a model transferred from exploration (Walker et al. 2023's observation encoder, model,
dynamics heads and prior heads; :data:`xfer.transfer.PARTS`)."""

_NAME = r"[a-z0-9_]+"


class ExplorePipelineConfig(FrozenModel):
    """The whole ``explore/params.yaml`` of the exploration pipeline (seed 001; reference.md section 6).

    Per ``game`` x ``agent`` x ``seed``: ``explore@<game>-<agent>-<seed>`` trains the agent reward-free
    on the ``intrinsic`` reward for ``explore``'s budget; ``random@<game>-<seed>`` plays a uniform-random
    agent for the same budget (the exploration floor: distinct cells, extrinsic reward collected) and
    under the evaluation protocol; ``transfer@<game>-<agent>-<transfer>-<seed>`` starts from the
    exploration checkpoint with the transfer's parts (the rest fresh) and finetunes on the extrinsic
    reward, ``scratch@<game>-<agent>-<seed>`` does the same from fresh weights; ``evaluate`` scores every
    final model under one protocol (``evaluate``); ``report`` pools them.

    ``train`` is a complete :class:`TrainConfig` of any suite (``env.game``, ``seed`` and ``device`` are
    set per run); each ``agents`` entry is a dict of TrainConfig keys over it (``mz: {}`` the MuZero
    agent, ``ql: {agent: {kind: ql}, ...}`` the controlled Q-learning baseline, which explores with the
    same intrinsic reward); ``explore`` and ``finetune`` are TrainConfig keys over that for the two
    phases (budgets: ``env_steps`` in agent steps). Unknown keys anywhere are errors.
    """

    preset: str = "explore"
    games: list[str] = Field(min_length=1, description="tasks of train.env's suite (Atari games, Procgen games, "
                             "Meta-World tasks)")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    device: Literal["cpu", "cuda"] = "cpu"
    train: TrainConfig = TrainConfig()
    agents: dict[str, dict[str, Any]] = Field(min_length=1, description="agent name -> TrainConfig keys over train")
    explore: dict[str, Any] = Field(default_factory=dict, description="TrainConfig keys of the exploration phase")
    finetune: dict[str, Any] = Field(default_factory=dict, description="TrainConfig keys of the transfer and "
                                     "scratch runs")
    intrinsic: IntrinsicConfig = IntrinsicConfig()
    coverage: CoverageConfig = CoverageConfig()
    transfers: dict[str, list[TransferPart]] = Field(
        min_length=1, description="transfer name -> the parts copied from the exploration checkpoint "
        "(the rest keeps its fresh initialisation); scratch runs are always there to compare with")
    random_episodes: int = Field(16, ge=1, description="evaluation episodes of the uniform-random agent per game "
                                 "and seed")
    evaluate: ExploreEvaluateConfig = ExploreEvaluateConfig()

    @model_validator(mode="after")
    def _check(self) -> ExplorePipelineConfig:
        for key, values in (("games", self.games), ("seeds", self.seeds)):
            if len(set(values)) != len(values):
                raise ValueError(f"{key} has duplicates: {values}")
        if min(self.seeds) < 0:
            raise ValueError(f"seeds must be non-negative, got {self.seeds}")
        for kind, names in (("agent", self.agents), ("transfer", self.transfers)):
            for name in names:
                if not re.fullmatch(_NAME, name):
                    raise ValueError(f"{kind} name {name!r}: use lower-case letters, digits and _ (it names run "
                                     "folders)")
        if "scratch" in self.transfers:
            raise ValueError("transfers: 'scratch' names the runs from fresh weights, which always run; name the "
                             "transfer otherwise")
        for name, parts in self.transfers.items():
            if not parts or len(set(parts)) != len(parts):
                raise ValueError(f"transfers.{name} must list distinct parts (scratch runs are separate): {parts}")
        for agent in self.agents:
            for phase, build in (("explore", self.explore_config), ("finetune", self.finetune_config)):
                try:
                    build(self.games[0], agent, self.seeds[0])
                except ValidationError as exc:
                    raise ValueError(f"agents.{agent} with {phase} does not validate over train: "
                                     f"{describe_validation_error(exc)}") from None
        return self

    def explore_config(self, game: str, agent: str, seed: int) -> TrainConfig:
        """The :class:`TrainConfig` of an exploration run: ``train``, the agent's keys, ``explore``'s keys,
        then the game, the seed and the device.

        Raises:
            KeyError: an unknown agent. pydantic.ValidationError: keys that do not validate.
        """
        return self._run_config(game, self.agents[agent], self.explore, seed)

    def finetune_config(self, game: str, agent: str, seed: int) -> TrainConfig:
        """The :class:`TrainConfig` of a transfer or scratch run: as :meth:`explore_config` with
        ``finetune``'s keys in place of ``explore``'s."""
        return self._run_config(game, self.agents[agent], self.finetune, seed)

    def _run_config(self, game: str, agent_keys: dict, phase_keys: dict, seed: int) -> TrainConfig:
        merged = deep_merge(deep_merge(self.train.model_dump(), agent_keys), phase_keys)
        env = {"task": game} if self.train.env.suite == "metaworld" else {"game": game}
        return TrainConfig.model_validate(deep_merge(merged, {"env": env, "seed": seed, "device": self.device}))


def explore_run_name(game: str, agent: str, seed: int, transfer: str | None = None) -> str:
    """``<game>-<agent>-<seed>`` (explore and scratch runs) or ``<game>-<agent>-<transfer>-<seed>``
    (transfer runs): a run's folder and DVC item name."""
    return f"{game}-{agent}-{seed}" if transfer is None else f"{game}-{agent}-{transfer}-{seed}"
