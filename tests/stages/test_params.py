"""params.yaml validation: every bad input is a clear error before any work, naming the key."""

from pathlib import Path

import pytest
import yaml

from xfer.params import available_presets, build_params, write_params
from xfer.stages.common import ParamsError, load_params

PRESETS = Path(__file__).resolve().parents[2] / "presets"


@pytest.mark.parametrize("name", ["default", "cpu-demo", "shooter", "maze", "diverse"])
def test_presets_validate(name):
    data = build_params(name, [], PRESETS)
    assert data["preset"] == name and set(data["targets"]).isdisjoint(data["pretrain_games"])


def test_available_presets():
    assert {"default", "cpu-demo", "shooter", "maze", "diverse"} <= set(available_presets(PRESETS))
    assert "_atari100k" not in available_presets(PRESETS)  # a base, not a preset


def test_paper_presets_share_one_base_and_differ_in_games_and_runs():
    shooter, maze, diverse = (build_params(n, [], PRESETS) for n in ("shooter", "maze", "diverse"))
    drop = ("preset", "pretrain_games", "targets")
    same = {k: v for k, v in shooter.items() if k not in drop}
    assert same == {k: v for k, v in maze.items() if k not in drop}
    extra = set(diverse["finetune"]["runs"]) - set(shooter["finetune"]["runs"])
    assert extra == {"xtra_sota", "scratch_sota"}  # dicts merge key by key: the base's runs stay
    assert diverse["finetune"]["runs"]["xtra"] == shooter["finetune"]["runs"]["xtra"]
    demo, default = build_params("cpu-demo", [], PRESETS), build_params("default", [], PRESETS)
    assert demo["seeds"] == [0, 1, 2] and default["seeds"] == [0]  # lists replace
    assert demo["finetune"]["train"] == {**default["finetune"]["train"], "eval_every": 500}


