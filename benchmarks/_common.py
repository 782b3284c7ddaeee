"""What the benchmark scripts share: the machine description and appending a report to a results file.

The scripts run as ``python benchmarks/bench_x.py``, so this directory is on ``sys.path`` and they
``from _common import ...``.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import sys
from importlib import metadata
from pathlib import Path


def nproc() -> int:
    """CPUs this process may run on (``nproc``), else ``os.cpu_count()``."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_line(load_before: float | None = None) -> str:
    """A Markdown bullet: nproc, CPU model, Python/numpy/torch versions and, if given, the 1-minute
    load average measured before the run."""
    line = (
        f"- machine: {nproc()} CPU cores (nproc), {cpu_model()}; Python {platform.python_version()}, "
        f"numpy {_version('numpy')}, torch {_version('torch')}"
    )
    if load_before is not None:
        line += (
            f"; load average before the run {load_before:.2f} (1 min): other processes share these "
            "cores if it is near nproc"
        )
    return line


def command_line(argv: list[str] | None = None) -> str:
    """The command that ran the script, ``python <script> <args>`` (``argv``: the arguments, default
    ``sys.argv[1:]``)."""
    args = sys.argv[1:] if argv is None else argv
    return "python " + shlex.join([sys.argv[0], *args])


def utc_heading() -> str:
    """A Markdown heading with the current UTC date and time, starting a report."""
    return f"## {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}"


def append_report(path: Path, title: str, report: str) -> None:
    """Append ``report`` (and a newline) to the Markdown file ``path``; a new file starts with the
    heading ``# title``. Prints where it went."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "" if path.exists() else f"# {title}\n\n"
    with path.open("a") as f:
        f.write(header + report + "\n")
    print(f"appended to {path}")
