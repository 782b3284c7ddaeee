"""xfer remote / pull / push against a real S3-compatible object store (SeaweedFS, tests/s3server.py)
on loopback.

One server and one source repository (tags v1 and v2, data pushed to the bucket by
``xfer push --all-tags``) are shared by the module; every test works in its own ``git clone``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import boto3  # noqa: F401  (dev extra; a missing package fails these tests instead of skipping them)
import dvc_s3  # noqa: F401
import pytest

from xfer.cli import main
from xfer.storage.remote import StorageError, configure_s3_remote, ensure_default_local_remote
from xfer.storage.sync import push

BUCKET = "bucket"
CONTENTS = {
    "v1": {"models/m.bin": b"weights-v1" * 100, "data/ds/a.txt": b"a1", "data/ds/b.txt": b"b1",
           "data/ds/sub/c.txt": b"c1"},
    "v2": {"models/m.bin": b"weights-v2" * 120, "data/ds/a.txt": b"a2", "data/ds/b.txt": b"b2",
           "data/ds/sub/c.txt": b"c2"},
}


def _run(*cmd: str, cwd: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def _new_repo(path: Path) -> Path:
    """An empty git + DVC repository at ``path`` (made), with a commit identity."""
    path.mkdir()
    _run("git", "init", "-q", cwd=path)
    _run("git", "config", "user.email", "test@example.com", cwd=path)
    _run("git", "config", "user.name", "test", cwd=path)
    _run("dvc", "init", "-q", cwd=path)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _xfer(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _ds(tag: str) -> dict[str, bytes]:
    return {k[len("data/ds/"):]: v for k, v in CONTENTS[tag].items() if k.startswith("data/ds/")}


@pytest.fixture(scope="module")
def s3(s3_server):
    """The session's SeaweedFS S3 server (tests/conftest.py): its endpoint and a boto3 client."""
    assert s3_server.bucket == BUCKET
    return SimpleNamespace(endpoint=s3_server.endpoint, client=s3_server.client())


@pytest.fixture(scope="module")
def origin(s3, tmp_path_factory):
    """A git+DVC repo: models/m.bin and data/ds/ tagged v1 and v2; the S3 remote configured with
    ``xfer remote s3`` and committed afterwards, data of both tags pushed, then the cache deleted."""
    repo = tmp_path_factory.mktemp("origin")
    _run("git", "init", "-q", "-b", "main", cwd=repo)
    _run("git", "config", "user.email", "test@example.com", cwd=repo)
    _run("git", "config", "user.name", "test", cwd=repo)
    _run("dvc", "init", "-q", cwd=repo)
    for tag, files in CONTENTS.items():
        for rel, data in files.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_bytes(data)
        _run("dvc", "add", "-q", "models/m.bin", "data/ds", cwd=repo)
        _run("git", "add", "-A", cwd=repo)
        _run("git", "commit", "-qm", tag, cwd=repo)
        _run("git", "tag", tag, cwd=repo)

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(repo)
        assert main(["remote", "s3", "--url", f"s3://{BUCKET}/store", "--endpoint-url", s3.endpoint,
                     "--default"]) == 0
        _run("git", "commit", "-qam", "S3 remote", cwd=repo)
        assert main(["push", "--all-tags"]) == 0
    shutil.rmtree(repo / ".dvc" / "cache")
    return repo


@pytest.fixture
def clone(origin, tmp_path, monkeypatch):
    """A fresh clone of ``origin`` (empty DVC cache), made the working directory."""
    path = tmp_path / "clone"
    _run("git", "clone", "-q", str(origin), str(path), cwd=tmp_path)
    monkeypatch.chdir(path)
    return path


def test_push_put_every_tag_in_the_bucket(s3, origin):
    keys = {o["Key"] for o in s3.client.list_objects_v2(Bucket=BUCKET, Prefix="store/")["Contents"]}
    for files in CONTENTS.values():
        for data in files.values():
            h = _md5(data)
            assert f"store/files/md5/{h[:2]}/{h[2:]}" in keys
    assert sum(k.endswith(".dir") for k in keys) == 2
    config = (origin / ".dvc" / "config").read_text()
    assert s3.endpoint in config and "testing" not in config  # no credentials in the committed config


