"""Wall time of several independent evaluations: one after another with the default torch threads,
through :func:`xfer.parallel_eval.run_evaluations` with one worker (one thread), and with one
worker per core. Tiny untrained networks, 16-simulation completed-Q search, real UpNDown.

    python benchmarks/bench_eval.py --jobs 2 --episodes 32 --max-steps 150 --record

Scores are printed too: ``run_evaluations`` must give the same scores with 1 and N workers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from xfer.actor import evaluate
from xfer.config import AtariConfig, AtariProtocol, MCTSConfig, SearchConfig
from xfer.envs.suites import env_spec
from xfer.nets.efficientzero import build_network
from xfer.nets.sizes import net_spec
from xfer.parallel_eval import EvalJob, available_cores, run_evaluations

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import append_report, command_line, machine_line, utc_heading  # noqa: E402

# the inputs of an Atari network under the default protocol (the policy head, the stacked frames)
_ATARI = env_spec("atari", AtariProtocol(), "Breakout")
ATARI_INPUT = (_ATARI.num_actions, _ATARI.observation.shape)

RESULTS = Path(__file__).resolve().parent / "results" / "eval.md"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2, help="independent evaluations (one network each)")
    ap.add_argument("--episodes", type=int, default=32)
    ap.add_argument("--max-steps", type=int, default=150, help="agent steps per episode")
    ap.add_argument("--game", default="UpNDown")
    ap.add_argument("--record", action="store_true", help=f"append the table to {RESULTS}")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    search = SearchConfig(**MCTSConfig(num_simulations=16, policy_target="completed_q", root_expand_all=True,
                                       q_range_floor=1.0).model_dump())
    spec = net_spec("tiny", latent_scaling="minmax")
    jobs = [EvalJob(f"net{i}", build_network(spec, *ATARI_INPUT, "auto"), AtariConfig(game=args.game), search,
                    args.episodes, args.max_steps, seed=7 + i) for i in range(args.jobs)]
    threads = torch.get_num_threads()
    t = time.perf_counter()
    for j in jobs:
        evaluate(j.net, j.env, j.search, j.episodes, j.max_steps, j.seed)
    sequential = time.perf_counter() - t
    t = time.perf_counter()
    one = run_evaluations(jobs, workers=1)
    one_s = time.perf_counter() - t
    workers = min(available_cores(), len(jobs))
    t = time.perf_counter()
    many = run_evaluations(jobs, workers=workers)
    many_s = time.perf_counter() - t
    same = all(np.array_equal(one[k], many[k]) for k in one)
    rows = [("one after another, default torch threads", threads, sequential),
            ("run_evaluations, 1 worker (1 thread)", 1, one_s),
            (f"run_evaluations, {workers} workers (1 thread each)", 1, many_s)]
    report = "\n".join([
        utc_heading(), "", machine_line(), f"- command: `{command_line()}`",
        f"- {args.jobs} evaluations of {args.episodes} episodes x {args.max_steps} agent steps on {args.game} "
        f"(tiny net, 16 simulations); same scores with 1 and {workers} workers: {same}", "",
        "| how | torch threads per evaluation | wall s | vs one after another |", "|---|---:|---:|---:|",
        *[f"| {name} | {th} | {s:.1f} | {sequential / s:.2f}x |" for name, th, s in rows], ""])
    print(report)
    if args.record:
        append_report(RESULTS, "Independent evaluations side by side", report)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
