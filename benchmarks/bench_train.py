"""Training-step and real-network search throughput of the EfficientZero learner on this machine.

Measures (1) learner steps/s (unroll K=5, full loss, backward, optimiser step) for a network size
and batch size, with targets built from real replay-shaped data, and (2) roots/s of a full
search (network + tree) for B roots with the real network. Writes a markdown table to stdout and,
with ``--record``, appends it to ``benchmarks/results/train.md``.

    python benchmarks/bench_train.py --sizes tiny ez --batch-sizes 32 --search-roots 64 --record
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from xfer.config import AtariProtocol, LossConfig, OptimConfig, SearchConfig
from xfer.envs.suites import env_spec
from xfer.inference import search_policy
from xfer.learner import Learner
from xfer.nets.efficientzero import build_network
from xfer.nets.sizes import net_spec
from xfer.replay.targets import Batch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/, also when not run as a script
from _common import append_report, command_line, machine_line, utc_heading  # noqa: E402

# the inputs of an Atari network under the default protocol (the policy head, the stacked frames)
_ATARI = env_spec("atari", AtariProtocol(), "Breakout")
ATARI_INPUT = (_ATARI.num_actions, _ATARI.observation.shape)

RESULTS = Path(__file__).resolve().parent / "results" / "train.md"


def fake_batch(batch: int, unroll: int, support_actions: int = 18, seed: int = 0) -> Batch:
    """A batch with real shapes and random content (speed does not depend on the values)."""
    rng = np.random.default_rng(seed)
    k1 = unroll + 1
    policy = rng.random((batch, k1, support_actions)).astype(np.float32)
    policy /= policy.sum(-1, keepdims=True)
    ones = np.ones
    return Batch(
        obs=rng.integers(0, 256, (batch, k1, 12, 96, 96), dtype=np.uint8),
        actions=rng.integers(0, 18, (batch, unroll)),
        value_prefix=rng.random((batch, unroll)).astype(np.float32),
        value=rng.random((batch, k1)).astype(np.float32),
        policy=policy,
        mask_value_prefix=ones((batch, unroll), np.float32),
        mask_value=ones((batch, k1), np.float32),
        mask_policy=ones((batch, k1), np.float32),
        mask_obs=ones((batch, k1), np.float32),
        weights=ones(batch, np.float32),
        action_mask=ones((batch, 18), bool),
        segment_ids=np.zeros(batch, np.int64),
        positions=np.zeros(batch, np.int64),
    )


def bench_step(size: str, batch: int, steps: int, device: str, precision: str) -> float:
    net = build_network(net_spec(size), *ATARI_INPUT).set_precision(precision)
    learner = Learner(net, OptimConfig(), LossConfig(), 5, 1000, device, augment=True)
    b = fake_batch(batch, 5)
    learner.step(b)  # warm-up
    t = time.perf_counter()
    for _ in range(steps):
        learner.step(b)
    return steps / (time.perf_counter() - t)


def bench_search(size: str, roots: int, sims: int, device: str, precision: str) -> float:
    net = build_network(net_spec(size), *ATARI_INPUT).set_precision(precision).to(device)
    obs = np.random.default_rng(0).integers(0, 256, (roots, 12, 96, 96), dtype=np.uint8)
    mask = np.ones((roots, 18), bool)
    cfg = SearchConfig(num_simulations=sims)
    search_policy(net, obs[:2], mask[:2], cfg, np.random.default_rng(0), add_noise=True, device=device)
    t = time.perf_counter()
    search_policy(net, obs, mask, cfg, np.random.default_rng(0), add_noise=True, device=device)
    return roots / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["tiny", "ez"], choices=["tiny", "ez", "ez-l"])
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[32])
    ap.add_argument("--steps", type=int, default=3, help="timed learner steps per setting")
    ap.add_argument("--search-roots", type=int, default=64)
    ap.add_argument("--simulations", type=int, default=50)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16"],
                    help="compute dtypes to measure (net.precision)")
    ap.add_argument("--record", action="store_true", help="append the table to benchmarks/results/train.md")
    args = ap.parse_args()
    rows = []
    for size in args.sizes:
        for prec in args.precisions:
            for b in args.batch_sizes:
                sps = bench_step(size, b, args.steps, args.device, prec)
                rows.append(f"| learner step, unroll 5 | {size} | {prec} | batch {b} | {sps:.2f} steps/s |")
            rps = bench_search(size, args.search_roots, args.simulations, args.device, prec)
            rows.append(f"| search, {args.simulations} sims, real network | {size} | {prec} | {args.search_roots} roots "
                        f"| {rps:.1f} roots/s |")
    report = "\n".join(
        [
            f"{utc_heading()} — {args.device}",
            "",
            machine_line(),
            f"- torch threads: {torch.get_num_threads()}",
            f"- command: `{command_line()}`",
            "",
            "| what | size | precision | batch | throughput |",
            "|---|---|---|---|---:|",
            *rows,
            "",
        ]
    )
    print(report)
    if args.record:
        append_report(RESULTS, "Training and real-network search throughput", report)


if __name__ == "__main__":
    main()
