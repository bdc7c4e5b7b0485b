"""Every task's lists against the real split/label files (../shared/data) and the label-set mechanics of
ActionDataModule the protocols rely on (label sets per phase, synthetic rows matched by class name)."""

import json

import pytest

from datamodules.action import ActionDataModule
from datamodules.annotations import AnnotationError, read_labels, read_video_list, write_labels
from datamodules.manifest import read_manifest
from generation.demo import build_demo
from tasks import get_task, list_tasks
from tasks.runner import TaskConfig, phase_labels

# Where the shared data holds each dataset's lists, and its label files (main + label sets).
REAL = {
    "hmdb51": (
        "splits/hmdb51",
        "hmdb_51_labels.csv",
        {"base": "hmdb_51_base_labels.csv", "novel": "hmdb_51_novel_labels.csv"},
    ),
    "ucf101": (
        "splits/ucf101",
        "ucf_101_labels.csv",
        {"base": "ucf_101_base_labels.csv", "novel": "ucf_101_novel_labels.csv"},
    ),
    "k600": ("splits", "kinetics_600_labels.csv", {f"zs{i}": f"ZS_split{i}_K600.csv" for i in (1, 2, 3)}),
    "k400": ("splits", "kinetics_400_labels.csv", {}),
}
ACTION_TASKS = [t for t in list_tasks() if get_task(t).protocol not in ("anomaly", "demo")]  # demo: test_demo_driver.py


def task_lists(name: str) -> list[tuple[str, str | None]]:
    """(list, label set) of every real list a task reads."""
    spec, lists = get_task(name), []
    for split in spec.plan():
        lists += [(p.train_list, p.labels) for p in (*spec.phases, *split.phases) if p.train_list]
        lists += [(t.test_list, t.labels) for t in split.tests]
    return lists


@pytest.mark.parametrize("name", ACTION_TASKS)
def test_real_lists_have_labels_in_the_protocols_label_space(name, shared_data):
    spec = get_task(name)
    folder, main, sets = REAL[spec.dataset]
    split_dir = shared_data / ("splits" if spec.protocol == "long_tail" and spec.dataset == "ucf101" else folder)
    checked = 0
    for list_name, key in task_lists(name):
        path = split_dir / list_name
        if not path.is_file():
            continue  # e.g. HMDB-51-LT, built by the user; few-shot K lists not shipped
        labels = shared_data / "labels" / (sets[key] if key else main)
        entries = read_video_list(path, len(read_labels(labels)), labels)  # raises on a label out of range
        assert entries
        checked += 1
    if name not in ("long_tail_hmdb51", "supervised_k400", "zero_shot_k400"):  # built by the user / K400 lists
        assert checked, f"no list of {name} found under {split_dir}"


def test_base_novel_lists_use_their_halves(shared_data):
    for dataset in ("hmdb51", "ucf101"):
        folder, _, sets = REAL[dataset]
        novel = len(read_labels(shared_data / "labels" / sets["novel"]))
        labels = {e.label for e in read_video_list(shared_data / folder / "base2novel/novel_val.txt", None)}
        assert labels == set(range(novel))  # every novel class tested, ids of the novel half


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("protocols") / "smoke"
    build_demo(out, "smoke", progress=False)
    return out


def datamodule(demo, **kwargs):
    sets = {"base": "labels_base.csv", "novel": "labels_novel.csv"} | {f"zs{i}": f"labels_zs{i}.csv" for i in (1, 2, 3)}
    args = dict(
        label_file=str(demo / "labels.csv"),
        label_files=sets,
        video_root=str(demo / "real/videos"),
        split_dir=str(demo / "real/splits"),
        synthetic_manifest=str(demo / "synthetic/ie/manifest.jsonl"),
    )
    return ActionDataModule(**{**args, **kwargs})


