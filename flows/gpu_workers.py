"""Start one Prefect worker of the ``gpu`` work pool per GPU of this host.

Each worker is ``prefect worker start --pool gpu --limit 1 --name <host>-gpu<i>`` with
``CUDA_VISIBLE_DEVICES=<i>``: the stage runs it picks up see exactly one device, which torch calls
``cuda:0`` (``device: cuda`` in params.yaml). ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` (unless already set)
makes ``<i>`` the index ``nvidia-smi`` prints. ``XFER_REPO`` is this checkout, or one checkout per worker
with ``--repo '/srv/xfer-gpu{gpu}'`` (the deployments' pull steps cd there), and ``PREFECT_API_URL`` the server, from the environment or the Prefect profile
(``prefect config set PREFECT_API_URL=...``).

The launcher forwards SIGINT / SIGTERM to every worker (the first one: stop taking runs and shut down;
a second one: Prefect kills them) and waits for them. If one worker exits on its own, the others are
stopped too and the launcher exits with that worker's code, so a supervisor (systemd) restarts the set.

Standard library only (prefect is imported just to read a PREFECT_API_URL set in the profile); the builders (:func:`parse_gpus`, :func:`plan_workers`, ...) are pure functions.
docs/gpu-workers.md has the whole recipe.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# This checkout: the default XFER_REPO of the workers.
REPO_ROOT = Path(__file__).resolve().parents[1]
API_URL_HELP = ("PREFECT_API_URL is not set: point it at the Prefect server first, e.g.\n"
                "  prefect config set PREFECT_API_URL=http://SERVER-HOST:4200/api\n"
                "(or export PREFECT_API_URL=...); see docs/prefect.md and docs/gpu-workers.md")


class LaunchError(RuntimeError):
    """Bad arguments or a host that cannot run the workers (no nvidia-smi, no server URL, ...)."""


@dataclass(frozen=True)
class WorkerSpec:
    """One worker to start: its name, argv and the environment variables set on top of this one's."""

    name: str
    gpu: str
    argv: list[str]
    env: dict[str, str]

    def shell(self) -> str:
        """The worker as one shell line (what ``--dry-run`` prints)."""
        return " ".join([*(f"{k}={shlex.quote(v)}" for k, v in self.env.items()), *map(shlex.quote, self.argv)])


def count_gpus(nvidia_smi_list: str) -> int:
    """Number of GPUs in the output of ``nvidia-smi -L`` (lines ``GPU 0: NVIDIA H100 ... (UUID: ...)``;
    the indented MIG lines under a GPU are not counted)."""
    return sum(1 for line in nvidia_smi_list.splitlines() if re.match(r"GPU \d+:", line))


def parse_gpus(spec: str, nvidia_smi_list: str | None = None) -> list[str]:
    """The GPU indices ``--gpus`` names: ``"0,1,2,3"``, a range ``"0-3"`` (or a mix, ``"0,2-3"``), or
    ``"auto"`` (every GPU in ``nvidia_smi_list``, the output of ``nvidia-smi -L``). Distinct, in order."""
    spec = spec.strip()
    if spec == "auto":
        if nvidia_smi_list is None:
            raise LaunchError("--gpus auto needs the output of nvidia-smi -L")
        n = count_gpus(nvidia_smi_list)
        if n == 0:
            raise LaunchError("--gpus auto: nvidia-smi -L lists no GPU:\n" + nvidia_smi_list.strip())
        return [str(i) for i in range(n)]
    gpus: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise LaunchError(f"--gpus: {part!r} is not a GPU index or range (give e.g. 0,1,2,3 or 0-3 or auto)")
        lo, hi = int(m[1]), int(m[2] if m[2] is not None else m[1])
        if hi < lo:
            raise LaunchError(f"--gpus: empty range {part!r}")
        gpus += [str(i) for i in range(lo, hi + 1)]
    if len(set(gpus)) != len(gpus):
        raise LaunchError(f"--gpus: a GPU is listed twice in {spec!r}")
    return gpus


