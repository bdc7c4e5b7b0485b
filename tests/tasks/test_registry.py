from pathlib import Path

import pytest
import yaml

from tasks import Phase, TaskSpec, get_task, list_tasks, register_task

TASK_DIR = Path(__file__).resolve().parents[2] / "tasks"


def test_every_task_yaml_names_a_registered_task_and_back():
    stems = sorted(p.stem for p in TASK_DIR.glob("*.yaml"))
    assert stems == list_tasks()
    for stem in stems:
        config = yaml.safe_load((TASK_DIR / f"{stem}.yaml").read_text())
        assert config["task"]["name"] == stem


def test_few_shot_specs_follow_the_protocol():
    spec = get_task("few_shot_k8")
    assert [(p.name, p.source, p.train_list) for p in spec.phases] == [
        ("pretrain", "synthetic", None),
        ("finetune", "real", "train1_few_shot_8.txt"),
    ]
    assert spec.test_list == "val1.txt"


def test_duplicate_and_unknown_names_are_errors():
    with pytest.raises(ValueError, match="'few_shot_k4' is already registered"):
        register_task(TaskSpec("few_shot_k4", "few_shot", "hmdb51", "", (Phase("x", "real"),), "val1.txt"))
    with pytest.raises(KeyError, match="unknown task 'nope'; registered tasks: few_shot_k16"):
        get_task("nope")
