"""Few-shot protocol (paper Table 2): pre-train on synthetic clips of all classes, fine-tune on the
K-shot list `train1_few_shot_K.txt`, test on `val1.txt`. K in {2, 4, 8, 16}: `few_shot_k{K}` on
HMDB-51 (the headline command) and `few_shot_ucf101_k{K}` on UCF-101.

The loss ablation of paper Table 7 runs the 4-shot protocol with each loss: `few_shot_k4_{ls,uw,uf,ul}`
(their YAMLs select the loss; `few_shot_k4` itself is the CE row).

The prompt-strategy ablation of paper Table 6 (basic / env / cha / ie) is not a task of its own: it is
any task run once per synthetic set, each into its own `--task.root`, e.g.
`--data.synthetic_manifest data/synthetic/hmdb51_basic/manifest.jsonl --task.root runs/table6/basic`;
results.json records the manifest and `python -m tasks report runs/table6` keeps one row per manifest."""

from tasks.registry import Phase, TaskSpec, register_task

LOSS_ABLATION = {
    "ls": "fixed label smoothing (LS)",
    "uw": "uncertainty-weighted loss (UW)",
    "uf": "high-uncertainty synthetic clips filtered out (UF)",
    "ul": "uncertainty label smoothing (UL)",
}


def few_shot(shots: int, loss: str | None = None, dataset: str = "hmdb51") -> TaskSpec:
    name = f"few_shot_k{shots}" if dataset == "hmdb51" else f"few_shot_{dataset}_k{shots}"
    description = f"{shots}-shot: synthetic pre-training, fine-tune on train1_few_shot_{shots}, test on val1"
    if loss is not None:  # a Table 7 ablation row: same protocol, another loss (set in its YAML)
        name, description = f"{name}_{loss}", f"{description}; loss: {LOSS_ABLATION[loss]}"
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
