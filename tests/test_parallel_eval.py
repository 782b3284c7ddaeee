"""Parallel evaluations: same scores whatever the number of workers, on real Atari games."""

import numpy as np
import pytest
import torch

from tests.specs import ATARI_INPUT
from xfer.actor import evaluate_random
from xfer.config import AtariConfig, SearchConfig
from xfer.nets.efficientzero import build_network
from xfer.nets.sizes import net_spec
from xfer.parallel_eval import EvalJob, run_evaluations


def _jobs() -> list[EvalJob]:
    torch.manual_seed(0)
    search = SearchConfig(num_simulations=4)
    nets = [build_network(net_spec("tiny"), *ATARI_INPUT) for _ in range(2)]
    return [
        EvalJob("a", nets[0], AtariConfig(game="Breakout"), search, 2, 25, seed=1),
        EvalJob("b", nets[1], AtariConfig(game="Pong"), search, 3, 25, seed=2),
        EvalJob("random", None, AtariConfig(game="Breakout"), None, 3, 40, seed=3),
    ]


def test_scores_do_not_depend_on_the_number_of_workers():
    jobs = _jobs()
    torch.set_num_threads(2)
    one = run_evaluations(jobs, workers=1)
    two = run_evaluations(jobs, workers=2)
    assert list(one) == ["a", "b", "random"] == list(two)  # the order of the jobs, not of their cost
    for key in one:
        np.testing.assert_array_equal(one[key], two[key])
    assert [len(one[k]) for k in one] == [2, 3, 3]
    assert torch.get_num_threads() == 2  # restored after the in-process jobs


def test_random_job_is_the_random_agent_under_the_same_protocol():
    job = _jobs()[2]
    got = run_evaluations([job], workers=1)["random"]
    np.testing.assert_array_equal(got, evaluate_random(job.env, job.episodes, job.max_steps, job.seed))


def test_duplicate_keys_are_refused():
    job = _jobs()[2]
    with pytest.raises(ValueError, match="distinct keys"):
        run_evaluations([job, job])
