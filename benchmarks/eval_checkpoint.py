"""Evaluate a saved model against a uniform-random agent under the same capped protocol.

Used for the learning evidence in README ("Does it learn?"): more episodes than the periodic
evaluation of ``xfer train`` give a tighter figure.

    python benchmarks/eval_checkpoint.py runs/qbert/model.safetensors --game Qbert --episodes 32 --max-steps 1500
    python benchmarks/eval_checkpoint.py runs/q/model.safetensors --game Qbert --set policy_target=completed_q \
        --set root_expand_all=true     # search settings must match the run's (see its --set mcts.*)
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from xfer import checkpoint as ckpt
from xfer.actor import evaluate, evaluate_random
from xfer.config import AtariConfig, SearchConfig
from xfer.presets import parse_overrides


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="model.safetensors written by xfer train or a pipeline stage")
    ap.add_argument("--game", required=True)
    ap.add_argument("--episodes", type=int, default=32)
    ap.add_argument("--max-steps", type=int, default=1500, help="agent steps per episode (4 frames each)")
    ap.add_argument("--simulations", type=int, default=16)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--precision", default="auto", choices=["fp32", "bf16", "auto"],
                    help="representation-network compute dtype (auto: bf16 where the CPU has it natively)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override an SearchConfig field, e.g. policy_target=completed_q (repeatable)")
    args = ap.parse_args(argv)
    try:
        mcts = SearchConfig.model_validate({"num_simulations": args.simulations, **parse_overrides(args.set)})
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        ap.error(f"bad --set for the search (SearchConfig): {exc}")
    try:
        net, _ = ckpt.load_model(args.model, precision=args.precision)
    except ckpt.CheckpointError as exc:  # missing, corrupt, wrong shape: the message says which and what to do
        ap.exit(2, f"{ap.prog}: error: {exc}\n")
    env = AtariConfig(game=args.game)
    agent = evaluate(net, env, mcts, args.episodes, args.max_steps, args.seed)
    rnd = evaluate_random(env, args.episodes, args.max_steps, args.seed + 1)

    def stats(x: np.ndarray) -> dict:
        return {"mean": float(x.mean()), "std": float(x.std(ddof=1)), "sem": float(x.std(ddof=1) / np.sqrt(len(x)))}

    out = {"game": args.game, "episodes": args.episodes, "max_steps": args.max_steps,
           "mcts": mcts.model_dump(), "agent": stats(agent), "random": stats(rnd)}
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
