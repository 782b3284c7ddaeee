"""Throughput of the Atari100k env wrappers: agent steps per second with random actions.

One agent step = ``frame_skip`` (4) emulator frames plus max-pool, resize to 96x96 and the 4-frame
stack. Random actions are drawn uniformly from each game's minimal action set (as full-action ids);
finished episodes are reset (their cost is included).

Usage::

    python benchmarks/bench_env.py                       # Pong, Breakout, RoadRunner; appends results
    python benchmarks/bench_env.py --games Pong --steps 2000 --no-write

Prints a Markdown table and, unless ``--no-write``, appends it with the date, machine (nproc, CPU
model), library versions and the exact command to ``benchmarks/results/env.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import ale_py
import cv2
import gymnasium
import numpy as np

from xfer.config import AtariConfig
from xfer.envs.atari import VectorAtari, make_atari

WARMUP = 50  # untimed agent steps first (lazy library initialisation)
RESULTS = Path(__file__).resolve().parent / "results" / "env.md"


def bench_single(game: str, steps: int, seed: int) -> float:
    """Agent steps per second of one :class:`AtariEnv` over ``steps`` random steps."""
    rng = np.random.default_rng(seed)
    with make_atari(AtariConfig(game=game), seed=seed) as env:
        actions = rng.choice(env.minimal_action_map, size=steps)
        env.reset()
        for a in actions[:WARMUP]:
            if any(env.step(int(a))[2:4]):
                env.reset()
        env.reset()
        start = time.perf_counter()
        for a in actions:
            _, _, term, trunc, _ = env.step(int(a))
            if term or trunc:
                env.reset()
        return steps / (time.perf_counter() - start)


def bench_vector(game: str, steps: int, num_envs: int, seed: int) -> float:
    """Agent steps per second (summed over envs) of :class:`VectorAtari` over ``steps`` total steps."""
    rng = np.random.default_rng(seed)
    iters = max(1, steps // num_envs)
    with VectorAtari(AtariConfig(game=game), num_envs=num_envs, seed=seed) as venv:
        actions = rng.choice(venv.minimal_action_map, size=(iters, num_envs))
        venv.reset()
        for a in actions[: max(1, WARMUP // num_envs)]:
            venv.step(a)
        start = time.perf_counter()
        for a in actions:
            venv.step(a)
        return iters * num_envs / (time.perf_counter() - start)


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--games", default="Pong,Breakout,RoadRunner", help="comma-separated ALE game names")
    parser.add_argument("--steps", type=int, default=4000, help="agent steps per measurement")
    parser.add_argument("--num-envs", type=int, default=8, help="envs in the VectorAtari measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cv2-threads", type=int, default=None, help="cv2.setNumThreads before measuring (default: leave)"
    )
    parser.add_argument("--no-write", action="store_true", help=f"do not append to {RESULTS}")
    args = parser.parse_args(argv)

    if args.cv2_threads is not None:
        cv2.setNumThreads(args.cv2_threads)
    load_before = os.getloadavg()
    rows = []
    for game in [g.strip() for g in args.games.split(",") if g.strip()]:
        single = bench_single(game, args.steps, args.seed)
        vector = bench_vector(game, args.steps, args.num_envs, args.seed)
        rows.append((game, single, vector))
        print(
            f"{game}: single {single:.0f} steps/s, vector x{args.num_envs} {vector:.0f} steps/s", flush=True
        )

    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    table = [
        f"| Game | AtariEnv (1 env) steps/s | VectorAtari ({args.num_envs} envs) steps/s | frames/s (1 env) |",
        "|---|---:|---:|---:|",
    ]
    table += [f"| {g} | {s:.0f} | {v:.0f} | {4 * s:.0f} |" for g, s, v in rows]
    command = "python " + " ".join(
        shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])]
    )
    report = "\n".join(
        [
            f"## {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            "",
            f"- machine: {nproc} CPU cores (nproc), {cpu_model()}, no GPU used; load average before "
            f"the run {load_before[0]:.2f} (1 min): other processes share these cores if it is near nproc",
            f"- software: Python {platform.python_version()}, ale-py {ale_py.__version__}, "
            f"gymnasium {gymnasium.__version__}, numpy {np.__version__}, opencv {cv2.__version__} "
            f"({cv2.getNumThreads()} cv2 threads)",
            f"- command: `{command}`",
            f"- {args.steps} agent steps per measurement (1 agent step = 4 frames), random minimal-set "
            "actions, episode resets included, single process, "
            f"{WARMUP} untimed warm-up steps",
            "",
            *table,
            "",
        ]
    )
    print()
    print(report)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        header = "" if RESULTS.exists() else "# Env throughput (benchmarks/bench_env.py)\n\n"
        with RESULTS.open("a") as f:
            f.write(header + report + "\n")
        print(f"appended to {RESULTS}")
    return report


if __name__ == "__main__":
    main()
