"""Typed settings of reward-free exploration (seed 001: Walker et al. 2023; reference.md section 6).

:class:`IntrinsicConfig` chooses the intrinsic reward the exploring agent learns from (Random
Network Distillation by default, ensemble disagreement as the alternative) and how it is
normalised; :class:`CoverageConfig` says how distinct states are counted (the exploration
measure). Frozen pydantic models like every section of :mod:`xfer.config`: unknown keys fail.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from xfer.config import _Frozen


class RNDConfig(_Frozen):
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


class DisagreementConfig(_Frozen):
    """Ensemble disagreement (Pathak et al. 2019): ``ensemble`` forward models predict the fixed random
    features ``phi(o')`` of the next observation from ``phi(o)`` and the action; the bonus is the
    variance of their predictions, averaged over features. Each model trains on its own bootstrap
    resample of each step's transitions."""

    ensemble: int = Field(5, ge=2, description="forward models in the ensemble")
    feature_dim: int = Field(64, ge=1, description="random features phi of an observation")
    hidden: int = Field(128, ge=1, description="hidden width of each forward model")
    channels: int = Field(16, ge=1, description="pixels: channels of the random encoder's first convolution")
    lr: float = Field(1e-4, gt=0.0, description="Adam learning rate of the forward models")


class IntrinsicConfig(_Frozen):
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
    frame_size: int = Field(48, ge=8, description="pixels: the last frame is area-downsampled to this height and width "
                            "before the bonus networks (the paper: 84)")
    rnd: RNDConfig = RNDConfig()
    disagreement: DisagreementConfig = DisagreementConfig()


class CoverageConfig(_Frozen):
    """How distinct states are counted (Go-Explore-style cells): pixels keep the last frame, averaged
    over its channels, area-downsampled to ``cell_height x cell_width`` and quantised to ``levels``
    grey levels; state vectors are rounded to multiples of ``state_resolution``. A cell is the hash
    of those bytes; coverage is the number of distinct cells seen."""

    cell_height: int = Field(11, ge=1, description="pixels: rows of a cell image")
    cell_width: int = Field(8, ge=1, description="pixels: columns of a cell image")
    levels: int = Field(8, ge=2, le=256, description="pixels: grey levels of a cell image")
    state_resolution: float = Field(0.05, gt=0.0, description="state vectors: grid size of a cell")
    every: int = Field(250, ge=1, description="agent steps between two points of the coverage curve")
