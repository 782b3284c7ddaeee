"""Report arithmetic (pure functions of xfer.stages.report) on hand-made evaluation results."""

from pathlib import Path

import pytest

from xfer.stages.common import load_params
from xfer.stages.report import aggregate, build_summary, curve_rows, render_markdown

ROOT = Path(__file__).resolve().parents[2]


def _evaluation() -> dict:
    def run(target: str, name: str, seed: int, scores: list[float], hns: float) -> dict:
        return {"target": target, "run": name, "seed": seed, "mean_score": sum(scores) / len(scores),
                "std_score": 1.0, "episodes": len(scores), "scores": scores, "env_steps": 2000, "hns": hns}

    return {
        "runs": {
            "DemonAttack-xtra-0": run("DemonAttack", "xtra", 0, [290.0, 310.0, 300.0, 300.0], 0.05),
            "DemonAttack-xtra-1": run("DemonAttack", "xtra", 1, [250.0, 150.0, 200.0, 200.0], 0.03),
            "DemonAttack-scratch-0": run("DemonAttack", "scratch", 0, [200.0, 200.0, 190.0, 210.0], 0.02),
            "DemonAttack-scratch-1": run("DemonAttack", "scratch", 1, [100.0, 100.0, 90.0, 110.0], 0.00),
        },
        "random_scores": {"DemonAttack": 120.0},
        "random_episode_scores": {"DemonAttack": [110.0, 130.0, 120.0, 120.0]},
        "student_zero_shot": {"Assault": 180.0},
        "student_zero_shot_targets": {"DemonAttack": {"mean_score": 95.0, "std_score": 5.0, "episodes": 2,
                                                      "scores": [90.0, 100.0]}},
        "protocol": {"episodes": 4, "max_steps": 600},
    }


def test_aggregate_ignores_missing_and_trims_for_iqm() -> None:
    agg = aggregate([1.0, 2.0, 3.0, 100.0, None])
    assert agg["mean"] == pytest.approx(26.5)
    assert agg["median"] == pytest.approx(2.5)
    assert agg["iqm"] == pytest.approx(2.5)  # 25% trimmed from each end of 4 values: mean of 2 and 3
    assert aggregate([None]) == {"mean": None, "median": None, "iqm": None}


def test_summary_over_seeds_against_random_and_markdown() -> None:
    p = load_params(ROOT / "presets" / "default.yaml").model_copy(update={"seeds": [0, 1], "targets": ["DemonAttack"]})
    evaluation = _evaluation()
    summary = build_summary(p, evaluation)
    xtra = summary["runs"]["DemonAttack-xtra"]
    assert xtra["scores"] == [300.0, 200.0] and xtra["score"] == pytest.approx(250.0)
    assert xtra["score_se"] == pytest.approx(50.0)  # sample sd of (300, 200) = 70.7, / sqrt(2)
    assert xtra["relative_to_baseline"] == pytest.approx(250.0 / 150.0)
    assert xtra["improvement_pct"] == pytest.approx(100.0 * (250.0 / 150.0 - 1.0))
    assert summary["runs"]["DemonAttack-scratch"]["improvement_pct"] == pytest.approx(0.0)
    # against the baseline over seeds: (300, 200) vs (200, 100): +100 with se sqrt(5000/2 + 5000/2)
    d = xtra["vs_baseline"]
    assert d["difference"] == pytest.approx(100.0) and d["se"] == pytest.approx(5000 ** 0.5)
    assert d["z"] == pytest.approx(100.0 / 5000 ** 0.5)
    assert summary["runs"]["DemonAttack-scratch"]["vs_baseline"] is None
    # each seed against random: xtra s0 +180 with se sqrt(var/4 + var_r/4) = sqrt(66.7/4 + 66.7/4)
    v = summary["seeds"]["DemonAttack-xtra-0"]["vs_random"]
    assert v["difference"] == pytest.approx(180.0) and v["se"] == pytest.approx((200 / 3 / 2) ** 0.5)
    assert xtra["seeds_above_random_3se"] == 2
    # scratch s1 (100 against 120) is below random
    assert summary["runs"]["DemonAttack-scratch"]["seeds_above_random_3se"] == 1
    hns = summary["aggregate"]["xtra"]["hns"]
    assert hns["mean"]["value"] == pytest.approx(0.04)
    assert hns["mean"]["low"] <= 0.04 <= hns["mean"]["high"]
    baselines = {"bc": {"acts_on": "policy head (no search)", "zero_shot_pretrain": {"Assault": {"mean_score": 50.0}},
                        "zero_shot_targets": {"DemonAttack": {"mean_score": 60.0}}}}
    md = render_markdown(p, evaluation, summary, ["reports/learning_curves_DemonAttack.png"], baselines)
    assert "| DemonAttack | xtra | 250.0 ± 50.0 | 300.0, 200.0 | 0.040 | +67% (+100.0 ± 70.7, +1.4 s.e.) | 2 of 2 |" in md
    assert "| DemonAttack | *uniform random, same protocol* | 120.0 ± 4.1 |" in md
    assert "| DemonAttack | *student, zero-shot (no finetuning)* | 95.0 ± 5.0 |" in md
    assert "| DemonAttack | scratch | 1 | 100.0 ± 4.1 (4) | 120.0 ± 4.1 (4) | -20.0 | -3.5 |" in md
    assert "CPU-scale run" in md
    assert "| student (distilled from teachers) | 180.0 | n/a | 95.0 |" in md  # Assault, Phoenix, DemonAttack
    assert "| multi-game behaviour cloning (policy head (no search)) | 50.0 | n/a | 60.0 |" in md
    assert "| *uniform random, same protocol* | n/a | n/a | 120.0 |" in md
    assert "![learning_curves_DemonAttack](learning_curves_DemonAttack.png)" in md


def test_curve_ends_with_the_evaluate_stage_score_of_the_final_model() -> None:
    rows = [{"env_steps": "0", "train_steps": "0", "mean_score": "190.0", "std_score": "1", "min_score": "189",
             "max_score": "191", "episodes": "4"}]
    final = {"env_steps": 1000, "mean_score": 650.0, "std_score": 50.0, "scores": [600.0, 700.0], "episodes": 2}
    got = curve_rows(rows, final)
    assert [r["env_steps"] for r in got] == ["0", "1000"] and list(got[1]) == list(rows[0])
    assert (got[1]["mean_score"], got[1]["min_score"], got[1]["max_score"], got[1]["episodes"]) == (
        "650.0", "600.0", "700.0", "2")
    # a run that evaluated its last step itself, or no evaluate-stage entry: the in-run curve as it is
    assert curve_rows(got, final) == got and curve_rows(rows, None) == rows
