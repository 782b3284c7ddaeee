"""A stage's outputs replaced all together or not at all (DESIGN.md's stage contract; issue 13).

A stage with several outputs (``teacher``: a model and the dataset it relabelled; ``report``: the
report, the curves and the task weights) builds each of them in a temporary sibling
``<name>.staged-<pid>`` and swaps them in only when every one is complete::

    with replace_together([model_dir, data_dir]) as staged:
        save_model(staged[model_dir] / "model.safetensors", ...)
        write_dataset(staged[data_dir], ...)

If anything fails before the end of the ``with`` block (an exception, Ctrl-C, a full disk, a
read-only folder), the staged copies are deleted and every existing output is left as it was. The
swap itself is renames only (no data is written, so a full disk cannot stop it): each output
becomes ``<name>.replaced-<pid>``, its staged copy takes its place, and the replaced copies are
deleted once all are in. If a rename fails, the outputs already swapped are put back. A process
killed in the middle of a swap leaves ``.replaced-<pid>`` copies; the next ``replace_together``
on the same outputs puts them back where the output is missing, then deletes what is left of dead
processes (the stage's next run rewrites every output anyway: DVC has not recorded it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch

from xfer import checkpoint as ckpt
from xfer.fileio import fsync_dir, pid_alive

STAGED = ".staged-"
REPLACED = ".replaced-"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _siblings(final: Path, marker: str) -> list[tuple[Path, int]]:
    """``(path, pid)`` of every ``<final.name><marker><pid>`` next to ``final``."""
    if not final.parent.is_dir():
        return []
    prefix = final.name + marker
    found = []
    for entry in final.parent.iterdir():
        rest = entry.name[len(prefix):] if entry.name.startswith(prefix) else ""
        if rest.isdigit():
            found.append((entry, int(rest)))
    return found


def recover(final: Path) -> None:
    """Clean up after a process that died while building or swapping ``final``: put a replaced copy
    back if ``final`` is missing, then delete the dead processes' staged and replaced copies."""
    for path, pid in _siblings(final, REPLACED):
        if pid != os.getpid() and not pid_alive(pid):
            if not final.exists():
                os.replace(path, final)
            else:
                _remove(path)
    for path, pid in _siblings(final, STAGED):
        if pid != os.getpid() and not pid_alive(pid):
            _remove(path)


def _sibling(final: Path, marker: str) -> Path:
    return final.parent / f"{final.name}{marker}{os.getpid()}"


def swap_in(staged: dict[Path, Path]) -> None:
    """Replace every ``final`` by its complete ``staged`` copy (``{final: staged}``), all or none.

    Raises:
        FileNotFoundError: a staged output was never written (nothing is replaced).
        OSError: a rename failed; the outputs swapped before it are restored first.
    """
    missing = [str(s) for s in staged.values() if not s.exists()]
    if missing:
        raise FileNotFoundError(f"outputs were not written: {', '.join(missing)}; no output was replaced")
    done: list[tuple[Path, Path, Path | None]] = []  # (final, staged, replaced copy or None)
    try:
        for final, new in staged.items():
            old = _sibling(final, REPLACED) if final.exists() or final.is_symlink() else None
            if old is not None:
                os.replace(final, old)
            done.append((final, new, old))
            os.replace(new, final)
    except BaseException:
        for final, new, old in reversed(done):
            if final.exists() and not new.exists():
                os.replace(final, new)
            if old is not None and old.exists():
                os.replace(old, final)
        raise
    for final, _, old in done:
        fsync_dir(final.parent)
        if old is not None:
            _remove(old)


@contextmanager
def replace_together(finals: Sequence[str | os.PathLike[str]], dirs: bool = True) -> Iterator[dict[Path, Path]]:
    """Stage outputs ``finals`` and swap them in together when the block succeeds.

    Yields ``{final: staged path}``. With ``dirs`` (default) each staged path is created as an
    empty directory, so an unwritable folder fails here, before any work; otherwise the block
    creates each staged file itself. On an exception in the block every staged path is deleted
    and the finals are untouched; the exception propagates.

    Raises:
        PermissionError / OSError: an output's folder cannot be written (raised on entry).
    """
    paths = [Path(f) for f in finals]
    for final in paths:
        recover(final)
    staged = {final: _sibling(final, STAGED) for final in paths}
    try:
        for final, path in staged.items():
            final.parent.mkdir(parents=True, exist_ok=True)
            _remove(path)
            if dirs:
                path.mkdir()
        yield staged
        swap_in(staged)
    except BaseException:
        for path in staged.values():  # after a failed swap too: it put the finals back
            _remove(path)
        raise


def probe_writable(finals: Sequence[str | os.PathLike[str]]) -> None:
    """Fail now, before any work, if a staged copy of an output cannot be created next to it.

    Raises:
        PermissionError / OSError: naming the folder that cannot be written.
    """
    for final in map(Path, finals):
        final.parent.mkdir(parents=True, exist_ok=True)
        probe = _sibling(final, STAGED)
        _remove(probe)
        probe.mkdir()
        probe.rmdir()


def replace_model(out_model: Path, net: torch.nn.Module, meta: ckpt.ModelMeta) -> None:
    """Write ``net`` + ``meta`` (:func:`xfer.checkpoint.save_model`) as the only content of the
    folder of ``out_model`` (a stage's model output, e.g. ``models/student/model.safetensors``),
    weights and sidecar replacing the old folder together."""
    with replace_together([out_model.parent]) as staged:
        ckpt.save_model(staged[out_model.parent] / out_model.name, net, meta)
