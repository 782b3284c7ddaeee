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
