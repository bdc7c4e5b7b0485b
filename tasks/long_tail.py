"""Long-tail protocol (paper Table 4): pre-train on synthetic clips of all classes, fine-tune on a
long-tailed training list, test per-class accuracy; report the class-mean accuracy of the Head, Tail
and Few groups and of all classes.

- `long_tail_ucf101`: UCF-101-LT (`ucf101_lt/real/train.csv`, `ucf101_lt/real/test.csv`: the published
  folder under `--data.split_dir`; configs/datasets/ucf101_lt.yaml).
- `long_tail_hmdb51`: HMDB-51-LT, which has no published list: build `train_lt.txt` with
  `python -m datamodules splits long-tail` (seeded Pareto profile) from a `path label` training list;
  tested on `val1.txt`.
- `long_tail_{ucf101,hmdb51}_mixed`: the top-up variant beside pre-train-then-fine-tune: one phase
  (`train`, source `mixed`) on the long-tailed list plus the generated clips that fill each class up to
  the largest class's count (`--data.synthetic_topup max`, `--data.mix concat`: each class then holds its
  target count every epoch), so the tail and few-shot classes get the most generated clips. Same tests
  and groups; results.json records the variant by its task name and description.
Groups come from the builder's `<list stem>_groups.json` beside the training list when present, else
from the list's clip counts: Head = the most frequent classes holding 50% of the training clips, Few =
the other classes with < 20 clips, Tail = the rest (`datamodules.splits.lt_groups`).
"""

import json
from pathlib import Path

from datamodules.annotations import read_video_list
from datamodules.splits import lt_groups
from tasks.metrics import group_means
from tasks.registry import Phase, Split, TaskSpec, register_task


def groups_of(spec: TaskSpec, split: Split, datamodule) -> dict[str, list[int]]:
    """Head / Tail / Few classes of the long-tailed training list: its builder's `<stem>_groups.json`
    when present, else computed from the list's clip counts (`datamodules.splits.lt_groups`)."""
    train_list = [p.train_list for p in (*spec.phases, *split.phases) if p.train_list][-1]
    path = Path(datamodule.split_dir) / train_list
    groups_file = path.with_name(path.stem + "_groups.json")
    if groups_file.is_file():
        groups = json.loads(groups_file.read_text())
        return {g: [int(c) for c in groups[g]] for g in ("head", "tail", "few")}
    counts: dict[int, int] = {i: 0 for i in range(len(datamodule.class_names))}
    for entry in read_video_list(path, len(datamodule.class_names)):
        counts[entry.label] += 1
    return lt_groups({c: n for c, n in counts.items() if n > 0})


def group_metrics(spec: TaskSpec, split: Split, per_class: list, datamodule) -> dict[str, float]:
    """test/head, test/tail, test/few: class-mean accuracy of each group."""
    return {f"test/{g}": v for g, v in group_means(per_class, groups_of(spec, split, datamodule)).items()}


def long_tail(dataset: str, train_list: str, test_list: str) -> TaskSpec:
    return TaskSpec(
        name=f"long_tail_{dataset}",
        protocol="long_tail",
        dataset=dataset,
        description=f"synthetic pre-training, fine-tune on {train_list}, test {test_list}; head/tail/few/all",
        phases=(
            Phase("pretrain", source="synthetic"),
            Phase("finetune", source="real", train_list=train_list),
        ),
        test_list=test_list,
        class_metrics=group_metrics,
    )


def long_tail_mixed(dataset: str, train_list: str, test_list: str) -> TaskSpec:
    return TaskSpec(
        name=f"long_tail_{dataset}_mixed",
        protocol="long_tail",
        dataset=dataset,
        description=f"one mixed phase: {train_list} + synthetic top-up of every class to the head's count, "
        f"test {test_list}; head/tail/few/all",
        phases=(Phase("train", source="mixed", train_list=train_list),),
        test_list=test_list,
        class_metrics=group_metrics,
    )


for _variant in (long_tail, long_tail_mixed):
    register_task(_variant("ucf101", "ucf101_lt/real/train.csv", "ucf101_lt/real/test.csv"))
    register_task(_variant("hmdb51", "train_lt.txt", "val1.txt"))