def test_pull_round_trip_in_fresh_clone(clone, capsys):
    for tag in ("v1", "v2"):
        rc, out, err = _xfer(capsys, "pull", "models/m.bin", "--rev", tag)
        assert rc == 0, err
        assert (clone / f"m.bin@{tag}").read_bytes() == CONTENTS[tag]["models/m.bin"]
        assert f"1 file, {len(CONTENTS[tag]['models/m.bin'])} bytes" in out

        rc, out, err = _xfer(capsys, "pull", "data/ds", "--rev", tag)
        assert rc == 0, err
        assert _tree(clone / f"ds@{tag}") == _ds(tag)
        assert "3 files" in out

    # an existing destination is replaced by a complete download (dir over dir, file over file)
    rc, _, err = _xfer(capsys, "pull", "data/ds", "--rev", "v1", "--out", "ds@v2")
    assert rc == 0, err
    assert _tree(clone / "ds@v2") == _ds("v1")
    rc, _, err = _xfer(capsys, "pull", "models/m.bin", "--rev", "v2", "--out", "m.bin@v1")
    assert rc == 0, err
    assert (clone / "m.bin@v1").read_bytes() == CONTENTS["v2"]["models/m.bin"]
    assert not [p for p in clone.iterdir() if "xfer-tmp" in p.name]


def test_pull_from_repo_path(origin, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc, _, err = _xfer(capsys, "pull", "data/ds", "--rev", "v1", "--repo", str(origin), "--out", "here")
    assert rc == 0, err
    assert _tree(tmp_path / "here") == _ds("v1")
    # a git URL: cloned by DVC; the remote's settings come from its default branch (v2 predates them)
    rc, _, err = _xfer(capsys, "pull", "models/m.bin", "--rev", "v2", "--repo", origin.as_uri())
    assert rc == 0, err
    assert (tmp_path / "m.bin@v2").read_bytes() == CONTENTS["v2"]["models/m.bin"]


def test_unreachable_endpoint_clear_errors_and_dest_intact(clone, capsys):
    dead = f"http://127.0.0.1:{_free_port()}"
    rc, out, err = _xfer(capsys, "remote", "s3", "--url", f"s3://{BUCKET}/store", "--endpoint-url", dead,
                         "--name", "dead")
    assert rc == 2
    assert f"cannot reach S3 endpoint {dead}" in err and "check --endpoint-url / credentials" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert 'remote "dead"' in (clone / ".dvc" / "config").read_text()  # config written anyway

    (clone / "keep.bin").write_bytes(b"keep me")
    (clone / "keepdir").mkdir()
    (clone / "keepdir" / "x.txt").write_bytes(b"x")
    for path, dest in (("models/m.bin", "keep.bin"), ("data/ds", "keepdir")):
        rc, _, err = _xfer(capsys, "pull", path, "--rev", "v1", "--remote", "dead", "--out", dest)
        assert rc == 2
        assert err.startswith("xfer pull: error: cannot reach S3 endpoint") and dead in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert (clone / "keep.bin").read_bytes() == b"keep me"
    assert _tree(clone / "keepdir") == {"x.txt": b"x"}
    assert not [p for p in clone.iterdir() if "xfer-tmp" in p.name]

    rc, _, err = _xfer(capsys, "push", "--remote", "dead")
    assert rc == 2 and f"cannot reach S3 endpoint {dead}" in err


def test_incomplete_remote_fails_midway_and_keeps_dest(s3, clone, capsys):
    # a second prefix holding v1's data except one file: the download starts, then fails
    missing = _md5(CONTENTS["v1"]["data/ds/b.txt"])
    src = s3.client.list_objects_v2(Bucket=BUCKET, Prefix="store/")["Contents"]
    for obj in src:
        if not obj["Key"].endswith(missing[2:]):
            s3.client.copy_object(Bucket=BUCKET, Key="partial/" + obj["Key"][len("store/"):],
                                  CopySource={"Bucket": BUCKET, "Key": obj["Key"]})
    rc, _, err = _xfer(capsys, "remote", "s3", "--url", f"s3://{BUCKET}/partial", "--endpoint-url", s3.endpoint,
                       "--name", "partial")
    assert rc == 0, err
    (clone / "out").mkdir()
    (clone / "out" / "old.txt").write_bytes(b"old")
    rc, _, err = _xfer(capsys, "pull", "data/ds", "--rev", "v1", "--remote", "partial", "--out", "out")
    assert rc == 2
    assert "neither in the local cache nor in remote 'partial'" in err
    assert len(err.strip().splitlines()) == 1
    assert _tree(clone / "out") == {"old.txt": b"old"}
    assert not [p for p in clone.iterdir() if "xfer-tmp" in p.name]


def test_unknown_rev_and_untracked_path(clone, capsys):
    rc, _, err = _xfer(capsys, "pull", "models/m.bin", "--rev", "v9")
    assert rc == 2 and "no such git revision 'v9' in" in err and str(clone) in err
    rc, _, err = _xfer(capsys, "pull", "models/nope.bin", "--rev", "v1")
    assert rc == 2 and "'models/nope.bin' is not tracked" in err and "'v1'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    rc, _, err = _xfer(capsys, "pull", "models/m.bin", "--rev", "v1", "--remote", "nosuch")
    assert rc == 2 and "remote 'nosuch' doesn't exist" in err
    assert not (clone / "m.bin@v9").exists() and not (clone / "nope.bin@v1").exists()


SILENT_SERVER = """
import socket, sys
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(64)
print(server.getsockname()[1], flush=True)
held = []
while True:
    held.append(server.accept()[0])
"""


@pytest.fixture
def silent_endpoint():
    """An endpoint on loopback that accepts connections and never answers (a hung S3 server), in
    its own process."""
    proc = subprocess.Popen([sys.executable, "-c", SILENT_SERVER], stdout=subprocess.PIPE, text=True)
    try:
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}"
    finally:
        proc.kill()
        proc.wait()


