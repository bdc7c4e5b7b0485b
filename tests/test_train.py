"""train.py end to end on the smoke config: every task YAML, resume, input errors, DDP, and the
configuration story of issue 15 (recipes of per-phase overlays, every subcommand through the runner)."""

import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import smoke_args, tensorboard_points  # tests/conftest.py: the smoke world's train.py arguments
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from datamodules.annotations import read_labels
from datamodules.manifest import read_manifest
from lightning_modules.losses import LossConfig
from lightning_modules.models import TCCLIP
from lightning_modules.video_clip import VideoCLIPModule
from tasks import get_task, list_tasks
from tasks.report import main as report
from train import main

ROOT = Path(__file__).resolve().parents[1]


def action_tasks() -> list[str]:
    """Registered tasks trained here (anomaly: tests/tasks/test_anomaly.py; demo: test_demo_driver.py; a
    mixed phase: tests/tasks/test_long_tail_mixed.py)."""
    return [
        t
        for t in list_tasks()
        if get_task(t).protocol not in ("anomaly", "demo") and all(p.source != "mixed" for p in get_task(t).phases)
    ]


# Default run: one trained smoke run per protocol; every other task's phases are composed (not trained) by
# tests/tasks/test_task_configs.py, and `-m slow` trains them all.
PREFERRED = {
    "few_shot": "few_shot_k4",
    "zero_shot": "zero_shot_hmdb51",
    "base2novel": "base2novel_hmdb51",
    "long_tail": "long_tail_hmdb51",
    "supervised": "supervised_k400",
    "zero_shot_start": "zero_shot_k400",
}


def fast_tasks() -> dict[str, str]:
    """The task of each action protocol that the default run trains: the preferred one, else the protocol's first
    registered task, so a new protocol ("Add a task in 3 steps", README) is trained without editing this file."""
    fast = {}
    for name in action_tasks():
        fast.setdefault(get_task(name).protocol, name)
    return fast | {protocol: name for protocol, name in PREFERRED.items() if protocol in fast}


ACTION_TASKS = action_tasks()
FAST_TASKS = fast_tasks()


def test_every_action_protocol_has_a_trained_smoke_run():
    assert {get_task(t).protocol for t in ACTION_TASKS} == set(FAST_TASKS)
    assert all(get_task(name).protocol == protocol for protocol, name in {**FAST_TASKS, **PREFERRED}.items())


def test_a_new_protocol_is_trained_in_the_default_run(monkeypatch):
    from tasks import Phase, TaskSpec, registry

    spec = TaskSpec(
        "my_task", "my_protocol", "hmdb51", "", (Phase("finetune", "real", "train1_few_shot_2.txt"),), "val1.txt"
    )
    monkeypatch.setitem(registry._TASKS, "my_task", spec)  # README's step 1, as `register_task` does it
    assert fast_tasks()["my_protocol"] == "my_task" and fast_tasks()["few_shot"] == "few_shot_k4"


def task_param(name: str):
    return pytest.param(name, marks=[] if name in FAST_TASKS.values() else [pytest.mark.slow])


SMOKE_LABEL_SETS = {
    "base": "labels_base.csv",
    "novel": "labels_novel.csv",
    "zs1": "labels_zs1.csv",
    "zs2": "labels_zs2.csv",
    "zs3": "labels_zs3.csv",
}


def count_lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def synthetic_clips(task_yaml: Path, manifest: Path, label_file: Path) -> int:
    """Clips a task pre-trains on: the manifest's rows of the label space's classes, or what UF keeps."""
    names = set(read_labels(label_file))
    rows = [row for row in read_manifest(manifest) if row.class_name in names]
    data = yaml.safe_load(task_yaml.read_text()).get("data")
    quantile = data.get("init_args", {}).get("uncertainty_filter_quantile") if isinstance(data, dict) else None
    loss = yaml.safe_load(task_yaml.read_text()).get("loss")
    if loss:  # a loss fragment, e.g. configs/losses/uf.yaml
        fragment = yaml.safe_load((task_yaml.parent / loss).read_text())
        quantile = fragment.get("data", {}).get("init_args", {}).get("uncertainty_filter_quantile", quantile)
    if quantile is None:
        return len(rows)
    u = np.array([row.uncertainty for row in rows])
    return int((u <= np.quantile(u, quantile)).sum())


def phase_dirs(name: str, run: Path) -> list[tuple[Path, object]]:
    spec = get_task(name)
    dirs = [(run / p.name, p) for p in spec.phases]
    return dirs + [(run / split.name / p.name, p) for split in spec.plan() for p in split.phases]


