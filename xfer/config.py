"""Typed, frozen configuration of xfer's core: environments, search, replay, network, optimiser, losses,
agent and training loop (one task's ``TrainConfig``, ``xfer train``), shared by every pipeline.

Each section maps to one pydantic model below. Models are frozen and forbid unknown keys, so a typo in
a params file fails loudly (``pydantic.ValidationError`` naming the key) before any work starts.
Defaults follow ``shared/reference.md`` section 2 (EfficientZero, Ye et al. 2021; XTRA appendix I),
except where a field says it is a CPU-scale default. Each pipeline's whole params file is a model of
its own module built from these: :mod:`xfer.xtra_config` (XTRA, ``params.yaml``),
:mod:`xfer.procgen_config`, :mod:`xfer.metaworld_config` and :mod:`xfer.exploration.config`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from xfer.nets.sizes import NetSpec, net_spec

NetSize = Literal["tiny", "ez", "ez-l"]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (dicts merge, other values replace): how
    presets extend their base, overrides apply and a variant's keys go over a section."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class FrozenModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AtariProtocol(FrozenModel):
    """Atari100k protocol (reference.md section 1) without the game: the ``env`` section of params.yaml.

    Units: agent steps unless named ``frames``.
    """

    noop_max: int = Field(30, ge=0, description="1..noop_max random no-ops at reset")
    frame_skip: int = Field(4, ge=1)
    screen_size: int = Field(96, ge=16)
    stack: int = Field(4, ge=1, description="frames per observation stack")
    max_episode_frames: int = Field(108_000, ge=1000, description="episode cap in frames")

    def for_game(self, game: str) -> AtariConfig:
        """The full env config of ``game`` under this protocol."""
        return AtariConfig(game=game, **self.model_dump())


class AtariConfig(AtariProtocol):
    """The Atari protocol for one game (``xfer train``, stages).

    ``suite`` is always ``"atari"`` and left out of dumps and hashes (an env config without a
    ``suite`` key is Atari's), so every Atari hash, sidecar and dataset manifest stays as it was
    before other suites existed.
    """

    suite: Literal["atari"] = Field("atari", exclude=True)
    game: str = "Pong"
    clip_rewards: bool = True


class ProcgenProtocol(FrozenModel):
    """Procgen protocol without the game (seed 000 sec 4, reference.md section 4): the ``env``
    section of a Procgen run. Units: agent steps (Procgen has no frame skip: 1 agent step = 1 frame).
    """

    suite: Literal["procgen"] = "procgen"
    distribution_mode: Literal["easy", "hard"] = Field("hard", description="Procgen difficulty (the paper: hard)")
    num_levels: int = Field(500, ge=0, description="levels of the training split, from start_level; 0 = every level")
    start_level: int = Field(0, ge=0, description="first level seed of the training split")
    stack: int = Field(4, ge=1, description="frames of history per observation (the paper: 15)")

    def for_game(self, game: str, split: Literal["train", "test"] = "train") -> ProcgenConfig:
        """The full env config of ``game`` on ``split`` under this protocol."""
        return ProcgenConfig(game=game, split=split, **self.model_dump())


class ProcgenConfig(ProcgenProtocol):
    """The Procgen protocol for one game and split: ``train`` plays the ``num_levels`` levels from
    ``start_level``; ``test`` the full level distribution (``num_levels=0``), where the chance of
    meeting a training level is ``num_levels / 2^31``."""

    game: str = "coinrun"
    split: Literal["train", "test"] = "train"
    clip_rewards: bool = Field(False, description="learn from sign(r) (the paper learns from raw rewards)")


class MetaWorldProtocol(FrozenModel):
    """Meta-World protocol without the task (seed 000 sec 4, reference.md section 5): the ``env``
    section of a Meta-World run. Units: agent steps (500 per episode, Meta-World's ``max_path_length``).
    """

    suite: Literal["metaworld"] = "metaworld"
    benchmark: Literal["ML1", "ML10", "ML45"] = Field(
        "ML10", description="Meta-World benchmark whose train / test split the task comes from (the paper: ML10, ML45)")
    observation: Literal["state", "pixels"] = Field(
        "state", description="the 39-d state vector, or RGB frames from `camera`")
    frame_size: int = Field(96, ge=16, description="pixels: frame height and width")
    stack: int = Field(1, ge=1, description="pixels: frames per observation, oldest first (the paper's agent sees 15)")
    camera: str = Field("corner3", description="pixels: the MuJoCo camera the frames come from")
    reward_history: int = Field(
        0, ge=0, description="past rewards / 10 the agent sees (0: off; the paper gives the agent its past "
        "rewards); states: that many appended to the state vector; pixels: 0 or 1, a reward plane per frame, "
        "so the history is `stack` long")
    benchmark_seed: int = Field(0, description="seed of Meta-World's task / goal sampling (the benchmark object)")

    @model_validator(mode="after")
    def _pixel_reward_history(self) -> MetaWorldProtocol:
        if self.observation == "pixels" and self.reward_history not in (0, 1):
            raise ValueError(f"with pixel observations reward_history is 0 or 1 (a reward plane in each frame, so "
                             f"the history is `stack` frames long), got {self.reward_history}")
        return self

    def for_task(self, task: str, split: Literal["train", "test"] = "train") -> MetaWorldConfig:
        """The full env config of ``task`` on ``split`` under this protocol."""
        return MetaWorldConfig(task=task, split=split, **self.model_dump())


class MetaWorldConfig(MetaWorldProtocol):
    """The Meta-World protocol for one task (or several) and a split: ``train`` plays the task's goal
    variations of the benchmark's training set, ``test`` those of its test set (ML10 / ML45: the
    held-out tasks; ML1: other goals of the same task)."""

    task: str | list[str] = Field(
        "reach-v3", description="a task (reach-v3), a list of tasks (copy i of the vector env plays task i mod n: "
        "one agent trained on several tasks, seed 000's ML10 / ML45 pretraining) or 'all' (every task of the split)")
    split: Literal["train", "test"] = "train"
    clip_rewards: bool = Field(False, description="learn from sign(r) (dense rewards in [0, 10]: keep False)")

    @field_validator("task")
    @classmethod
    def _one_or_more(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and (not v or len(set(v)) != len(v)):
            raise ValueError(f"a task list must be non-empty and without repeats, got {v}")
        return v[0] if isinstance(v, list) and len(v) == 1 else v

    @property
    def game(self) -> str:
        """The task's name (what self-play, evaluation and ``xfer train`` read from every suite's
        config): a list of tasks reads as their names joined by ``+``."""
        return "+".join(self.task) if isinstance(self.task, list) else self.task


def _env_suite(value: Any) -> str:
    """The suite of an env config or its dict (no ``suite`` key: Atari)."""
    return value.get("suite", "atari") if isinstance(value, dict) else getattr(value, "suite", "atari")


EnvConfig = Annotated[
    Annotated[AtariConfig, Tag("atari")] | Annotated[ProcgenConfig, Tag("procgen")]
    | Annotated[MetaWorldConfig, Tag("metaworld")],
    Discriminator(_env_suite),
]
"""One task's env config of any suite, chosen by its ``suite`` key (absent: Atari)."""


