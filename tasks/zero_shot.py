"""Zero-shot protocol (paper Table 1): train on synthetic clips of the target classes only, test on real.

- `zero_shot_ucf101`, `zero_shot_hmdb51`: one training on synthetic clips of all the dataset's classes,
  then three tests, `val1.txt` / `val2.txt` / `val3.txt` (the official test splits); top-1 as mean +-
  population std over the three.
- `zero_shot_k600`: the three Kinetics-600 zero-shot splits each have their own 160 classes
  (`ZS_split{i}_K600.csv`, label sets `zs1..zs3` of `--data.label_files`). Since the protocol trains on
  synthetic clips of the target classes only, each split trains its own model, from the same starting
  weights, on the synthetic clips of its 160 classes (matched by name in a manifest generated for all
  Kinetics-600 classes), and is tested on `k600/ZS_split{i}_K600_eval.txt`; top-1 and top-5, mean +- std.
They start from a Kinetics-400-trained model (`start="k400"`), as the reference's zero-shot model is:
`zero_shot_k400` (registered here; TC-CLIP's configs/zero_shot.yaml on K400, best K400-val epoch), whose
`best.pt` is the task YAMLs' default `--task.init_weights`; or, the fast way, an official TC-CLIP zero-shot
release (`zero_shot_k400_llm_tc_clip.pth`) as the net's `checkpoint`; `--task.from_clip true` starts from
CLIP's weights instead (recorded in results.json). Each test is run twice: with those weights and with their
WiSE-FT ensemble with CLIP (0.7), as the reference does (tasks/selection.py).

Ablations on this protocol (paper Tables 6 and 7; DESIGN.md: zero-shot top-1):
- Table 7, losses on the synthetic clips: `zero_shot_{hmdb51,ucf101}_{ce,ls,uw,uf}` (the UL row is the task
  itself); each YAML adds one fragment `loss: ../configs/losses/<loss>.yaml`.
- Table 6, prompt strategies: `zero_shot_hmdb51_prompts_{basic,env,cha}` (the IE row is `zero_shot_hmdb51`);
  each YAML adds `prompts: ../configs/prompts/hmdb51_<strategy>.yaml`, which names that synthetic set.
"""

from tasks.registry import Phase, Split, TaskSpec, Test, register_task

# The start of every zero-shot task: TC-CLIP trained on Kinetics-400 with the reference's zero-shot recipe
# (naver-ai/tc-clip configs/zero_shot.yaml), its best K400-val epoch kept (tasks/selection.py) as
# `<root>/zero_shot_k400/train/best.pt`, the zero-shot task YAMLs' `--task.init_weights`.
ZERO_SHOT_K400 = register_task(
    TaskSpec(
        name="zero_shot_k400",
        protocol="zero_shot_start",
        dataset="k400",
        description="the zero-shot start: train on k400/train.txt (zero-shot recipe), best k400/val.txt epoch",
        phases=(Phase("train", source="real", train_list="k400/train.txt"),),
        test_list="k400/val.txt",
    )
)

TRAIN = Phase("train", source="synthetic")


LOSS_ABLATION = {
    "ce": "cross-entropy (CE)",
    "ls": "fixed label smoothing (LS)",
    "uw": "uncertainty-weighted loss (UW)",
    "uf": "high-uncertainty clips filtered out (UF)",
}
PROMPT_ABLATION = {"basic": "Basic prompts", "env": "environment prompts (Env)", "cha": "character prompts (Cha)"}


def zero_shot_val123(dataset: str, variant: str | None = None, about: str | None = None) -> TaskSpec:
    description = "synthetic clips of all classes only; test val1/val2/val3, top-1 mean +- std"
    return TaskSpec(
        name=f"zero_shot_{dataset}" + (f"_{variant}" if variant else ""),
        protocol="zero_shot",
        dataset=dataset,
        description=f"{description}; {about}" if about else description,
        phases=(TRAIN,),
        test_list="val1.txt",
        splits=(Split("", (), tuple(Test(f"val{i}", f"val{i}.txt") for i in (1, 2, 3))),),
        start="k400",
    )


def k600_split(i: int) -> Split:
    labels = f"zs{i}"
    return Split(
        f"split{i}",
        (Phase("train", source="synthetic", labels=labels),),
        (Test("test", f"k600/ZS_split{i}_K600_eval.txt", labels=labels),),
    )


for _dataset in ("ucf101", "hmdb51"):
    register_task(zero_shot_val123(_dataset))
    for _loss, _about in LOSS_ABLATION.items():
        register_task(zero_shot_val123(_dataset, _loss, f"Table 7 loss: {_about}"))
for _prompts, _about in PROMPT_ABLATION.items():
    register_task(zero_shot_val123("hmdb51", f"prompts_{_prompts}", f"Table 6 synthetic set: {_about}"))
register_task(
    TaskSpec(
        name="zero_shot_k600",
        protocol="zero_shot",
        dataset="k600",
        description="per ZS split: train on synthetic clips of its 160 classes, test its eval list; top-1/top-5",
        phases=(),
        test_list="k600/ZS_split1_K600_eval.txt",
        splits=tuple(k600_split(i) for i in (1, 2, 3)),
        start="k400",
    )
)
