"""Typed, frozen configuration of the XTRA pipeline: the whole ``params.yaml`` (:class:`PipelineConfig`) and its
pipeline sections (collect, teacher / distill, finetune with its runs and task weights, baselines, evaluate).

The shared sections (env, net, mcts, replay, optim, loss) are the core models of :mod:`xfer.config`;
unknown keys anywhere are errors. XTRA: Xu et al. 2023 (seed 003), sections 3-4 and appendices B, C, D, I.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from xfer.config import (
    DISCOUNT_FIELD,
    HORIZON_FIELD,
    AtariProtocol,
    FrozenModel,
    LoopConfig,
    LossConfig,
    MCTSConfig,
    NetConfig,
    NetSize,
    OptimConfig,
    ReplayConfig,
    SearchConfig,
    check_decoder,
    search_config,
)


class StageLoopConfig(LoopConfig):
    """A pipeline stage's online loop (``collect.train``: the behaviour agent; ``finetune.train``: the
    target game's online part): every :class:`LoopConfig` key, plus this loop's reanalyse fraction.
    The stage's :class:`TrainConfig` is the shared sections (env, net, mcts, replay, ...) with these
    keys over them (:meth:`overrides`)."""

    reanalyse_fraction: float | None = Field(
        None, ge=0.0, le=1.0, description="replay.reanalyse_fraction of this loop; None = the replay section's")

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: object) -> object:
        if isinstance(data, dict) and "replay" in data:
            raise ValueError("train.replay moved to train.reanalyse_fraction (the one replay key a stage's loop "
                             "sets); rewrite params with `xfer params`")
        return data

    def overrides(self) -> dict:
        """The :class:`TrainConfig` keys this section sets (a nested ``replay`` for the reanalyse fraction)."""
        out = self.model_dump(exclude={"reanalyse_fraction"})
        if self.reanalyse_fraction is not None:
            out["replay"] = {"reanalyse_fraction": self.reanalyse_fraction}
        return out





class EvalConfig(FrozenModel):
    """Evaluation protocol: argmax visit counts, no noise (reference.md section 1)."""

    episodes: int = Field(32, ge=1, description="episodes per finetuned model")
    random_episodes: int | None = Field(
        None, ge=1, description="episodes of the uniform-random agent per target (null = episodes): it needs no "
        "search, so many episodes cost little, and its spread otherwise dominates the standard error of a run's "
        "difference to it"
    )
    max_steps: int = Field(27_000, ge=1, description="agent-step cap per episode (27k = 108k frames)")
    zero_shot_episodes: int = Field(
        32, ge=1, description="episodes of the evaluations of pretrained models without finetuning (teachers, "
        "student, pretraining baselines) per game"
    )

    @model_validator(mode="before")
    @classmethod
    def _null_zero_shot(cls, data: object) -> object:
        # params files written before the field had its own value said null for "= episodes"
        if isinstance(data, dict) and "zero_shot_episodes" in data and data["zero_shot_episodes"] is None:
            data = {**data, "zero_shot_episodes": data.get("episodes", 32)}
        return data

    @property
    def random_agent_episodes(self) -> int:
        """Episodes of the uniform-random agent per target (``random_episodes``, else ``episodes``)."""
        return self.random_episodes or self.episodes

    @property
    def pretrained_episodes(self) -> int:
        """Episodes per game of an evaluation of a pretrained model (``zero_shot_episodes``): the
        pretraining stages read this and ``max_steps`` only, never ``episodes``."""
        return self.zero_shot_episodes


class CollectConfig(FrozenModel):
    """Stage 0, ``collect@<game>``: an offline dataset from a behaviour policy with search statistics."""

    policy: Literal["efficientzero", "random"] = "efficientzero"
    env_steps: int = Field(100_000, ge=10, description="agent steps of behaviour data per game")
    train: StageLoopConfig = Field(StageLoopConfig(), description="the behaviour agent's online loop")
    shard_transitions: int = Field(2_000, ge=100, description="transitions per shard (bounds sampler memory)")


class OfflineTrainConfig(FrozenModel):
    """Offline training (teachers: offline RL with reanalyse; student: distillation)."""

    train_steps: int = Field(100_000, ge=1)
    batch_size: int = Field(256, ge=2)
    reanalyse_fraction: float = Field(1.0, ge=0.0, le=1.0, description="teacher only")
    checkpoint_every: int = Field(1000, ge=1, description="training steps between resume checkpoints")
    target_refresh: int = Field(200, ge=1)
    max_cached_shards: int = Field(2, ge=1, description="per game, for memory-bounded sampling")
    rotate_every: int = Field(2_000, ge=1, description="sampled transitions per game between shard rotations")
    size: NetSize | None = Field(None, description="student size (distill); None = net.size")


class BaselinesConfig(FrozenModel):
    """Pretraining baselines: multi-game models trained on the behaviour datasets themselves instead of
    distilled from teachers, each evaluated zero-shot on the pretraining and target games (stages
    ``bc`` and ``offline_rl``). ``size`` None = the student's size."""

    bc: OfflineTrainConfig = Field(
        default_factory=lambda: OfflineTrainConfig(reanalyse_fraction=0.0),
        description="multi-game behaviour cloning (XTRA section 4): the policy imitates the dataset's actions",
    )
    offline_rl: OfflineTrainConfig = Field(
        default_factory=OfflineTrainConfig,
        description="multi-game offline RL instead of distillation (XTRA appendix C): EfficientZero + "
        "Reanalyse on all pretraining datasets at once, its own bootstrap",
    )


