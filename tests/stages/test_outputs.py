"""Outputs replaced all together or not at all (xfer/stages/outputs.py; issue 13 item 2)."""

import os
import subprocess
import sys

import pytest

from xfer.stages import outputs
from xfer.stages.outputs import probe_writable, recover, replace_together


def _tree(root):
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def two_outputs(tmp_path):
    model, data = tmp_path / "models" / "Assault", tmp_path / "data" / "Assault"
    for d, text in ((model, "old model"), (data, "old data")):
        d.mkdir(parents=True)
        (d / "file").write_text(text)
    return tmp_path, model, data


def test_both_outputs_are_replaced_and_nothing_is_left_beside_them(two_outputs):
    root, model, data = two_outputs
    with replace_together([model, data]) as staged:
        (staged[model] / "file").write_text("new model")
        (staged[data] / "file").write_text("new data")
        assert (model / "file").read_text() == "old model"  # nothing visible before the end
    assert _tree(root) == {"models/Assault/file": "new model", "data/Assault/file": "new data"}


def test_a_failure_after_the_first_output_was_written_keeps_both_old_outputs(two_outputs):
    root, model, data = two_outputs
    before = _tree(root)
    with pytest.raises(OSError, match="No space"), replace_together([model, data]) as staged:
        (staged[model] / "file").write_text("new model")
        raise OSError(28, "No space left on device")
    assert _tree(root) == before


def test_a_rename_failing_in_the_swap_puts_back_what_was_already_swapped(two_outputs, monkeypatch):
    root, model, data = two_outputs
    before = _tree(root)
    real = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append((src, dst))
        if len(calls) == 3:  # model: 2 renames done; the data output's first rename fails
            raise OSError(30, "Read-only file system")
        return real(src, dst)

    monkeypatch.setattr(outputs.os, "replace", failing_replace)
    with pytest.raises(OSError, match="Read-only"), replace_together([model, data]) as staged:
        (staged[model] / "file").write_text("new model")
        (staged[data] / "file").write_text("new data")
    monkeypatch.undo()
    assert _tree(root) == before


def test_a_staged_output_never_written_replaces_nothing(two_outputs):
    root, model, data = two_outputs
    before = _tree(root)
    with pytest.raises(FileNotFoundError, match="not written"), replace_together([model, data], dirs=False) as staged:
        staged[model].write_text("a file output")  # data's staged file is missing
    assert _tree(root) == before


def test_leftovers_of_a_dead_process_are_recovered(two_outputs):
    root, model, data = two_outputs
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    # killed between its two renames: the model was moved aside, its staged copy not yet in place
    os.replace(model, model.parent / f"Assault.replaced-{dead}")
    (model.parent / f"Assault.staged-{dead}").mkdir()
    (data.parent / f"Assault.staged-{dead}").mkdir()
    recover(model)
    recover(data)
    assert _tree(root) == {"models/Assault/file": "old model", "data/Assault/file": "old data"}
    assert sorted(p.name for p in model.parent.iterdir()) == ["Assault"]
    assert sorted(p.name for p in data.parent.iterdir()) == ["Assault"]


def test_an_unwritable_output_folder_fails_before_any_work(tmp_path):
    blocker = tmp_path / "models"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(OSError):
        probe_writable([blocker / "student"])
    probe_writable([tmp_path / "fine" / "student"])
    assert list((tmp_path / "fine").iterdir()) == []
