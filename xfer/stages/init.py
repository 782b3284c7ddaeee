"""Stage ``init@<run>``: the model finetune run ``<run>`` starts from, copied to ``runs/init/<run>``.

``finetune.runs.<run>.init`` names any model a pretraining stage produces (``student``, ``bc``,
``offline_rl``, ``teacher:<game>``) or ``none``. DVC cannot make a stage's dependency depend on a
param, so this small stage depends on all of ``models/`` and the one param, and copies the chosen
model (weights and sidecar, bytes unchanged) into its output; ``finetune@<target>-<run>-<seed>``
depends on that copy. A new bc model therefore reruns ``init@<run>`` (a copy, seconds) but only the
finetune runs that start from bc, because only their copy changes. ``none`` writes ``init.json``
alone. Output: ``runs/init/<run>/`` with ``init.json`` (run, init, source, weights_sha256) and, unless
``none``, ``model.safetensors`` + ``model.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from xfer.checkpoint import read_model_meta
from xfer.stages.common import StageInputError, init_dir, init_source, stage_cli
from xfer.stages.outputs import probe_writable, replace_together
from xfer.xtra_config import PipelineConfig


def run(p: PipelineConfig, name: str, out: Path) -> dict:
    """Copy the model finetune run ``name`` starts from into ``out``; returns ``init.json``'s content.

    Raises:
        StageInputError: ``name`` is not in ``finetune.runs``.
        FileNotFoundError: the chosen model does not exist (the message names the stage that makes it).
        xfer.checkpoint.CheckpointError: its sidecar is unreadable.
    """
    if name not in p.finetune.runs:
        raise StageInputError(f"unknown finetune run {name!r}; params.yaml defines {sorted(p.finetune.runs)}")
    init = p.finetune.runs[name].init
    source = init_source(init)
    record: dict = {"run": name, "init": init, "source": None, "weights_sha256": None}
    if source is not None:
        if not source.exists():
            stage = {"student": "distill"}.get(init, init.replace(":", "@"))
            raise FileNotFoundError(f"{source} not found: finetune run {name!r} starts from {init!r}; "
                                    f"run `dvc repro {stage}` first")
        meta = read_model_meta(source)  # a readable sidecar, before anything is replaced
        record.update(source=str(source), weights_sha256=meta.weights_sha256)
    probe_writable([out])
    with replace_together([out]) as staged:  # the whole folder or nothing
        folder = staged[out]
        if source is not None:
            shutil.copyfile(source, folder / "model.safetensors")
            shutil.copyfile(source.with_suffix(".json"), folder / "model.json")
        (folder / "init.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def _run(p: PipelineConfig, args: argparse.Namespace) -> dict:
    return run(p, args.run, init_dir(args.run))


def main(argv: list[str] | None = None) -> int:
    return stage_cli("init", __doc__.splitlines()[0], _run, items=("run",), argv=argv)


if __name__ == "__main__":
    sys.exit(main())