DISCOUNT = 0.997**4
"""EfficientZero's and XTRA's discount per agent step: 0.997 per emulator frame, frame skip 4
(their code applies ``discount **= frame_skip``; XTRA Table 4 writes 0.997^4 = 0.988054)."""

_MOVED = {
    "mcts.discount": "discount (a top-level key: one discount for search and value targets)",
    "mcts.lstm_horizon": "value_prefix_horizon (a top-level key: one horizon for the LSTM, search and targets)",
    "replay.value_prefix_horizon": "value_prefix_horizon (a top-level key)",
}


def _reject_moved(section: str, data: object) -> object:
    """Name the new place of a key that moved (an old params.yaml), instead of 'extra inputs'."""
    if isinstance(data, dict):
        for key in data:
            where = _MOVED.get(f"{section}.{key}")
            if where:
                raise ValueError(f"{section}.{key} moved to {where}; rewrite params with `xfer params`")
    return data


class MCTSConfig(FrozenModel):
    """Batched MCTS with EfficientZero semantics, plus the planning-ablation knobs of seed 001.

    The discount and the value-prefix horizon are not here: they are defined once, at the top
    level of :class:`TrainConfig` / :class:`PipelineConfig`, and reach the search through
    :class:`SearchConfig`.
    """

    backend: Literal["numpy"] = Field(
        "numpy", description="search implementation: numpy (batched arrays on the CPU, xfer/mcts/); a torch "
        "backend for GPUs and the sampled search for continuous actions plug in here (xfer/inference.py)",
    )
    num_simulations: int = Field(50, ge=1)
    num_samples: int = Field(
        20, ge=1, description="Box actions (Sampled MuZero, Hubert et al. 2021): actions sampled from the Gaussian "
        "policy at each expanded node, the search's edges there (seed 000 Table A.1: 20); unused for discrete actions",
    )
    sample_temperature: float = Field(
        1.0, gt=0.0, description="Box actions: the self-play root samples from pi^(1/tau) (a Gaussian's sigma times "
        "sqrt(tau)) and corrects its prior by pi / beta; 1 = sample from the policy (the paper's beta = pi)",
    )
    c1: float = 1.25
    c2: float = 19652.0
    dirichlet_alpha: float = Field(0.3, gt=0.0)
    exploration_fraction: float = Field(0.25, ge=0.0, le=1.0)
    min_max_delta: float = Field(0.01, gt=0.0, description="floor of the min-max Q range")
    max_depth: int = Field(0, ge=0, description="0 = unlimited; otherwise leaves are cut at this depth")
    policy_target: Literal["visits", "completed_q"] = Field(
        "visits",
        description="visits: normalised root visit counts (EfficientZero); completed_q: softmax(prior logits + "
        "sigma(completed Q)) (Danihelka et al. 2022), a sharper target for small simulation budgets",
    )
    root_expand_all: bool = Field(
        False, description="expand every legal root action once before pUCT takes over (use with completed_q)"
    )
    c_visit: float = Field(50.0, gt=0.0, description="completed_q: sigma = (c_visit + max N) * c_scale * q")
    c_scale: float = Field(0.1, gt=0.0, description="completed_q: see c_visit")
    q_range_floor: float = Field(
        0.0, ge=0.0, description="completed_q: floor of the min-max range of the root Q values, in value units "
        "(0 = Danihelka et al.'s 1e-8); > 0 keeps noise-level Q differences of an untrained model from "
        "becoming a sharp target",
    )
    # Planning ablations (Hamrick et al. 2021; reference.md section 7).
    search_for_targets: bool = True
    search_for_acting: bool = True
    search_at_eval: bool = True
    without_search: Literal["prior", "one_step"] = Field(
        "prior", description="what a use with search turned off (search_for_* / search_at_eval false) does instead: "
        "prior: the network's policy head; one_step: a one-step look-ahead (the search cut at depth 1, every "
        "legal action expanded once), Hamrick et al.'s model-free end of the planning ablations",
    )

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: object) -> object:
        return _reject_moved("mcts", data)


