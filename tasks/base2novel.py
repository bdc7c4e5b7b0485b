"""Base-to-novel protocol (paper Table 3): pre-train on synthetic clips, fine-tune on 16 shots per base
class, test the base classes and the novel ones, for seeds 1-3.

Label spaces are the dataset's base/novel halves (label sets `base` and `novel` of `--data.label_files`,
e.g. `ucf_101_base_labels.csv` / `ucf_101_novel_labels.csv`). The synthetic pre-training covers the base
classes only by default; `--task.synthetic_classes all` pre-trains on every class (recorded in
results.json). The pre-training is shared by the seeds; each seed fine-tunes from it on
`base2novel/fs_base_s{seed}_train.txt` and tests `base2novel/base_val.txt` (base labels) and
`base2novel/novel_val.txt` (novel labels). Reported: base and novel top-1 averaged over seeds, and
HM = 2BN/(B+N) of those averages.
"""

from tasks.registry import Phase, Split, TaskSpec, Test, register_task


def seed_split(seed: int) -> Split:
    return Split(
        f"s{seed}",
        (Phase("finetune", source="real", train_list=f"base2novel/fs_base_s{seed}_train.txt", labels="base"),),
        (
            Test("base", "base2novel/base_val.txt", labels="base", group="base"),
            Test("novel", "base2novel/novel_val.txt", labels="novel", group="novel"),
        ),
    )


for _dataset in ("ucf101", "hmdb51"):
    register_task(
        TaskSpec(
            name=f"base2novel_{_dataset}",
            protocol="base2novel",
            dataset=_dataset,
            description="synthetic pre-training (base classes), 16-shot base fine-tune per seed 1-3; base/novel/HM",
            phases=(Phase("pretrain", source="synthetic", labels="base"),),
            test_list="base2novel/base_val.txt",
            splits=tuple(seed_split(s) for s in (1, 2, 3)),
        )
    )
