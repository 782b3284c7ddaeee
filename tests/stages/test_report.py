"""Report arithmetic (pure functions of xfer.stages.report) on hand-made evaluation results."""

from pathlib import Path

import pytest

from xfer.stages.common import load_params
from xfer.stages.report import aggregate, build_summary, render_markdown

ROOT = Path(__file__).resolve().parents[2]


def _evaluation() -> dict:
    def run(target: str, name: str, score: float, hns: float) -> dict:
        return {"target": target, "run": name, "mean_score": score, "std_score": 1.0, "episodes": 4,
                "scores": [score] * 4, "env_steps": 2000, "hns": hns}

    return {
        "runs": {
            "DemonAttack-xtra": run("DemonAttack", "xtra", 300.0, 0.05),
            "DemonAttack-scratch": run("DemonAttack", "scratch", 200.0, 0.02),
        },
        "random_scores": {"DemonAttack": 120.0},
        "student_zero_shot": {"Assault": 180.0},
        "protocol": {"episodes": 4, "max_steps": 600},
    }


def test_aggregate_ignores_missing_and_trims_for_iqm() -> None:
    agg = aggregate([1.0, 2.0, 3.0, 100.0, None])
    assert agg["mean"] == pytest.approx(26.5)
    assert agg["median"] == pytest.approx(2.5)
    assert agg["iqm"] == pytest.approx(2.5)  # 25% trimmed from each end of 4 values: mean of 2 and 3
    assert aggregate([None]) == {"mean": None, "median": None, "iqm": None}


def test_summary_improvement_over_baseline_and_markdown() -> None:
    p = load_params(ROOT / "presets" / "default.yaml")
    evaluation = _evaluation()
    summary = build_summary(p, evaluation)
    xtra = summary["runs"]["DemonAttack-xtra"]
    assert xtra["relative_to_baseline"] == pytest.approx(1.5)
    assert xtra["improvement_pct"] == pytest.approx(50.0)
    assert summary["runs"]["DemonAttack-scratch"]["improvement_pct"] == pytest.approx(0.0)
    md = render_markdown(p, evaluation, summary, ["reports/learning_curves_DemonAttack.png"])
    assert "| DemonAttack | xtra | 300.0 | 1.0 | 0.050 | +50% |" in md
    assert "| DemonAttack | *uniform random, same protocol* | 120.0 |" in md
    assert "| Assault | 180.0 |" in md
    assert "![learning_curves_DemonAttack](learning_curves_DemonAttack.png)" in md
