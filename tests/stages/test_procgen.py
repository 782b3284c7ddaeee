"""The Procgen pipeline's params, its stages (``procgen_train`` on the real package, ``procgen_report``
on hand-made runs) and its dvc.yaml."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.pipeline_repo import ROOT
from xfer.params import build_params
from xfer.procgen_config import ProcgenPipelineConfig, procgen_run_name
from xfer.stages import procgen_report, procgen_train
from xfer.stages.common import ParamsError, StageInputError, load_procgen_params

PRESETS = ROOT / "presets" / "procgen"


def test_every_procgen_preset_validates_and_the_params_file_is_the_default_preset():
    for name in ("default", "paper", "planning"):
        data = build_params(name, [], PRESETS, pipeline="procgen")
        cfg = ProcgenPipelineConfig.model_validate(data)
        for v in cfg.variants:  # every variant's run config builds
            cfg.run_config(cfg.games[0], v, cfg.levels[0], cfg.seeds[0])
    paper = ProcgenPipelineConfig.model_validate(build_params("paper", [], PRESETS, pipeline="procgen"))
    assert len(paper.games) == 16 and paper.levels == [500] and paper.train.env_steps == 30_000_000
    assert paper.train.env.stack == 15 and paper.train.replay.reanalyse_fraction == 0.945
    assert paper.train.batch_size == 1024 and paper.train.optim.lr == 1e-4
    assert paper.reference == {"mz": 0.50, "mz_contr": 0.63, "mz_recon": 0.57, "mz_spr": 0.64, "ql": 0.36,
                               "ql_model": 0.45, "ql_model_recon": 0.54}
    spr = paper.run_config("coinrun", "mz_spr", 500, 0)
    assert spr.loss.spr == 10.0 and spr.env.num_levels == 500 and spr.env.game == "coinrun"
    ql = paper.run_config("coinrun", "ql", "all", 1)
    assert (ql.agent.kind, ql.loss.policy, ql.replay.unroll_steps, ql.env.num_levels, ql.seed) == ("ql", 0.0, 1, 0, 1)
    planning = ProcgenPipelineConfig.model_validate(build_params("planning", [], PRESETS, pipeline="procgen"))
    assert set(planning.variants) == {"one_step", "learn", "data", "learn_data", "learn_data_eval"}
    data = planning.run_config("coinrun", "data", 500, 0).mcts
    assert (data.search_for_targets, data.search_for_acting, data.search_at_eval, data.without_search) == \
        (False, True, False, "one_step")
    written = yaml.safe_load((ROOT / "procgen" / "params.yaml").read_text())
    assert written == build_params("default", [], PRESETS, pipeline="procgen"), \
        "procgen/params.yaml is stale: run `xfer params --pipeline procgen --preset default`"


@pytest.mark.parametrize("override, message", [
    ("games=[coinrunn]", "unknown Procgen game 'coinrunn' (did you mean 'coinrun'?); games: bigfish"),
    ("levels=[0]", "levels.0"),
    ("levels=[-5]", "levels.0"),
    ("train.env.split=validation", "train.env.procgen.split: Input should be 'train' or 'test'"),
    ("variants.ql.loss.policy=1.0", "variants.ql does not validate over train: <root>: Value error, agent.kind ql"),
    ("variants.mz.loss.sprr=1.0", "variants.mz does not validate over train: loss.sprr: Extra inputs"),
    ("variants={'MZ big': {}}", "variant name 'MZ big'"),
    ("reference={mz: 0.5, nope: 0.1}", "reference names variants that do not exist: ['nope']"),
])
def test_bad_procgen_params_are_refused_with_the_key_before_any_work(override, message):
    with pytest.raises(ValueError) as info:
        build_params("default", [override], PRESETS, pipeline="procgen")
    assert message in str(info.value)


def test_a_params_file_with_an_unknown_game_fails_to_load_naming_the_choices(tmp_path):
    data = build_params("default", [], PRESETS, pipeline="procgen")
    data["games"] = ["bigfish", "pong"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError, match="unknown Procgen game 'pong'.*games: bigfish, bossfight"):
        load_procgen_params(tmp_path / "params.yaml")
    with pytest.raises(ParamsError, match="not found; create it with `xfer params --preset default --pipeline procgen`"):
        load_procgen_params(tmp_path / "missing.yaml")


MICRO = {"env_steps": 80, "num_envs": 2, "start_transitions": 40, "batch_size": 8, "train_ratio": 0.25,
         "eval_every": 40, "eval_episodes": 2, "eval_max_steps": 20, "checkpoint_every": 40,
         "replay": {"segment_length": 20}, "mcts": {"num_simulations": 2}}


def _micro_params(**extra) -> ProcgenPipelineConfig:
    from xfer.config import deep_merge

    data = build_params("default", [], PRESETS, pipeline="procgen")
    data = deep_merge(data, {"games": ["bigfish"], "levels": [5], "random_episodes": 3, "train": MICRO, **extra})
    return ProcgenPipelineConfig.model_validate(data)


def _state_hash(work: Path) -> str:
    return json.loads((work / "state" / "meta.json").read_text())["meta"]["config_hash"]


def test_a_train_stage_trains_on_its_levels_and_evaluates_both_splits_and_the_random_agent(tmp_path, monkeypatch):
    pipeline = tmp_path / "procgen"  # the stage runs in procgen/, its code fingerprint is ../code-deps/
    pipeline.mkdir()
    monkeypatch.chdir(pipeline)
    shutil.copy(ROOT / "procgen" / "dvc.yaml", pipeline / "dvc.yaml")  # the params and code it declares
    (tmp_path / "code-deps").mkdir()
    fingerprint = tmp_path / "code-deps" / "procgen_train.json"
    fingerprint.write_text('{"files": {"xfer/train.py": "a"}}')
    p = _micro_params()
    out, work = Path("runs") / procgen_run_name("bigfish", "ql", 5, 0), tmp_path / "work"
    summary = procgen_train.run(p, "bigfish", "ql", 5, 0, out, work, progress=False)
    assert {f.name for f in out.iterdir()} == {"model.safetensors", "model.json", "metrics", "learning_curve.png",
                                              "summary.json"}
    assert json.loads((out / "summary.json").read_text()) == summary
    assert (summary["agent"], summary["levels"], summary["frames"]) == ("ql", 5, 80)
    train_rows = (out / "metrics" / "eval.tsv").read_text().splitlines()[1:]
    test_rows = (out / "metrics" / "test_eval.tsv").read_text().splitlines()[1:]
    # evaluations at 0, 40 and 80 frames on the training levels; the same weights zero-shot on unseen levels
    assert [r.split("\t")[0] for r in train_rows] == [r.split("\t")[0] for r in test_rows] == ["0", "40", "80"]
    lo, hi = 0.0, 40.0  # bigfish, hard mode
    assert summary["train"]["raw"] == float(train_rows[-1].split("\t")[2])
    assert summary["test"]["raw"] == pytest.approx(np.mean(summary["test"]["scores"]))
    assert summary["test"]["normalised"] == pytest.approx((summary["test"]["raw"] - lo) / (hi - lo))
    assert summary["generalisation_gap"] == pytest.approx(summary["train"]["normalised"] - summary["test"]["normalised"])
    assert len(summary["random"]["train"]["scores"]) == len(summary["random"]["test"]["scores"]) == 3
    with pytest.raises(StageInputError, match="levels 10 is not in params.yaml's \\[5\\]"):
        procgen_train.run(p, "bigfish", "ql", 10, 0, out, tmp_path / "work2", progress=False)
    # rerun with the same code: the finished state resumes (same key); after a code change DVC reruns
    # the stage and the old code's state must not be resumed
    first = _state_hash(work)
    procgen_train.run(p, "bigfish", "ql", 5, 0, out, work, progress=False)
    assert _state_hash(work) == first
    fingerprint.write_text('{"files": {"xfer/train.py": "b"}}')
    procgen_train.run(p, "bigfish", "ql", 5, 0, out, work, progress=False)
    assert _state_hash(work) != first and _state_hash(work).startswith(first.split("-")[0])


def test_levels_on_the_command_line_are_a_count_or_all():
    assert procgen_train.parse_levels("all") == "all" and procgen_train.parse_levels("500") == 500
    for bad in ("0", "-3", "many"):
        with pytest.raises(StageInputError, match="positive number of levels or 'all'"):
            procgen_train.parse_levels(bad)


def _fake_run(runs: Path, game: str, variant: str, levels, seed: int, train: float, test: float) -> None:
    d = runs / procgen_run_name(game, variant, levels, seed)
    (d / "metrics").mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({
        "frames": 100, "train": {"normalised": train}, "test": {"normalised": test},
        "random": {"train": {"normalised": 0.01}, "test": {"normalised": 0.02}},
        "generalisation_gap": train - test}))
    for tsv, score in (("eval.tsv", train), ("test_eval.tsv", test)):  # raw = normalised x 40 + 0 (bigfish)
        (d / "metrics" / tsv).write_text("env_steps\tmean_score\n0\t0.0\n100\t" + f"{score * 40.0}\n")


def test_the_report_pools_games_and_seeds_and_shows_the_paper_beside_ours(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = _micro_params(games=["bigfish", "starpilot"], levels=[10, 500], seeds=[0, 1],
                      variants={"mz": {}, "ql": {}}, reference={"mz": 0.50})
    runs = tmp_path / "runs"
    values = {}
    for gi, g in enumerate(p.games):
        for vi, v in enumerate(p.variants):
            for li, lv in enumerate(p.levels):
                for s in p.seeds:
                    test = 0.1 * (1 + gi) + 0.2 * vi + 0.05 * li + 0.01 * s
                    values[(g, v, lv, s)] = test
                    _fake_run(runs, g, v, lv, s, train=test + 0.3, test=test)
    # starpilot's curves are written in bigfish's raw units above: the report reads summaries for tables
    summary = procgen_report.run(p, tmp_path / "reports", runs)
    mean = summary["aggregate"]["mz/500"]["test"]["mean"]
    expected = np.mean([values[(g, "mz", 500, s)] for g in p.games for s in p.seeds])
    assert mean["value"] == pytest.approx(expected) and mean["low"] <= mean["value"] <= mean["high"]
    row = summary["games"]["bigfish/ql/10"]
    assert row["test"]["mean"] == pytest.approx(np.mean([values[("bigfish", "ql", 10, s)] for s in (0, 1)]))
    assert row["gap"]["mean"] == pytest.approx(0.3) and row["test"]["se"] == pytest.approx(0.005)
    assert summary["aggregate"]["random/10"]["test"]["mean"]["value"] == pytest.approx(0.02)
    md = (tmp_path / "reports" / "report.md").read_text()
    assert "paper test mean (Table A.2, 500 levels)" in md
    assert "| mz | 500 |" in md and md.split("| mz | 500 |")[1].splitlines()[0].rstrip().endswith("0.50 |")
    assert "| *uniform random* | 10 |" in md
    assert {f.name for f in (tmp_path / "reports").iterdir()} == {"report.md", "levels_sweep.png", "curves_10.png",
                                                                  "curves_500.png"}
    assert json.loads((tmp_path / "metrics" / "summary.json").read_text())["aggregate"]["mz/500"]["test"]["mean"] == mean


def test_the_report_names_the_missing_run_and_keeps_the_old_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = _micro_params(variants={"mz": {}})
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "report.md").write_text("old")
    with pytest.raises(StageInputError, match=r"runs/bigfish-mz-5-0/summary.json not found; run `dvc repro "
                                              r"train@bigfish-mz-5-0` first"):
        procgen_report.run(p, tmp_path / "reports", tmp_path / "runs")
    assert (tmp_path / "reports" / "report.md").read_text() == "old"
