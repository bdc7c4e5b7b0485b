"""Long-tail protocol (paper Table 4): pre-train on synthetic clips of all classes, fine-tune on a
long-tailed training list, test per-class accuracy; report the class-mean accuracy of the Head, Tail
and Few groups and of all classes.

- `long_tail_ucf101`: UCF-101-LT (`ucf101_lt/real/train.csv`, `ucf101_lt/real/test.csv`: the published
  folder under `--data.split_dir`; configs/datasets/ucf101_lt.yaml).
- `long_tail_hmdb51`: HMDB-51-LT, which has no published list: build `train_lt.txt` with
  `python -m datamodules splits long-tail` (seeded Pareto profile) from a `path label` training list;
  tested on `val1.txt`.
Groups come from the builder's `<list stem>_groups.json` beside the training list when present, else
from the list's clip counts: Head = the most frequent classes holding 50% of the training clips, Few =
the other classes with < 20 clips, Tail = the rest (`datamodules.splits.lt_groups`).
"""

from tasks.registry import Phase, TaskSpec, register_task


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
    )


register_task(long_tail("ucf101", "ucf101_lt/real/train.csv", "ucf101_lt/real/test.csv"))
register_task(long_tail("hmdb51", "train_lt.txt", "val1.txt"))
