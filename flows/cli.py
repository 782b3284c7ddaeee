"""What every pipeline's command line shares: its run options and how it runs the flow."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from flows.params import SomeParams


def csv_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: a comma-separated command-line value."""
    return [t.strip() for t in text.split(",") if t.strip()]


def add_run_options(p: argparse.ArgumentParser, params_file: str) -> None:
    """The options every pipeline command line shares: --push, --pull, --keep-params, --repo, --distributed,
    --parallel."""
    p.add_argument("--push", action="store_true", help="xfer push --run-cache after each stage")
    p.add_argument("--pull", action="store_true", help="dvc repro --pull (reuse outputs pushed by other hosts)")
    p.add_argument("--keep-params", action="store_true", help=f"do not rewrite {params_file}; use it as it is")
    p.add_argument("--repo", default=".", help="DVC repo root (default: current directory)")
    p.add_argument("--distributed", action="store_true",
                   help="run stages through the xtra-stage/gpu and xtra-stage/cpu deployments")
    p.add_argument("--parallel", type=int, default=1, metavar="N",
                   help="with --distributed: run up to N items of one stage group at once (one checkout per "
                   "worker: docs/gpu-workers.md)")


def pipeline_main(parser: argparse.ArgumentParser, make_params: Callable[[argparse.Namespace], SomeParams],
                  pipeline_flow, name: str, argv: list[str] | None = None) -> int:
    """A pipeline's command line: parse ``argv`` with ``parser`` (which has :func:`add_run_options`), build the
    flow's params with ``make_params(args)`` (bad values: the message on stderr and exit 2), run the flow
    (:func:`run_flow_cli`)."""
    args = parser.parse_args(argv)
    try:
        params = make_params(args)
    except ValueError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    if args.parallel < 1 or (args.parallel > 1 and not args.distributed):
        print(f"{name}: error: --parallel takes a count of at least 1 and applies with --distributed only",
              file=sys.stderr)
        return 2
    return run_flow_cli(pipeline_flow, params, args.repo, args.distributed, name, args.parallel)


def run_flow_cli(pipeline_flow, params: SomeParams, repo: str, distributed: bool,
                 name: str, parallel: int = 1) -> int:
    """Run a pipeline flow from a command line: its JSON summary on stdout and exit 0, or the failed
    state on stderr and exit 1."""
    state = pipeline_flow(params=params, repo=repo, distributed=distributed, parallel=parallel,
                          return_state=True)
    if not state.is_completed():
        print(f"{name}: {state.name}: {state.message}", file=sys.stderr)
        return 1
    print(json.dumps(state.result(), indent=2))
    return 0
