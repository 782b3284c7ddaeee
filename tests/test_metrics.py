"""TsvLog: append, resume truncation, plain newlines (dvc plots and shell tools read these files)."""

from xfer.metrics import TsvLog, read_tsv


def test_tsv_log_appends_and_truncates_on_resume(tmp_path):
    path = tmp_path / "m" / "eval.tsv"
    log = TsvLog(path, ["env_steps", "score"], "env_steps", -1)
    for step in (0, 100, 200):
        log.append({"env_steps": step, "score": step / 10})
    assert path.read_bytes().count(b"\r") == 0
    assert [r["env_steps"] for r in read_tsv(path)] == ["0", "100", "200"]
    # a run resumed from its checkpoint at step 100 drops the rows logged after it
    resumed = TsvLog(path, ["env_steps", "score"], "env_steps", 100)
    resumed.append({"env_steps": 150, "score": 1.5})
    assert [(r["env_steps"], r["score"]) for r in resumed.read()] == [("0", "0.0"), ("100", "10.0"), ("150", "1.5")]
    # a fresh run (truncate_after=-1) starts empty
    assert TsvLog(path, ["env_steps", "score"], "env_steps", -1).read() == []


def test_a_metric_that_is_not_a_column_is_an_error_not_a_silent_drop(tmp_path):
    import pytest

    log = TsvLog(tmp_path / "train.tsv", ["train_steps", "loss"], "train_steps", -1)
    log.append({"train_steps": 1})  # a missing column stays empty
    with pytest.raises(ValueError, match=r"metrics \['loss_new'\] are not columns"):
        log.append({"train_steps": 2, "loss": 0.5, "loss_new": 1.0})
    assert [r["loss"] for r in log.read()] == [""]
