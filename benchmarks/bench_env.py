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
import os
import sys
import time
from pathlib import Path

import ale_py
import cv2
import gymnasium
import numpy as np

from xfer.config import AtariConfig
from xfer.envs.atari import VectorAtari, make_atari

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/, also when not run as a script
from _common import append_report, command_line, machine_line, utc_heading  # noqa: E402

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

    table = [
        f"| Game | AtariEnv (1 env) steps/s | VectorAtari ({args.num_envs} envs) steps/s | frames/s (1 env) |",
        "|---|---:|---:|---:|",
    ]
    table += [f"| {g} | {s:.0f} | {v:.0f} | {4 * s:.0f} |" for g, s, v in rows]
    report = "\n".join(
        [
            utc_heading(),
            "",
            machine_line(load_before[0]),
            f"- software: ale-py {ale_py.__version__}, gymnasium {gymnasium.__version__}, "
            f"opencv {cv2.__version__} ({cv2.getNumThreads()} cv2 threads); no GPU used",
            f"- command: `{command_line(argv)}`",
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
        append_report(RESULTS, "Env throughput (benchmarks/bench_env.py)", report)
    return report


if __name__ == "__main__":
    main()
