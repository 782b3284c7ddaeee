"""Cost of Sampled MuZero's search (continuous Box actions) against the discrete search, in roots per second.

Four searches of ``--simulations`` simulations over ``--roots`` roots, timed in the same process, each
pair interleaved (a, b, a, b, ..., then c, d, c, d, ...) so a ratio holds when the shared machine's speed
drifts:

- (a) discrete, fake model: :func:`xfer.mcts.run_search` over ``--actions`` actions (all legal, root
  noise on) with a zero-cost model that returns precomputed arrays per node (value prefix, value,
  logits ~ N(0, 1)), as ``bench_mcts.py``: tree operations only;
- (b) sampled, fake model: the same search with the edge table :class:`xfer.mcts.edges.SampledEdges`
  (``--samples`` K actions per node, a ``--action-dim`` D Box) and precomputed Gaussian parameters per
  node (mean ~ N(0, 1), log std ~ N(-1, 0.3)): tree operations plus sampling, squashing and the
  sampled prior;
- (c) discrete, real network: :func:`xfer.inference.search_policy` with a tiny network over Meta-World-
  shaped state vectors ``[39]`` and a ``Discrete(--actions)`` head (self-play: root noise on);
- (d) sampled, real network: the same with a tiny Box network (Gaussian head ``[2D]``, action planes).

(c) and (d) share the observation shape and the network size, so their ratio is what the sampled
edges cost inside a real search; ``--pixels`` adds (e), the Atari-shaped tiny network of
``results/train.md``, for reference. Each timed search is preceded by one warm-up search per variant.

    python benchmarks/bench_sampled_search.py                     # 64 roots, 50 simulations, K = 20, D = 4
    python benchmarks/bench_sampled_search.py --repeats 9 --record
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/, also when not run as a script

from _common import append_report, command_line, machine_line, utc_heading  # noqa: E402

from xfer.agent import build_model  # noqa: E402
from xfer.config import AtariProtocol, NetConfig, SearchConfig  # noqa: E402
from xfer.envs.spec import Box, Discrete, EnvSpec, ObservationSpec  # noqa: E402
from xfer.envs.suites import env_spec  # noqa: E402
from xfer.inference import search_policy  # noqa: E402
from xfer.mcts import RecurrentStep, RootInputs, run_search  # noqa: E402
from xfer.mcts.edges import SampledEdges  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "search_sampled.md"
STATE = ObservationSpec("state", (39,))  # Meta-World's state vector


class FakeModel:
    """Precomputed recurrent outputs indexed by the new node id: no work per call. ``width`` columns of
    policy output: ``A`` logits, or ``2 D`` Gaussian parameters (mean, log std) with ``gaussian``."""

    def __init__(self, B: int, width: int, S: int, seed: int, gaussian: bool = False) -> None:
        r = np.random.default_rng(seed)
        self.vp = r.normal(size=(S + 1, B)).astype(np.float32)
        self.v = r.normal(size=(S + 1, B)).astype(np.float32)
        self.out = r.normal(size=(S + 1, B, width)).astype(np.float32)
        if gaussian:  # log std around -1 (sigma ~ 0.37 in pre-squash units)
            d = width // 2
            self.out[..., d:] = r.normal(-1.0, 0.3, size=(S + 1, B, d))

    def recurrent(self, parent, action, child, reset_lstm) -> RecurrentStep:
        i = int(child[0])
        return RecurrentStep(self.vp[i], self.v[i], self.out[i])


def fake_search(B: int, S: int, width: int, sampled: tuple[int, int] | None,
                seed: int) -> Callable[[int], None]:
    """A run of (a) (``sampled`` None, ``width = A``) or (b) (``sampled = (K, D)``, ``width = 2 D``): a
    function of the repeat's seed."""
    model = FakeModel(B, width, S, seed, gaussian=sampled is not None)
    r = np.random.default_rng(seed + 1)
    root_out = r.normal(size=(B, width)).astype(np.float32)
    if sampled is not None:
        root_out[:, width // 2:] = r.normal(-1.0, 0.3, size=(B, width // 2))
    mask = np.ones((B, 0 if sampled else width), bool)
    root = RootInputs(r.normal(size=B).astype(np.float32), root_out, mask)
    K = sampled[0] if sampled else 1
    cfg = SearchConfig(num_simulations=S, num_samples=K)

    def run(i: int) -> None:
        edges = SampledEdges(B, S + 1, K, -1.0, 1.0, sampled[1]) if sampled else None
        res = run_search(model, root, cfg, np.random.default_rng(seed + i), add_noise=True, edges=edges)
        assert (res.visit_counts.sum(axis=1) == S).all()

    return run


def net_search(spec: EnvSpec, B: int, S: int, K: int, seed: int) -> Callable[[int], None]:
    """A run of :func:`search_policy` with a seeded tiny fp32 network for ``spec`` over ``B`` random
    observations (self-play: root noise on)."""
    net = build_model(spec, NetConfig(size="tiny", precision="fp32"), seed=seed).eval()
    r = np.random.default_rng(seed)
    shape = spec.observation.shape
    obs = (r.integers(0, 256, (B, *shape), dtype=np.uint8) if spec.observation.kind == "pixels"
           else r.normal(size=(B, *shape)).astype(np.float32))
    mask = np.ones((B, 0 if spec.action_dim else spec.num_actions), bool)
    cfg = SearchConfig(num_simulations=S, num_samples=K)

    def run(i: int) -> None:
        out = search_policy(net, obs, mask, cfg, np.random.default_rng(seed + i), add_noise=True)
        assert (out.visit_counts.sum(axis=1) == S).all()

    return run


def timed(run: Callable[[int], None], i: int) -> tuple[float, float]:
    """(wall, CPU) seconds of ``run(i)``."""
    w0, c0 = time.perf_counter(), time.process_time()
    run(i)
    return time.perf_counter() - w0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--roots", type=int, default=64, help="roots B per search (default 64)")
    ap.add_argument("--simulations", type=int, default=50, help="simulations per search (default 50)")
    ap.add_argument("--actions", type=int, default=18, help="discrete actions A (default 18, full Atari)")
    ap.add_argument("--samples", type=int, default=20, help="sampled actions K per node (default 20)")
    ap.add_argument("--action-dim", type=int, default=4, help="Box dimensions D (default 4, Meta-World)")
    ap.add_argument("--repeats", type=int, default=7, help="timed searches per variant (interleaved)")
    ap.add_argument("--no-network", action="store_true", help="only the fake-model searches (a) and (b)")
    ap.add_argument("--pixels", action="store_true", help="also (e): the Atari-shaped tiny network")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--record", action="store_true",
                    help="append the report to benchmarks/results/search_sampled.md")
    args = ap.parse_args(argv)

    B, S, A, K, D = args.roots, args.simulations, args.actions, args.samples, args.action_dim
    box = EnvSpec("bench", "box", STATE, Box(-1.0, 1.0, (D,)), None, 500)
    discrete = EnvSpec("bench", "discrete", STATE, Discrete(A), tuple(range(A)), 500)
    # Two groups, each built, warmed up and then timed interleaved repeat by repeat: the fake-model
    # searches first, before torch has run (its worker threads spin for a while after each network
    # call and would count in a fake search's CPU time), then the network searches.
    def fakes() -> dict[str, Callable[[int], None]]:
        return {f"(a) discrete, fake model, A = {A}": fake_search(B, S, A, None, args.seed),
                f"(b) sampled, fake model, K = {K}, D = {D}": fake_search(B, S, 2 * D, (K, D), args.seed)}

    def networks() -> dict[str, Callable[[int], None]]:
        nets = {f"(c) discrete, tiny network, state [39], A = {A}": net_search(discrete, B, S, K, args.seed)}
        nets[f"(d) sampled, tiny network, state [39], K = {K}, D = {D}"] = net_search(box, B, S, K, args.seed)
        if args.pixels:
            atari = env_spec("atari", AtariProtocol(), "Breakout")
            nets["(e) discrete, tiny network, Atari pixels [12, 96, 96], A = 18"] = net_search(atari, B, S, K,
                                                                                             args.seed)
        return nets

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    for make in [fakes] if args.no_network else [fakes, networks]:
        group = make()
        for run in group.values():  # warm-up: buffers, caches, torch's first calls
            run(10_000)
        for i in range(args.repeats):
            for name, run in group.items():
                w, c = timed(run, i)
                walls.setdefault(name, []).append(w)
                cpus.setdefault(name, []).append(c)

    lines = [
        f"{utc_heading()} — Sampled MuZero search cost (benchmarks/bench_sampled_search.py)",
        "",
        machine_line(load),
        f"- torch threads: {torch.get_num_threads()}",
        f"- command: `{command_line(argv)}`",
        f"- {B} roots, {S} simulations, root noise on; {args.repeats} timed searches per variant after one "
        "warm-up, interleaved with the other variants of its group (fake models, then networks)",
        "",
        "| search | wall ms (median) | wall ms (best) | roots/s (median wall) | roots/s (best wall) "
        "| roots/s (CPU time) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in walls:
        med, best, cpu = statistics.median(walls[name]), min(walls[name]), min(cpus[name])
        lines.append(f"| {name} | {1e3 * med:.1f} | {1e3 * best:.1f} | {B / med:,.0f} | {B / best:,.0f} "
                     f"| {B / cpu:,.0f} |")
    names = list(walls)
    pairs = [(names[1], names[0], "fake model (tree cost)")]
    if not args.no_network:
        pairs.append((names[3], names[2], "tiny network (search_policy)"))
    lines += ["", "| ratio sampled / discrete, roots/s | median of per-repeat ratios | min | max |",
              "|---|---:|---:|---:|"]
    for s_name, d_name, what in pairs:
        # roots/s ratio = discrete wall / sampled wall, paired repeat by repeat
        r = [d / s for s, d in zip(walls[s_name], walls[d_name])]
        lines.append(f"| {what} | {statistics.median(r):.2f} | {min(r):.2f} | {max(r):.2f} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.record:
        append_report(RESULTS, "Sampled MuZero search throughput (numpy backend)", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