class SearchConfig(MCTSConfig):
    """What :func:`xfer.mcts.run_search` reads: the ``mcts`` section plus the run's discount (per
    agent step) and value-prefix horizon (agent steps between LSTM resets). Built by
    ``TrainConfig.search`` / ``PipelineConfig.search``, never written in params.yaml."""

    discount: float = Field(DISCOUNT, gt=0.0, le=1.0, description="per agent step")
    value_prefix_horizon: int = Field(5, ge=1, description="value-prefix LSTM reset every this many depths")

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: object) -> object:
        return data


def search_config(mcts: MCTSConfig, discount: float, horizon: int) -> SearchConfig:
    return SearchConfig(**mcts.model_dump(), discount=discount, value_prefix_horizon=horizon)


DISCOUNT_FIELD = Field(DISCOUNT, gt=0.0, le=1.0, description="per agent step (0.997 per frame = 0.997^4 "
                        "per agent step in EfficientZero and XTRA): search backups and value targets")
HORIZON_FIELD = Field(5, ge=1, description="agent steps between value-prefix LSTM resets: the model's unroll, "
                       "the search and the value-prefix targets")


class ReplayConfig(FrozenModel):
    """Prioritised replay of game segments and target construction (reference.md section 2)."""

    capacity: int = Field(100_000, ge=100, description="transitions kept")
    segment_length: int = Field(200, ge=8, description="agent steps per stored game segment")
    alpha: float = Field(0.6, ge=0.0)
    beta_start: float = Field(0.4, ge=0.0, le=1.0)
    beta_end: float = Field(1.0, ge=0.0, le=1.0)
    priority_eps: float = Field(1e-6, gt=0.0)
    unroll_steps: int = Field(5, ge=1)
    td_steps: int = Field(5, ge=1)
    off_policy_age_scale: int = Field(
        30_000, ge=1, description="td = clip(td_steps - age // scale, 1, td_steps); age in transitions"
    )
    reanalyse_fraction: float = Field(0.99, ge=0.0, le=1.0)
    reanalyse_network: Literal["target", "latest"] = Field(
        "target", description="network that re-searches the policy targets: the target network (EfficientZero's "
        "reanalyse worker) or the latest weights (the self-play copy; a teacher's copy refreshed every 25 steps)"
    )
    reanalyse_noise: bool = Field(True, description="Dirichlet root noise in reanalyse searches (EfficientZero)")

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: object) -> object:
        return _reject_moved("replay", data)


