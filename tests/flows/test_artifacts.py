"""flows/artifacts.py: what the Prefect UI shows of the report and the summary."""

import base64

from flows import artifacts


def test_report_artifact_embeds_plots_and_tables_are_rounded(tmp_path):
    # issue 13: the UI showed broken images (links to files on the worker) and unrounded floats
    png = b"\x89PNG\r\n\x1a\n fake image bytes"
    (tmp_path / "curve.png").write_bytes(png)
    md = artifacts.embed_images("# R\n![curve](curve.png)\n![gone](missing.png)\n![web](https://x/y.png)\n", tmp_path)
    assert f"![curve](data:image/png;base64,{base64.b64encode(png).decode()})" in md
    assert "![gone](missing.png)" in md and "![web](https://x/y.png)" in md
    rows = artifacts.summary_rows({"xtra": {"score": 919.4375123, "hns": 0.0348712345, "n": 3}})
    assert rows == [{"name": "xtra", "score": 919.4, "hns": 0.03487, "n": 3}]


def test_summary_tables_of_the_report_stage_shape():
    data = {"runs": {"t-xtra": {"score": 1.5}, "t-scratch": {"score": 0.5}}, "aggregate": {"xtra": {"hns": 0.25}}}
    tables = artifacts.summary_tables(data)
    assert [r["name"] for r in tables["xtra-summary"]] == ["t-xtra", "t-scratch"]
    assert tables["xtra-aggregate"] == [{"name": "xtra", "hns": 0.25}]
    assert artifacts.summary_tables({}) == {}
