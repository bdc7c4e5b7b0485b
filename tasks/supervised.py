"""Fully-supervised protocol: train on Kinetics-400's training list, test on its validation list (top-1/top-5).

`supervised_k400` produces the model the zero-shot tasks start from, as the paper's zero-shot baselines are
Kinetics-400-trained (TC-CLIP's fully-supervised recipe, configs/recipes/supervised_k400.yaml). Its final
weights are `<root>/supervised_k400/train/weights.pt`, the zero-shot task YAMLs' default `--task.init_weights`.
Lists: TC-CLIP's `k400_splits/train.txt` / `val.txt` (`path label`), put under `--data.split_dir` as
`k400/train.txt` and `k400/val.txt`.
"""

from tasks.registry import Phase, TaskSpec, register_task

SUPERVISED_K400 = register_task(
    TaskSpec(
        name="supervised_k400",
        protocol="supervised",
        dataset="k400",
        description="fully supervised: train on k400/train.txt, test k400/val.txt (the zero-shot start model)",
        phases=(Phase("train", source="real", train_list="k400/train.txt"),),
        test_list="k400/val.txt",
    )
)
