"""train.py end to end on the smoke config: every task YAML, resume, input errors, DDP."""

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from datamodules.manifest import read_manifest
from generation.demo import build_demo
from lightning_modules.models import ViFiCLIP
from lightning_modules.video_clip import VideoCLIPModule
from generation.score import score_manifest
from tasks import get_task
from train import main

ROOT = Path(__file__).resolve().parents[1]
TASK_YAMLS = sorted((ROOT / "tasks").glob("*.yaml"))


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("smoke")
    build_demo(out, preset="smoke")
    # The ul/uw/uf tasks need CLIP uncertainty: score the synthetic set with the tiny random CLIP.
    score_manifest(out / "synthetic/ie/manifest.jsonl", out / "labels.csv", arch="synthact-tiny", pretrained=None,
                   num_frames=4, progress=False)  # fmt: skip
    return out


def smoke_args(task_yaml: Path, data: Path, root: Path, *extra: str) -> list[str]:
    return [
        "fit", "--config", str(task_yaml), "--config", str(ROOT / "configs/smoke.yaml"),
        "--data.label_file", str(data / "labels.csv"),
        "--data.video_root", str(data / "real/videos"),
        "--data.split_dir", str(data / "real/splits"),
        "--data.synthetic_manifest", str(data / "synthetic/ie/manifest.jsonl"),
        "--task.root", str(root), *extra,
    ]  # fmt: skip


def count_lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def synthetic_clips(task_yaml: Path, manifest: Path) -> int:
    """Clips a task pre-trains on: the whole manifest, or what its UF quantile keeps."""
    data = yaml.safe_load(task_yaml.read_text()).get("data")
    quantile = data.get("init_args", {}).get("uncertainty_filter_quantile") if isinstance(data, dict) else None
    if quantile is None:
        return count_lines(manifest)
    u = np.array([row.uncertainty for row in read_manifest(manifest)])
    return int((u <= np.quantile(u, quantile)).sum())


@pytest.mark.parametrize("task_yaml", TASK_YAMLS, ids=lambda p: p.stem)
def test_every_task_runs_through_the_smoke_config(task_yaml, smoke_data, tmp_path):
    main(smoke_args(task_yaml, smoke_data, tmp_path))
    spec = get_task(task_yaml.stem)
    run = tmp_path / spec.name
    batch = 4  # configs/smoke.yaml
    for phase in spec.phases:
        record = json.loads((run / phase.name / "phase.json").read_text())
        assert record["epochs"] == 1
        if phase.source == "synthetic":
            clips = synthetic_clips(task_yaml, smoke_data / "synthetic/ie/manifest.jsonl")
        else:
            clips = count_lines(smoke_data / "real/splits" / phase.train_list)
        assert record["steps"] == -(-clips // batch)  # one epoch = ceil(clips / batch) steps
        events = EventAccumulator(str(run / phase.name)).Reload()
        assert "train/loss" in events.Tags()["scalars"] and "train/clips" in events.Tags()["images"]
        eps = [e.value for e in events.Scalars("train/eps_mean")]
        if task_yaml.stem.endswith("_ul") and phase.source == "synthetic":
            assert all(0.0 <= x <= 0.3 for x in eps) and max(eps) > 0  # eps_i = 0.3 * u_i, u in [0, 1]
        elif task_yaml.stem.endswith("_ls"):
            assert eps == pytest.approx([0.1] * len(eps))
        else:
            assert eps == [0.0] * len(eps)  # CE, UW, UF, and UL on real clips
        assert (run / phase.name / "checkpoints/last.ckpt").is_file()
    results = json.loads((run / "results.json").read_text())
    assert results["task"] == spec.name and results["test_list"] == "val1.txt"
    assert 0.0 <= results["metrics"]["test/top1"] <= results["metrics"]["test/top5"] <= 1.0


def test_rerun_skips_finished_phases_and_resumes_an_interrupted_one(smoke_data, tmp_path, caplog):
    task_yaml = ROOT / "tasks/few_shot_k2.yaml"
    main(smoke_args(task_yaml, smoke_data, tmp_path))
    run = tmp_path / "few_shot_k2"
    pretrain = (run / "pretrain/phase.json").read_text()
    weights_mtime = (run / "pretrain/weights.pt").stat().st_mtime_ns
    first = json.loads((run / "results.json").read_text())

    # The fine-tune phase "crashed" after its last checkpoint but before it was marked finished.
    (run / "finetune/phase.json").unlink()
    (run / "finetune/weights.pt").unlink()
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


def test_test_subcommand_reloads_the_finished_run(smoke_data, tmp_path):
    task_yaml = ROOT / "tasks/few_shot_k2.yaml"
    main(smoke_args(task_yaml, smoke_data, tmp_path))
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
        (("--data.split_dir", "/nonexistent/splits"), FileNotFoundError, r"split folder not found: /nonexistent/splits"),
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
    splits.mkdir()
    for f in (smoke_data / "real/splits").iterdir():
        (splits / f.name).write_text(f.read_text())
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
    rows = [row.model_copy(update={"entropy": None, "uncertainty": None})
            for row in read_manifest(smoke_data / "synthetic/ie/manifest.jsonl")]  # fmt: skip
    (unscored / "manifest.jsonl").write_text("".join(row.model_dump_json() + "\n" for row in rows))
    args = smoke_args(ROOT / f"tasks/{task}.yaml", smoke_data, tmp_path / "runs",
                      "--data.synthetic_manifest", str(unscored / "manifest.jsonl"))  # fmt: skip
    message = rf"{len(rows)} .*(unscored|no uncertainty).* run `python -m generation score"
    with pytest.raises(ValueError, match=message):
        main(args)
    assert not list((tmp_path / "runs").rglob("*.ckpt"))  # refused before any training step


def test_unknown_config_key_is_rejected_by_the_parser(smoke_data, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(smoke_args(ROOT / "tasks/few_shot_k4.yaml", smoke_data, tmp_path, "--data.num_frame", "4"))
    assert "num_frame" in capsys.readouterr().err


def test_headline_command_without_data_fails_fast_naming_the_path(tmp_path):
    started = time.time()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "fit", "--config", str(ROOT / "tasks/few_shot_k4.yaml")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "data/hmdb51/splits" in proc.stderr and "--data.split_dir" in proc.stderr
    assert time.time() - started < 60


def test_ddp_two_cpu_processes(smoke_data, tmp_path):
    args = smoke_args(ROOT / "tasks/few_shot_k2.yaml", smoke_data, tmp_path, "--trainer.devices", "2",
                      "--trainer.strategy", "ddp")  # fmt: skip
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "few_shot_k2"
    record = json.loads((run / "finetune/phase.json").read_text())
    clips = count_lines(smoke_data / "real/splits/train1_few_shot_2.txt")
    per_rank = -(-clips // 2)  # DistributedSampler gives each of the 2 ranks ceil(N / 2) clips
    assert record["steps"] == -(-per_rank // 4)
    assert "test/top1" in json.loads((run / "results.json").read_text())["metrics"]
    assert list((run / "finetune").glob("events.out.tfevents.*"))
    # rank 0's weights load strictly into the same architecture (every parameter present, nothing extra)
    module = VideoCLIPModule(net=ViFiCLIP("synthact-tiny", pretrained=None))
    module.load_state_dict(torch.load(run / "finetune/weights.pt", weights_only=True), strict=True)
