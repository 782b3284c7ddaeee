"""One writer per stage instance, and no stage outliving the ``dvc repro`` that started it.

Killing only the ``dvc repro`` parent used to leave its stage process running; the next ``dvc
repro`` then started a second process on the same folders, both appended to the same metric logs,
and the orphan overwrote outputs after DVC had recorded them. Two guards, both taken by
:func:`xfer.stages.common.stage_cli` before a stage touches anything:

- :func:`exclusive_lock`: an exclusive ``flock`` on ``.xfer-work/locks/<stage>[-<item>].lock``
  holding the owner's PID. The kernel drops it when the process dies (even by SIGKILL), so a stale
  lock never blocks; a second process fails at once with :class:`StageBusyError` naming the holder.
- :func:`stop_when_parent_dies`: a daemon thread that watches the ancestors up to the ``dvc``
  process that started the stage (:func:`watched_ancestors`) and interrupts the main thread when one
  is gone (by sending the stage SIGTERM, which stops it as Ctrl-C does), so the stage stops (its last checkpoint stays; ``dvc repro`` resumes
  from it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path


class StageBusyError(RuntimeError):
    """Another live process holds this stage instance's lock (its PID is in the message)."""


@contextlib.contextmanager
def exclusive_lock(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created with its parents) for the ``with`` block.

    Raises:
        StageBusyError: another process holds it; the message names ``what`` and the holder's PID.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise StageBusyError(f"{what} is already running in this checkout (PID {holder}, lock {path}); "
                                 f"wait for it to finish or stop it (`kill {holder}`), then rerun") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _parent_of(pid: int) -> int | None:
    """The parent PID of ``pid`` from ``/proc`` (None where unreadable, e.g. not Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _is_dvc(pid: int) -> bool:
    """True when ``pid`` runs DVC (``dvc ...`` or ``python -m dvc ...``), from ``/proc``."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    names = [os.path.basename(a.decode(errors="replace")) for a in args[:3]]
    return "dvc" in names


def watched_ancestors(pid: int | None = None) -> list[int]:
    """The processes a stage must not outlive: its parent and, when a ``dvc`` process is among its
    ancestors, every ancestor up to and including the nearest one (DVC runs a stage's command
    through a shell; a ``dvc repro`` started with ``nohup`` outlives the user's shell, and so may
    its stage). Without a ``dvc`` ancestor (a stage run by hand): the parent only."""
    parent = _parent_of(pid or os.getpid()) if pid else os.getppid()
    chain, p = [], parent
    while p is not None and p > 1 and len(chain) < 16:
        chain.append(p)
        if _is_dvc(p):
            return chain
        p = _parent_of(p)
    return [parent] if parent and parent > 1 else []


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def stop_when_parent_dies(interval_s: float = 1.0) -> Iterator[None]:
    """For the ``with`` block: SIGTERM stops this process as Ctrl-C does (``KeyboardInterrupt`` in
    the main thread, so ``kill PID`` ends a stage cleanly too), and a daemon thread sends this
    process SIGTERM once one of :func:`watched_ancestors` is gone. A real signal, not
    ``_thread.interrupt_main``: it also cuts a sleep or a blocking wait short. The previous SIGTERM
    handler comes back and the thread ends with the block. Enter it from the main thread.
    """
    previous = signal.signal(signal.SIGTERM, _interrupt)
    done = threading.Event()
    watched = watched_ancestors()
    parent = os.getppid()

    def watch() -> None:
        while not done.wait(interval_s):
            if os.getppid() != parent or not all(_alive(p) for p in watched):
                os.kill(os.getpid(), signal.SIGTERM)
                return

    if watched:
        threading.Thread(target=watch, name="stop-when-parent-dies", daemon=True).start()
    try:
        yield
    finally:
        done.set()
        signal.signal(signal.SIGTERM, previous)
