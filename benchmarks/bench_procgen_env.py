"""Throughput of the Procgen adapter against the raw package: agent steps per second, random actions.

Raw: ``procgen.ProcgenGym3Env`` stepped with ``act`` + ``observe`` (what gym3 itself costs).
Adapter: :class:`xfer.envs.procgen.VectorProcgen` (the same batch, plus the CHW transpose, the frame
history, episode bookkeeping and the :class:`~xfer.envs.vector.VectorStep`). Both run in this
process, interleaved ``--repeats`` times, and the median of each is reported with the ratio
adapter / raw (issue 15's goal: the adapter keeps at least 80% of the raw rate at 64 envs).

Usage::

    python benchmarks/bench_procgen_env.py                      # coinrun, 8 and 64 envs; appends results
    python benchmarks/bench_procgen_env.py --games bigfish --num-envs 64 --no-write
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from xfer.config import ProcgenConfig
from xfer.envs.procgen import VectorProcgen

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/, also when not run as a script
from _common import append_report, command_line, machine_line, utc_heading  # noqa: E402

with contextlib.redirect_stderr(io.StringIO()):  # procgen imports the old gym, which prints a notice
    from procgen import ProcgenGym3Env

RESULTS = Path(__file__).resolve().parent / "results" / "env.md"
WARMUP = 200  # untimed batched steps first (level generation, first-touch of buffers)


def bench_raw(game: str, num_envs: int, iters: int, seed: int) -> float:
    """Agent steps per second (summed over envs) of the raw gym3 batch."""
    env = ProcgenGym3Env(num=num_envs, env_name=game, distribution_mode="hard", num_levels=500, rand_seed=seed)
    actions = np.random.default_rng(seed).integers(0, 15, size=(WARMUP + iters, num_envs)).astype(np.int32)
    for a in actions[:WARMUP]:
        env.act(a)
        env.observe()
    start = time.perf_counter()
    for a in actions[WARMUP:]:
        env.act(a)
        env.observe()
    rate = iters * num_envs / (time.perf_counter() - start)
    env.close()
    return rate


def bench_adapter(game: str, num_envs: int, iters: int, seed: int) -> float:
    """Agent steps per second (summed over envs) of :class:`VectorProcgen`."""
    actions = np.random.default_rng(seed).integers(0, 15, size=(WARMUP + iters, num_envs))
    with VectorProcgen(ProcgenConfig(game=game, num_levels=500), num_envs, seed) as env:
        env.reset()
        for a in actions[:WARMUP]:
            env.step(a)
        start = time.perf_counter()
        for a in actions[WARMUP:]:
            env.step(a)
        return iters * num_envs / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", default="coinrun", help="comma-separated Procgen games")
    parser.add_argument("--num-envs", default="8,64", help="comma-separated batch sizes")
    parser.add_argument("--steps", type=int, default=32_000, help="agent steps per measurement (over all envs)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved raw/adapter measurements; medians")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help=f"do not append to {RESULTS}")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    rows = []
    for game in [g.strip() for g in args.games.split(",") if g.strip()]:
        for n in [int(x) for x in args.num_envs.split(",")]:
            iters = max(1, args.steps // n)
            raw, adapter = [], []
            for r in range(args.repeats):
                raw.append(bench_raw(game, n, iters, args.seed + r))
                adapter.append(bench_adapter(game, n, iters, args.seed + r))
            row = (game, n, statistics.median(raw), statistics.median(adapter))
            rows.append(row)
            print(f"{game} x{n}: raw {row[2]:.0f} steps/s, adapter {row[3]:.0f} steps/s ({row[3] / row[2]:.2f})",
                  flush=True)
    table = ["| Game | envs | raw gym3 steps/s | VectorProcgen steps/s | adapter / raw |", "|---|---:|---:|---:|---:|"]
    table += [f"| {g} | {n} | {r:.0f} | {a:.0f} | {a / r:.2f} |" for g, n, r, a in rows]
    report = "\n".join([
        utc_heading(), "", machine_line(load_before[0]),
        f"- command: `{command_line(argv)}`",
        f"- {args.steps} agent steps per measurement (1 agent step = 1 Procgen frame), hard mode, 500 levels, "
        f"random actions, episode resets included, {WARMUP} untimed batched steps first, median of "
        f"{args.repeats} interleaved repeats; frame history 4",
        "", *table, "",
    ])
    print()
    print(report)
    if not args.no_write:
        append_report(RESULTS, "Env throughput (benchmarks/bench_env.py)", report)
    return report


if __name__ == "__main__":
    main()