def test_plain_dvc_push_and_pull_fail_on_a_silent_endpoint_instead_of_hanging(s3, silent_endpoint, tmp_path,
                                                                              monkeypatch, capsys):
    # issue 13 item 3: without timeouts in the DVC remote config, plain `dvc push` waited silently.
    # One object each way: DVC makes one request per object it cannot find, and each request
    # costs about 25 attempts of the timeouts (DVC's and s3fs' retries; docs/storage.md)
    repo = _new_repo(tmp_path / "repo")
    monkeypatch.chdir(repo)
    rc, _, err = _xfer(capsys, "remote", "s3", "--url", f"s3://{BUCKET}/store", "--endpoint-url", silent_endpoint,
                       "--default", "--no-check", "--connect-timeout", "1", "--read-timeout", "1")
    assert rc == 0, err
    config = (repo / ".dvc" / "config").read_text()
    assert "connect_timeout = 1" in config and "read_timeout = 1" in config
    (repo / "data.bin").write_bytes(b"to push")
    _run("dvc", "add", "-q", "data.bin", cwd=repo)
    _run("git", "add", "-A", cwd=repo)
    _run("git", "commit", "-qm", "data", cwd=repo)
    other = tmp_path / "other"  # a checkout without the data (and its own DVC lock)
    _run("git", "clone", "-q", str(repo), str(other), cwd=tmp_path)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    started = time.monotonic()
    procs = [subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for cmd, cwd in ((["dvc", "push"], repo), (["dvc", "pull"], other))]
    outputs = [proc.communicate(timeout=400)[0] for proc in procs]
    elapsed = time.monotonic() - started
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode != 0, out
        assert "timeout" in out.lower() and silent_endpoint in out, out
    assert elapsed < 240  # about 65 s each, side by side
    assert not (other / "data.bin").exists()


def test_timeouts_must_be_positive(tmp_path):
    from dvc.repo import Repo

    Repo.init(str(tmp_path), no_scm=True).close()
    with pytest.raises(StorageError, match="timeouts"):
        configure_s3_remote(tmp_path, "s3://b/p", read_timeout=0)


def test_missing_credentials(clone, monkeypatch, capsys):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    rc, _, err = _xfer(capsys, "pull", "models/m.bin", "--rev", "v1")
    assert rc == 2 and "no usable AWS credentials for remote 's3'" in err
    assert len(err.strip().splitlines()) == 1


def test_keys_go_to_config_local_only(tmp_path, monkeypatch, capsys):
    from dvc.repo import Repo

    Repo.init(str(tmp_path), no_scm=True).close()
    monkeypatch.chdir(tmp_path)
    rc, out, err = _xfer(capsys, "remote", "s3", "--url", "s3://b/p", "--endpoint-url", "http://minio:9000",
                         "--region", "eu-west-1", "--access-key-id", "AKIDSECRET", "--secret-access-key",
                         "SKSECRET", "--default", "--no-check")
    assert rc == 0, err
    committed = (tmp_path / ".dvc" / "config").read_text()
    local = (tmp_path / ".dvc" / "config.local").read_text()
    assert "endpointurl = http://minio:9000" in committed and "remote = s3" in committed
    assert "SECRET" not in committed and "AKIDSECRET" in local and "SKSECRET" in local
    with pytest.raises(StorageError, match="s3://BUCKET"):
        configure_s3_remote(tmp_path, "https://b/p")
    with pytest.raises(StorageError, match="both"):
        configure_s3_remote(tmp_path, "s3://b/p", access_key_id="x")