def test_extends_errors_name_the_preset_and_the_chain(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b\n")
    (tmp_path / "b.yaml").write_text("extends: a\n")
    (tmp_path / "c.yaml").write_text("extends: nowhere\n")
    (tmp_path / "d.yaml").write_text("- a list\n")
    with pytest.raises(ValueError, match="a -> b -> a"):
        build_params("a", [], tmp_path)
    with pytest.raises(ValueError, match="unknown base 'nowhere' of preset 'c'"):
        build_params("c", [], tmp_path)
    with pytest.raises(ValueError, match="must be a YAML mapping"):
        build_params("d", [], tmp_path)


def write(tmp_path, data):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def base():
    return build_params("default", [], PRESETS)


def test_unknown_key_names_the_key(tmp_path):
    data = base()
    data["finetune"]["task_weights"]["cylce"] = 5
    with pytest.raises(ParamsError, match="finetune.task_weights.cylce"):
        load_params(write(tmp_path, data))


def test_stage_loop_sections_are_typed(tmp_path):
    data = base()
    data["finetune"]["train"]["batch_sise"] = 8  # a typo is an error naming the key, not a silent default
    with pytest.raises(ParamsError, match="finetune.train.batch_sise"):
        load_params(write(tmp_path, data))
    data = base()
    data["collect"]["train"]["train_ratio"] = 0
    with pytest.raises(ParamsError, match="collect.train.train_ratio"):
        load_params(write(tmp_path, data))
    data = base()
    data["finetune"]["train"]["replay"] = {"reanalyse_fraction": 1.0}  # the old, untyped form
    with pytest.raises(ParamsError, match="train.replay moved to train.reanalyse_fraction"):
        load_params(write(tmp_path, data))
    data = base()
    data["finetune"]["train"]["reanalyse_fraction"] = 1.0
    overrides = load_params(write(tmp_path, data)).finetune.train.overrides()
    assert overrides["replay"] == {"reanalyse_fraction": 1.0} and "reanalyse_fraction" not in overrides


def test_bad_value_and_unknown_game(tmp_path):
    data = base()
    data["mcts"]["num_simulations"] = 0
    with pytest.raises(ParamsError, match="mcts.num_simulations"):
        load_params(write(tmp_path, data))
    data = base()
    data["targets"] = ["DemonAtack"]
    with pytest.raises(ParamsError, match="DemonAttack"):
        load_params(write(tmp_path, data))


def test_target_among_pretraining_games_is_rejected(tmp_path):
    data = base()
    data["targets"] = [data["pretrain_games"][0]]
    with pytest.raises(ParamsError, match="also pretraining games"):
        load_params(write(tmp_path, data))


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(ParamsError, match="xfer params"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_write_params_keeps_existing_file_on_bad_override(tmp_path):
    out = tmp_path / "params.yaml"
    write_params("default", ["finetune.env_steps=3000"], out, PRESETS)
    assert load_params(out).finetune.env_steps == 3000
    before = out.read_text()
    with pytest.raises(ValueError, match="finetune.env_steps"):
        write_params("default", ["finetune.env_steps=-1"], out, PRESETS)
    assert out.read_text() == before
    with pytest.raises(ValueError, match="unknown preset"):
        write_params("nope", [], out, PRESETS)


@pytest.mark.parametrize("name", ["shooter", "maze", "diverse"])
def test_paper_presets_are_faithful_to_efficientzero(name):
    # reference.md section 2: 0.997 per frame = 0.997^4 per agent step; zero-initialised head
    # outputs (init_zero); no latent min-max scaling (state_norm=False); reanalyse with the target
    # network and root noise; XTRA's pooled loss balance.
    data = build_params(name, [], PRESETS)
    assert data["discount"] == pytest.approx(0.997**4) and round(data["discount"], 5) == 0.98805
    assert "discount" not in data["mcts"] and "lstm_horizon" not in data["mcts"]
    assert data["value_prefix_horizon"] == 5 and "value_prefix_horizon" not in data["replay"]
    assert data["net"]["zero_init_heads"] is True and data["net"]["latent_scaling"] == "none"
    assert data["replay"]["reanalyse_network"] == "target" and data["replay"]["reanalyse_noise"] is True


def test_search_config_takes_the_single_discount_and_horizon(tmp_path):
    data = base()
    data["discount"] = 0.9
    data["value_prefix_horizon"] = 3
    p = load_params(write(tmp_path, data))
    assert p.search.discount == 0.9 and p.search.value_prefix_horizon == 3
    assert p.search.num_simulations == p.mcts.num_simulations


@pytest.mark.parametrize("section, key", [("mcts", "discount"), ("mcts", "lstm_horizon"),
                                          ("replay", "value_prefix_horizon")])
def test_old_keys_name_their_new_place(tmp_path, section, key):
    data = base()
    data[section][key] = 5
    with pytest.raises(ParamsError, match=f"{section}.{key} moved to"):
        load_params(write(tmp_path, data))


def test_offline_batch_smaller_than_the_games_is_rejected(tmp_path):
    # every pretraining game must draw >= 1 offline sample per step, or its task weight window breaks
    data = base()
    data["finetune"]["offline_batch_size"] = len(data["pretrain_games"]) - 1
    with pytest.raises(ParamsError, match="offline_batch_size"):
        load_params(write(tmp_path, data))
    data["finetune"]["runs"] = {"scratch": {"init": "none", "cross_task": False, "task_weights": False}}
    assert load_params(write(tmp_path, data)).finetune.offline_batch_size == 1  # no cross-task run: fine


def test_committed_params_yaml_is_the_default_preset(tmp_path):
    # a stale committed params.yaml (a key missing) made the first `xfer params` or Prefect run
    # rerun all stages; regenerate it with `xfer params --preset default` after a preset or config change
    out = tmp_path / "params.yaml"
    write_params("default", [], out, PRESETS)
    committed = PRESETS.parent / "params.yaml"
    assert committed.read_text() == out.read_text(), "run `xfer params --preset default` and commit params.yaml"


def test_unknown_game_is_refused_by_xfer_params(tmp_path):
    # caught here, before `dvc repro` removes any stage's outputs, with the key and a close match
    out = tmp_path / "params.yaml"
    out.write_text("kept\n")
    with pytest.raises(ValueError, match=r"targets: Unknown Atari game 'UpAndDown'.*Did you mean: UpNDown"):
        write_params("default", ["targets=[UpAndDown]"], out, PRESETS)
    with pytest.raises(ValueError, match=r"pretrain_games: Unknown Atari game 'NoSuchGame'"):
        write_params("default", ["pretrain_games=[Assault,NoSuchGame]"], out, PRESETS)
    assert out.read_text() == "kept\n"  # the existing file is untouched


def _fails_with(exc):
    def run(p, args):
        raise exc
    return run


def test_stage_cli_file_system_errors_and_ctrl_c_are_one_line(tmp_path, monkeypatch, capsys):
    from xfer.stages.common import stage_cli

    monkeypatch.chdir(tmp_path)
    write_params("default", [], tmp_path / "params.yaml", PRESETS)
    rc = stage_cli("teacher", "t", _fails_with(PermissionError(13, "Permission denied", "models/teachers/Pong")),
                   items=("game",), argv=["--game", "Pong"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "Permission denied at models/teachers/Pong; make the folder writable or free disk space" in err
    rc = stage_cli("teacher", "t", _fails_with(OSError(28, "No space left on device", "data/x")),
                   items=("game",), argv=["--game", "Pong"])
    assert rc == 2 and "No space left on device at data/x" in capsys.readouterr().err
    (tmp_path / ".xfer-work" / "teacher" / "Pong").mkdir(parents=True)
    rc = stage_cli("teacher", "t", _fails_with(KeyboardInterrupt()), items=("game",), argv=["--game", "Pong"])
    err = capsys.readouterr().err
    assert rc == 130 and err.strip() == ("xfer stage teacher: interrupted; `dvc repro` resumes it from its last "
                                         "checkpoint in .xfer-work/teacher/Pong")
