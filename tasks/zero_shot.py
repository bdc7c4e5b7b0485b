"""Zero-shot protocol (paper Table 1): train on synthetic clips of the target classes only, test on real.

- `zero_shot_ucf101`, `zero_shot_hmdb51`: one training on synthetic clips of all the dataset's classes,
  then three tests, `val1.txt` / `val2.txt` / `val3.txt` (the official test splits); top-1 as mean +-
  population std over the three.
- `zero_shot_k600`: the three Kinetics-600 zero-shot splits each have their own 160 classes
  (`ZS_split{i}_K600.csv`, label sets `zs1..zs3` of `--data.label_files`). Since the protocol trains on
  synthetic clips of the target classes only, each split trains its own model, from the same starting
  weights, on the synthetic clips of its 160 classes (matched by name in a manifest generated for all
  Kinetics-600 classes), and is tested on `k600/ZS_split{i}_K600_eval.txt`; top-1 and top-5, mean +- std.
Start from a Kinetics-400-trained model with `--task.init_weights`.
"""

from tasks.registry import Phase, Split, TaskSpec, Test, register_task

TRAIN = Phase("train", source="synthetic")


def zero_shot_val123(dataset: str) -> TaskSpec:
    return TaskSpec(
        name=f"zero_shot_{dataset}",
        protocol="zero_shot",
        dataset=dataset,
        description="synthetic clips of all classes only; test val1/val2/val3, top-1 mean +- std",
        phases=(TRAIN,),
        test_list="val1.txt",
        splits=(Split("", (), tuple(Test(f"val{i}", f"val{i}.txt") for i in (1, 2, 3))),),
    )


def k600_split(i: int) -> Split:
    labels = f"zs{i}"
    return Split(
        f"split{i}",
        (Phase("train", source="synthetic", labels=labels),),
        (Test("test", f"k600/ZS_split{i}_K600_eval.txt", labels=labels),),
    )


register_task(zero_shot_val123("ucf101"))
register_task(zero_shot_val123("hmdb51"))
register_task(
    TaskSpec(
        name="zero_shot_k600",
        protocol="zero_shot",
        dataset="k600",
        description="per ZS split: train on synthetic clips of its 160 classes, test its eval list; top-1/top-5",
        phases=(),
        test_list="k600/ZS_split1_K600_eval.txt",
        splits=tuple(k600_split(i) for i in (1, 2, 3)),
    )
)
