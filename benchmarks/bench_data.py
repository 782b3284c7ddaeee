"""Offline dataset format (xfer.data) on real Atari frames: write/read speed, size, batch sampling.

Data: for each game, ``--transitions`` agent steps of ``AtariConfig(game)`` (96x96 RGB, 4-frame
stacks rebuilt on read) under uniformly random legal actions, cut into ``--segment-length`` segments
(episode ends close a segment) by :func:`xfer.data.synthetic.random_atari_segments`. Behaviour statistics are
placeholders (visit_dist uniform over legal actions, root_values zeros), so the non-frame arrays
compress better than real search statistics would; frames dominate the size either way.

Measured (single process, wall clock):

* write: :func:`xfer.data.write_dataset` transitions/s (np.savez_compressed, zlib default level,
  SHA-256, fsync, atomic rename) and on-disk bytes/transition vs raw uint8 frame bytes/transition;
* read: a fresh :class:`xfer.data.DatasetReader` decoding every shard (verified: size + SHA-256 on
  first load; and unverified) in transitions/s, and the time to load one shard;
* sample: :class:`xfer.data.OfflineSampler` over 8 "games" (the datasets reused under 8 labels),
  batches/s of ``--batch`` start positions split evenly over them (index only: no stacking, no
  tensors), at steady state (no rotation) and with rotation every ``--rotate-every`` transitions
  (shard loads included), plus resident vs. full decompressed bytes;
* frame codecs: compression ratio and speed of zlib levels, frame deltas and lzma on the frames
  alone (what motivated keeping np.savez_compressed's default).

Usage::

    python benchmarks/bench_data.py                       # Pong + MsPacman, 5000 steps each; appends results
    python benchmarks/bench_data.py --transitions 1000 --no-write

Prints a Markdown report and, unless ``--no-write``, appends it with the date, machine (nproc, CPU
model), versions and the exact command to ``benchmarks/results/data.md``.
"""

from __future__ import annotations

import argparse
import lzma
import os
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from xfer.config import AtariConfig
from xfer.data import DatasetReader, OfflineSampler, atari_env_info, package_versions, write_dataset
from xfer.data.synthetic import random_atari_segments

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/, also when not run as a script
from _common import append_report, command_line, machine_line, utc_heading  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "data.md"


def codec_rows(frames: np.ndarray) -> list[tuple[str, float, float, float]]:
    """(codec, ratio, compress MB/s, decompress MB/s) on ``frames`` ``[N, 3, H, W]`` uint8."""
    raw = frames.tobytes()
    delta = np.diff(frames, axis=0, prepend=np.zeros_like(frames[:1])).tobytes()  # uint8 wrap-around
    codecs = [
        ("zlib level 1", raw, lambda b: zlib.compress(b, 1), zlib.decompress),
        ("zlib level 6 (numpy default, used)", raw, lambda b: zlib.compress(b, 6), zlib.decompress),
        ("zlib level 9", raw, lambda b: zlib.compress(b, 9), zlib.decompress),
        ("frame delta + zlib 6", delta, lambda b: zlib.compress(b, 6), zlib.decompress),
        ("lzma preset 0", raw, lambda b: lzma.compress(b, preset=0), lzma.decompress),
    ]
    rows = []
    for name, data, comp, decomp in codecs:
        comp_s = dec_s = float("inf")
        for _ in range(2):  # best of 2: the machine may be shared
            t0 = time.perf_counter()
            blob = comp(data)
            t1 = time.perf_counter()
            decomp(blob)
            t2 = time.perf_counter()
            comp_s, dec_s = min(comp_s, t1 - t0), min(dec_s, t2 - t1)
        rows.append((name, len(raw) / len(blob), len(raw) / comp_s / 1e6, len(raw) / dec_s / 1e6))
    return rows


