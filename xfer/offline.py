"""A resumable offline training loop (no environment interaction), shared by teachers and the student.

Teachers (XTRA sec 3.1, stage 1a) run EfficientZero with reanalyse on a fixed dataset; the student
(stage 1b) is distilled from stored teacher targets over batches sampled uniformly over games.
Both are "sample batches -> one learner step" repeated ``steps`` times with periodic target-network
refreshes and atomic resume checkpoints; only the batch source differs.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import torch

from xfer import training_state
from xfer.learner import Learner, StepResult
from xfer.loop import BatchSource, GradientStep, run_steps
from xfer.metrics import TsvLog
from xfer.resume import discard_stale_state, load_state, save_state

log = logging.getLogger(__name__)


class LatestCopy:
    """A copy of the learner's network for reanalyse ("latest" network, MuZero Reanalyse),
    refreshed from the learner every ``every`` learner steps.

    :meth:`get` refreshes lazily: the first call (also after a resume, when the learner's weights
    were just loaded) and the first call in each new window of ``every`` steps copy the learner's
    weights, so the copy never holds weights the learner never had (a freshly built network's
    random weights drew from an unseeded RNG and made offline stages irreproducible).
    """

    def __init__(self, learner: Learner, every: int = 25) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.learner, self.every = learner, every
        self.net = copy.deepcopy(learner.net).eval()
        self._window: int | None = None

    def get(self) -> torch.nn.Module:
        """The copy, with the learner's weights of at most ``every`` steps ago."""
        window = self.learner.step_count // self.every
        if window != self._window:
            self.net.load_state_dict(self.learner.net.state_dict())
            self._window = window
        return self.net


def train_offline(
    learner: Learner,
    source: BatchSource,
    steps: int,
    state_dir: Path,
    cfg_hash: str,
    seed: int,
    checkpoint_every: int,
    target_refresh: int,
    log_path: Path,
    progress: bool = True,
    desc: str = "offline",
) -> dict[str, float]:
    """Run (or resume) ``steps`` learner steps on batches from ``source``: the shared gradient-step
    loop (:class:`xfer.loop.GradientStep`, :func:`xfer.loop.run_steps`) with this loop's resume
    state and log.

    Args:
        source: draws the batches for one step from the given rng (each batch is one task's loss;
            several batches are summed with weight 1).
        state_dir: where the resume state lives; an existing state is continued.
        log_path: TSV of training metrics every 10 steps (``train_steps`` first column).

    Returns:
        The metrics of the last step (empty when a finished state was resumed).
    """
    rng = np.random.default_rng(seed)
    counters = {"train_steps": 0}
    discard_stale_state(state_dir, cfg_hash)
    keep = -1  # a fresh run starts an empty log; a resumed one keeps rows up to its checkpoint
    if training_state.has_training_state(state_dir):
        counters, rng, _ = load_state(state_dir, learner, cfg_hash)
        keep = counters["train_steps"]
        log.info("resumed %s from %s at %d training steps", desc, state_dir, counters["train_steps"])
    else:
        torch.manual_seed(seed)
    tsv = TsvLog(log_path, ["train_steps", *learner.step_metric_names(num_tasks=1)], "train_steps", keep)

    def after(done: int, result: StepResult) -> None:
        counters["train_steps"] = done
        if done % 10 == 0:
            tsv.append({"train_steps": done, **result.metrics})
        if done % checkpoint_every == 0 or done == steps:
            save_state(state_dir, learner, counters, rng, cfg_hash)

    return run_steps(GradientStep(learner, source, target_refresh), rng, counters["train_steps"], steps, after,
                     progress, desc)