def worker_name(host: str, gpu: str) -> str:
    """``<host>-gpu<i>``: unique in the pool as long as host names are."""
    return f"{host}-gpu{gpu}"


def worker_command(pool: str, limit: int, name: str, python: str = sys.executable) -> list[str]:
    """argv of one worker: ``prefect worker start --pool POOL --limit N --name NAME`` in this environment."""
    return [python, "-m", "prefect", "worker", "start", "--pool", pool, "--limit", str(limit), "--name", name]


def worker_env(gpu: str, repo: str, api_url: str | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The variables one worker gets on top of ``base`` (the launcher's environment): its GPU, the
    device order of ``nvidia-smi`` (unless ``base`` sets one), the checkout and the server."""
    base = {} if base is None else base
    env = {"CUDA_VISIBLE_DEVICES": gpu, "CUDA_DEVICE_ORDER": base.get("CUDA_DEVICE_ORDER", "PCI_BUS_ID"),
           "XFER_REPO": repo}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def repo_for(repo: str, gpu: str) -> str:
    """The checkout of GPU ``gpu``'s worker: ``repo`` with ``{gpu}`` replaced (``/srv/xfer-gpu{gpu}``), so
    every worker can have its own; without ``{gpu}`` all workers share ``repo``."""
    return repo.replace("{gpu}", gpu)


def shared_checkouts(specs: list[WorkerSpec]) -> dict[str, list[str]]:
    """Checkouts that more than one worker would run in: ``{XFER_REPO: [worker names]}``."""
    by_repo: dict[str, list[str]] = {}
    for spec in specs:
        by_repo.setdefault(spec.env["XFER_REPO"], []).append(spec.name)
    return {repo: names for repo, names in by_repo.items() if len(names) > 1}


def python_for(checkout: str) -> str:
    """The interpreter of a worker running in ``checkout``: the checkout's own ``.venv/bin/python`` when it
    has one (each checkout needs its own editable install: docs/prefect.md), else this one."""
    own = Path(checkout) / ".venv" / "bin" / "python"
    return str(own) if own.exists() else sys.executable


def plan_workers(gpus: list[str], repo: str, api_url: str | None, pool: str = "gpu", limit: int = 1,
                 host: str | None = None, base: dict[str, str] | None = None, python: str | None = None,
                 require_api_url: bool = True) -> list[WorkerSpec]:
    """One :class:`WorkerSpec` per GPU (``repo`` may hold ``{gpu}``: see :func:`repo_for`), run by
    ``python`` (default: :func:`python_for` the worker's checkout). Raises
    :class:`LaunchError` without ``api_url`` (unless ``require_api_url`` is off, as for ``--dry-run``),
    without GPUs, or with ``limit`` < 1."""
    if not gpus:
        raise LaunchError("no GPUs to start workers for")
    if limit < 1:
        raise LaunchError(f"--limit must be at least 1, got {limit}")
    if require_api_url and not api_url:
        raise LaunchError(API_URL_HELP)
    host = host or short_hostname()
    specs = []
    for gpu in gpus:
        name, checkout = worker_name(host, gpu), repo_for(repo, gpu)
        specs.append(WorkerSpec(name=name, gpu=gpu, argv=worker_command(pool, limit, name, python or python_for(checkout)),
                                env=worker_env(gpu, checkout, api_url, base)))
    return specs


def check_checkout(repo: Path) -> None:
    """The deployments' first pull step fails on a worker whose XFER_REPO is not a checkout: fail here first."""
    if not (repo / "flows" / "pipeline.py").is_file() or not (repo / ".dvc").is_dir():
        raise LaunchError(f"{repo} is not an xfer checkout (git + dvc: flows/pipeline.py and .dvc/ there); "
                          "give the checkout with --repo")


def short_hostname() -> str:
    return socket.gethostname().split(".")[0] or "host"


def configured_api_url(environ: dict[str, str]) -> str | None:
    """PREFECT_API_URL from the environment, else from the active Prefect profile
    (``prefect config set PREFECT_API_URL=...``), else None."""
    if environ.get("PREFECT_API_URL"):
        return environ["PREFECT_API_URL"]
    try:
        from prefect.settings import PREFECT_API_URL
    except ImportError:  # prefect is not installed here: the workers would not start either
        return None
    return PREFECT_API_URL.value() or None


def nvidia_smi_list() -> str:
    """Output of ``nvidia-smi -L``; :class:`LaunchError` if the tool is missing or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        raise LaunchError("--gpus auto: nvidia-smi not found (no NVIDIA driver on this host?). Install the "
                          "driver, or list the GPUs yourself: --gpus 0,1")
    proc = subprocess.run([exe, "-L"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise LaunchError(f"nvidia-smi -L failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


# ---------------------------------------------------------------------------------------------------
# running the workers


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the worker gets SIGTERM if the launcher dies (even by SIGKILL), so no worker is orphaned."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def supervise(specs: list[WorkerSpec], log_dir: Path | None = None, out=sys.stdout) -> int:
    """Start the workers, forward SIGINT / SIGTERM to them, wait. Returns 0 after a requested shutdown
    in which every worker exited cleanly; else the exit code of the first worker that failed or exited
    on its own (the others are then stopped with SIGTERM)."""
    procs: list[tuple[WorkerSpec, subprocess.Popen]] = []
    stopping: list[int] = []  # signals received

    def forward(signum, _frame):
        stopping.append(signum)
        print(f"gpu-workers: {signal.Signals(signum).name}: forwarding to {len(procs)} worker(s)", file=out, flush=True)
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    logs = []
    try:
        for spec in specs:
            stdout = None
            if log_dir is not None:
                log_dir.mkdir(parents=True, exist_ok=True)
                stdout = open(log_dir / f"{spec.name}.log", "a")  # noqa: SIM115 - closed below
                logs.append(stdout)
            # own session: a Ctrl-C in the terminal reaches the workers once, through forward()
            p = subprocess.Popen(spec.argv, env={**os.environ, **spec.env}, stdout=stdout,
                                 stderr=subprocess.STDOUT if stdout else None, start_new_session=True,
                                 preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
            procs.append((spec, p))
            print(f"gpu-workers: started {spec.name} (pid {p.pid}, CUDA_VISIBLE_DEVICES={spec.gpu})", file=out,
                  flush=True)
        failed: int | None = None  # exit code of the first worker that exited on its own
        while any(p.poll() is None for _, p in procs):
            for spec, p in procs:
                rc = p.poll()
                if rc is not None and not stopping and failed is None:
                    print(f"gpu-workers: {spec.name} exited with {rc} on its own; stopping the others", file=out,
                          flush=True)
                    failed = rc or 1
                    for _, q in procs:
                        if q.poll() is None:
                            q.send_signal(signal.SIGTERM)
            time.sleep(0.2)
        if failed is None and not stopping:  # every worker exited on its own between two polls
            failed = next((p.returncode for _, p in procs if p.returncode), 1)
        if failed is not None:
            return 128 - failed if failed < 0 else failed  # killed by signal N: 128 + N, as a shell says
        clean = (0, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT, 128 + signal.SIGTERM)
        bad = [(s.name, p.returncode) for s, p in procs if p.returncode not in clean]
        for name, rc in bad:
            print(f"gpu-workers: {name} exited with {rc} while shutting down", file=out, flush=True)
        return 1 if bad else 0
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        for _, p in procs:  # only on an exception above: never leave workers behind
            if p.poll() is None:
                p.kill()
                p.wait()
        for fh in logs:
            fh.close()


# ---------------------------------------------------------------------------------------------------
# command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python flows/gpu_workers.py",
        description="Start one Prefect worker of the gpu work pool per GPU of this host, each seeing only its "
        "GPU (CUDA_VISIBLE_DEVICES=<i>: torch's cuda:0) and running one stage at a time. Forwards "
        "SIGINT/SIGTERM to the workers and waits for them. Needs PREFECT_API_URL (environment or `prefect "
        "config set`) and the gpu pool on the server; see docs/gpu-workers.md.",
        epilog="examples:\n"
        "  python flows/gpu_workers.py --gpus auto               # one worker per GPU nvidia-smi -L lists\n"
        "  python flows/gpu_workers.py --gpus 0,1,2,3            # GPUs 0-3: workers <host>-gpu0 .. <host>-gpu3\n"
        "  python flows/gpu_workers.py --gpus 2-3 --dry-run      # print the commands and environment only\n"
        "  python flows/gpu_workers.py --gpus 0-7 --repo '/srv/xfer-gpu{gpu}'   # one checkout per worker\n"
        "  python flows/gpu_workers.py --gpus auto --log-dir logs/workers   # one log file per worker",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpus", required=True,
                   help="GPU indices as nvidia-smi numbers them: comma separated and/or ranges (0,1,2,3 or 0-3), "
                   "or 'auto' for every GPU nvidia-smi -L lists")
    p.add_argument("--pool", default="gpu", help="work pool (default: gpu)")
    p.add_argument("--limit", type=int, default=1, help="flow runs at a time per worker (default: 1)")
    p.add_argument("--repo", default=str(REPO_ROOT),
                   help="the checkout the workers run stages in, exported as XFER_REPO; '{gpu}' in it is replaced "
                   "by the GPU index, for one checkout per worker (e.g. /srv/xfer-gpu{gpu}) "
                   f"(default: this one, {REPO_ROOT})")
    p.add_argument("--host", default=None,
                   help="name prefix of the workers (default: this host's short name, so <host>-gpu<i>)")
    p.add_argument("--log-dir", type=Path, default=None,
                   help="write each worker's output to DIR/<name>.log instead of this terminal")
    p.add_argument("--dry-run", action="store_true", help="print the workers' commands and environment; start nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        gpus = parse_gpus(args.gpus, nvidia_smi_list() if args.gpus.strip() == "auto" else None)
        repo = str(Path(args.repo).expanduser().absolute())
        specs = plan_workers(gpus, repo, configured_api_url(dict(os.environ)), pool=args.pool,
                             limit=args.limit, host=args.host, base=dict(os.environ),
                             require_api_url=not args.dry_run)
        if not args.dry_run:
            for spec in specs:
                check_checkout(Path(spec.env["XFER_REPO"]))
    except LaunchError as exc:
        print(f"gpu-workers: error: {exc}", file=sys.stderr)
        return 2
    for spec in specs:
        if spec.argv[0] == sys.executable and Path(spec.env["XFER_REPO"]).resolve() != REPO_ROOT:
            print(f"gpu-workers: note: {spec.env['XFER_REPO']} has no .venv/: {spec.name} runs {sys.executable}, "
                  "whose editable install may be another checkout's code (docs/prefect.md)", file=sys.stderr)
    for checkout, names in shared_checkouts(specs).items():
        print(f"gpu-workers: note: {', '.join(names)} share the checkout {checkout}: DVC runs one command at a "
              "time per checkout, so stage runs that overlap there fail on its lock (and are retried). For "
              "concurrent stages give each worker its own checkout: --repo '/path/xfer-gpu{gpu}' "
              "(docs/gpu-workers.md)", file=sys.stderr)
    if args.dry_run:
        for spec in specs:
            print(spec.shell())
        if not any("PREFECT_API_URL" in s.env for s in specs):
            print("# note: " + API_URL_HELP.replace("\n", "\n# "))
        return 0
    return supervise(specs, log_dir=args.log_dir)


if __name__ == "__main__":
    sys.exit(main())
