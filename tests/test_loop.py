"""The shared gradient-step loop (xfer/loop.py) and the offline loop built on it (xfer/offline.py)."""

import numpy as np
import pytest
import torch

from tests.specs import ATARI_INPUT
from tests.test_learner import real_batch
from xfer.config import LossConfig, OptimConfig
from xfer.learner import Learner
from xfer.loop import GradientStep, run_steps
from xfer.nets.efficientzero import build_network
from xfer.nets.sizes import net_spec
from xfer.offline import train_offline
from xfer.training_state import has_training_state


def _learner(seed: int = 0) -> Learner:
    return Learner(build_network(net_spec("tiny"), *ATARI_INPUT, seed=seed), OptimConfig(), LossConfig(), 5, 10,
                   augment=False)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def _source(rng: np.random.Generator):
    return [real_batch(int(rng.integers(1000)))]


def test_a_step_draws_learns_refreshes_the_target_every_n_steps_then_runs_its_hooks():
    learner = _learner()
    seen = []

    def learn(learner_, batches, rng):
        seen.append(("learn", len(batches)))
        return learner_.step_tasks(batches, [1.0] * len(batches))

    def hook(learner_, batches, result):
        # hooks run after the refresh: at a multiple of target_refresh the target already matches
        seen.append(("hook", learner_.step_count, _same(learner_.target_net, learner_.net), result.priorities.shape))

    step = GradientStep(learner, _source, target_refresh=2, learn=learn, hooks=(hook,))
    rng = np.random.default_rng(0)
    step(rng)
    step(rng)
    assert seen == [("learn", 1), ("hook", 1, False, (4,)), ("learn", 1), ("hook", 2, True, (4,))]


def test_a_step_rejects_a_bad_refresh_period():
    with pytest.raises(ValueError, match="target_refresh"):
        GradientStep(_learner(), _source, target_refresh=0)


def test_run_steps_takes_the_remaining_steps_and_reports_each_count():
    learner = _learner()
    counts = []
    metrics = run_steps(GradientStep(learner, _source, 5), np.random.default_rng(0), 3, 5,
                        lambda done, result: counts.append(done), progress=False)
    assert counts == [4, 5] and learner.step_count == 2 and "loss_total" in metrics
    assert run_steps(GradientStep(learner, _source, 5), np.random.default_rng(0), 5, 5,
                     lambda done, result: counts.append(done), progress=False) == {}
    assert counts == [4, 5]


def test_an_interrupted_offline_run_resumes_to_the_same_weights_as_an_uninterrupted_one(tmp_path):
    def run(learner, source, name):
        return train_offline(learner, source, 12, tmp_path / name / "state", "h", seed=3, checkpoint_every=4,
                             target_refresh=3, log_path=tmp_path / name / "log.tsv", progress=False)

    whole = _learner()
    run(whole, _source, "whole")

    calls = 0

    def dies_at_the_eleventh_draw(rng):
        nonlocal calls
        calls += 1
        if calls == 11:
            raise KeyboardInterrupt
        return _source(rng)

    with pytest.raises(KeyboardInterrupt):
        run(_learner(), dies_at_the_eleventh_draw, "cut")
    assert has_training_state(tmp_path / "cut" / "state")
    resumed = _learner(seed=1)  # other fresh weights: the state must replace them
    run(resumed, _source, "cut")
    assert resumed.step_count == 12
    assert _same(resumed.net, whole.net) and _same(resumed.target_net, whole.target_net)
    # the row of step 10 was written before the cut, after the last checkpoint (step 8): the resumed
    # log drops it and writes it again once
    whole_log = (tmp_path / "whole" / "log.tsv").read_text().splitlines()
    assert len(whole_log) == 2 and whole_log[1].startswith("10\t")
    assert (tmp_path / "cut" / "log.tsv").read_text().splitlines() == whole_log
