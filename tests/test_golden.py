"""The golden figures (``tests/golden``): a search on fixed inputs and a short seeded ``xfer train``
must give exactly what was recorded before a behaviour-preserving change (issue 14)."""

import pytest

from tests import golden


def _recorded(name: str) -> dict:
    rec = golden.load(name)
    if rec is None:
        pytest.fail(f"tests/golden/{name}.json is missing: record it with `python -m tests.golden --record`")
    if rec["host"] != golden.host():
        pytest.skip(f"figures recorded on {rec['host']}, this host is {golden.host()}: exact floats differ "
                    "between kinds of host; re-record with `python -m tests.golden --record` before a change")
    return rec["figures"]


def test_search_on_fixed_inputs_is_unchanged():
    recorded = _recorded("search")
    assert golden.compare(recorded, golden.search_figures()) == []


def test_short_seeded_training_run_is_unchanged(tmp_path):
    recorded = _recorded("train")
    now = golden.train_figures(tmp_path / "run")
    assert golden.compare(recorded, now) == []


def test_compare_reports_changed_and_missing_figures_but_allows_new_ones():
    rec = {"a": {"x": [1, 2]}, "b": 3}
    assert golden.compare(rec, {"a": {"x": [1, 2], "y": [0]}, "b": 3, "c": 4}) == []
    assert golden.compare(rec, {"a": {"x": [1, 3]}, "b": 3}) == ["/a/x: recorded [1, 2] now [1, 3]"]
    assert golden.compare(rec, {"a": {"x": [1, 2]}}) == ["/b: missing now"]
