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
    with pytest.raises(
        KeyError,
        match="unknown task .nope.; registered tasks: anomaly_ucf_crime, anomaly_ucf_crime_features, base2novel_hmdb51, ",
    ):
        get_task("nope")


def test_multi_split_protocols_name_their_splits_lists_and_label_sets():
    zs = get_task("zero_shot_ucf101")
    assert [(p.name, p.source) for p in zs.phases] == [("train", "synthetic")]
    assert [(s.name, [t.test_list for t in s.tests]) for s in zs.plan()] == [("", ["val1.txt", "val2.txt", "val3.txt"])]
    k600 = get_task("zero_shot_k600")
    assert k600.phases == ()  # every split trains separately on its own 160 classes
    assert [(s.name, s.phases[0].labels, s.tests[0].test_list, s.tests[0].labels) for s in k600.plan()] == [
        (f"split{i}", f"zs{i}", f"k600/ZS_split{i}_K600_eval.txt", f"zs{i}") for i in (1, 2, 3)
    ]
    b2n = get_task("base2novel_hmdb51")
    assert [(p.name, p.source, p.labels) for p in b2n.phases] == [("pretrain", "synthetic", "base")]
    for seed, split in zip((1, 2, 3), b2n.plan()):
        assert (split.name, split.phases[0].train_list, split.phases[0].labels) == (
            f"s{seed}",
            f"base2novel/fs_base_s{seed}_train.txt",
            "base",
        )
        assert [(t.test_list, t.labels, t.group) for t in split.tests] == [
            ("base2novel/base_val.txt", "base", "base"),
            ("base2novel/novel_val.txt", "novel", "novel"),
        ]
    few = get_task("few_shot_ucf101_k2")
    assert (few.dataset, few.shots, few.plan()[0].tests[0].test_list) == ("ucf101", 2, "val1.txt")
    assert get_task("long_tail_ucf101").phases[-1].train_list == "ucf101_lt/real/train.csv"


def test_tables_6_and_7_are_on_the_zero_shot_protocol():
    for dataset in ("hmdb51", "ucf101"):
        for loss in ("ce", "ls", "uw", "uf"):
            assert get_task(f"zero_shot_{dataset}_{loss}").protocol == "zero_shot"
    for prompts in ("basic", "env", "cha"):
        assert get_task(f"zero_shot_hmdb51_prompts_{prompts}").dataset == "hmdb51"
    assert get_task("supervised_k400").phases[0].train_list == "k400/train.txt"
