"""flows/gpu_workers.py: one gpu-pool worker per GPU, each with its own CUDA_VISIBLE_DEVICES.

Unit tests of the command and environment builders and the command line; then one worker started
through the launcher (GPU "3" of a pretend host) on a toy checkout runs a stage of the real
``xtra-stage/gpu`` deployment, and the stage's summary says which GPU it had."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows import gpu_workers as gw
from tests.flows.toyrepo import make_toy_repo

ROOT = Path(__file__).resolve().parents[2]
NVIDIA_SMI_L = """\
GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-4a1b2c3d-0000-0000-0000-000000000000)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-4a1b2c3d-0000-0000-0000-000000000001)
  MIG 3g.40gb     Device  0: (UUID: MIG-5e6f7a8b-0000-0000-0000-000000000000)
GPU 2: NVIDIA H100 80GB HBM3 (UUID: GPU-4a1b2c3d-0000-0000-0000-000000000002)
"""


def test_one_worker_per_gpu_each_with_its_own_device_and_name():
    specs = gw.plan_workers(gw.parse_gpus("0,1,2,3"), repo="/srv/xfer", api_url="http://srv:4200/api",
                            host="node7", base={}, python="/venv/bin/python")
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in specs] == ["0", "1", "2", "3"]
    assert [s.name for s in specs] == ["node7-gpu0", "node7-gpu1", "node7-gpu2", "node7-gpu3"]
    assert specs[2].argv == ["/venv/bin/python", "-m", "prefect", "worker", "start", "--pool", "gpu",
                             "--limit", "1", "--name", "node7-gpu2"]
    for s in specs:
        assert s.env["XFER_REPO"] == "/srv/xfer" and s.env["PREFECT_API_URL"] == "http://srv:4200/api"
        assert s.env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"  # indices as nvidia-smi prints them
    assert specs[1].shell().startswith("CUDA_VISIBLE_DEVICES=1 CUDA_DEVICE_ORDER=PCI_BUS_ID XFER_REPO=/srv/xfer ")
    other = gw.plan_workers(["1"], "/r", "http://a/api", pool="gpu-big", limit=2, host="h",
                            base={"CUDA_DEVICE_ORDER": "FASTEST_FIRST"})
    assert other[0].argv[-6:] == ["--pool", "gpu-big", "--limit", "2", "--name", "h-gpu1"]
    assert other[0].env["CUDA_DEVICE_ORDER"] == "FASTEST_FIRST"  # the host's own choice is kept


def test_one_checkout_per_worker_with_its_own_interpreter(tmp_path, capsys, monkeypatch):
    for gpu in ("0", "1"):
        (tmp_path / f"xfer-gpu{gpu}" / ".venv" / "bin").mkdir(parents=True)
        (tmp_path / f"xfer-gpu{gpu}" / ".venv" / "bin" / "python").touch()
    specs = gw.plan_workers(["0", "1"], str(tmp_path / "xfer-gpu{gpu}"), "http://a/api", host="h")
    assert [s.env["XFER_REPO"] for s in specs] == [str(tmp_path / "xfer-gpu0"), str(tmp_path / "xfer-gpu1")]
    assert [s.argv[0] for s in specs] == [str(tmp_path / f"xfer-gpu{g}" / ".venv" / "bin" / "python") for g in "01"]
    assert gw.shared_checkouts(specs) == {}
    shared = gw.plan_workers(["0", "1"], "/srv/xfer", "http://a/api", host="h")
    assert gw.shared_checkouts(shared) == {"/srv/xfer": ["h-gpu0", "h-gpu1"]}
    monkeypatch.setattr(gw, "configured_api_url", lambda environ: "http://a/api")
    assert gw.main(["--gpus", "0-1", "--dry-run"]) == 0  # this checkout for both: a note on DVC's lock
    assert "share the checkout" in capsys.readouterr().err


def test_gpu_lists_ranges_and_auto():
    assert gw.parse_gpus("0-3") == ["0", "1", "2", "3"]
    assert gw.parse_gpus(" 0, 2-3 ") == ["0", "2", "3"]
    assert gw.parse_gpus("auto", NVIDIA_SMI_L) == ["0", "1", "2"]  # GPUs, not their MIG devices
    for bad, msg in (("0,0", "twice"), ("1,x", "not a GPU index"), ("3-1", "empty range"), ("", "not a GPU")):
        with pytest.raises(gw.LaunchError, match=msg):
            gw.parse_gpus(bad)
    with pytest.raises(gw.LaunchError, match="lists no GPU"):
        gw.parse_gpus("auto", "No devices were found\n")


def test_no_server_url_is_an_error_that_says_how_to_set_it(monkeypatch, capsys):
    with pytest.raises(gw.LaunchError, match=r"prefect config set PREFECT_API_URL="):
        gw.plan_workers(["0"], "/r", api_url=None, host="h")
    monkeypatch.setattr(gw, "configured_api_url", lambda environ: None)  # no env var, no profile value
    assert gw.main(["--gpus", "0"]) == 2
    assert "PREFECT_API_URL is not set" in capsys.readouterr().err
    # --dry-run still shows the commands (and the note)
    assert gw.main(["--gpus", "0,1", "--host", "h", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "CUDA_VISIBLE_DEVICES=0 " in out and "--name h-gpu1" in out and "prefect config set" in out


def test_auto_reads_nvidia_smi_and_fails_clearly_without_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    assert gw.main(["--gpus", "auto", "--dry-run"]) == 2
    assert "nvidia-smi not found" in capsys.readouterr().err
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!{sys.executable}\nimport sys\nassert sys.argv[1:] == ['-L']\nprint({NVIDIA_SMI_L!r}, end='')\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PREFECT_API_URL", "http://srv:4200/api")
    assert gw.main(["--gpus", "auto", "--host", "h", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all("PREFECT_API_URL=http://srv:4200/api" in ln for ln in lines)
    assert [ln.split()[0] for ln in lines] == [f"CUDA_VISIBLE_DEVICES={i}" for i in range(3)]


def _flow_run_logs(flow_run_id, until: str, timeout: float = 60.0) -> str:
    """The flow run's log messages on the server, one per line, polled until one holds ``until`` (or
    ``timeout`` s): a flow run's own log lines reach the server in batches, possibly after its state
    already says Completed."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        text = "\n".join(entry.message for entry in logs)
        if until in text or time.monotonic() > deadline:
            return text
        time.sleep(1)


