"""Crash-safe file primitives shared by checkpoints, training state and datasets (no torch).

* :func:`atomic_write_bytes` / :func:`atomic_write_text`: readers see the old file or all of the new.
* :func:`swap_in_directory`: replace a whole directory with two renames; a crash between them leaves
  the ``<name>.old`` recovery copy, which readers take as the latest complete one.
* ``<name>.tmp-<pid>`` siblings are a writer's work in progress; :func:`remove_stale_tmp_dirs` deletes
  those of writers that are no longer running (:func:`pid_alive`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry (renames, creations) to disk; a no-op where unsupported."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or all of the new one.

    Writes a temporary file in the same directory (created with mode ``0o666`` minus the umask),
    fsyncs it, ``os.replace``-s it over ``path`` and fsyncs the directory. Missing parent
    directories are created. On any error the temporary file is removed and the error re-raised
    (``OSError`` from the file system).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Lower-case hex SHA-256 of a file's bytes, read in 1 MiB chunks. Raises ``OSError``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sibling(directory: Path, suffix: str) -> Path:
    return directory.parent / (directory.name + suffix)



def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale_tmp_dirs(directory: Path) -> None:
    """Delete ``<name>.tmp-<pid>`` siblings left by writers that are no longer running."""
    prefix = directory.name + ".tmp-"
    for entry in directory.parent.iterdir():
        if not entry.name.startswith(prefix) or not entry.is_dir():
            continue
        pid_text = entry.name[len(prefix) :]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not pid_alive(int(pid_text)):
            shutil.rmtree(entry, ignore_errors=True)



def fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def swap_in_directory(tmp: Path, directory: Path) -> None:
    """Replace ``directory`` by the complete directory ``tmp`` with two renames.

    ``directory`` -> ``<name>.old``, ``tmp`` -> ``directory``, then ``.old`` is deleted. A crash between
    the renames leaves only ``<name>.old``, which readers treat as the latest complete copy; it stays
    the recovery copy until the new directory is in place. Stale ``.tmp-<pid>`` siblings of dead
    writers are removed afterwards.
    """
    old = sibling(directory, ".old")
    if directory.exists():
        if old.exists():  # stale: a crash after the last swap's second rename
            shutil.rmtree(old)
        os.replace(directory, old)
    os.replace(tmp, directory)
    fsync_dir(directory.parent)
    if old.exists():
        shutil.rmtree(old)
    remove_stale_tmp_dirs(directory)