class TaskWeightConfig(FrozenModel):
    """Periodic task re-weighting by gradient cosine similarity (XTRA Appendix B).

    Units are gradient (training) steps. Cycle ``T``, window ``N`` at the start of each cycle,
    counter of steps with cosine > ``threshold``; ``eta_i = count_i / N`` at the window's end.
    Weights are 1 before ``start``.
    """

    cycle: int = Field(5000, ge=1)
    window: int = Field(500, ge=1)
    threshold: float = 0.1
    start: int = Field(10_000, ge=0)

    @model_validator(mode="after")
    def _check(self) -> TaskWeightConfig:
        if self.window > self.cycle:
            raise ValueError(f"task_weights.window ({self.window}) must not exceed cycle ({self.cycle})")
        return self


class FinetuneRun(FrozenModel):
    """One finetuning variant (XTRA Table 1 ablations and baselines, Fig. 7-8)."""

    init: str = Field(
        "student", pattern=r"^(none|student|bc|offline_rl|teacher:[A-Za-z0-9]+)$",
        description="the model the run starts from: none (fresh weights), student (XTRA), bc or offline_rl "
        "(the pretraining baselines), teacher:<game> (one pretraining game's teacher); stage init@<run> "
        "copies it to runs/init/<run>")
    cross_task: bool = True
    task_weights: bool = True
    transfer: list[Literal["h", "g", "f"]] = Field(default_factory=lambda: ["h", "g", "f"])
    freeze_representation: bool = False
    size: NetSize | None = Field(None, description="network size when init is none; None = net.size")
    batch_size: int | None = Field(
        None, ge=2, description="target-task batch of this run; None = finetune.train's (XTRA appendix D: "
        "EfficientZero with a 2x batch, the compute of XTRA's target + offline batches)"
    )
    extra_train_steps: int = Field(
        0, ge=0, description="gradient steps at lr / 10 after the last agent step (XTRA appendix I, Table 2)"
    )

    @model_validator(mode="after")
    def _check(self) -> FinetuneRun:
        if self.init != "none" and not self.transfer:
            raise ValueError(f"a run with init: {self.init} must transfer at least one of h, g, f")
        return self


