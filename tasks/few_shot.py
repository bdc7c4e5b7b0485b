"""Few-shot protocol (paper Table 2): pre-train on synthetic clips of all classes, fine-tune on the
K-shot list `train1_few_shot_K.txt`, test on `val1.txt`. K in {2, 4, 8, 16}; HMDB-51 by default."""

from tasks.registry import Phase, TaskSpec, register_task


def few_shot(shots: int) -> TaskSpec:
    return TaskSpec(
        name=f"few_shot_k{shots}",
        protocol="few_shot",
        dataset="hmdb51",
        description=f"{shots}-shot: synthetic pre-training, fine-tune on train1_few_shot_{shots}, test on val1",
        phases=(
            Phase("pretrain", source="synthetic"),
            Phase("finetune", source="real", train_list=f"train1_few_shot_{shots}.txt"),
        ),
        test_list="val1.txt",
    )


for _shots in (2, 4, 8, 16):
    register_task(few_shot(_shots))
