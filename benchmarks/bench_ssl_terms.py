"""Cost of each self-supervised loss term per training step, as a ratio to the base step (issue 15).

The base step is EfficientZero's four terms; each variant adds one term of seed 000 (MZ+Recon: the
decoder and its mean + max pixel error; MZ+Contr: target-network projections and the contrastive
loss; MZ+SPR: the same projections and the normalised L2). Procgen-shaped batches (64x64 RGB, a
4-frame history, 15 actions, unroll 5) with random content (speed does not depend on the values).
Each setting is timed ``--steps`` steps after one warm-up step, the settings interleaved
``--repeats`` times; the table gives the median seconds per step and the ratio to the base.

    python benchmarks/bench_ssl_terms.py                       # tiny network, batch 32; appends results
    python benchmarks/bench_ssl_terms.py --size ez --batch 64 --no-write
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from xfer.config import LossConfig, OptimConfig, ProcgenProtocol
from xfer.envs.suites import env_spec
from xfer.learner import Learner
from xfer.nets.efficientzero import build_network
from xfer.nets.sizes import net_spec
from xfer.replay.targets import Batch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/, also when not run as a script
from _common import append_report, command_line, machine_line, utc_heading  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "train.md"
SPEC = env_spec("procgen", ProcgenProtocol(stack=4), "coinrun")
VARIANTS = {  # name -> (loss weights, decoder)
    "MZ (base)": ({}, False),
    "MZ+Recon": ({"reconstruction": 1.0}, True),
    "MZ+Contr": ({"contrastive": 1.0}, False),
    "MZ+SPR": ({"spr": 10.0}, False),
}


def procgen_batch(batch: int, unroll: int, seed: int = 0) -> Batch:
    """Random content in the shapes of a Procgen batch ``[B, K+1, 12, 64, 64]``."""
    rng = np.random.default_rng(seed)
    k1, A = unroll + 1, SPEC.num_actions
    policy = rng.random((batch, k1, A)).astype(np.float32)
    ones = np.ones
    return Batch(obs=rng.integers(0, 256, (batch, k1, *SPEC.observation.shape), dtype=np.uint8),
                 actions=rng.integers(0, A, (batch, unroll)), value_prefix=rng.random((batch, unroll)).astype(np.float32),
                 value=rng.random((batch, k1)).astype(np.float32), policy=policy / policy.sum(-1, keepdims=True),
                 mask_value_prefix=ones((batch, unroll), np.float32), mask_value=ones((batch, k1), np.float32),
                 mask_policy=ones((batch, k1), np.float32), mask_obs=ones((batch, k1), np.float32),
                 weights=ones(batch, np.float32), action_mask=ones((batch, A), bool),
                 segment_ids=np.zeros(batch, np.int64), positions=np.zeros(batch, np.int64))


def learner_for(size: str, variant: str) -> Learner:
    weights, decoder = VARIANTS[variant]
    net = build_network(net_spec(size, decoder=decoder), SPEC.num_actions, SPEC.observation.shape, seed=0)
    return Learner(net, OptimConfig(kind="adam", lr=1e-3), LossConfig(**weights), 5, 1000, augment=True)


def seconds_per_step(learner: Learner, batch: Batch, steps: int) -> float:
    learner.step(batch)  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        learner.step(batch)
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="tiny", choices=["tiny", "ez", "ez-l"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5, help="timed learner steps per setting and repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help=f"do not append to {RESULTS}")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    batch = procgen_batch(args.batch, 5)
    learners = {v: learner_for(args.size, v) for v in VARIANTS}
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.repeats):
        for v, learner in learners.items():
            times[v].append(seconds_per_step(learner, batch, args.steps))
    base = statistics.median(times["MZ (base)"])
    rows = [f"| {v} | {statistics.median(t):.3f} | {statistics.median(t) / base:.2f} |" for v, t in times.items()]
    report = "\n".join([
        f"{utc_heading()} — self-supervised terms (benchmarks/bench_ssl_terms.py)", "",
        machine_line(load_before[0]), f"- torch threads: {torch.get_num_threads()}",
        f"- command: `{command_line(argv)}`",
        f"- network {args.size}, batch {args.batch}, unroll 5, Procgen shapes (12x64x64, 15 actions), augmentation "
        f"on, Adam; median of {args.repeats} interleaved repeats of {args.steps} steps",
        "", "| variant | s / learner step | ratio to MZ |", "|---|---:|---:|", *rows, "",
    ])
    print(report)
    if not args.no_write:
        append_report(RESULTS, "Training and real-network search throughput", report)
    return report


if __name__ == "__main__":
    main()
