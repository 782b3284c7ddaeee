"""Throughput of the batched numpy MCTS (xfer.mcts.run_search) in roots per second.

Tree operations only: the model is a zero-cost fake that returns precomputed random arrays
(value prefix, value ~ N(0, 1), logits ~ N(0, 1) per node), so the numbers measure selection,
expansion bookkeeping and backup (EfficientZero semantics, Ye et al. 2021). ``--fake-latency-ms``
adds a sleep per recurrent call to see how a fixed network latency per simulation dilutes it.

Example::

    python benchmarks/bench_mcts.py --batch-sizes 8 256 1536 --simulations 50 --actions 18
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/, also when not run as a script

from _common import command_line, machine_line, utc_heading  # noqa: E402

from xfer.config import SearchConfig  # noqa: E402
from xfer.mcts import RecurrentStep, RootInputs, run_search  # noqa: E402

REFERENCE_ROOTS_PER_S = 2800.0  # C++ EfficientZero-style tree, one core of the dev machine, 50 sims


class FakeModel:
    """Returns precomputed outputs indexed by the new node id: no work per call."""

    def __init__(self, B: int, A: int, S: int, seed: int, latency_s: float = 0.0) -> None:
        r = np.random.default_rng(seed)
        self.vp = r.normal(size=(S + 1, B)).astype(np.float32)
        self.v = r.normal(size=(S + 1, B)).astype(np.float32)
        self.logits = r.normal(size=(S + 1, B, A)).astype(np.float32)
        self.latency_s = latency_s

    def recurrent(self, parent, action, child, reset_lstm) -> RecurrentStep:
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        i = int(child[0])
        return RecurrentStep(self.vp[i], self.v[i], self.logits[i])


def bench(B: int, S: int, A: int, repeats: int, seed: int, latency_ms: float, max_depth: int,
          legal: int | None = None) -> dict:
    model = FakeModel(B, A, S, seed, latency_ms / 1000.0)
    r = np.random.default_rng(seed + 1)
    root = RootInputs(
        value=r.normal(size=B).astype(np.float32),
        policy_logits=r.normal(size=(B, A)).astype(np.float32),
        action_mask=np.arange(A)[None, :].repeat(B, 0) < (legal or A),  # the first `legal` actions
    )
    cfg = SearchConfig(num_simulations=S, max_depth=max_depth)
    run_search(model, root, cfg, np.random.default_rng(seed), add_noise=True)  # warm-up (buffers, caches)
    walls, cpus = [], []
    for i in range(repeats):
        rng = np.random.default_rng(seed + i)
        w0, c0 = time.perf_counter(), time.process_time()
        res = run_search(model, root, cfg, rng, add_noise=True)
        cpus.append(time.process_time() - c0)
        walls.append(time.perf_counter() - w0)
    assert (res.visit_counts.sum(axis=1) == S).all()
    return {
        "B": B,
        "simulations": S,
        "actions": A,
        "legal": legal or A,
        "wall_ms_best": 1e3 * min(walls),
        "wall_ms_median": 1e3 * statistics.median(walls),
        "cpu_ms_best": 1e3 * min(cpus),
        "roots_per_s_best": B / min(walls),
        "roots_per_s_median": B / statistics.median(walls),
        "roots_per_s_cpu": B / min(cpus),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 256, 1536], help="numbers of roots B")
    ap.add_argument("--simulations", type=int, default=50, help="simulations per search (default 50)")
    ap.add_argument("--actions", type=int, default=18, help="action-space size A (default 18, full Atari)")
    ap.add_argument("--repeats", type=int, default=7, help="timed searches per batch size (best and median)")
    ap.add_argument("--max-depth", type=int, default=0, help="SearchConfig.max_depth (0 = unlimited)")
    ap.add_argument(
        "--fake-latency-ms", type=float, default=0.0, help="sleep per recurrent call, emulating a network"
    )
    ap.add_argument("--legal", type=int, default=None,
                    help="legal actions per root (the first N of A; default all): below A, every node masks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(utc_heading(), "", machine_line(load), f"- command: `{command_line(argv)}`", sep="\n")
    print(f"- fake latency {args.fake_latency_ms} ms/call, max_depth {args.max_depth}, "
          f"legal actions {args.legal or args.actions} of {args.actions}", end="\n\n")
    rows = []
    header = "| B | sims | A | wall ms (best) | wall ms (median) | roots/s (best wall) | roots/s (median wall) | roots/s (CPU time) | x C++ ref (best) |"
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for B in args.batch_sizes:
        row = bench(
            B, args.simulations, args.actions, args.repeats, args.seed, args.fake_latency_ms, args.max_depth,
            args.legal,
        )
        rows.append(row)
        # the C++ reference figure is for 50 simulations, tree operations only
        comparable = args.simulations == 50 and args.fake_latency_ms == 0 and args.max_depth == 0
        ratio = f"{row['roots_per_s_best'] / REFERENCE_ROOTS_PER_S:.1f}" if comparable else "n/a"
        print(
            f"| {B} | {row['simulations']} | {row['actions']} | {row['wall_ms_best']:.1f} | "
            f"{row['wall_ms_median']:.1f} | {row['roots_per_s_best']:,.0f} | {row['roots_per_s_median']:,.0f} | "
            f"{row['roots_per_s_cpu']:,.0f} | {ratio} |",
            flush=True,
        )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