class NetConfig(FrozenModel):
    """World-model size (XTRA appendix H); ``tiny`` is the same code at CPU scale."""

    size: NetSize = "tiny"
    support_size: int | None = Field(
        None, ge=1, description="override the size's value/value-prefix support (bins = 2*s+1)"
    )
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "fp32", description="representation-network compute dtype; auto = bf16 where the CPU/GPU has it natively"
    )
    zero_init_heads: bool = Field(
        True, description="zero the last layer of the value, value-prefix and policy heads at initialisation "
        "(EfficientZero's public code, init_zero); see benchmarks/results/learning.md (fifth and seventh rounds)"
    )
    latent_scaling: Literal["minmax", "none"] = Field(
        "none", description="minmax: scale latent states to [0, 1] per sample (MuZero appendix G); none: "
        "unscaled, as EfficientZero's Atari config (state_norm=False)"
    )
    action_encoding: Literal["plane", "one_hot"] = Field(
        "plane", description="how the dynamics network sees the action: one constant plane a/18 (EfficientZero, "
        "XTRA) or 18 one-hot planes (MuZero appendix F); see benchmarks/results/learning.md (sixth round)"
    )
    decoder: bool = Field(False, description="build an observation decoder (needed by loss.reconstruction > 0; "
                          "seed 000's MZ+Recon)")

    def spec(self, size: str | None = None) -> NetSpec:
        """The :class:`xfer.nets.NetSpec` this config describes, for ``size`` when given (the pipeline's
        distillation may pick a larger student than ``self.size``). Raises ``ValueError`` (unknown size)."""
        return net_spec(size or self.size, self.support_size, self.action_encoding, self.latent_scaling,
                        self.decoder)


class OptimConfig(FrozenModel):
    """SGD schedule of EfficientZero; ``adam`` is offered for small CPU runs."""

    kind: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.2, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    warmup_fraction: float = Field(0.01, ge=0.0, le=1.0)
    lr_decay_steps: int = Field(100_000, ge=1, description="lr x lr_decay_rate at this training step")
    lr_decay_rate: float = Field(0.1, gt=0.0, le=1.0)
    grad_clip: float = Field(5.0, gt=0.0)


