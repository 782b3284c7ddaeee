"""The gradient-step loop every training run shares: online EfficientZero (:mod:`xfer.train`), its
extra steps at the end, XTRA's concurrent finetuning (its offline tasks come in as the ``learn`` part),
and the offline teachers, student and baselines (:mod:`xfer.offline`).

One gradient step is always the same four things, composed from parts:

1. a **batch source** draws the batches of the step (``[B, K+1, ...]`` each, one per task) from the
   run's generator: the online replay with reanalysed targets, or offline datasets;
2. a **learn** part takes the step on them (equal task weights by default; XTRA Eq. 1's task
   weights in :class:`xfer.stages.finetune.OfflineTasks`);
3. the target network is refreshed every ``target_refresh`` learner steps;
4. **step hooks** see the batches and the result (replay priorities, the self-play network's
   refresh, counters).

:func:`run_steps` repeats a step up to a budget with a progress bar and an ``after`` callback (logs,
resume checkpoints); the online loop calls the same step between agent steps instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from xfer.learner import Learner, StepResult
from xfer.replay.targets import Batch

BatchSource = Callable[[np.random.Generator], list[Batch]]
"""Draws the batches of one gradient step (the first is the task whose priorities the step returns)."""

Learn = Callable[[Learner, list[Batch], np.random.Generator], StepResult]
"""Takes one gradient step on the drawn batches (may draw more with the generator)."""

StepHook = Callable[[Learner, list[Batch], StepResult], None]
"""Runs after each step (and after the target refresh) with what the step drew and returned."""


def equal_weights(learner: Learner, batches: list[Batch], rng: np.random.Generator) -> StepResult:
    """The default ``learn`` part: one step on every batch with task weight 1 (the loss sum)."""
    return learner.step_tasks(batches, [1.0] * len(batches))


@dataclass
class GradientStep:
    """One gradient step composed from its parts (see the module docstring); call it with the run's
    generator (the one saved in the resume state) to take a step.

    Raises:
        ValueError: ``target_refresh < 1``.
    """

    learner: Learner
    source: BatchSource
    target_refresh: int
    learn: Learn = equal_weights
    hooks: Sequence[StepHook] = ()

    def __post_init__(self) -> None:
        if self.target_refresh < 1:
            raise ValueError(f"target_refresh must be >= 1 learner step, got {self.target_refresh}")

    def __call__(self, rng: np.random.Generator) -> StepResult:
        batches = self.source(rng)
        result = self.learn(self.learner, batches, rng)
        if self.learner.step_count % self.target_refresh == 0:
            self.learner.refresh_target()
        for hook in self.hooks:
            hook(self.learner, batches, result)
        return result


def run_steps(step: GradientStep, rng: np.random.Generator, done: int, total: int,
              after: Callable[[int, StepResult], None], progress: bool = True, desc: str = "train") -> dict[str, float]:
    """Take gradient steps until ``done`` reaches ``total`` (both in steps of this loop).

    Args:
        done: steps already taken (a resumed run's count); nothing runs when ``done >= total``.
        after: called after every step with the new count and the step's result (logging, resume
            checkpoints).

    Returns:
        The last step's metrics (empty when no step ran).
    """
    metrics: dict[str, float] = {}
    with tqdm(total=total, initial=done, disable=not progress, desc=desc, unit="step") as bar:
        while done < total:
            result = step(rng)
            done += 1
            after(done, result)
            metrics = result.metrics
            bar.update(1)
            bar.set_postfix(loss=f"{metrics.get('loss_total', float('nan')):.3f}")
    return metrics