def test_a_launched_worker_runs_a_stage_on_its_gpu_and_the_summary_says_so(deployed, tmp_path):
    from prefect.deployments import run_deployment

    # a GPU host's checkout (a clone, with this repo's flows/, the launcher included)
    origin = make_toy_repo(tmp_path / "origin", remote=tmp_path / "dvc-remote")
    shutil.copytree(ROOT / "flows", origin / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "add", "-A"], cwd=origin, check=True)
    subprocess.run([*git, "commit", "-qm", "toy"], cwd=origin, check=True)
    checkout = tmp_path / "gpu-host"
    subprocess.run(["git", "clone", "-q", str(origin), str(checkout)], check=True)
    # results persisted on the "host" so this process can read the flow run's return value back
    env = deployed.env(PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_RESULTS_PERSIST_BY_DEFAULT="true")
    for var in ("XFER_REPO", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"):
        env.pop(var, None)  # the launcher sets them: XFER_REPO = the checkout it lives in
    log = tmp_path / "launcher.log"
    with open(log, "w") as fh:
        launcher = subprocess.Popen([sys.executable, str(checkout / "flows" / "gpu_workers.py"), "--gpus", "3",
                                     "--host", "testhost"], cwd=tmp_path, env=env, stdout=fh,
                                    stderr=subprocess.STDOUT)
    try:
        fr = run_deployment("xtra-stage/gpu", parameters={"stage": "collect@g1"}, as_subflow=False,
                            timeout=300, poll_interval=1)
        completed = fr.state is not None and fr.state.is_completed()
        text = _flow_run_logs(fr.id, until="stage collect@g1 on host") if completed else ""  # worker still up
    finally:
        launcher.send_signal(signal.SIGINT)  # forwarded to the worker, which shuts down
        try:
            code = launcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            launcher.kill()  # its worker gets SIGTERM (parent-death signal)
            code = launcher.wait()
    out = log.read_text()
    assert fr.state is not None and fr.state.is_completed(), f"{fr.state}\n{out[-4000:]}"
    summary = fr.state.result()
    assert summary["stage"] == "collect@g1" and summary["status"] == "ran" and summary["pushed"]
    assert summary["worker"] == {"host": socket.gethostname(), "cuda_visible_devices": "3"}
    assert (checkout / "attempts" / "collect@g1.count").read_text() == "1"  # ran in the launcher's checkout
    assert f"Worker 'testhost-gpu3' submitting flow run '{fr.id}'" in text
    assert "stage collect@g1 on host" in text and "CUDA_VISIBLE_DEVICES=3" in text
    assert "started testhost-gpu3" in out and "SIGINT: forwarding to 1 worker" in out
    assert code == 0, out[-4000:]