class LossConfig(FrozenModel):
    """Loss weights: EfficientZero's four (reference.md section 2) and the self-supervised terms of
    seed 000 (sec 3; reference.md section 4), off at weight 0 (:func:`xfer.losses.loss_terms`)."""

    value_prefix: float = 1.0
    value: float = 0.25
    policy: float = 1.0
    consistency: float = 2.0
    hidden_grad_scale: float = 0.5
    reconstruction: float = Field(0.0, ge=0.0, description="MZ+Recon: mean + max squared pixel error of the decoded "
                                  "unrolled latents (needs net.decoder; the paper: 1.0)")
    contrastive: float = Field(0.0, ge=0.0, description="MZ+Contr: action-conditioned temporal contrastive loss "
                               "(the paper: 1.0 Procgen, 0.1 Meta-World)")
    contrastive_temperature: float = Field(0.1, gt=0.0, description="softmax temperature of the cosine logits")
    contrastive_kl: float = Field(1.0, ge=0.0, description="weight of the ReLIC KL regulariser inside the contrastive term")
    contrastive_negatives: float = Field(0.1, gt=0.0, le=1.0, description="fraction of the batch drawn as the "
                                         "contrastive term's negatives (the paper: 10%)")
    spr: float = Field(0.0, ge=0.0, description="MZ+SPR: normalised L2 between predicted and target-network "
                       "projections of future observations (the paper: 10.0 Procgen, 1.0 Meta-World)")


def check_decoder(net: NetConfig, loss: LossConfig) -> None:
    """A reconstruction loss needs the network's decoder.

    Raises:
        ValueError: ``loss.reconstruction > 0`` with ``net.decoder`` off (the message says what to set).
    """
    if loss.reconstruction > 0 and not net.decoder:
        raise ValueError(f"loss.reconstruction = {loss.reconstruction} needs the observation decoder: "
                         "set net.decoder=true (or loss.reconstruction=0)")


class AgentConfig(FrozenModel):
    """Which agent learns and acts: MuZero/EfficientZero (search), or the controlled Q-learning
    baseline of seed 000 appendix A.2 (:mod:`xfer.qlearning`): the same network and replay, acting
    epsilon-greedy on one-step ``Q(s, a) = r_hat + gamma V(g(s, a))``, value targets from Eq. 2
    (``replay.td_steps = n``: the value of the state after ``(s_t, a_t)`` sums ``n - 1`` rewards and
    bootstraps on ``max_a Q_xi(s_{t+n}, a)`` of the target network), no policy loss. QL unrolls
    ``replay.unroll_steps = 1``, QL+Model 5. The epsilon schedule is not in the paper: a linear
    decay over the first ``epsilon_decay`` of the agent steps (DQN's)."""

    kind: Literal["muzero", "ql"] = "muzero"
    epsilon_start: float = Field(1.0, ge=0.0, le=1.0, description="ql: exploration at agent step 0")
    epsilon_end: float = Field(0.01, ge=0.0, le=1.0, description="ql: exploration after the decay")
    epsilon_decay: float = Field(0.1, gt=0.0, le=1.0, description="ql: fraction of env_steps of the linear decay")
    eval_epsilon: float = Field(0.0, ge=0.0, le=1.0, description="ql: exploration during evaluation")

    def epsilon_at(self, progress: float) -> float:
        """Self-play epsilon at training progress in [0, 1] (linear, then flat)."""
        f = min(1.0, max(0.0, progress) / self.epsilon_decay)
        return self.epsilon_start + f * (self.epsilon_end - self.epsilon_start)


