"""The ``xfer`` command line: ``xfer train`` (single-task online EfficientZero) and friends.

Run ``xfer --help`` or ``xfer <command> --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from xfer.checkpoint import CheckpointError
from xfer.stages.code import ENTRY_POINTS
from xfer.storage.cli import add_storage_commands

EPILOG_TRAIN = """examples:
  xfer train --game UpNDown --env-steps 2500 --size tiny --preset cpu --out runs/upndown   # ~13 min on 2 cores;
      # from random level to 1.8-3.4x a uniform-random agent in 4 of 4 seeds (benchmarks/results/learning.md)
  xfer train --game Pong --size ez --preset paper --device cuda --out runs/pong   # GPU worker
  xfer train --game Pong --preset cpu --set mcts.num_simulations=8 --set batch_size=16
  xfer train --game Qbert --preset cpu --set keep_eval_models=true   # keep OUT/evals/model_<step>.safetensors
  xfer train --suite procgen --game coinrun --set env.num_levels=200 --out runs/coinrun   # Procgen, hard mode
  xfer train --suite procgen --game coinrun --set agent.kind=ql --set loss.policy=0 --set replay.unroll_steps=1
      # the controlled Q-learning baseline (seed 000 A.2); the Procgen pipeline: xfer params --pipeline procgen
  xfer train --suite metaworld --game reach-v3 --env-steps 4000 --out runs/reach   # Meta-World from states,
      # Sampled MuZero (continuous actions); evaluations log success rates; --set env.benchmark=ML1 for ML1's goals

Rerunning the same command with the same --out resumes from the last checkpoint in OUT/state.
Agent steps: on Atari 1 agent step = 4 emulator frames (Atari100k budget = 100k agent steps); on
Procgen 1 agent step = 1 frame. Evaluations play the run's env (for Procgen its training levels)."""


def _train(args: argparse.Namespace) -> int:
    from xfer.presets import build_train_config, parse_overrides
    from xfer.train import run_training, task_spec

    overrides = parse_overrides(args.set or [])
    task_key = "task" if args.suite == "metaworld" else "game"  # Meta-World names tasks (reach-v3)
    overrides.setdefault("env", {}).update({task_key: args.game, **({"suite": args.suite} if args.suite != "atari" else {})})
    overrides.setdefault("net", {})
    if args.size:
        overrides["net"]["size"] = args.size
    for key, val in (("env_steps", args.env_steps), ("device", args.device), ("seed", args.seed)):
        if val is not None:
            overrides[key] = val
    cfg = build_train_config(args.preset, overrides)
    task_spec(cfg)  # an unknown game is refused here, naming the suite's games
    init = Path(args.init) if args.init else None
    if init is not None:
        from xfer.checkpoint import CheckpointMismatchError, read_model_meta

        meta = read_model_meta(init)
        if meta.size != cfg.net.size:
            raise CheckpointMismatchError(
                f"--init checkpoint {init} is size {meta.size!r} but the run uses size {cfg.net.size!r}; "
                f"pass --size {meta.size} or another checkpoint"
            )
        want = cfg.net.spec().to_dict()
        differ = {k: v for k, v in meta.spec.items() if v != want[k]}
        if differ:
            raise CheckpointMismatchError(
                f"--init checkpoint {init} has network settings {differ} that this run does not use; "
                + " ".join(f"pass --set net.{k}={v}" for k, v in differ.items())
            )
    summary = run_training(cfg, Path(args.out), progress=not args.no_progress, init=init)
    print(json.dumps(summary, indent=2))
    print(f"learning curve: {Path(args.out) / 'learning_curve.png'}")
    return 0


STAGES = ("code", *ENTRY_POINTS)  # `code` first: it fingerprints the code of the others


def _params(args: argparse.Namespace) -> int:
    from xfer.params import PIPELINE_FILES, write_params

    preset_dir, default_out = PIPELINE_FILES[args.pipeline]
    out = Path(args.out) if args.out else default_out
    data = write_params(args.preset, args.set or [], out, preset_dir, args.pipeline)
    if args.pipeline == "procgen":
        print(f"wrote {out}: preset {args.preset}, games {data['games']}, levels {data['levels']}, "
              f"variants {list(data['variants'])}, seeds {data['seeds']}")
    elif args.pipeline == "metaworld":
        print(f"wrote {out}: preset {args.preset}, {data['benchmark']} training tasks {data['train_tasks']}, "
              f"test tasks {data['test_tasks']}, variants {list(data['variants'])}, seeds {data['seeds']}")
    elif args.pipeline == "explore":
        print(f"wrote {out}: preset {args.preset}, games {data['games']}, agents {list(data['agents'])}, intrinsic "
              f"{data['intrinsic']['kind']}, transfers {list(data['transfers'])}, seeds {data['seeds']}")
    else:
        print(f"wrote {out}: preset {args.preset}, pretraining {data['pretrain_games']}, targets {data['targets']}")
    return 0


