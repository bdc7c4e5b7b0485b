"""Few-shot protocol (paper Table 2): pre-train on synthetic clips of all classes, fine-tune on the
K-shot list `train1_few_shot_K.txt`, test on `val1.txt`. K in {2, 4, 8, 16}: `few_shot_k{K}` on
HMDB-51 (the headline command) and `few_shot_ucf101_k{K}` on UCF-101.

The paper's loss ablation (Table 7) is on the zero-shot protocol (`zero_shot_*_{ce,ls,uw,uf}`, tasks/zero_shot.py).
`few_shot_k4_{ce,ls,uw,uf,ul}` are extras: the same losses on the 4-shot protocol (each YAML adds one
`loss: ../configs/losses/<loss>.yaml` fragment; `few_shot_k4` itself uses UL, the recipes' default)."""

from tasks.registry import Phase, TaskSpec, register_task

LOSS_ABLATION = {  # extras: the Table 7 losses on the 4-shot protocol
    "ce": "cross-entropy (CE)",
    "ls": "fixed label smoothing (LS)",
    "uw": "uncertainty-weighted loss (UW)",
    "uf": "high-uncertainty synthetic clips filtered out (UF)",
    "ul": "uncertainty label smoothing (UL)",
}


def few_shot(shots: int, loss: str | None = None, dataset: str = "hmdb51") -> TaskSpec:
    name = f"few_shot_k{shots}" if dataset == "hmdb51" else f"few_shot_{dataset}_k{shots}"
    description = f"{shots}-shot: synthetic pre-training, fine-tune on train1_few_shot_{shots}, test on val1"
    if loss is not None:  # an extra: the 4-shot protocol with a Table 7 loss (set in its YAML)
        name, description = f"{name}_{loss}", f"{description}; 4-shot extra, loss: {LOSS_ABLATION[loss]}"
    return TaskSpec(
        name=name,
        protocol="few_shot",
        dataset=dataset,
        description=description,
        phases=(
            Phase("pretrain", source="synthetic"),
            Phase("finetune", source="real", train_list=f"train1_few_shot_{shots}.txt"),
        ),
        test_list="val1.txt",
        shots=shots,
    )


for _shots in (2, 4, 8, 16):
    register_task(few_shot(_shots))
    register_task(few_shot(_shots, dataset="ucf101"))
for _loss in LOSS_ABLATION:
    register_task(few_shot(4, _loss))