class FinetuneConfig(FrozenModel):
    """Stage 2, ``finetune@<run>``: concurrent cross-task finetuning (XTRA Eq. 1)."""

    env_steps: int = Field(100_000, ge=10)
    offline_batch_size: int = Field(256, ge=1, description="split evenly over offline games")
    offline_value_target: Literal["nstep", "public"] = Field(
        "nstep", description="nstep: proper n-step with teacher root value; public: public code's variant"
    )
    loss_balance: Literal["pooled", "sum"] = Field(
        "pooled", description="pooled: 0.5 * mean(target) + 0.5 * (1/m) * sum_i eta_i * mean(offline_i) (XTRA's "
        "code); sum: mean(target) + sum_i eta_i * mean(offline_i) (the literal Eq. 1)"
    )
    task_weights: TaskWeightConfig = TaskWeightConfig()
    train: StageLoopConfig = Field(StageLoopConfig(), description="the online loop on the target game")
    runs: dict[str, FinetuneRun] = Field(default_factory=lambda: {"xtra": FinetuneRun(),
                                                                  "scratch": FinetuneRun(init="none", cross_task=False)})

    @model_validator(mode="after")
    def _check(self) -> FinetuneConfig:
        if not self.runs:
            raise ValueError("finetune.runs must name at least one run")
        return self


class PipelineConfig(FrozenModel):
    """The whole ``params.yaml`` of the XTRA pipeline. Unknown keys anywhere are errors."""

    preset: str = "default"
    pretrain_games: list[str] = Field(min_length=1)
    targets: list[str] = Field(min_length=1, description="target games of finetuning (unseen in pretraining)")
    seed: int = Field(0, description="seed of the pretraining stages (collect, teacher, distill)")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1,
                             description="every finetuning run is repeated once per seed (dvc.yaml fans "
                             "finetune@<target>-<run>-<seed> out over them); the report pools over seeds")
    device: Literal["cpu", "cuda"] = "cpu"
    env: AtariProtocol = AtariProtocol()
    net: NetConfig = NetConfig()
    mcts: MCTSConfig = MCTSConfig()
    replay: ReplayConfig = ReplayConfig()
    optim: OptimConfig = OptimConfig()
    loss: LossConfig = LossConfig()
    discount: float = DISCOUNT_FIELD
    value_prefix_horizon: int = HORIZON_FIELD
    collect: CollectConfig = CollectConfig()
    teacher: OfflineTrainConfig = OfflineTrainConfig()
    distill: OfflineTrainConfig = OfflineTrainConfig(size="ez-l", reanalyse_fraction=0.0)
    finetune: FinetuneConfig = FinetuneConfig()
    baselines: BaselinesConfig = BaselinesConfig()
    evaluate: EvalConfig = EvalConfig()
    baseline_run: str = Field("scratch", description="finetune run the report compares against")

    @model_validator(mode="after")
    def _check(self) -> PipelineConfig:
        check_decoder(self.net, self.loss)
        if len(set(self.pretrain_games)) != len(self.pretrain_games):
            raise ValueError(f"pretrain_games has duplicates: {self.pretrain_games}")
        overlap = sorted(set(self.targets) & set(self.pretrain_games))
        if overlap:
            raise ValueError(f"targets {overlap} are also pretraining games; XTRA transfers to unseen games")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError(f"targets has duplicates: {self.targets}")
        if len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds must be distinct non-negative ints, got {self.seeds}")
        ft = self.finetune
        if any(r.cross_task for r in ft.runs.values()) and ft.offline_batch_size < len(self.pretrain_games):
            raise ValueError(
                f"finetune.offline_batch_size ({ft.offline_batch_size}) is smaller than the number of pretraining "
                f"games ({len(self.pretrain_games)}): every game must draw at least one sample per step; "
                f"set it to at least {len(self.pretrain_games)} (a multiple splits evenly)")
        for name, run in self.finetune.runs.items():
            game = run.init.removeprefix("teacher:") if run.init.startswith("teacher:") else None
            if game is not None and game not in self.pretrain_games:
                raise ValueError(f"finetune.runs.{name}.init: {run.init!r} names no pretraining game; "
                                 f"teachers exist for {self.pretrain_games}")
        if self.baseline_run not in self.finetune.runs:
            raise ValueError(f"baseline_run {self.baseline_run!r} is not in finetune.runs {sorted(self.finetune.runs)}")
        return self

    @property
    def search(self) -> SearchConfig:
        """The search settings of every stage (``mcts`` + discount + value-prefix horizon)."""
        return search_config(self.mcts, self.discount, self.value_prefix_horizon)
