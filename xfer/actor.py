"""Self-play and evaluation over any suite's vectorised environments (:mod:`xfer.envs.vector`).

How an agent picks its actions (search, the planning ablations' fallbacks, or the Q-learning
baseline's epsilon-greedy) is :func:`xfer.acting.act`: self-play explores (EfficientZero's
temperature schedule, 1.0, 0.5 after 50% of training, 0.25 after 75%, and Dirichlet root noise),
evaluation does not (reference.md section 1). Both record raw episode scores, and where the suite
reports it (Meta-World) whether each episode succeeded.

Box action spaces (Meta-World; Sampled MuZero) act with float32 action vectors ``[N, D]``; their
replay segments keep each root's sampled actions beside the visit distribution over them, and
their legal-action mask is empty (``[N, 0]``): nothing is illegal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xfer.acting import Acting, QActing, act
from xfer.config import EnvConfig
from xfer.envs.suites import make_vector_env
from xfer.inference import search_policy
from xfer.nets.efficientzero import EfficientZeroNet
from xfer.replay.segment import Segment, SegmentBuilder
from xfer.rewards import RewardHook, StepRewards, protocol_reward


def temperature_at(progress: float) -> float:
    """Self-play temperature for training progress in [0, 1] (EfficientZero schedule)."""
    if progress < 0.5:
        return 1.0
    if progress < 0.75:
        return 0.5
    return 0.25


@dataclass
class StepOutcome:
    """What one vectorised self-play step produced: finished segments and episode raw returns."""

    segments: list[Segment] = field(default_factory=list)
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    episode_successes: list[float] = field(default_factory=list)
    """1.0 / 0.0 per finished episode where the suite reports success (Meta-World), else empty."""


def legal_mask(envs, num_envs: int) -> np.ndarray:
    """``[N, A]`` bool legal actions of every env (``[N, 0]`` for a Box space, which has none illegal)."""
    if envs.action_mask is None:
        return np.ones((num_envs, 0), bool)
    return np.broadcast_to(envs.action_mask, (num_envs, len(envs.action_mask))).copy()


def random_actions(envs, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniformly random actions: legal action ids ``[n]`` int64, or for a Box space (``envs.spec``)
    vectors ``[n, *shape]`` float32 uniform in its bounds."""
    if envs.action_mask is None:
        box = envs.spec.action_space
        return rng.uniform(box.low, box.high, size=(n, *box.shape)).astype(np.float32)
    return rng.choice(np.flatnonzero(envs.action_mask), size=n)


class SelfPlay:
    """Collects experience with N environments, one search over N roots per agent step.

    Args:
        env_cfg: one task's env config of any suite (:data:`~xfer.config.EnvConfig`); num_envs: parallel
            environments; seed: env ``i`` gets ``seed+i`` (Procgen: the batch's seed).
        segment_length: agent steps per stored segment.
        reward: the reward stored for learning (:mod:`xfer.rewards`); default the protocol's
            (``sign(r)`` with ``env_cfg.clip_rewards``). Raw rewards are stored beside it.
    """

    def __init__(self, env_cfg: EnvConfig, num_envs: int, seed: int, segment_length: int,
                 reward: RewardHook | None = None) -> None:
        self.env_cfg = env_cfg
        self.reward = reward or protocol_reward(env_cfg.clip_rewards)
        self.envs = make_vector_env(env_cfg, num_envs, seed)
        self.obs, _ = self.envs.reset(seed=seed)
        self.mask = legal_mask(self.envs, num_envs)
        self.box = self.envs.action_mask is None
        self.builders = [SegmentBuilder(env_cfg.stack, segment_length, self.mask[0], env_cfg.game)
                         for _ in range(num_envs)]
        self.steps = 0
        for i, b in enumerate(self.builders):
            b.start(self.obs[i], first_step=i)

    def step(
        self,
        net: EfficientZeroNet,
        acting: Acting,
        temperature: float,
        rng: np.random.Generator,
        device: str = "cpu",
        act_uniform: bool = False,
    ) -> StepOutcome:
        """Act once in every env (:func:`xfer.acting.act`, exploring); returns finished segments and episodes.

        ``act_uniform`` acts uniformly at random over legal actions while still recording the
        search statistics (the cheap behaviour policy of ``collect``; search acting only).
        """
        if act_uniform:
            if isinstance(acting, QActing):
                raise ValueError("act_uniform records search statistics: it needs a SearchConfig, not QActing")
            out = search_policy(net, self.obs, self.mask, acting, rng, add_noise=True,
                                use_search=acting.search_for_acting, device=device)
            actions = random_actions(self.envs, len(self.obs), rng)
        else:
            actions, out = act(net, self.obs, self.mask, acting, rng, explore=True, temperature=temperature,
                               device=device)
        res = self.envs.step(actions)
        learn_rewards = self.reward(StepRewards(raw=np.asarray(res.reward, np.float32), obs=self.obs,
                                                next_obs=res.obs,
                                                actions=np.asarray(actions, np.float32 if self.box else np.int64)))
        result = StepOutcome()
        for i, builder in enumerate(self.builders):
            over = bool(res.terminated[i] or res.truncated[i])
            next_frame = res.final_frame[i] if over else res.frame[i]
            self.steps += 1
            seg = builder.add(
                action=actions[i] if self.box else int(actions[i]),
                reward=float(learn_rewards[i]),
                raw_reward=float(res.reward[i]),
                cut=bool(res.life_loss[i]),
                root_value=float(out.root_value[i]),
                visit_dist=out.policy[i],
                next_frame=next_frame,
                episode_over=over,
                terminal=bool(res.terminated[i]),
                next_obs_stack=res.obs[i],
                step_counter=self.steps,
                sampled=None if out.samples is None else out.samples[i],
            )
            if seg is not None:
                result.segments.append(seg)
            if over:
                result.episode_returns.append(float(res.episode_return[i]))
                result.episode_lengths.append(int(res.episode_length[i]))
                if res.episode_success is not None:
                    result.episode_successes.append(float(res.episode_success[i]))
        self.obs = res.obs
        return result

    def close(self) -> None:
        self.envs.close()


