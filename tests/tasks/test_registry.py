from pathlib import Path

import pytest
import yaml

from tasks import Phase, TaskSpec, get_task, list_tasks, register_task

TASK_DIR = Path(__file__).resolve().parents[2] / "tasks"


def test_every_task_yaml_names_a_registered_task_and_back():
    stems = sorted(p.stem for p in TASK_DIR.glob("*.yaml"))
    assert stems == list_tasks()
    for stem in stems:
        config = yaml.safe_load((TASK_DIR / f"{stem}.yaml").read_text())
        assert config["task"]["name"] == stem


def test_few_shot_specs_follow_the_protocol():
    spec = get_task("few_shot_k8")
    assert [(p.name, p.source, p.train_list) for p in spec.phases] == [
        ("pretrain", "synthetic", None),
        ("finetune", "real", "train1_few_shot_8.txt"),
    ]
    assert spec.test_list == "val1.txt"


def test_duplicate_and_unknown_names_are_errors():
    with pytest.raises(ValueError, match="'few_shot_k4' is already registered"):
        register_task(TaskSpec("few_shot_k4", "few_shot", "hmdb51", "", (Phase("x", "real"),), "val1.txt"))
    with pytest.raises(
        KeyError,
        match="unknown task .nope.; registered tasks: anomaly_ucf_crime, anomaly_ucf_crime_features, base2novel_hmdb51, ",
    ):
        get_task("nope")


def test_multi_split_protocols_name_their_splits_lists_and_label_sets():
    zs = get_task("zero_shot_ucf101")
    assert [(p.name, p.source) for p in zs.phases] == [("train", "synthetic")]
    assert [(s.name, [t.test_list for t in s.tests]) for s in zs.plan()] == [("", ["val1.txt", "val2.txt", "val3.txt"])]
    k600 = get_task("zero_shot_k600")
    assert k600.phases == ()  # every split trains separately on its own 160 classes
    assert [(s.name, s.phases[0].labels, s.tests[0].test_list, s.tests[0].labels) for s in k600.plan()] == [
        (f"split{i}", f"zs{i}", f"k600/ZS_split{i}_K600_eval.txt", f"zs{i}") for i in (1, 2, 3)
    ]
    b2n = get_task("base2novel_hmdb51")
    assert [(p.name, p.source, p.labels) for p in b2n.phases] == [("pretrain", "synthetic", "base")]
    for seed, split in zip((1, 2, 3), b2n.plan()):
        assert (split.name, split.phases[0].train_list, split.phases[0].labels) == (
            f"s{seed}",
            f"base2novel/fs_base_s{seed}_train.txt",
            "base",
        )
        assert [(t.test_list, t.labels, t.group) for t in split.tests] == [
            ("base2novel/base_val.txt", "base", "base"),
            ("base2novel/novel_val.txt", "novel", "novel"),
        ]
    few = get_task("few_shot_ucf101_k2")
    assert (few.dataset, few.shots, few.plan()[0].tests[0].test_list) == ("ucf101", 2, "val1.txt")
    assert get_task("long_tail_ucf101").phases[-1].train_list == "ucf101_lt/real/train.csv"


ROOT = TASK_DIR.parent
ACTION_TASKS = [t for t in list_tasks() if get_task(t).protocol not in ("anomaly", "demo")]  # demo: test_demo_driver.py


def fragment(task_yaml: Path, key: str) -> dict:
    value = yaml.safe_load(task_yaml.read_text())[key]
    return yaml.safe_load((task_yaml.parent / value).read_text()) if isinstance(value, str) else value


@pytest.mark.parametrize("name", ACTION_TASKS)
def test_every_action_task_defaults_to_the_papers_model_recipe_and_loss(name):
    """TC-CLIP ViT-B/16 with 16 frames; the recipe has one overlay per phase of the protocol; synthetic phases
    train with UL (w = 0.3), real clips with TC-CLIP's label smoothing 0.1 inside mixup 0.8 / cutmix 1.0;
    zero-shot tasks start from the supervised_k400 weights."""
    spec, path = get_task(name), TASK_DIR / f"{name}.yaml"
    model, data, recipe = (fragment(path, key) for key in ("model", "data", "recipe"))
    assert model["init_args"]["net"]["class_path"] == "lightning_modules.models.TCCLIP"
    assert model["init_args"]["net"]["init_args"]["arch"] == "ViT-B-16"
    assert data["init_args"]["num_frames"] == 16
    phases = {p.name: p for split in spec.plan() for p in (*spec.phases, *split.phases)}
    assert set(recipe["phases"]) == set(phases)
    for phase_name, overlay in recipe["phases"].items():
        args = overlay["model"]["init_args"]
        assert args["loss"] == {"name": "ls", "label_smoothing": 0.1}
        assert args["mixup"] == {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "switch_prob": 0.5}
        mixing = {"synthetic_topup": "max", "mix": "concat"} if phases[phase_name].source == "mixed" else {}
        assert overlay["data"]["init_args"] == {"color_jitter": 0.8, "grayscale": 0.2, **mixing}
        if phases[phase_name].source in ("synthetic", "mixed"):
            assert args["synthetic_loss"] == {"name": "ul", "uncertainty_weight": 0.3}
        total = overlay["trainer"]["accumulate_grad_batches"] * data["init_args"]["batch_size"]
        expected = {
            ("synthetic", "train"): (256, 10, 8e-6),
            ("synthetic", "pretrain"): (256, 10, 8e-6),
            ("real", "few_shot"): (64, 50, 2e-6),
            ("real", "long_tail"): (64, 50, 2e-6),
            ("real", "base2novel"): (64, 12, 3.33e-6),
            ("real", "supervised"): (512, 30, 2.2e-5),
        }
        key = ("synthetic", phase_name) if phases[phase_name].source == "synthetic" else ("real", spec.protocol)
        assert (total, overlay["trainer"]["max_epochs"], args["lr"]) == expected[key]
    config = yaml.safe_load(path.read_text())
    if spec.protocol == "zero_shot":
        assert spec.start == "k400" and config["task"]["init_weights"] == "runs/supervised_k400/train/weights.pt"
    suffix = name.rsplit("_", 1)[-1]
    if "loss" in config:  # a Table 7 row (zero-shot) or a 4-shot extra
        assert fragment(path, "loss")["name"] == suffix
    if "prompts" in config:  # a Table 6 row
        assert (
            fragment(path, "prompts")["name"] == suffix
            and suffix in fragment(path, "prompts")["data"]["init_args"]["synthetic_manifest"]
        )


def test_tables_6_and_7_are_on_the_zero_shot_protocol():
    for dataset in ("hmdb51", "ucf101"):
        for loss in ("ce", "ls", "uw", "uf"):
            assert get_task(f"zero_shot_{dataset}_{loss}").protocol == "zero_shot"
    for prompts in ("basic", "env", "cha"):
        assert get_task(f"zero_shot_hmdb51_prompts_{prompts}").dataset == "hmdb51"
    assert get_task("supervised_k400").phases[0].train_list == "k400/train.txt"
