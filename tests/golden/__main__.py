"""Record the golden figures on this host: ``python -m tests.golden --record [--pipeline]``."""

import argparse
import sys
import tempfile
from pathlib import Path

from tests import golden


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.golden", description=golden.__doc__.splitlines()[0])
    ap.add_argument("--record", action="store_true", help="compute the figures and write tests/golden/*.json")
    ap.add_argument("--pipeline", action="store_true", help="also the micro pipeline (dvc repro, ~5 min)")
    args = ap.parse_args(argv)
    if not args.record:
        ap.print_help()
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        print("wrote", golden.save("search", golden.search_figures()))
        print("wrote", golden.save("train", golden.train_figures(Path(tmp) / "train")))
        if args.pipeline:
            from tests.pipeline_repo import make_pipeline_repo, sh

            d = make_pipeline_repo(Path(tmp) / "pipeline")
            sh("dvc repro", d)
            print("wrote", golden.save("pipeline", golden.pipeline_figures(d)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