@dataclass
class Episodes:
    """Evaluation episodes: raw ``scores [E]`` float64 and, where the suite reports success
    (Meta-World: ``info["success"]`` at any step), ``successes [E]`` float64 1.0 / 0.0 (an episode cut
    by ``max_steps`` before it ended counts as 0: give Meta-World its 500 steps); ``None`` otherwise."""

    scores: np.ndarray
    successes: np.ndarray | None = None


def _play(envs, obs: np.ndarray, episodes: int, max_steps: int, choose) -> Episodes:
    """Run ``episodes`` envs (just reset, showing ``obs``) until each finished one episode or
    ``max_steps`` passed, acting with ``choose(obs) -> actions``."""
    scores = np.zeros(episodes, dtype=np.float64)
    successes: np.ndarray | None = None
    running = np.ones(episodes, dtype=bool)
    for _ in range(max_steps):
        res = envs.step(choose(obs))
        scores += np.where(running, res.reward, 0.0)
        over = res.terminated | res.truncated
        if res.episode_success is not None:
            successes = np.zeros(episodes) if successes is None else successes
            successes = np.where(running & over, res.episode_success, successes)
        running &= ~over
        obs = res.obs
        if not running.any():
            break
    return Episodes(scores, successes)


def evaluate_episodes(
    net: EfficientZeroNet,
    env_cfg: EnvConfig,
    acting: Acting,
    episodes: int,
    max_steps: int,
    seed: int,
    device: str = "cpu",
) -> Episodes:
    """Play ``episodes`` episodes without exploration (:func:`xfer.acting.act`: argmax of
    :func:`~xfer.acting.acting_scores`, no noise; Q-learning: the epsilon it was given; Sampled MuZero:
    the most visited sampled action); returns their raw scores and successes (:class:`Episodes`).

    Episodes run in parallel, one env each, and stop at ``max_steps`` agent steps (the score so
    far counts). ``acting.search_at_eval = False`` acts on what ``without_search`` gives instead.
    """
    rng = np.random.default_rng(seed)
    with make_vector_env(env_cfg, episodes, seed) as envs:
        obs, _ = envs.reset(seed=seed)
        mask = legal_mask(envs, episodes)
        return _play(envs, obs, episodes, max_steps,
                     lambda obs: act(net, obs, mask, acting, rng, explore=False, device=device)[0])


def evaluate(
    net: EfficientZeroNet,
    env_cfg: EnvConfig,
    acting: Acting,
    episodes: int,
    max_steps: int,
    seed: int,
    device: str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """The raw scores ``[episodes]`` of :func:`evaluate_episodes`."""
    return evaluate_episodes(net, env_cfg, acting, episodes, max_steps, seed, device).scores


def evaluate_random_episodes(env_cfg: EnvConfig, episodes: int, max_steps: int, seed: int) -> Episodes:
    """Play ``episodes`` episodes with uniformly random legal actions (uniform in the bounds of a Box);
    returns their raw scores and successes (:class:`Episodes`).

    Same protocol as :func:`evaluate_episodes` (one env per episode, at most ``max_steps`` agent steps,
    the score so far counts), so it is the fair floor for a capped evaluation: reference random scores
    (``xfer.envs.scores``) are for full 108k-frame episodes.
    """
    rng = np.random.default_rng(seed)
    with make_vector_env(env_cfg, episodes, seed) as envs:
        obs, _ = envs.reset(seed=seed)
        return _play(envs, obs, episodes, max_steps, lambda obs: random_actions(envs, episodes, rng))


def evaluate_random(env_cfg: EnvConfig, episodes: int, max_steps: int, seed: int) -> np.ndarray:
    """The raw scores ``[episodes]`` of :func:`evaluate_random_episodes`."""
    return evaluate_random_episodes(env_cfg, episodes, max_steps, seed).scores