def test_synthetic_rows_are_matched_to_the_label_set_by_name(demo):
    dm = datamodule(demo)
    rows = read_manifest(demo / "synthetic/ie/manifest.jsonl")
    dm.check(["base2novel/fs_base_s1_train.txt"], synthetic=True, labels="base")
    base = read_labels(demo / "labels_base.csv")
    assert dm.label_file == str(demo / "labels_base.csv") and dm.class_names == base
    clips = dm._train_clips()
    assert len(clips) == sum(r.class_name in base for r in rows) < len(rows)
    by_path = {str(demo / "synthetic/ie" / r.video): r.class_name for r in rows}
    assert all(base[c.label] == by_path[str(c.path)] for c in clips)  # ids of the half, same class names
    dm.set_labels(None)
    assert dm.class_names == read_labels(demo / "labels.csv") and len(dm._train_clips()) == len(rows)


def test_a_class_without_synthetic_clips_and_an_unknown_label_set_are_errors(demo, tmp_path):
    names = read_labels(demo / "labels.csv")
    write_labels(tmp_path / "extra.csv", [*names[:2], "juggling"])
    dm = datamodule(demo, labels_dir=str(tmp_path), label_files={"extra": "extra.csv"})
    message = r"1 of the 3 classes of .*extra.csv have no generated clip \(e.g. 'juggling'\)"
    with pytest.raises(AnnotationError, match=message):
        dm.check([], synthetic=True, labels="extra")
    message = r"label set 'base', but `--data.label_files` has no such key \(it has: extra\)"
    with pytest.raises(ValueError, match=message):
        dm.set_labels("base")
    with pytest.raises(FileNotFoundError, match=r"label file of set 'x' not found: .*nope.csv.*--data.labels_dir"):
        datamodule(demo, label_files={"x": "nope.csv"}).set_labels("x")


def test_synthetic_classes_all_trains_synthetic_phases_in_the_main_label_space():
    pretrain = get_task("base2novel_ucf101").phases[0]
    assert phase_labels(pretrain, TaskConfig()) == "base"
    assert phase_labels(pretrain, TaskConfig(synthetic_classes="all")) is None
    finetune = get_task("base2novel_ucf101").plan()[0].phases[0]
    assert phase_labels(finetune, TaskConfig(synthetic_classes="all")) == "base"  # real phases keep theirs


def test_demo_lists_cover_every_protocol(demo):
    splits = demo / "real/splits"
    groups = json.loads((splits / "train_lt_groups.json").read_text())
    counts = {int(c): n for c, n in groups["counts"].items()}
    assert max(counts.values()) == 16 and min(counts.values()) == 2  # Pareto 16 ... 2
    assert sorted(groups["head"] + groups["tail"] + groups["few"]) == list(range(8))
    assert all(counts[c] < 4 for c in groups["few"]) and groups["head"] and groups["tail"]
    for seed in (1, 2, 3):
        entries = read_video_list(splits / f"base2novel/fs_base_s{seed}_train.txt", 4)
        assert len(entries) == 8 * 4  # 8 shots of each of the 4 base classes
    s1, s2 = ((splits / f"base2novel/fs_base_s{s}_train.txt").read_text() for s in (1, 2))
    assert s1 != s2  # the seeds draw different shots
    for i in (1, 2, 3):
        zs = read_labels(demo / f"labels_zs{i}.csv")
        for e in read_video_list(splits / f"k600/ZS_split{i}_K600_eval.txt", len(zs)):
            assert e.path.startswith(zs[e.label])  # demo clip files start with their class name


def test_init_weights_loads_a_state_dict_or_a_lightning_checkpoint_and_names_a_missing_file(tmp_path):
    import torch
    from torch import nn

    from tasks.runner import _read_state

    source, target = nn.Linear(2, 2), nn.Linear(2, 2)
    torch.save(source.state_dict(), tmp_path / "weights.pt")
    torch.save({"state_dict": source.state_dict(), "epoch": 3}, tmp_path / "last.ckpt")
    for name in ("weights.pt", "last.ckpt"):
        nn.init.zeros_(target.weight)
        target.load_state_dict(_read_state(tmp_path / name, "--task.init_weights"))
        assert torch.equal(target.weight, source.weight)
    with pytest.raises(FileNotFoundError, match=r"--task.init_weights: .*nope.pt not found; give a weights.pt"):
        _read_state(tmp_path / "nope.pt", "--task.init_weights")