@pytest.mark.parametrize("name", [task_param(t) for t in ACTION_TASKS])
def test_every_task_runs_through_the_smoke_config(name, smoke_data, task_run):
    run = task_run(name)
    spec, task_yaml = get_task(name), ROOT / f"tasks/{name}.yaml"
    batch = 4  # configs/smoke.yaml
    for phase_dir, phase in phase_dirs(name, run):
        record = json.loads((phase_dir / "phase.json").read_text())
        assert record["epochs"] == 1
        label_file = smoke_data / (SMOKE_LABEL_SETS[phase.labels] if phase.labels else "labels.csv")
        assert record["label_file"] == str(label_file)
        if phase.source == "synthetic":
            clips = synthetic_clips(task_yaml, smoke_data / "synthetic/ie/manifest.jsonl", label_file)
        else:
            clips = count_lines(smoke_data / "real/splits" / phase.train_list)
        assert record["steps"] == -(-clips // batch)  # one epoch = ceil(clips / batch) steps
        events = EventAccumulator(str(phase_dir)).Reload()
        assert "train/loss" in events.Tags()["scalars"] and "train/clips" in events.Tags()["images"]
        eps = [e.value for e in events.Scalars("train/eps_mean")]
        hparams = torch.load(phase_dir / "checkpoints/last.ckpt", weights_only=False)["hyper_parameters"]
        loss = hparams["synthetic_loss" if phase.source == "synthetic" else "loss"]  # the loss of this source
        loss = LossConfig(**loss) if isinstance(loss, dict) else loss
        if loss.name == "ul" and phase.source == "synthetic":  # eps_i = w * u_i, u in [0, 1]
            assert all(0.0 <= x <= loss.uncertainty_weight for x in eps) and max(eps) > 0
        elif loss.name in ("ls", "ul"):  # fixed smoothing; UL on real clips: real_eps
            assert eps == pytest.approx([loss.label_smoothing if loss.name == "ls" else loss.real_eps] * len(eps))
        else:
            assert eps == [0.0] * len(eps)  # CE, UW, UF
        assert (phase_dir / "checkpoints/last.ckpt").is_file()
        effective = yaml.safe_load((phase_dir / "config.yaml").read_text())  # the phase's own config
        assert effective["task"]["name"] == name and effective["trainer"]["max_epochs"] == 1
    results = json.loads((run / "results.json").read_text())
    planned = [(split.name, t) for split in spec.plan() for t in split.tests]
    # the selected weights' tests; tasks/selection.py adds the last epoch's (few-shot) and WiSE-FT's (zero-shot)
    results["tests"] = [t for t in results["tests"] if t["group"] not in ("last", "wise_ft")]
    assert results["task"] == spec.name and len(results["tests"]) == len(planned)
    assert len(results["config_hash"]) == 12 and results["synthetic_classes"] == "protocol"
    if results["synthetic_manifest"]:  # the smoke world's prompts come from the offline template writer
        assert results["prompts"] == "template"
    else:
        assert results["prompts"] is None
    for test, (split_name, planned_test) in zip(results["tests"], planned):
        assert (test["test_list"], test["group"]) == (planned_test.test_list, planned_test.group)
        label_file = smoke_data / (SMOKE_LABEL_SETS[planned_test.labels] if planned_test.labels else "labels.csv")
        assert test["label_file"] == str(label_file) and len(test["per_class"]) == len(read_labels(label_file))
        assert 0.0 <= test["metrics"]["test/top1"] <= test["metrics"]["test/top5"] <= 1.0
        per_class = [a for a in test["per_class"] if a is not None]
        assert test["metrics"]["test/class_mean"] == pytest.approx(sum(per_class) / len(per_class))
        test_dir = run / split_name / "test" / planned_test.name
        assert "test/confusion_matrix" in EventAccumulator(str(test_dir)).Reload().Tags()["images"]
    summary, tops = results["summary"], [t["metrics"]["test/top1"] for t in results["tests"]]
    if spec.protocol == "zero_shot":  # val1-3 or K600 splits 1-3: mean +- population std over 3
        assert summary["test/top1"]["n"] == 3 and summary["test/top1"]["mean"] == pytest.approx(np.mean(tops))
        assert summary["test/top1"]["std"] == pytest.approx(np.std(tops))
    if spec.protocol == "base2novel":
        base, novel = summary["base/top1"]["mean"], summary["novel/top1"]["mean"]
        assert summary["base/top1"]["n"] == summary["novel/top1"]["n"] == 3
        assert summary["hm/top1"]["mean"] == pytest.approx(2 * base * novel / (base + novel) if base + novel else 0)
    if spec.protocol == "long_tail":
        groups = json.loads((smoke_data / "real/splits/train_lt_groups.json").read_text())
        per_class = results["tests"][0]["per_class"]
        for group in ("head", "tail", "few"):
            values = [per_class[c] for c in groups[group] if per_class[c] is not None]
            assert summary[f"test/{group}"]["mean"] == pytest.approx(sum(values) / len(values))
    assert (run / "results.md").read_text().startswith(f"### {spec.protocol}")


def test_report_of_two_runs_prints_mean_and_std(smoke_data, task_run, tmp_path, capsys):
    first = task_run("zero_shot_ucf101")
    main(smoke_args(ROOT / "tasks/zero_shot_ucf101.yaml", smoke_data, tmp_path, "--seed_everything", "1"))
    capsys.readouterr()
    assert report([str(first), str(tmp_path / "zero_shot_ucf101")]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "| zero_shot_ucf101 |" in line]
    values = [
        t["metrics"]["test/top1"]
        for r in (first, tmp_path / "zero_shot_ucf101")
        for t in json.loads((r / "results.json").read_text())["tests"]
        if t["group"] == "test"  # the tested weights' column; the WiSE-FT tests have their own
    ]
    assert len(rows) == 1 and "| 2 |" in rows[0]  # one row: both runs, 6 split values pooled
    assert f"| 2 | {100 * np.mean(values):.1f} ± {100 * np.std(values):.1f} |" in rows[0]


def test_multi_split_rerun_skips_finished_work_and_resumes_a_seed(task_run, smoke_data, tmp_path, caplog):
    run = tmp_path / "base2novel_hmdb51"
    shutil.copytree(task_run("base2novel_hmdb51"), run)
    first = json.loads((run / "results.json").read_text())
    shutil.rmtree(run / "s2/test")
    (run / "s2/finetune/phase.json").unlink()  # seed 2 "crashed" after its last checkpoint
    caplog.clear()
    with caplog.at_level(logging.INFO):
        main(smoke_args(ROOT / "tasks/base2novel_hmdb51.yaml", smoke_data, tmp_path))
    assert "phase 'pretrain' already finished" in caplog.text
    assert "phase 's1/finetune' already finished" in caplog.text and "test s1/test/base already done" in caplog.text
    assert "resuming phase 's2/finetune'" in caplog.text and "phase 's3/finetune' already finished" in caplog.text
    again = json.loads((run / "results.json").read_text())
    assert again["config_hash"] == first["config_hash"]  # --task.root is not part of the hash
    assert [t["metrics"] for t in again["tests"]] == [t["metrics"] for t in first["tests"]]  # same weights


def test_synthetic_classes_all_refuses_a_run_pretrained_on_the_base_half(task_run, smoke_data, tmp_path):
    shutil.copytree(task_run("base2novel_hmdb51"), tmp_path / "base2novel_hmdb51")
    args = smoke_args(ROOT / "tasks/base2novel_hmdb51.yaml", smoke_data, tmp_path, "--task.synthetic_classes", "all")
    with pytest.raises(ValueError, match=r"task.synthetic_classes \"protocol\" -> \"all\".*Use a new --task.root"):
        main(args)


def test_rerun_skips_finished_phases_and_resumes_an_interrupted_one(smoke_data, task_run, tmp_path, caplog):
    task_yaml = ROOT / "tasks/few_shot_k2.yaml"
    run = tmp_path / "few_shot_k2"
    shutil.copytree(task_run("few_shot_k2"), run)
    pretrain = (run / "pretrain/phase.json").read_text()
    weights_mtime = (run / "pretrain/weights.pt").stat().st_mtime_ns
    first = json.loads((run / "results.json").read_text())

    # The fine-tune phase "crashed" after its last checkpoint but before it was marked finished.
    (run / "finetune/phase.json").unlink()
    (run / "finetune/weights.pt").unlink()
    shutil.rmtree(run / "test")  # and its test never ran
    caplog.clear()
    with caplog.at_level(logging.INFO):
        main(smoke_args(task_yaml, smoke_data, tmp_path))
    log = caplog.text
    assert "phase 'pretrain' already finished" in log
    assert "resuming phase 'finetune'" in log
    assert (run / "pretrain/phase.json").read_text() == pretrain
    assert (run / "pretrain/weights.pt").stat().st_mtime_ns == weights_mtime
    finetune = json.loads((run / "finetune/phase.json").read_text())
    assert finetune["steps"] == -(-count_lines(smoke_data / "real/splits/train1_few_shot_2.txt") // 4)
    assert json.loads((run / "results.json").read_text())["metrics"] == first["metrics"]  # same weights


def test_test_subcommand_reloads_the_finished_run(smoke_data, task_run, tmp_path):
    task_yaml = ROOT / "tasks/few_shot_k2.yaml"
    shutil.copytree(task_run("few_shot_k2"), tmp_path / "few_shot_k2")
    first = json.loads((tmp_path / "few_shot_k2/results.json").read_text())
    (tmp_path / "few_shot_k2/results.json").unlink()
    main(["test", *smoke_args(task_yaml, smoke_data, tmp_path)[1:]])
    assert json.loads((tmp_path / "few_shot_k2/results.json").read_text())["metrics"] == first["metrics"]


def test_test_before_fit_says_what_to_run(smoke_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="has not finished phase 'finetune'.*train.py fit"):
        main(["test", *smoke_args(ROOT / "tasks/few_shot_k2.yaml", smoke_data, tmp_path)[1:]])


@pytest.mark.parametrize(
    ("override", "error", "message"),
    [
        (("--data.video_root", "/nonexistent/videos"), FileNotFoundError, r"video root not found: /nonexistent/videos"),
        (
            ("--data.split_dir", "/nonexistent/splits"),
            FileNotFoundError,
            r"split folder not found: /nonexistent/splits",
        ),
        (("--data.synthetic_manifest", "/x/manifest.jsonl"), FileNotFoundError, r"manifest not found: /x/manifest"),
    ],
)
def test_missing_inputs_fail_before_training(smoke_data, tmp_path, override, error, message):
    started = time.time()
    with pytest.raises(error, match=message):
        main(smoke_args(ROOT / "tasks/few_shot_k4.yaml", smoke_data, tmp_path, *override))
    assert not (tmp_path / "few_shot_k4").exists()  # nothing was trained or logged
    assert time.time() - started < 10


def test_bad_label_and_empty_list_are_reported_with_file_and_line(smoke_data, tmp_path):
    splits = tmp_path / "splits"
    shutil.copytree(smoke_data / "real/splits", splits)
    lines = (splits / "train1_few_shot_4.txt").read_text().splitlines()
    lines[2] = lines[2].rsplit(" ", 1)[0] + " 99"
    (splits / "train1_few_shot_4.txt").write_text("\n".join(lines) + "\n")
    args = smoke_args(ROOT / "tasks/few_shot_k4.yaml", smoke_data, tmp_path / "runs", "--data.split_dir", str(splits))
    with pytest.raises(ValueError, match=r"train1_few_shot_4\.txt:3: label 99 is outside the \d+ classes"):
        main(args)
    (splits / "train1_few_shot_4.txt").write_text("")
    with pytest.raises(ValueError, match=r"train1_few_shot_4\.txt: the annotation list is empty"):
        main(args)


@pytest.mark.parametrize("task", ["few_shot_k4_ul", "few_shot_k4_uf"])
def test_uncertainty_losses_refuse_an_unscored_manifest(smoke_data, tmp_path, task):
    unscored = tmp_path / "synthetic"
    unscored.mkdir()
    (unscored / "videos").symlink_to(smoke_data / "synthetic/ie/videos")
    rows = [
        row.model_copy(update={"entropy": None, "uncertainty": None})
        for row in read_manifest(smoke_data / "synthetic/ie/manifest.jsonl")
    ]
    (unscored / "manifest.jsonl").write_text("".join(row.model_dump_json() + "\n" for row in rows))
    args = smoke_args(
        ROOT / f"tasks/{task}.yaml",
        smoke_data,
        tmp_path / "runs",
        "--data.synthetic_manifest",
        str(unscored / "manifest.jsonl"),
    )
    message = rf"{len(rows)} .*(unscored|no uncertainty).* run `python -m generation score"
    with pytest.raises(ValueError, match=message):
        main(args)
    assert not list((tmp_path / "runs").rglob("*.ckpt"))  # refused before any training step


def test_unknown_config_key_is_rejected_by_the_parser(smoke_data, tmp_path, capsys):
    with pytest.raises(ValueError, match=r"unknown key --data.num_frame: did you mean --data.init_args.num_frames"):
        main(smoke_args(ROOT / "tasks/few_shot_k4.yaml", smoke_data, tmp_path, "--data.num_frame", "4"))


def test_headline_command_without_data_fails_fast_naming_the_path(tmp_path):
    started = time.time()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "fit", "--config", str(ROOT / "tasks/few_shot_k4.yaml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "data/hmdb51/splits" in proc.stderr and "--data.split_dir" in proc.stderr
    assert time.time() - started < 60


def test_ddp_two_cpu_processes_count_each_test_clip_once(smoke_data, tmp_path):
    """`python train.py` as 2 CPU processes (DDP, gloo) on an odd-sized test list: training shards the list,
    and the test metrics (top-1/top-5, per-class accuracy from the summed confusion matrix) equal a
    single-process test of the same weights: no clip repeated to pad the shards is counted."""
    splits = tmp_path / "splits"
    shutil.copytree(smoke_data / "real/splits", splits)
    lines = (splits / "val1.txt").read_text().splitlines()
    (splits / "val1.txt").write_text("\n".join(lines[:-1]) + "\n")  # 15 clips: rank 0 gets 8, rank 1 gets 7
    args = smoke_args(
        ROOT / "tasks/few_shot_k2.yaml",
        smoke_data,
        tmp_path / "ddp",
        "--data.split_dir",
        str(splits),
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "ddp/few_shot_k2"
    record = json.loads((run / "finetune/phase.json").read_text())
    clips = count_lines(smoke_data / "real/splits/train1_few_shot_2.txt")
    per_rank = -(-clips // 2)  # DistributedSampler gives each of the 2 ranks ceil(N / 2) clips
    assert record["steps"] == -(-per_rank // 4)
    assert list((run / "finetune").glob("events.out.tfevents.*"))
    # rank 0's weights load strictly into the same architecture (every parameter present, nothing extra)
    module = VideoCLIPModule(net=TCCLIP("synthact-tiny", pretrained=None, num_context_tokens=5, merges_per_step=2))
    module.load_state_dict(torch.load(run / "finetune/weights.pt", weights_only=True), strict=True)
    # the same weights tested by one process
    single = smoke_args(
        ROOT / "tasks/few_shot_k2.yaml",
        smoke_data,
        tmp_path / "single",
        "--data.split_dir",
        str(splits),
        "--ckpt_path",
        str(run / "finetune/weights.pt"),
    )
    main(["test", *single[1:]])
    ddp_test = json.loads((run / "results.json").read_text())["tests"][0]
    one_test = json.loads((tmp_path / "single/few_shot_k2/results.json").read_text())["tests"][0]
    assert ddp_test["metrics"] == pytest.approx(one_test["metrics"]) and ddp_test["per_class"] == one_test["per_class"]


def test_evaluation_only_net_runs_the_protocols_tests_without_training(smoke_data, tmp_path):
    """Vanilla CLIP (no trainable parameter) through a zero-shot task: no phase runs, every split is tested."""
    main(
        smoke_args(
            ROOT / "tasks/zero_shot_hmdb51.yaml",
            smoke_data,
            tmp_path,
            "--model.init_args.net.class_path",
            "lightning_modules.models.CLIPZeroShot",
        )
    )
    run = tmp_path / "zero_shot_hmdb51"
    results = json.loads((run / "results.json").read_text())
    assert not list(run.rglob("phase.json")) and not list(run.rglob("*.ckpt"))
    tests = results["tests"]
    assert sorted(t["test"] for t in tests) == ["val1", "val2", "val3"]
    assert all(t["weights"] == "clip" and 0.0 <= t["metrics"]["test/top1"] <= 1.0 for t in tests)
    assert results["method"] == "CLIP" and results["variant"] == "baseline" and results["start"] == "clip"


@pytest.mark.parametrize(
    "net",
    [
        [],  # the task YAMLs' TC-CLIP (configs/smoke.yaml sizes it for 4 frames)
        [
            "--model.init_args.net.class_path",
            "lightning_modules.models.XCLIP",
            "--model.init_args.net.init_args.pretrained",
            "false",
            "--model.init_args.net.init_args.config",
            "TINY_XCLIP",
        ],
    ],
    ids=["tc_clip", "xclip"],
)
def test_tc_clip_and_xclip_train_through_a_task(net, smoke_data, tmp_path):
    """The paper's models through the whole runner (param groups, X-CLIP's re-normalisation, BatchEncoding
    tokens): both phases train and the test top-1 is a valid accuracy."""
    import lightning_modules.models.xclip as xclip

    net = [json.dumps(xclip.TINY_CONFIG) if a == "TINY_XCLIP" else a for a in net]
    main(smoke_args(ROOT / "tasks/few_shot_k4.yaml", smoke_data, tmp_path, *net))
    run = tmp_path / "few_shot_k4"
    assert json.loads((run / "pretrain/phase.json").read_text())["steps"] > 0
    assert json.loads((run / "finetune/phase.json").read_text())["steps"] > 0
    pretrained, finetuned = (torch.load(run / f"{p}/weights.pt", weights_only=True) for p in ("pretrain", "finetune"))
    assert pretrained.keys() == finetuned.keys()
    changed = [k for k in finetuned if not torch.equal(pretrained[k], finetuned[k])]
    assert any(k.startswith("net.") for k in changed), "fine-tuning changed no network weight"
    top1 = json.loads((run / "results.json").read_text())["tests"][0]["metrics"]["test/top1"]
    assert 0.0 <= top1 <= 1.0


def test_a_run_without_synthetic_training_is_reported_as_none(smoke_data, task_run, tmp_path, capsys):
    """`--task.synthetic false` (the baseline: the reference recipe without synthetic data) runs no synthetic
    phase: results.json records no synthetic set and the plain method name, so `tasks report` keeps it apart
    from the run pre-trained on the manifest: a "TC-CLIP" row and a "TC-CLIP+Ours" row, as the paper's tables."""
    from tasks.__main__ import main as tasks_main

    main(smoke_args(ROOT / "tasks/few_shot_k2.yaml", smoke_data, tmp_path / "none", "--task.synthetic", "false"))
    results = json.loads((tmp_path / "none/few_shot_k2/results.json").read_text())
    assert results["synthetic_manifest"] is None
    assert (results["method"], results["variant"]) == ("TC-CLIP", "baseline")
    assert not (tmp_path / "none/few_shot_k2/pretrain").exists()
    ours = task_run("few_shot_k2")  # the same task with synthetic pre-training (run once per session)
    capsys.readouterr()
    tasks_main(["report", str(tmp_path / "none/few_shot_k2"), str(ours)])
    rows = sorted(line for line in capsys.readouterr().out.splitlines() if line.startswith("| TC-CLIP"))
    assert len(rows) == 2, rows
    assert rows[0].startswith("| TC-CLIP |") and "| few_shot | none | 1 |" in rows[0]
    assert rows[1].startswith("| TC-CLIP+Ours |") and "synthetic/ie/manifest.jsonl (template prompts) | 1 |" in rows[1]


# ---------------------------------------------------------------------------------------------- issue 15


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def smoke_task_yaml(tmp_path: Path, name: str, recipe: dict) -> Path:
    """A task YAML holding the smoke settings itself (so they are the base, not user overrides) and `recipe`."""
    config = yaml.safe_load((ROOT / "configs/smoke.yaml").read_text())
    config["task"] = {"name": name, "from_clip": True}
    config["recipe"] = recipe
    config["model"]["class_path"] = "lightning_modules.video_clip.VideoCLIPModule"
    config["model"]["init_args"]["net"]["class_path"] = "lightning_modules.models.TCCLIP"
    config["data"]["class_path"] = "datamodules.action.ActionDataModule"
    for key in ("max_epochs", "accumulate_grad_batches"):
        config["trainer"].pop(key)
    for key in ("lr", "warmup_epochs"):
        config["model"]["init_args"].pop(key)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def data_args(data: Path, root: Path) -> list[str]:
    return smoke_args(ROOT / "x", data, root)[5:]  # the --data.* and --task.root arguments


def test_each_phase_runs_its_recipe_overlay_and_command_line_values_win(smoke_data, tmp_path, capsys):
    recipe = {
        "phases": {
            "pretrain": {"trainer": {"max_epochs": 1}, "model": {"init_args": {"lr": 0.01}}},
            "finetune": {"trainer": {"max_epochs": 2}, "model": {"init_args": {"lr": 0.02}}},
        },
        "test": {"data": {"init_args": {"test_views": 1}}},
    }
    task = smoke_task_yaml(tmp_path, "few_shot_k2", recipe)
    # --task.print_phase shows a phase's effective config
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(task), *data_args(smoke_data, tmp_path / "p"), "--task.print_phase", "finetune"])
    assert exit_info.value.code == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert (shown["trainer"]["max_epochs"], shown["model"]["init_args"]["lr"]) == (2, 0.02)
    # each phase trains with its own values and saves them
    main(["fit", "--config", str(task), *data_args(smoke_data, tmp_path / "a")])
    run = tmp_path / "a/few_shot_k2"
    for phase, epochs, lr in (("pretrain", 1, 0.01), ("finetune", 2, 0.02)):
        saved = yaml.safe_load((run / phase / "config.yaml").read_text())
        assert (saved["trainer"]["max_epochs"], saved["model"]["init_args"]["lr"]) == (epochs, lr)
        assert json.loads((run / phase / "phase.json").read_text())["epochs"] == epochs
    finetune_steps = json.loads((run / "finetune/phase.json").read_text())["steps"]
    # the command line overrides the recipe in every phase
    main(
        [
            "fit",
            "--config",
            str(task),
            *data_args(smoke_data, tmp_path / "b"),
            "--trainer.max_epochs",
            "1",
            "--model.init_args.lr",
            "0.005",
            "--trainer.accumulate_grad_batches",
            "2",
        ]
    )
    run = tmp_path / "b/few_shot_k2"
    for phase in ("pretrain", "finetune"):
        saved = yaml.safe_load((run / phase / "config.yaml").read_text())
        assert (saved["trainer"]["max_epochs"], saved["model"]["init_args"]["lr"]) == (1, 0.005)
        assert saved["trainer"]["accumulate_grad_batches"] == 2
    batches = count_lines(smoke_data / "real/splits/train1_few_shot_2.txt") // 4
    assert finetune_steps == 2 * batches  # 2 epochs
    assert json.loads((run / "finetune/phase.json").read_text())["steps"] == batches // 2  # 1 epoch, accumulating 2


def test_a_recipe_phase_the_task_does_not_have_is_refused(smoke_data, tmp_path):
    task = smoke_task_yaml(tmp_path, "few_shot_k2", {"phases": {"finetun": {"trainer": {"max_epochs": 3}}}})
    message = r"recipe sets phase\(s\) finetun, but no task has such a phase; few_shot_k2 has pretrain, finetune"
    with pytest.raises(ValueError, match=message):
        main(["fit", "--config", str(task), *data_args(smoke_data, tmp_path)])


def test_null_on_the_command_line_arrives_as_none(capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "fit",
                "--config",
                str(ROOT / "tasks/few_shot_k4.yaml"),
                "--model.init_args.net.init_args.pretrained",
                "null",
                "--print_config",
            ]
        )
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["init_args"]["net"]["init_args"]["pretrained"] is None


def test_a_dataset_fragment_is_given_with_data_and_a_misplaced_fragment_is_named(capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "fit",
                "--config",
                str(ROOT / "tasks/few_shot_k4.yaml"),
                "--data",
                str(ROOT / "configs/datasets/ucf101.yaml"),
                "--print_config",
            ]
        )
    assert yaml.safe_load(capsys.readouterr().out)["data"]["init_args"]["label_file"] == "data/ucf101/labels.csv"
    proc = run_cli("fit", "--config", "tasks/few_shot_k4.yaml", "--config", "configs/datasets/ucf101.yaml")
    assert proc.returncode == 2 and "Traceback (most recent call last)" not in proc.stderr
    assert "is a `data` fragment: give it as --data configs/datasets/ucf101.yaml" in proc.stderr


def test_validate_runs_the_tasks_lists_and_test_with_ckpt_path_needs_no_fit(smoke_data, task_run, tmp_path, caplog):
    weights = task_run("few_shot_k2") / "finetune/weights.pt"
    first = json.loads((task_run("few_shot_k2") / "results.json").read_text())
    caplog.clear()
    with caplog.at_level(logging.INFO):
        main(["validate", *smoke_args(ROOT / "tasks/few_shot_k2.yaml", smoke_data, task_run("few_shot_k2").parent)[1:]])
    assert f"validate validate/test: val/top1 {first['tests'][0]['metrics']['test/top1']:.4f}" in caplog.text
    # a fresh root: the task names the test list and labels, --ckpt_path the weights
    main(["test", *smoke_args(ROOT / "tasks/few_shot_k2.yaml", smoke_data, tmp_path, "--ckpt_path", str(weights))[1:]])
    again = json.loads((tmp_path / "few_shot_k2/results.json").read_text())
    tested = {k: v for k, v in first["metrics"].items() if k.startswith("test/")}  # fit also reports last/*
    assert again["metrics"] == tested and again["tests"][0]["weights"] == str(weights)
    assert again["ckpt_path"] == str(weights)
    # predict: one row per clip of the test list
    args = smoke_args(ROOT / "tasks/few_shot_k2.yaml", smoke_data, tmp_path, "--ckpt_path", str(weights))
    main(["predict", *args[1:]])
    rows = (tmp_path / "few_shot_k2/predict/test/predictions.csv").read_text().splitlines()
    assert len(rows) == 1 + count_lines(smoke_data / "real/splits/val1.txt")


def test_an_evaluation_only_net_tests_without_a_fit(smoke_data, tmp_path):
    main(
        [
            "test",
            *smoke_args(
                ROOT / "tasks/zero_shot_ucf101.yaml",
                smoke_data,
                tmp_path,
                "--model",
                str(ROOT / "configs/models/clip_b16.yaml"),
                "--model.init_args.net.init_args.arch",
                "synthact-tiny",
                "--model.init_args.net.init_args.pretrained",
                "null",
            )[1:],
        ]
    )
    results = json.loads((tmp_path / "zero_shot_ucf101/results.json").read_text())
    assert [t["test"] for t in results["tests"]] == ["val1", "val2", "val3"] and results["method"] == "CLIP"


def test_zero_shot_needs_a_kinetics_model_unless_told_to_start_from_clip(smoke_data, tmp_path):
    started = time.time()
    args = smoke_args(ROOT / "tasks/zero_shot_hmdb51.yaml", smoke_data, tmp_path)
    proc = run_cli(*[a for a in args], "--task.from_clip", "false")
    assert proc.returncode == 2 and "Traceback (most recent call last)" not in proc.stderr
    [error] = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]  # one line
    assert "runs/zero_shot_k400/train/best.pt not found" in error and "--task.from_clip true" in error
    assert time.time() - started < 60 and not (tmp_path / "zero_shot_hmdb51").exists()


def test_zero_shot_starts_from_the_zero_shot_k400_best_epoch(smoke_data, task_run, tmp_path):
    weights = task_run("zero_shot_k400") / "train/best.pt"
    main(
        smoke_args(
            ROOT / "tasks/zero_shot_ucf101.yaml",
            smoke_data,
            tmp_path,
            "--task.from_clip",
            "false",
            "--task.init_weights",
            str(weights),
            "--task.synthetic",
            "false",
        )
    )
    results = json.loads((tmp_path / "zero_shot_ucf101/results.json").read_text())
    assert results["start"] == str(weights) and results["variant"] == "baseline"
    tested = [t["weights"] for t in results["tests"] if t["group"] == "test"]  # the baseline tests the start model
    assert tested == [str(weights)] * 3


def test_user_errors_are_one_line_and_help_exits_zero(tmp_path):
    proc = run_cli("fit", "--config", "tasks/few_shot_k4.yaml", "--task.name", "nope")
    assert proc.returncode == 2 and "Traceback (most recent call last)" not in proc.stderr
    [error] = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]  # one line
    assert "unknown task 'nope'; registered tasks:" in error
    proc = run_cli("--debug", "fit", "--config", "tasks/few_shot_k4.yaml", "--task.name", "nope")
    assert "Traceback (most recent call last)" in proc.stderr
    help_ = subprocess.run([sys.executable, "-m", "tasks", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert help_.returncode == 0 and "report" in help_.stdout and "list" in help_.stdout


def test_training_reads_a_frame_folder_list(smoke_data, tmp_path):
    """The HMDB-51-LT list `python -m datamodules splits long-tail` writes from the official splits is a
    frame-folder list (`Class/clip n_frames label`); the one list reader gives training its clips."""
    from datamodules.action import ActionDataModule

    frames = tmp_path / "frames"
    import av

    lines, list_file = [], smoke_data / "real/splits/train1_few_shot_2.txt"
    entries = [line.rsplit(" ", 1) for line in list_file.read_text().splitlines() if line.strip()]
    for clip, label in entries[:4]:
        folder = frames / Path(clip).with_suffix("")
        folder.mkdir(parents=True)
        with av.open(str(smoke_data / "real/videos" / clip)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                frame.to_image().save(folder / f"img_{i + 1:05d}.jpg")
        lines.append(f"{Path(clip).with_suffix('')} {i + 1} {label}")
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "train_lt.txt").write_text("\n".join(lines) + "\n")
    datamodule = ActionDataModule(
        label_file=str(smoke_data / "labels.csv"),
        video_root=str(frames),
        split_dir=str(splits),
        train_list="train_lt.txt",
        num_frames=4,
        image_size=32,
        batch_size=2,
        num_workers=0,
    )
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["video"].shape[:2] == (2, 4) and len(datamodule.datasets["train"]) == 4


def test_a_killed_phase_resumes_mid_epoch_by_default_and_tensorboard_purges_the_repeated_steps(smoke_data, tmp_path):
    """last.ckpt is written every N steps by default; a run killed after it resumes there, and the resumed
    TensorBoard file starts with a purge marker at that step, so no step has two points."""
    from tasks.runner import TaskConfig

    assert TaskConfig().checkpoint_every_n_steps  # on by default
    crash = tmp_path / "crashmod.py"
    crash.write_text(
        "from lightning.pytorch.callbacks import Callback\n"
        "class CrashAt(Callback):\n"
        "    def __init__(self, step: int = 5):\n"
        "        self.step = step\n"
        "    def on_train_batch_end(self, trainer, *args):\n"
        "        if trainer.global_step >= self.step:\n"
        "            raise RuntimeError('killed')\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        args = smoke_args(
            ROOT / "tasks/zero_shot_ucf101.yaml", smoke_data, tmp_path, "--task.checkpoint_every_n_steps", "2"
        )
        with pytest.raises(RuntimeError, match="killed"):
            main([*args, "--trainer.callbacks+=crashmod.CrashAt", "--trainer.callbacks.init_args.step", "5"])
    finally:
        sys.path.remove(str(tmp_path))
    phase = tmp_path / "zero_shot_ucf101/train"
    assert torch.load(phase / "checkpoints/last.ckpt", weights_only=False)["global_step"] == 4
    main(args)
    assert json.loads((phase / "phase.json").read_text())["steps"] == -(-32 // 4)
    files = sorted(phase.glob("events.out.tfevents.*"))
    assert len(files) == 2
    points = tensorboard_points(files)
    assert sorted(points) == list(range(8)) and set(points.values()) == {1}