class LoopConfig(FrozenModel):
    """The online loop: how many environments act, when and how often it learns, refreshes its
    networks, evaluates and checkpoints. Units: agent steps (1 agent step = 4 frames) unless named
    otherwise. ``xfer train`` takes these keys at the top level of its config (:class:`TrainConfig`);
    a pipeline stage with an online loop takes them as its typed ``train`` section
    (:class:`StageLoopConfig`: ``collect.train``, ``finetune.train``)."""

    num_envs: int = Field(1, ge=1, description="environments acting side by side (one batched search per agent step)")
    batch_size: int = Field(256, ge=2)
    train_ratio: float = Field(1.0, gt=0.0, description="training steps per agent step after start")
    start_transitions: int = Field(2000, ge=1, description="learning starts after this many")
    self_play_refresh: int = Field(100, ge=1, description="training steps between actor weight copies")
    target_refresh: int = Field(200, ge=1, description="training steps between target-net copies")
    augment: bool = True
    eval_every: int = Field(10_000, ge=1, description="agent steps between evaluations")
    eval_episodes: int = Field(8, ge=1)
    eval_max_steps: int = Field(27_000, ge=1, description="agent-step cap per evaluation episode")
    checkpoint_every: int = Field(2_000, ge=1, description="agent steps between resume checkpoints")


BOX_SUITES = ("metaworld",)
"""Suites whose actions are a ``Box`` (continuous control): they act by the sampled search."""


def check_box_actions(env: BaseModel, agent: AgentConfig, mcts: MCTSConfig) -> None:
    """Refuse settings a continuous-action (``Box``) suite cannot run, naming the key to change.

    Raises:
        ValueError: completed-Q policy targets (a prior over the whole action space) with a Box suite
            (the Q-learning agent needs none: it learns no policy).
    """
    if getattr(env, "suite", "atari") not in BOX_SUITES or agent.kind == "ql":
        return
    if mcts.policy_target != "visits":
        raise ValueError(f"{env.suite} has continuous actions: set mcts.policy_target: visits (the sampled search's "
                         "target is the visit fractions of its sampled actions; completed_q needs every action's prior)")


class TrainConfig(LoopConfig):
    """Single-task online EfficientZero (``xfer train``). Steps are agent steps (1 step = 4 frames).
    The loop's settings are those of :class:`LoopConfig`."""

    env: EnvConfig = AtariConfig()
    agent: AgentConfig = AgentConfig()
    net: NetConfig = NetConfig()
    mcts: MCTSConfig = MCTSConfig()
    replay: ReplayConfig = ReplayConfig()
    optim: OptimConfig = OptimConfig()
    loss: LossConfig = LossConfig()
    discount: float = DISCOUNT_FIELD
    value_prefix_horizon: int = HORIZON_FIELD
    seed: int = 0
    env_steps: int = Field(100_000, ge=1, description="agent steps collected in total")
    keep_eval_models: bool = Field(
        False, description="also keep the weights of every evaluation as evals/model_<agent steps>.safetensors"
    )
    extra_train_steps: int = Field(
        0, ge=0, description="gradient steps after the last agent step at lr x extra_lr_scale, no new data "
        "(EfficientZero's +20k at lr / 10 for its state-of-the-art comparison; XTRA appendix I)"
    )
    extra_lr_scale: float = Field(0.1, gt=0.0, le=1.0, description="learning rate of the extra steps: optim.lr x this")
    device: Literal["cpu", "cuda"] = "cpu"

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.start_transitions > self.replay.capacity:
            raise ValueError("start_transitions must not exceed replay.capacity")
        check_decoder(self.net, self.loss)
        if self.agent.kind == "ql":
            if self.loss.policy != 0.0:
                raise ValueError("agent.kind ql learns no policy: set loss.policy: 0 (the ql presets do)")
            if self.replay.td_steps < 2:
                raise ValueError("agent.kind ql needs replay.td_steps >= 2 (n-step Q targets, Eq. 1 of seed 000 A.2)")
        check_box_actions(self.env, self.agent, self.mcts)
        return self

    @property
    def search(self) -> SearchConfig:
        """The search settings of this run (``mcts`` + discount + value-prefix horizon)."""
        return search_config(self.mcts, self.discount, self.value_prefix_horizon)


def config_hash(cfg: BaseModel) -> str:
    """Stable 12-hex-digit SHA-256 of a config's JSON form (sorted keys)."""
    blob = json.dumps(cfg.model_dump(mode="json"), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def describe_validation_error(exc: ValidationError) -> str:
    """One line listing every problem of a pydantic error as ``dotted.key: message``."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors())
