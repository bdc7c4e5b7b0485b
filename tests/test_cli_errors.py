"""Issue 27 point 3: a bad command line is one line (what, where, what to do), no usage dump, no traceback,
and nothing is written."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from conftest import ROOT

from train import main

TASK = str(ROOT / "tasks/few_shot_k4.yaml")


def test_a_key_typo_names_the_nearest_valid_keys(tmp_path):
    with pytest.raises(ValueError, match=r"^unknown key --model.init_args.lrr: did you mean --model.init_args.lr\b"):
        main(["fit", "--config", TASK, "--model.init_args.lrr", "1", "--task.root", str(tmp_path)])
    assert not any(tmp_path.iterdir())


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task:\n  name: few_shot_k4\n model: [\n")
    with pytest.raises(ValueError, match=rf"^{bad}:3:2: YAML syntax error"):
        main(["fit", "--config", TASK, "--config", str(bad)])


def test_a_negative_number_is_a_value(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--config", TASK, "--model.init_args.lr", "-1e-3", "--task.print_phase", "test"])
    assert yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]["lr"] == -1e-3


def test_train_py_prints_one_line_without_usage():
    proc = subprocess.run(
        [sys.executable, "train.py", "fit", "--config", TASK, "--trainer.max_epochz", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: unknown key --trainer.max_epochz: did you mean --trainer.max_epochs")
