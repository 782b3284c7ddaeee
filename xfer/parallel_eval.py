"""Independent evaluations run side by side in worker processes, one CPU thread each.

A pipeline stage often evaluates several (model, game) pairs: the student zero-shot on every game,
every finetuned model and the uniform-random agent on every target. Each evaluation's search runs
small batches whose time goes mostly to single-threaded Python (tree bookkeeping, module
dispatch), so one evaluation per core beats one evaluation on all cores: on a 2-core machine two
32-episode evaluations side by side took 0.69x the time of the two one after another with 2 torch
threads each (``python benchmarks/bench_eval.py``, ``benchmarks/results/eval.md``).

Reproducibility: every job runs with exactly one torch thread, in a worker process or in this
one, so its scores depend only on the job (network, game, seed), never on how many workers run
or on the host's core count. Workers are ``spawn``-ed (forking a process that already used
OpenMP threads can hang). On CUDA the jobs run one after another in this process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from xfer.acting import Acting
from xfer.actor import Episodes, evaluate_episodes, evaluate_random_episodes
from xfer.config import EnvConfig
from xfer.nets.efficientzero import EfficientZeroNet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalJob:
    """One evaluation (:func:`xfer.actor.evaluate` or, with ``net=None``, :func:`xfer.actor.evaluate_random`).

    Attributes:
        key: the caller's name for the result.
        net: the network (pickled to the worker; used in eval mode), or None for uniformly random
            legal actions.
        env: the game and protocol; search: the search settings (ignored for the random agent).
        episodes: episodes, run in parallel envs; max_steps: cap in agent steps per episode.
        seed: environment and tie-break seed.
    """

    key: str
    net: EfficientZeroNet | None
    env: EnvConfig
    search: Acting | None
    episodes: int
    max_steps: int
    seed: int

    def cost(self) -> int:
        """Rough relative cost (agent steps searched), to start the longest jobs first."""
        return self.episodes * self.max_steps * (1 if self.net is None else 50)


def _run_one(job: EvalJob, device: str) -> Episodes:
    """Scores (and successes) of one job's episodes, with one torch thread (restored afterwards)."""
    threads = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(1)
    try:
        if job.net is None:
            return evaluate_random_episodes(job.env, job.episodes, job.max_steps, job.seed)
        return evaluate_episodes(job.net, job.env, job.search, job.episodes, job.max_steps, job.seed, device=device)
    finally:
        torch.set_num_threads(threads)


def _worker_init() -> None:
    logging.basicConfig(level=logging.WARNING)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_evaluations(jobs: list[EvalJob], device: str = "cpu", workers: int | None = None) -> dict[str, np.ndarray]:
    """Run ``jobs`` (:func:`run_episode_evaluations`); returns ``key -> scores [episodes]`` float64 (raw
    episode scores), in the order of ``jobs``."""
    return {k: v.scores for k, v in run_episode_evaluations(jobs, device, workers).items()}


def run_episode_evaluations(jobs: list[EvalJob], device: str = "cpu",
                            workers: int | None = None) -> dict[str, Episodes]:
    """Run ``jobs``, up to ``workers`` at a time (default: one per available core; 1 on CUDA).

    Returns ``key -> Episodes`` (raw episode scores ``[episodes]`` float64, and successes where the
    suite reports them, :class:`xfer.actor.Episodes`), in the order of ``jobs``. The results do not
    depend on ``workers`` (see the module docstring).

    Raises:
        ValueError: two jobs with the same key.
        Whatever a job raises (the first failure, after the pool shut down).
    """
    keys = [j.key for j in jobs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"evaluation jobs need distinct keys, got {keys}")
    if workers is None:
        workers = 1 if device != "cpu" else available_cores()
    workers = max(1, min(workers, len(jobs)))
    order = sorted(jobs, key=lambda j: -j.cost())
    start = time.time()
    results: dict[str, Episodes] = {}
    if workers == 1:
        for job in order:
            results[job.key] = _run_one(job, device)
            log.info("evaluated %s: %.1f (%d episodes, %.0f s)", job.key, results[job.key].scores.mean(),
                     job.episodes, time.time() - start)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init) as pool:
            futures = {job.key: pool.submit(_run_one, job, device) for job in order}
            for job in order:
                results[job.key] = futures[job.key].result()
                log.info("evaluated %s: %.1f (%d episodes, %.0f s, %d workers)", job.key,
                         results[job.key].scores.mean(), job.episodes, time.time() - start, workers)
    return {k: results[k] for k in keys}