def bench_sampling(readers: dict[str, DatasetReader], batch: int, batches: int, rotate_every: int,
                   max_cached: int, seed: int) -> tuple[float, int, int]:
    """(batches/s, shard loads during the timed loop, resident bytes at the end); one warm-up batch."""
    sampler = OfflineSampler(readers, max_cached_shards=max_cached, rotate_every=rotate_every, seed=seed)
    sampler.sample_uniform(batch)  # initial shard loads, untimed
    loads0 = sum(sampler.shard_loads().values())
    start = time.perf_counter()
    for _ in range(batches):
        sampler.sample_uniform(batch)
    rate = batches / (time.perf_counter() - start)
    return rate, sum(sampler.shard_loads().values()) - loads0, sampler.resident_bytes()


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", default="Pong,MsPacman", help="comma-separated ALE game names")
    parser.add_argument("--transitions", type=int, default=5000, help="agent steps collected per game")
    parser.add_argument("--segment-length", type=int, default=200, help="agent steps per segment")
    parser.add_argument("--shard-transitions", type=int, default=1000, help="DatasetWriter shard size (steps)")
    parser.add_argument("--labels", type=int, default=8, help="sampler 'games' (datasets reused round-robin)")
    parser.add_argument("--batch", type=int, default=256, help="start positions per sampled batch")
    parser.add_argument("--batches", type=int, default=2000, help="timed batches per sampling measurement")
    parser.add_argument("--rotate-every", type=int, default=1000, help="sampler rotation period (steps/game)")
    parser.add_argument("--max-cached-shards", type=int, default=2)
    parser.add_argument("--codec-frames", type=int, default=1000, help="frames per game in the codec table (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="where datasets are written (default: a temp dir)")
    parser.add_argument("--no-write", action="store_true", help=f"do not append to {RESULTS}")
    args = parser.parse_args(argv)

    games = [g.strip() for g in args.games.split(",") if g.strip()]
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench_data-", dir=args.workdir))
    try:
        rows, codecs, readers = [], [], {}
        for game in games:
            t0 = time.perf_counter()
            segments = random_atari_segments(game, args.transitions, args.segment_length, args.seed)
            collect_s = time.perf_counter() - t0
            n = sum(len(s) for s in segments)
            if args.codec_frames:
                frames = np.concatenate([s.frames for s in segments])[: args.codec_frames]
                codecs += [(game, *row) for row in codec_rows(frames)]
            t0 = time.perf_counter()
            manifest = write_dataset(
                work / game, segments, game, atari_env_info(AtariConfig(game=game)), "random legal actions",
                shard_transitions=args.shard_transitions,
            )
            write_rate = n / (time.perf_counter() - t0)
            del segments
            read = {}
            for verify in (True, False):
                reader = DatasetReader(work / game, verify=verify)
                t0 = time.perf_counter()
                got = sum(len(s) for s in reader.iter_segments())
                read[verify] = got / (time.perf_counter() - t0)
                assert got == n
            reader = DatasetReader(work / game)
            t0 = time.perf_counter()
            reader.load_shard(0)
            shard_ms = (time.perf_counter() - t0) * 1e3
            full = sum(s.nbytes() for s in reader.iter_segments())
            readers[game] = reader
            rows.append((game, n, len(manifest.shards), collect_s, write_rate, read[True], read[False],
                         shard_ms, manifest.raw_bytes_per_transition, manifest.bytes_per_transition, full))
            print(f"{game}: {n} steps, write {write_rate:.0f}/s, read {read[True]:.0f}/s, "
                  f"{manifest.raw_bytes_per_transition / manifest.bytes_per_transition:.1f}x", flush=True)

        labels = {f"{games[i % len(games)]}#{i}": readers[games[i % len(games)]] for i in range(args.labels)}
        full_all = sum(r[-1] for r in rows for lab in labels if lab.startswith(r[0] + "#"))
        steady = bench_sampling(labels, args.batch, args.batches, 10**12, args.max_cached_shards, args.seed)
        rotating = bench_sampling(labels, args.batch, args.batches, args.rotate_every, args.max_cached_shards,
                                  args.seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    table = [
        "| Game | steps | shards | write steps/s | read steps/s (verified) | read steps/s (no verify) "
        "| load 1 shard (ms) | raw frame B/step | on-disk B/step | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    table += [
        f"| {g} | {n} | {k} | {w:.0f} | {rv:.0f} | {rn:.0f} | {ms:.0f} | {raw:.0f} | {disk:.0f} | {raw / disk:.1f}x |"
        for g, n, k, _, w, rv, rn, ms, raw, disk, _ in rows
    ]
    per_game = args.batch / args.labels
    sample = [
        f"| OfflineSampler, {args.labels} labels, batch {args.batch}, max_cached_shards {args.max_cached_shards} "
        "| batches/s | shard loads in timed loop | resident MB | full decompressed MB |",
        "|---|---:|---:|---:|---:|",
        f"| steady state (no rotation) | {steady[0]:.0f} | {steady[1]} | {steady[2] / 1e6:.0f} | {full_all / 1e6:.0f} |",
        f"| rotate_every {args.rotate_every} (~{args.rotate_every / per_game:.0f} batches/rotation/label) "
        f"| {rotating[0]:.0f} | {rotating[1]} | {rotating[2] / 1e6:.0f} | {full_all / 1e6:.0f} |",
        "",
        "Decompressed size per step (all segment arrays) and what a default 20,000-step shard costs at the "
        "measured verified read rate:",
        "",
        *[f"- {g}: {full / n / 1e3:.1f} KB/step -> {20_000 * full / n / 1e6:.0f} MB and ~{20_000 / rv:.1f} s "
          "per 20k-step shard" for g, n, _, _, _, rv, _, _, _, _, full in rows],
    ]
    codec_table = []
    if codecs:
        codec_table = [
            f"Frame codecs on the first {args.codec_frames} stored frames of each game (frames only):",
            "",
            "| Game | codec | ratio | compress MB/s | decompress MB/s |",
            "|---|---|---:|---:|---:|",
            *[f"| {g} | {c} | {r:.1f}x | {cs:.0f} | {ds:.0f} |" for g, c, r, cs, ds in codecs],
            "",
        ]
    report = "\n".join(
        [
            utc_heading(),
            "",
            machine_line(load_before[0]),
            f"- software: xfer {package_versions()['xfer']}; no GPU used",
            f"- command: `{command_line(argv)}`",
            f"- data: {args.transitions} agent steps per game of real 96x96 RGB frames under random legal "
            f"actions, {args.segment_length}-step segments, {args.shard_transitions}-step shards; "
            "raw = uint8 frames stored (incl. 3 history frames per segment) / steps, on-disk = shard bytes / steps",
            "",
            *table,
            "",
            *sample,
            "",
            *codec_table,
        ]
    )
    print()
    print(report)
    if not args.no_write:
        append_report(RESULTS, "Offline dataset throughput (benchmarks/bench_data.py)", report)
    return report


if __name__ == "__main__":
    main()
