"""Single-task online EfficientZero on a real game of any suite: Atari, Procgen or Meta-World (``xfer train``).

The loop interleaves vectorised self-play (one batched search per agent step) with training steps
at ``train_ratio`` per agent step once ``start_transitions`` were collected; reanalyse refreshes
policy targets with the latest network and value bootstraps come from the target network. It
writes, under ``out_dir``:

- ``model.safetensors`` + ``model.json``: the latest evaluated weights and their sidecar;
- ``state/``: the full resume state (weights, target, optimiser, replay, counters, RNG), saved
  atomically every ``checkpoint_every`` agent steps; rerunning the same command resumes from it;
- ``metrics/train.tsv``, ``metrics/eval.tsv``, ``summary.json`` and ``learning_curve.png``;
- ``metrics/random.json``: a uniform-random agent under the same evaluation protocol (episodes,
  step cap), the fair floor for capped evaluations (shown as a dashed line in the curve).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm import tqdm

from xfer import checkpoint as ckpt
from xfer import training_state
from xfer.acting import Acting, QActing
from xfer.actor import SelfPlay, evaluate_random_episodes, temperature_at
from xfer.agent import build_agent, build_model
from xfer.agent import model_meta as agent_model_meta
from xfer.config import TrainConfig, config_hash
from xfer.envs.spec import EnvSpec
from xfer.envs.suites import env_spec
from xfer.inference import reanalyse_policy_fn
from xfer.learner import Learner, StepResult
from xfer.loop import GradientStep, equal_weights, run_steps
from xfer.metrics import TsvLog, plot_curves
from xfer.parallel_eval import EvalJob, run_episode_evaluations
from xfer.qlearning import box_candidates, one_step_q_values
from xfer.replay.buffer import PrioritizedReplay
from xfer.replay.targets import Batch, build_batch, network_bootstrap
from xfer.resume import discard_stale_state, load_state, save_state
from xfer.rewards import RewardPart
from xfer.transfer import transfer_parts

log = logging.getLogger(__name__)

EVAL_COLUMNS = ["env_steps", "train_steps", "mean_score", "std_score", "min_score", "max_score", "episodes"]


@dataclass
class Counters:
    """Progress counters, in agent steps (env_steps) and gradient steps (train_steps)."""

    env_steps: int = 0
    train_steps: int = 0
    train_debt: float = 0.0
    last_eval: int = 0
    last_checkpoint: int = 0
    extra_steps: int = 0
    last_eval_train: int = -1


def planned_train_steps(cfg: TrainConfig) -> int:
    """Gradient steps the run will take: ``(env_steps - start_transitions) * train_ratio``."""
    return max(1, int((cfg.env_steps - cfg.start_transitions) * cfg.train_ratio))


def task_spec(cfg: TrainConfig) -> EnvSpec:
    """The environment spec of the run's game (``cfg.env``: one game of its suite, e.g. Atari, Procgen or Meta-World).

    Raises:
        ValueError: an unknown game (the message lists the suite's games).
    """
    return env_spec(cfg.env.suite, cfg.env, cfg.env.game)


def model_meta(cfg: TrainConfig, counters: Counters) -> ckpt.ModelMeta:
    """Sidecar describing a single-game model trained with ``cfg``."""
    spec = task_spec(cfg)
    return agent_model_meta(spec, cfg.net, {spec.task: spec}, counters.train_steps, counters.env_steps,
                            config_hash(cfg))


@dataclass(frozen=True)
class WeightsInit:
    """The weights a fresh run starts from (a resumed run keeps its own).

    ``path``: a model checkpoint (``model.safetensors`` with its sidecar) of the run's network size.
    ``parts``: None copies every weight; else the parts :func:`xfer.transfer.transfer_parts` copies
    (XTRA's transfer of the representation / dynamics / prediction networks), the rest keep their
    fresh initialisation.
    """

    path: Path
    parts: list[str] | None = None


class StepTasks(Protocol):
    """What a gradient step learns beside the online task's replay batch: a batch source for other
    tasks plus its step hook (XTRA Eq. 1's offline tasks and their task weights, in
    :mod:`xfer.stages.finetune`). The loop stays the same; the component decides the step.
    """

    def num_tasks(self) -> int:
        """Tasks in one gradient step, the online one included (the metric columns follow it)."""
        ...

    def learn(self, learner: Learner, online: Batch, rng: np.random.Generator) -> StepResult:
        """One gradient step on ``online`` (the replay batch, ``[B, K+1, ...]``) plus this
        component's batches, drawn with ``rng`` (the run's generator: resumable)."""
        ...

    def open(self, out_dir: Path, keep: float) -> None:
        """Open its logs under ``out_dir``; ``keep``: rows up to this train step survive (-1: none)."""
        ...

    def state(self) -> dict:
        """JSON-able state saved with the run's resume state."""
        ...

    def load(self, extra: dict) -> None:
        """Restore what :meth:`state` returned."""
        ...


def run_acting(cfg: TrainConfig, progress: float = 1.0, explore: bool = True) -> Acting:
    """How a run of ``cfg`` acts at training ``progress`` in [0, 1]: its search settings (self-play and
    evaluation alike; :mod:`xfer.acting`), or for ``agent.kind = ql`` epsilon-greedy on Q with
    ``agent.epsilon_at(progress)`` (self-play) or ``agent.eval_epsilon`` (``explore=False``: evaluation)."""
    if cfg.agent.kind == "ql":
        return QActing(cfg.agent.epsilon_at(progress) if explore else cfg.agent.eval_epsilon, cfg.discount,
                       cfg.mcts.num_samples)
    return cfg.search


class Trainer:
    """Holds everything a training run needs; :meth:`run` drives it (see module docstring).

    Composed, not subclassed: what a pipeline stage changes comes in as parts.

    - ``init``: the weights a fresh run starts from (:class:`WeightsInit`).
    - ``tasks``: what each gradient step learns beside the replay batch (:class:`StepTasks`); None:
      the replay batch alone (single-task EfficientZero).
    - ``resume_key``: the hash a resume state must match; None: ``config_hash(cfg)``.
    - ``restart_stale``: discard a resume state from another configuration instead of refusing it
      (pipeline stages; ``xfer train`` refuses so a user never loses a run by mistake).
    - ``freeze_representation``: train with ``h`` frozen (:meth:`xfer.learner.Learner.freeze_representation`).
    - ``initial_eval``: evaluate the untrained (or initialised) network at agent step 0.
    - ``final_eval``: evaluate at the last agent step; off where a later stage evaluates the final
      model under its own protocol (the pipeline's ``evaluate``): ``model.safetensors`` is then
      written at the end without an evaluation, and no in-run evaluation falls on the last step.
    - ``random_baseline``: measure a uniform-random agent under the evaluation protocol once
      (``metrics/random.json``, a dashed line in the learning curve, ``random_eval_score`` in the
      summary); off where a later stage measures it (the pipeline's ``evaluate``).
    - ``reward``: the reward self-play stores for learning, as a part with state
      (:class:`xfer.rewards.RewardPart`: reward-free exploration's intrinsic reward); None: the
      suite protocol's extrinsic reward. Scores, evaluations and ``episode_return`` stay extrinsic.

    Raises:
        ValueError: an unknown game.
        RuntimeError: ``device: cuda`` without a CUDA device.
        xfer.checkpoint.CheckpointError: ``init`` or a resume state that does not fit the run.
    """

    def __init__(self, cfg: TrainConfig, out_dir: Path, progress: bool = True, init: WeightsInit | None = None,
                 restart_stale: bool = False, freeze_representation: bool = False, initial_eval: bool = True,
                 final_eval: bool = True, random_baseline: bool = True, tasks: StepTasks | None = None,
                 resume_key: str | None = None, reward: RewardPart | None = None) -> None:
        spec = task_spec(cfg)  # an unknown game fails before any heavy work
        self.legal = spec.action_mask()
        self.success = spec.reports_success  # Meta-World: success rates logged beside scores
        if cfg.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda was requested but torch sees no CUDA device; use --device cpu")
        self.cfg = cfg
        self.initial_eval, self.final_eval, self.random_baseline = initial_eval, final_eval, random_baseline
        self.tasks = tasks
        self.reward = reward
        self.resume_key = resume_key
        self.out = Path(out_dir)
        self.progress = progress
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.learner = build_agent(spec, cfg.net, cfg.optim, cfg.loss, cfg.value_prefix_horizon,
                                   planned_train_steps(cfg), cfg.device, cfg.augment).learner
        if freeze_representation:  # before a resume state is loaded: its optimiser has no h parameters
            self.learner.freeze_representation()
        self.actor_net = build_model(spec, cfg.net, cfg.device)
        # evaluations play a copy (built here, not at each evaluation: building draws from torch's RNG)
        self.eval_net = build_model(spec, cfg.net, cfg.device)
        self.replay = PrioritizedReplay(cfg.replay.capacity, cfg.replay.alpha, cfg.replay.priority_eps)
        self.counters = Counters()
        self.state_dir = self.out / "state"
        self.resumed = False
        if restart_stale:
            discard_stale_state(self.state_dir, self.state_hash())
        if training_state.has_training_state(self.state_dir):
            self._load_state()
            self.resumed = True
        # A resumed run keeps the rows up to its checkpoint; a fresh run starts empty logs.
        keep = self.counters.env_steps if self.resumed else -1
        # the columns come from the learner's active loss terms and the tasks of a step
        self.metric_names = self.learner.step_metric_names(self.num_tasks())
        self.train_columns = ["env_steps", "train_steps", *self.metric_names, "episode_return",
                              *(["episode_success"] if self.success else [])]
        self.train_log = TsvLog(self.out / "metrics" / "train.tsv", self.train_columns, "env_steps", keep)
        self.eval_log = TsvLog(self.out / "metrics" / "eval.tsv",
                               EVAL_COLUMNS + (["success_rate"] if self.success else []), "env_steps", keep)
        if self.tasks is not None:
            self.tasks.open(self.out, self.counters.train_steps if self.resumed else -1)
        if self.reward is not None:
            self.reward.open(self.out, keep)
        if init is not None and not self.resumed:
            self._initialise(init)
        self.actor_net.load_state_dict(self.learner.net.state_dict())
        # the gradient step every loop of the run takes (xfer.loop): replay batches, the learn part,
        # the target refresh, then priorities / counters / self-play refresh
        self.grad_step = GradientStep(self.learner, self._replay_batches, cfg.target_refresh, self._learn,
                                      (self._after_step,))

    def _initialise(self, init: WeightsInit) -> None:
        cfg = self.cfg
        pretrained, _ = ckpt.load_model(init.path, expected_size=cfg.net.size, device=cfg.device,
                                         precision=cfg.net.precision)
        if init.parts is None:
            self.learner.net.load_state_dict(pretrained.state_dict())
        else:
            transfer_parts(self.learner.net, pretrained, init.parts)
        self.learner.refresh_target()
        log.info("initialised %s from %s", "all weights" if init.parts is None else ", ".join(init.parts), init.path)

    def num_tasks(self) -> int:
        """Tasks in one gradient step: the online task, plus what :attr:`tasks` adds."""
        return 1 if self.tasks is None else self.tasks.num_tasks()

    # ---- resume ------------------------------------------------------------------------------
    def state_hash(self) -> str:
        """Configuration hash a resume state must match: ``resume_key``, else ``config_hash(cfg)``."""
        return self.resume_key if self.resume_key is not None else config_hash(self.cfg)

    def _save_state(self) -> None:
        save_state(self.state_dir, self.learner, dict(self.counters.__dict__), self.rng, self.state_hash(),
                   self.replay, extra=self.tasks.state() if self.tasks is not None else {},
                   extra_tensors=self.reward.state() if self.reward is not None else None)

    def _load_state(self) -> None:
        reward_state: dict = {}
        counters, self.rng, extra = load_state(self.state_dir, self.learner, self.state_hash(), self.replay,
                                               extra_tensors=reward_state)
        self.counters = Counters(**counters)
        if self.tasks is not None:
            self.tasks.load(extra)
        if self.reward is not None:
            if not reward_state:
                raise ckpt.CheckpointMismatchError(f"{self.state_dir} holds no state of the run's reward part; "
                                                   "delete that state directory to start over")
            self.reward.load(reward_state)
        log.info("resumed from %s at %d agent steps, %d training steps", self.state_dir,
                 self.counters.env_steps, self.counters.train_steps)

    # ---- one training step ---------------------------------------------------------------------
    def _replay_batches(self, rng: np.random.Generator) -> list[Batch]:
        """The batch source of the online loop: one batch of the online task's replay (prioritised
        sampling, reanalysed targets), ``[B, K+1, ...]``."""
        cfg, L = self.cfg, self.learner
        progress = L.step_count / planned_train_steps(cfg)
        beta = cfg.replay.beta_start + (cfg.replay.beta_end - cfg.replay.beta_start) * min(1.0, progress)
        index = self.replay.sample(cfg.batch_size, beta, rng)

        def value_fn(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                o = torch.from_numpy(obs).to(cfg.device)
                return torch.cat([L.target_net.initial_inference(o[i:i + 512]).value
                                  for i in range(0, len(o), 512)]).cpu().numpy()

        td_steps, bootstrap = cfg.replay.td_steps, network_bootstrap(value_fn)
        policy_fn, fraction = None, cfg.replay.reanalyse_fraction
        if cfg.agent.kind == "ql":  # seed 000 A.2, Eq. 2: n - 1 rewards, then max_a Q_xi(s_{t+n}, a)
            td_steps, bootstrap = td_steps - 1, network_bootstrap(self._q_bootstrap)
        elif cfg.mcts.search_for_targets or cfg.mcts.without_search == "one_step":
            policy_fn = reanalyse_policy_fn(L.target_net, self.actor_net, cfg.replay, cfg.search, rng, cfg.device)
            # the ablations' one-step look-ahead targets replace every stored (searched) policy
            fraction = fraction if cfg.mcts.search_for_targets else 1.0
        return [build_batch(
            index, cfg.replay.unroll_steps, td_steps, cfg.replay.off_policy_age_scale,
            self.replay.total_added, cfg.discount, cfg.value_prefix_horizon, fraction, bootstrap, policy_fn, rng,
        )]

    def _q_bootstrap(self, obs: np.ndarray) -> np.ndarray:
        """``max_a Q_xi(s, a)`` over the task's legal actions ``[M]`` from the target network (Eq. 1's
        bootstrap; ``obs`` ``[M, *observation]``); on a Box action space over ``mcts.num_samples``
        uniform actions per state (:func:`xfer.qlearning.box_candidates`, drawn from the run's generator)."""
        cfg, net = self.cfg, self.learner.target_net
        out = []
        with torch.no_grad():
            for i in range(0, len(obs), 256):
                latent = net.initial_inference(torch.from_numpy(obs[i:i + 256]).to(cfg.device)).latent
                cand = (torch.from_numpy(box_candidates(self.rng, len(latent), cfg.mcts.num_samples, net.action_dim))
                        if net.action_dim else None)
                out.append(one_step_q_values(net, latent, cfg.discount, cand).float().cpu().numpy())
        q = np.concatenate(out)
        if net.action_dim:
            return q.max(axis=1).astype(np.float32)
        return np.where(self.legal, q, -np.inf).max(axis=1).astype(np.float32)

    def acting(self, progress: float, explore: bool = True) -> Acting:
        """How the run acts at training ``progress`` in [0, 1] (:func:`run_acting` of its config)."""
        return run_acting(self.cfg, progress, explore)

    def _learn(self, learner: Learner, batches: list[Batch], rng: np.random.Generator) -> StepResult:
        """The learn part: the replay batch alone, or with what :attr:`tasks` adds."""
        return equal_weights(learner, batches, rng) if self.tasks is None else self.tasks.learn(learner, batches[0], rng)

    def _after_step(self, learner: Learner, batches: list[Batch], result: StepResult) -> None:
        """The online loop's step hook: new replay priorities, counters, the self-play network's refresh."""
        self.replay.update_priorities(batches[0].segment_ids, batches[0].positions, result.priorities)
        self.counters.train_steps = learner.step_count
        if learner.step_count % self.cfg.self_play_refresh == 0:
            self.actor_net.load_state_dict(learner.net.state_dict())

    def _train_step(self) -> dict[str, float]:
        return self.grad_step(self.rng).metrics

    def _evaluate(self) -> float:
        cfg = self.cfg
        # A copy of the current weights: evaluating must not refresh the self-play network out of its
        # `self_play_refresh` schedule (how often a run evaluates would change what it trains on).
        self.eval_net.load_state_dict(self.learner.net.state_dict())
        # one thread, in this process: scores independent of the host's core count
        episodes = run_episode_evaluations(
            [EvalJob("eval", self.eval_net, cfg.env, self.acting(1.0, explore=False), cfg.eval_episodes,
                     cfg.eval_max_steps, cfg.seed + 10_000 + self.counters.env_steps)], device=cfg.device, workers=1)["eval"]
        scores = episodes.scores
        c = self.counters
        self.eval_log.append({"env_steps": c.env_steps, "train_steps": c.train_steps,
                              "mean_score": float(scores.mean()), "std_score": float(scores.std()),
                              "min_score": float(scores.min()), "max_score": float(scores.max()),
                              "episodes": len(scores),
                              **({"success_rate": float(episodes.successes.mean())} if self.success else {})})
        ckpt.save_model(self.out / "model.safetensors", self.learner.net, model_meta(cfg, c))
        if cfg.keep_eval_models:
            ckpt.save_model(self.out / "evals" / f"model_{c.env_steps}.safetensors", self.learner.net, model_meta(cfg, c))
        c.last_eval, c.last_eval_train = c.env_steps, c.train_steps
        self._plot()
        return float(scores.mean())

    def _random_baseline(self) -> float | None:
        """Mean score of uniformly random legal actions under this run's evaluation protocol
        (episodes, step cap), measured once and kept in ``metrics/random.json``; None when the
        run turns it off (``random_baseline=False``)."""
        if not self.random_baseline:
            return None
        path = self.out / "metrics" / "random.json"
        cfg = self.cfg
        protocol = {"game": cfg.env.game, "env": cfg.env.model_dump(mode="json"), "episodes": cfg.eval_episodes,
                    "max_steps": cfg.eval_max_steps}
        if path.exists():
            saved = json.loads(path.read_text())
            if saved.get("protocol") == protocol:
                return float(saved["mean_score"])
        episodes = evaluate_random_episodes(cfg.env, cfg.eval_episodes, cfg.eval_max_steps, seed=cfg.seed + 20_000)
        scores = episodes.scores
        path.parent.mkdir(parents=True, exist_ok=True)
        extra = {} if episodes.successes is None else {"success_rate": float(episodes.successes.mean())}
        path.write_text(json.dumps({"protocol": protocol, "mean_score": float(scores.mean()),
                                    "scores": scores.tolist(), **extra}, indent=2))
        return float(scores.mean())

    def _success_summary(self, rows: list[dict]) -> dict:
        """Meta-World's figures: the final and best evaluation success rates and the random agent's
        (``{}`` for suites that report no success)."""
        if not self.success:
            return {}
        rates = [float(r["success_rate"]) for r in rows if r.get("success_rate") not in (None, "")]
        path = self.out / "metrics" / "random.json"
        rnd = json.loads(path.read_text()).get("success_rate") if path.exists() else None
        return {"final_eval_success": rates[-1] if self.final_eval and rates else None,
                "best_eval_success": max(rates) if rates else None, "random_eval_success": rnd}

    def _plot(self) -> None:
        rows = self.eval_log.read()
        if not rows:
            return
        x = [float(r["env_steps"]) for r in rows]
        y = [float(r["mean_score"]) for r in rows]
        ep = [r for r in self.train_log.read() if r.get("episode_return")]
        acting = "improved policy" if self.cfg.mcts.policy_target == "completed_q" else "visits"
        if self.cfg.agent.kind == "ql":
            acting = "Q"
        series = {f"greedy evaluation (argmax {acting})": (x, y)}
        points = {}
        if ep:
            points["self-play episodes"] = ([float(r["env_steps"]) for r in ep], [float(r["episode_return"]) for r in ep])
        random_score = self._random_baseline()
        hlines = None if random_score is None else {f"uniform random, same protocol ({random_score:.1f})": random_score}
        agent = "Q-learning baseline" if self.cfg.agent.kind == "ql" else "EfficientZero"
        plot_curves(series, self.out / "learning_curve.png", f"{agent} ({self.cfg.net.size}) on {self.cfg.env.game}",
                    "agent steps", "raw episode score", hlines=hlines, points=points)

    def _extra_steps(self) -> None:
        """``extra_train_steps`` gradient steps after the last agent step, on the replay as it is, at
        the fixed learning rate ``optim.lr * extra_lr_scale`` (EfficientZero's +20k steps at lr / 10;
        XTRA appendix I); resumable (``Counters.extra_steps``)."""
        cfg, c = self.cfg, self.counters
        if c.extra_steps >= cfg.extra_train_steps:
            return
        self.learner.lr_override = cfg.optim.lr * cfg.extra_lr_scale

        def after(done: int, result: StepResult) -> None:
            c.extra_steps = done
            if c.train_steps % 50 == 0:
                self.train_log.append({"env_steps": c.env_steps, "train_steps": c.train_steps, **result.metrics})
            if done % max(1, cfg.checkpoint_every) == 0:
                self._save_state()

        run_steps(self.grad_step, self.rng, c.extra_steps, cfg.extra_train_steps, after, self.progress,
                  f"extra steps at lr {self.learner.lr_override:g}")
        self.learner.lr_override = None

    # ---- main loop -----------------------------------------------------------------------------
    def run(self) -> dict:
        """Train until ``env_steps`` agent steps were collected; returns the summary dict."""
        cfg, c = self.cfg, self.counters
        start = time.time()
        selfplay = SelfPlay(cfg.env, cfg.num_envs, cfg.seed + c.env_steps, cfg.replay.segment_length, self.reward)
        selfplay.steps = self.replay.total_added
        if c.env_steps == 0 and self.initial_eval:
            self._evaluate()
        bar = tqdm(total=cfg.env_steps, initial=c.env_steps, unit="step", disable=not self.progress,
                   desc=f"train {cfg.env.game}", dynamic_ncols=True)
        metrics: dict[str, float] = {}
        recent: list[float] = []
        try:
            while c.env_steps < cfg.env_steps:
                temp = temperature_at(c.env_steps / cfg.env_steps)
                outcome = selfplay.step(self.actor_net, self.acting(c.env_steps / cfg.env_steps), temp, self.rng,
                                        cfg.device)
                for seg in outcome.segments:
                    self.replay.add(seg)
                c.env_steps += cfg.num_envs
                bar.update(cfg.num_envs)
                if self.reward is not None:
                    self.reward.record(c.env_steps)
                if len(self.replay) >= cfg.start_transitions:
                    c.train_debt += cfg.num_envs * cfg.train_ratio
                    while c.train_debt >= 1.0:
                        metrics = self._train_step()
                        c.train_debt -= 1.0
                for i, ret in enumerate(outcome.episode_returns):
                    recent = (recent + [ret])[-10:]
                    success = {"episode_success": outcome.episode_successes[i]} if self.success else {}
                    self.train_log.append({"env_steps": c.env_steps, "train_steps": c.train_steps,
                                           **{k: metrics.get(k, "") for k in self.metric_names},
                                           "episode_return": ret, **success})
                if metrics and c.train_steps % 50 == 0:
                    self.train_log.append({"env_steps": c.env_steps, "train_steps": c.train_steps, **metrics})
                bar.set_postfix(loss=f"{metrics.get('loss', float('nan')):.3f}", train=c.train_steps,
                                ret=f"{np.mean(recent):.1f}" if recent else "-")
                if c.env_steps - c.last_eval >= cfg.eval_every and (self.final_eval or c.env_steps < cfg.env_steps):
                    score = self._evaluate()
                    bar.write(f"[eval] agent steps {c.env_steps}: mean score {score:.2f}")
                if c.env_steps - c.last_checkpoint >= cfg.checkpoint_every:
                    c.last_checkpoint = c.env_steps
                    self._save_state()
        finally:
            bar.close()
            selfplay.close()
        self._extra_steps()
        if not self.final_eval:
            ckpt.save_model(self.out / "model.safetensors", self.learner.net, model_meta(cfg, c))
        elif (c.last_eval, c.last_eval_train) != (c.env_steps, c.train_steps):
            self._evaluate()
        c.last_checkpoint = c.env_steps
        self._save_state()
        rows = self.eval_log.read()
        scores = [float(r["mean_score"]) for r in rows]
        summary = {
            "game": cfg.env.game,
            "size": cfg.net.size,
            "env_steps": c.env_steps,
            "train_steps": c.train_steps,
            "first_eval_score": scores[0] if scores else None,
            # None without an evaluation at the last step (``final_eval=False``)
            "final_eval_score": scores[-1] if self.final_eval and scores else None,
            "best_eval_score": max(scores) if scores else None,
            "random_eval_score": self._random_baseline(),
            **self._success_summary(rows),
            "wall_seconds_this_session": round(time.time() - start, 1),
            "config_hash": config_hash(cfg),
        }
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary


def run_training(cfg: TrainConfig, out_dir: Path, progress: bool = True, init: Path | None = None) -> dict:
    """Train (or resume) single-task EfficientZero; returns the summary dict (see :class:`Trainer`).

    ``init``: optional model checkpoint whose weights start the run (not used when resuming).
    """
    return Trainer(cfg, out_dir, progress, WeightsInit(init) if init is not None else None).run()
