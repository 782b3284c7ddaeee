"""Success rates of Meta-World agents, task by task: what every stage of the Meta-World pipeline measures.

Seed 000 (section 4, Table A.6) reports the success rate: an episode succeeds if ``info["success"]`` is
1 at any of its 500 steps (:mod:`xfer.envs.metaworld`), and a task's rate is the mean over its
episodes; a split's figure is the mean over its tasks. Evaluations are greedy (the most visited
sampled action, no root noise), one job per task side by side on the cores
(:func:`xfer.parallel_eval.run_episode_evaluations`), each episode on a goal variation its env copy
draws from the evaluation seed. The uniform-random agent plays the same protocol.
"""

from __future__ import annotations

import numpy as np

from xfer.acting import Acting
from xfer.config import TrainConfig
from xfer.envs.metaworld import EPISODE_STEPS, task_list
from xfer.nets.efficientzero import EfficientZeroNet
from xfer.parallel_eval import EvalJob, run_episode_evaluations


def split_tasks(cfg: TrainConfig, split: str, tasks: str | list[str]) -> tuple[str, ...]:
    """The task names ``tasks`` (a list, or ``all``) stands for on ``split`` of ``cfg.env.benchmark``."""
    return task_list(cfg.env.benchmark, split, tasks if isinstance(tasks, str) else "+".join(tasks),
                     cfg.env.observation == "pixels")


def task_success(net: EfficientZeroNet | None, cfg: TrainConfig, split: str, tasks: str | list[str],
                 acting: Acting | None, episodes: int, seed: int) -> dict:
    """Greedy evaluation (or with ``net=None`` the uniform-random agent) of every task of ``split``:
    ``{"success": mean over tasks, "tasks": {task: {"success", "return", "successes"}}}``, with
    ``episodes`` full 500-step episodes per task (task ``k`` seeded ``seed + 1000 k``).

    Raises:
        ValueError: an unknown task or one of the other split.
    """
    names = split_tasks(cfg, split, tasks)
    jobs = [EvalJob(t, net, cfg.env.model_copy(update={"task": t, "split": split}), acting, episodes, EPISODE_STEPS,
                    seed + 1000 * k) for k, t in enumerate(names)]
    results = run_episode_evaluations(jobs, device=cfg.device)
    by_task = {t: {"success": float(np.mean(r.successes)), "return": float(np.mean(r.scores)),
                   "successes": [float(s) for s in r.successes]} for t, r in results.items()}
    return {"success": float(np.mean([v["success"] for v in by_task.values()])), "tasks": by_task}


def cumulative_regret(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The cumulative regret of a run's self-play episodes, from its ``train.tsv`` rows: at each agent step
    where episodes finished, ``(agent steps so far [E] float64, number of failed episodes so far [E]
    float64)``, regret 1 per episode that did not succeed (seed 000 Figure 6's measure of how much
    finetuning costs); episodes that end at the same step (copies started together) count at once."""
    ep = [r for r in rows if r.get("episode_success") not in (None, "")]
    steps = np.array([float(r["env_steps"]) for r in ep])
    regret = np.cumsum([1.0 - float(r["episode_success"]) for r in ep])
    last = np.r_[steps[1:] != steps[:-1], True] if len(steps) else np.zeros(0, bool)  # the last row of each step
    return steps[last], regret[last]
