"""Throughput of the Meta-World adapter against the raw package: agent steps per second, random actions.

Raw: the same ``num_envs`` Meta-World environments stepped in a Python loop with ``set_task`` /
``reset`` every 500 steps (and ``render()`` after every step for pixels): what Meta-World itself
costs. Adapter: :class:`xfer.envs.metaworld.VectorMetaWorld` (the same loop, plus action checks,
the frame history, episode and success bookkeeping and the :class:`~xfer.envs.vector.VectorStep`).
Both run in this process, interleaved ``--repeats`` times; medians are reported with the ratio.

Usage::

    python benchmarks/bench_metaworld_env.py                   # reach-v3, 8 envs, states and pixels; appends
    python benchmarks/bench_metaworld_env.py --observations state --steps 2000 --no-write
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from xfer.config import MetaWorldConfig
from xfer.envs import metaworld as mw

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/, also when not run as a script
from _common import _version, append_report, command_line, machine_line, utc_heading  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "env.md"
WARMUP = 20  # untimed batched steps first (first render, lazy initialisation)


def _config(task: str, observation: str) -> MetaWorldConfig:
    return MetaWorldConfig(benchmark="ML1", task=task, observation=observation)


def bench_raw(cfg: MetaWorldConfig, num_envs: int, iters: int, seed: int) -> float:
    """Agent steps per second (summed over envs) of ``num_envs`` bare Meta-World envs in a loop."""
    cls, goals = mw.goal_tasks(cfg)
    pixels = cfg.observation == "pixels"
    render = dict(render_mode="rgb_array", camera_name=cfg.camera, width=cfg.frame_size,
                  height=cfg.frame_size) if pixels else {}
    envs = [cls(**render) for _ in range(num_envs)]
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, size=(WARMUP + iters, num_envs, 4)).astype(np.float32)
    length = 0

    def play(batch: np.ndarray) -> None:
        nonlocal length
        for a in batch:
            if length % mw.EPISODE_STEPS == 0:
                for env in envs:
                    env.set_task(goals[rng.integers(len(goals))])
                    env.reset()
            for env, ai in zip(envs, a):
                env.step(ai)
                if pixels:
                    env.render()
            length += 1

    play(actions[:WARMUP])
    start = time.perf_counter()
    play(actions[WARMUP:])
    rate = iters * num_envs / (time.perf_counter() - start)
    for env in envs:
        env.close()
    return rate


def bench_adapter(cfg: MetaWorldConfig, num_envs: int, iters: int, seed: int) -> float:
    """Agent steps per second (summed over envs) of :class:`VectorMetaWorld`."""
    actions = np.random.default_rng(seed).uniform(-1, 1, size=(WARMUP + iters, num_envs, 4)).astype(np.float32)
    with mw.VectorMetaWorld(cfg, num_envs, seed) as env:
        env.reset()
        for a in actions[:WARMUP]:
            env.step(a)
        start = time.perf_counter()
        for a in actions[WARMUP:]:
            env.step(a)
        return iters * num_envs / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="reach-v3", help="Meta-World task (ML1)")
    parser.add_argument("--observations", default="state,pixels", help="comma-separated: state, pixels")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4000, help="agent steps per state measurement (over all envs)")
    parser.add_argument("--pixel-steps", type=int, default=800,
                        help="agent steps per pixel measurement (software EGL renders about 10 frames/s)")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved raw/adapter measurements; medians")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help=f"do not append to {RESULTS}")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    n = args.num_envs
    rows = []
    for observation in [o.strip() for o in args.observations.split(",") if o.strip()]:
        cfg = _config(args.task, observation)
        iters = max(1, (args.pixel_steps if observation == "pixels" else args.steps) // n)
        mw.metaworld_spec(cfg, cfg.task)  # validates; pixels pick the OpenGL backend first
        raw, adapter = [], []
        for r in range(args.repeats):
            raw.append(bench_raw(cfg, n, iters, args.seed + r))
            adapter.append(bench_adapter(cfg, n, iters, args.seed + r))
        row = (observation, iters * n, statistics.median(raw), statistics.median(adapter))
        rows.append(row)
        print(f"{args.task} {observation} x{n}: raw {row[2]:.1f} steps/s, adapter {row[3]:.1f} steps/s "
              f"({row[3] / row[2]:.2f})", flush=True)
    table = ["| Task | observation | envs | steps | raw Meta-World steps/s | VectorMetaWorld steps/s | adapter / raw |",
             "|---|---|---:|---:|---:|---:|---:|"]
    table += [f"| {args.task} | {o} | {n} | {k} | {r:.1f} | {a:.1f} | {a / r:.2f} |" for o, k, r, a in rows]
    report = "\n".join([
        utc_heading(), "", machine_line(load_before[0]),
        f"- software: metaworld {_version('metaworld')}, mujoco {_version('mujoco')}, "
        f"MUJOCO_GL={os.environ.get('MUJOCO_GL', 'unset')}",
        f"- command: `{command_line(argv)}`",
        f"- agent steps per measurement in the table (ML1 {args.task}, train goals), uniform random actions in "
        f"[-1, 1], episode resets every 500 steps included, {WARMUP} untimed batched steps first, median of "
        f"{args.repeats} interleaved repeat(s); pixels: 96x96 RGB from corner3, one render per step, stack 1",
        "", *table, "",
    ])
    print()
    print(report)
    if not args.no_write:
        append_report(RESULTS, "Env throughput (benchmarks/bench_env.py)", report)
    return report


if __name__ == "__main__":
    main()
