"""The XTRA pipeline's form and the `xfer params` command the flows build from any pipeline's params."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.pipeline_repo import ROOT


def test_params_command_builds_xfer_params_argv():
    from flows.params import params_command
    from flows.xtra_params import PipelineParams

    argv = params_command(PipelineParams(preset="shooter", pretrain_games=["Pong", "Breakout"], target="yes",
                                         seed=4, seeds=[1, 2], teacher_train_steps=500))
    assert argv[1:] == ["-m", "xfer.cli", "params", "--preset", "shooter",
                        "--set", 'pretrain_games=["Pong", "Breakout"]', "--set", 'targets=["yes"]',
                        "--set", "seed=4", "--set", "seeds=[1, 2]", "--set", "teacher.train_steps=500"]
    assert params_command(PipelineParams())[1:] == ["-m", "xfer.cli", "params", "--preset", "default"]
    assert PipelineParams(seeds=[]).seeds is None  # an emptied form field: the preset's
    for bad in ({"seeds": [0, 0]}, {"seeds": [-1]}, {"distill_train_steps": 0}, {"preset": "huge"},
                {"pretrain_games": ["Pong", "Pong"]}):
        with pytest.raises(ValueError):
            PipelineParams(**bad)


def test_params_command_is_accepted_by_xfer_params(tmp_path):
    """The argv the flow builds passes the real `xfer params` validation (keys as in params.yaml)."""
    from flows.params import params_command
    from flows.xtra_params import PipelineParams

    params = PipelineParams(pretrain_games=["Assault", "Phoenix"], targets=["Breakout"], seed=3, seeds=[0, 5],
                            collect_env_steps=500, teacher_train_steps=50, distill_train_steps=50,
                            finetune_env_steps=500)
    out = tmp_path / "params.yaml"
    proc = subprocess.run([*params_command(params), "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = yaml.safe_load(out.read_text())
    assert written["targets"] == ["Breakout"] and written["seed"] == 3 and written["seeds"] == [0, 5]
    assert written["collect"]["env_steps"] == 500 and written["finetune"]["env_steps"] == 500


def test_params_device_reads_the_pipelines_own_params_file(tmp_path):
    """The device distributed routing sends the XTRA evaluate by: the written params file's, ``cpu`` without one."""
    from flows.params import params_command, params_device
    from flows.xtra_params import PipelineParams

    assert params_device(tmp_path, "xtra") == "cpu"  # nothing written yet
    subprocess.run([*params_command(PipelineParams(preset="diverse")), "--out", str(tmp_path / "params.yaml")],
                   cwd=ROOT, check=True, capture_output=True)
    assert params_device(tmp_path, "xtra") == "cuda"  # the paper presets set device: cuda
    (tmp_path / "explore").mkdir()
    (tmp_path / "explore" / "params.yaml").write_text("device: cpu\n")
    assert params_device(tmp_path, "explore") == "cpu"