def test_default_local_remote(tmp_path, monkeypatch):
    from dvc.repo import Repo

    monkeypatch.chdir(tmp_path)  # relative paths in the config must not depend on the cwd
    root = tmp_path / "r"
    root.mkdir()
    with Repo.init(str(root), no_scm=True) as repo:
        (root / "f.txt").write_text("hello")
        repo.add(str(root / "f.txt"))
    assert ensure_default_local_remote(root) == "local"
    assert ensure_default_local_remote(root) == "local"  # idempotent
    assert "url = ../.dvc-storage" in (root / ".dvc" / "config").read_text()
    for ignore in (".gitignore", ".dvcignore"):
        assert (root / ignore).read_text().splitlines().count("/.dvc-storage/") == 1
    res = push(root, run_cache=True)
    assert res.remote == "local" and res.pushed == 1
    h = _md5(b"hello")
    assert (root / ".dvc-storage" / "files" / "md5" / h[:2] / h[2:]).read_text() == "hello"


STAGE_PY = """
import json, pathlib
pathlib.Path("ran").write_text("yes")  # outside DVC's view: did the command run in this checkout?
pathlib.Path("out.bin").write_bytes(b"weights" * 50)
pathlib.Path("metrics").mkdir(exist_ok=True)
pathlib.Path("metrics/m.json").write_text(json.dumps({"score": 1.5}))
pathlib.Path("metrics/curve.tsv").write_text("step\\tloss\\n1\\t0.5\\n")
"""
STAGE_YAML = """stages:
  s:
    cmd: python stage.py
    deps: [stage.py]
    outs: [out.bin]
    metrics:
      - metrics/m.json:
          cache: false
    plots:
      - metrics/curve.tsv:
          cache: false
"""


def test_run_cache_exchange_between_two_clones_restores_cache_false_metrics(s3, tmp_path, monkeypatch, capsys):
    # issue 13: `dvc push --run-cache` leaves out the objects of `cache: false` outputs, so another host
    # recomputed the stage; `xfer push --run-cache` sends them and the other host restores it
    repo = _new_repo(tmp_path / "host-a")
    (repo / "stage.py").write_text(STAGE_PY)
    (repo / "dvc.yaml").write_text(STAGE_YAML)
    (repo / ".gitignore").write_text("ran\n/out.bin\n")
    monkeypatch.chdir(repo)
    rc, _, err = _xfer(capsys, "remote", "s3", "--url", f"s3://{BUCKET}/runcache", "--endpoint-url", s3.endpoint,
                       "--default")
    assert rc == 0, err
    _run("git", "add", "-A", cwd=repo)
    _run("git", "commit", "-qm", "stage", cwd=repo)
    _run("dvc", "repro", cwd=repo)
    metric = _md5((repo / "metrics" / "m.json").read_bytes())
    keys = lambda: {o["Key"] for o in s3.client.list_objects_v2(Bucket=BUCKET, Prefix="runcache/")  # noqa: E731
                    .get("Contents", [])}

    def host(name: str) -> tuple[Path, str]:
        path = tmp_path / name
        _run("git", "clone", "-q", str(repo), str(path), cwd=tmp_path)
        return path, _run("dvc", "repro", "--pull", cwd=path)

    _run("dvc", "push", "--run-cache", cwd=repo)
    assert any(k.startswith("runcache/runs/") for k in keys())
    assert f"runcache/files/md5/{metric[:2]}/{metric[2:]}" not in keys()  # DVC 3.67's gap
    b, out = host("host-b")
    assert "Running stage 's'" in out and (b / "ran").exists()  # recomputed, not restored

    rc, out, err = _xfer(capsys, "push", "--run-cache")
    assert rc == 0, err
    assert f"runcache/files/md5/{metric[:2]}/{metric[2:]}" in keys()
    c, out = host("host-c")
    assert "Stage 's' is cached - skipping run" in out and not (c / "ran").exists()
    for rel in ("out.bin", "metrics/m.json", "metrics/curve.tsv"):
        assert (c / rel).read_bytes() == (repo / rel).read_bytes()
