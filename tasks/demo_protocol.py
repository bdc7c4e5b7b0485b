"""The demo world's protocol (`make demo`): one registered task per row group of the demo table.

Every demo task trains `DemoNet` (configs/models/demo_net.yaml) through the same runner, VideoCLIPModule and
Trainer as the paper's tasks, on the demo build (configs/datasets/demo.yaml, `python -m generation demo`), with
one recipe (configs/recipes/demo.yaml); the tasks differ only in their phases, synthetic set (`prompts:`
fragment) and synthetic loss (`loss:` fragment):

    demo_none                 the baseline (`task.synthetic: false`): 4-shot real fine-tuning only   -> row none
    demo_basic / demo_ie      pre-train on the Basic / IE set; split `zero_shot` tests the   -> zero_shot_basic /
                              pre-trained model, split `few_shot` fine-tunes it 4-shot first    zero_shot_ie, basic / ie
    demo_ie_ce / demo_ie_ul   pre-train on the unreliable IE set with CE / UL, then 4-shot  -> ie_ce / ie_ul
    demo_scorer               the stand-in CLIP: DemoNet trained on the labelled web split (scores the unreliable
                              set through `python -m generation score --arch demo`)

All test on the held-out real style's `val1.txt`.
"""

from tasks.registry import Phase, Split, TaskSpec, Test, register_task

SHOTS = 4
PRETRAIN = Phase("pretrain", source="synthetic")
FINETUNE = Phase("finetune", source="real", train_list=f"train1_few_shot_{SHOTS}.txt")
VAL1 = Test("val1", "val1.txt")


def _task(name: str, description: str, phases: tuple[Phase, ...], test_list: str = "val1.txt", **kw) -> TaskSpec:
    return TaskSpec(
        name=name, protocol="demo", dataset="demo", description=description, phases=phases, test_list=test_list, **kw
    )


def pretrain_then_finetune(name: str, what: str) -> TaskSpec:
    """Pre-train on a synthetic set; test it as it is (zero-shot) and after 4-shot fine-tuning (few-shot)."""
    return _task(
        name,
        f"pre-train on {what}; test val1 as is (split zero_shot) and after 4-shot fine-tuning (split few_shot)",
        (PRETRAIN,),
        splits=(
            Split("zero_shot", (), (Test("val1", "val1.txt", group="zero_shot"),)),
            Split("few_shot", (FINETUNE,), (VAL1,)),
        ),
        shots=SHOTS,
    )


register_task(  # the baseline of the protocol (its YAML sets task.synthetic false: the pre-training is skipped)
    _task(
        "demo_none",
        "pre-train on synthetic clips (skipped: task.synthetic false), fine-tune 4-shot, test val1",
        (PRETRAIN, FINETUNE),
        shots=SHOTS,
    )
)
register_task(pretrain_then_finetune("demo_basic", "the Basic synthetic set"))
register_task(pretrain_then_finetune("demo_ie", "the IE synthetic set"))
for _loss in ("ce", "ul"):
    register_task(
        _task(
            f"demo_ie_{_loss}",
            f"pre-train on the unreliable IE set with {_loss.upper()}, fine-tune 4-shot, test val1",
            (PRETRAIN, FINETUNE),
            shots=SHOTS,
        )
    )
register_task(
    _task(
        "demo_scorer",
        "the stand-in CLIP: train on the labelled web split (both styles), test on its held-out clips",
        (Phase("train", source="real", train_list="train.txt"),),
        test_list="val.txt",
    )
)