def _stage(args: argparse.Namespace) -> int:
    import importlib

    module = importlib.import_module(f"xfer.stages.{args.name}")
    return module.main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``xfer`` (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="xfer", description="XTRA cross-task transfer for EfficientZero: training, pipeline stages, data."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="single-task online EfficientZero on a real Atari or Procgen game or Meta-World task",
                       description="Train EfficientZero online on one Atari game (Atari100k protocol) or one "
                       "Procgen game (hard mode, the training levels of env.num_levels) "
                       "with periodic evaluation, metrics TSVs, a learning-curve PNG and resumable checkpoints.",
                       epilog=EPILOG_TRAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--suite", default="atari", choices=["atari", "procgen", "metaworld"],
                   help="environment suite (default atari); metaworld acts by Sampled MuZero (continuous actions)")
    t.add_argument("--game", required=True, help="the suite's game: ALE names (Pong, Breakout, MsPacman), "
                   "Procgen's (coinrun, bigfish, starpilot, ...) or a Meta-World task (reach-v3, push-v3, ...)")
    t.add_argument("--env-steps", type=int, help="agent steps to collect (default: preset's, 100000)")
    t.add_argument("--size", choices=["tiny", "ez", "ez-l"], help="network size (default: preset's)")
    t.add_argument("--device", choices=["cpu", "cuda"], help="torch device (default cpu)")
    t.add_argument("--preset", default="cpu", choices=["cpu", "paper"], help="settings preset (default cpu)")
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    t.add_argument("--out", default="runs/train", help="output directory (resumes if it holds a state)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any TrainConfig field, e.g. mcts.num_simulations=8 (repeatable)")
    t.add_argument("--init", help="start from the weights of this model checkpoint (.safetensors + .json sidecar); "
                   "ignored when resuming from OUT/state")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    t.set_defaults(func=_train)
    pp = sub.add_parser("params", help="write params.yaml from a pipeline preset (+ overrides)",
                        description="Write params.yaml for `dvc repro` from presets/<NAME>.yaml plus overrides; "
                        "validated before the file is replaced.",
                        epilog="examples:\n  xfer params --preset default\n"
                        "  xfer params --preset shooter --set targets=[Phoenix] "
                        "--set pretrain_games=[Assault,Carnival,Centipede,DemonAttack]\n"
                        "  xfer params --preset default --set finetune.env_steps=4000\n"
                        "  xfer params --pipeline procgen --preset default     # procgen/params.yaml, CPU\n"
                        "  xfer params --pipeline procgen --preset paper --set games=[coinrun,bigfish]\n"
                        "  xfer params --pipeline metaworld --preset default   # metaworld/params.yaml, CPU\n"
                        "  xfer params --pipeline metaworld --preset paper_ml45 --set seeds=[0]\n"
                        "  xfer params --pipeline explore --preset default     # explore/params.yaml, CPU",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    pp.add_argument("--pipeline", choices=("xtra", "procgen", "metaworld", "explore"), default="xtra",
                    help="xtra: the XTRA pipeline (dvc.yaml, presets/*.yaml, params.yaml); procgen: the Procgen "
                    "pipeline (procgen/dvc.yaml, presets/procgen/*.yaml, procgen/params.yaml); metaworld: the "
                    "Meta-World pipeline (metaworld/dvc.yaml, presets/metaworld/*.yaml, metaworld/params.yaml); explore: "
                    "reward-free exploration then transfer (explore/dvc.yaml, presets/explore/*.yaml, explore/params.yaml)")
    pp.add_argument("--preset", default="default", help="xtra: default | cpu-demo | shooter | maze | diverse; "
                    "procgen: default | paper | planning; metaworld: default | paper_ml10 | paper_ml45; explore: default | "
                    "gpu_atari | gpu_procgen | gpu_metaworld (files in presets/, presets/procgen/, presets/metaworld/, "
                    "presets/explore/)")
    pp.add_argument("--set", action="append", metavar="KEY=VALUE", help="dotted override, YAML value (repeatable)")
    pp.add_argument("--out", default=None, help="file to write (default params.yaml; procgen: procgen/params.yaml; "
                    "metaworld: metaworld/params.yaml)")
    pp.set_defaults(func=_params)

    st = sub.add_parser("stage", help="run one pipeline stage (what dvc.yaml calls)",
                        description="Run one XTRA pipeline stage: " + ", ".join(STAGES) + ". "
                        "Stage options follow the name; see `xfer stage NAME --help`.")
    st.add_argument("name", choices=STAGES, help="stage name")
    st.add_argument("rest", nargs=argparse.REMAINDER, help="options of the stage")
    st.set_defaults(func=_stage)
    add_storage_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``xfer`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "stage":  # stages map their own bad input to exit code 2; bugs keep their traceback
        return args.func(args)
    try:
        return args.func(args)
    except (ValueError, ValidationError, FileNotFoundError, RuntimeError, CheckpointError) as exc:
        print(f"xfer {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
