"""The long-tail top-up variant (`long_tail_{hmdb51,ucf101}_mixed`: one mixed phase on the long-tailed list plus
generated clips filling every class to the head's count) through train.py and configs/smoke.yaml, beside the
pre-train-then-fine-tune variant."""

import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from datamodules.annotations import read_labels, read_video_list
from datamodules.manifest import read_manifest
from tasks import get_task
from tasks.__main__ import main as tasks_main

BATCH = 4  # configs/smoke.yaml
TRAIN_LISTS = {"hmdb51": "train_lt.txt", "ucf101": "ucf101_lt/real/train.csv"}  # under the smoke split_dir


def expected_topup(data: Path, train_list: str) -> tuple[int, int]:
    """(real clips, generated clips) of the top-up phase, counted from the files: each class gets
    min(head count - its count, its generated clips)."""
    names = read_labels(data / "labels.csv")
    real = Counter(e.label for e in read_video_list(data / "real/splits" / train_list, len(names)))
    available = Counter(names.index(r.class_name) for r in read_manifest(data / "synthetic/ie/manifest.jsonl"))
    head = max(real.values())
    return sum(real.values()), sum(min(max(head - real[c], 0), available[c]) for c in range(len(names)))


@pytest.mark.parametrize("dataset", ["hmdb51", pytest.param("ucf101", marks=pytest.mark.slow)])
def test_topup_variant_trains_one_mixed_phase_and_reports_the_groups(dataset, smoke_data, task_run):
    name = f"long_tail_{dataset}_mixed"
    run, spec = task_run(name), get_task(name)
    assert [(p.name, p.source, p.train_list) for p in spec.phases] == [("train", "mixed", TRAIN_LISTS[dataset])]
    real, generated = expected_topup(smoke_data, TRAIN_LISTS[dataset])
    assert 0 < generated  # the smoke world's tail classes lack clips: the top-up adds some
    record = json.loads((run / "train/phase.json").read_text())
    assert (record["source"], record["train_list"], record["epochs"]) == ("mixed", TRAIN_LISTS[dataset], 1)
    assert record["steps"] == math.ceil((real + generated) / BATCH)  # concat: every real and top-up clip once
    # the loader's state went into the checkpoint (mid-epoch resume): the whole epoch was served
    checkpoint = torch.load(run / "train/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    (loader_state,) = checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert loader_state["batches"] == record["steps"] and loader_state["layout"]["rule"] == "concat"
    assert loader_state["layout"]["num_synthetic"] == generated
    assert "train/loss" in EventAccumulator(str(run / "train")).Reload().Tags()["scalars"]

    results = json.loads((run / "results.json").read_text())
    assert (results["task"], results["protocol"], results["phases"]) == (name, "long_tail", ["train"])
    assert "top-up" in results["description"]
    train_list = smoke_data / "real/splits" / TRAIN_LISTS[dataset]
    groups = json.loads(train_list.with_name(train_list.stem + "_groups.json").read_text())
    per_class = results["tests"][0]["per_class"]
    for group in ("head", "tail", "few"):
        values = [per_class[c] for c in groups[group] if per_class[c] is not None]
        assert results["summary"][f"test/{group}"]["mean"] == pytest.approx(sum(values) / len(values))
    assert 0.0 <= results["metrics"]["test/class_mean"] <= 1.0


@pytest.mark.slow
def test_report_shows_head_tail_few_all_for_both_variants(smoke_data, task_run, capsys):
    names = ["long_tail_hmdb51", "long_tail_hmdb51_mixed"]
    runs = [task_run(name) for name in names]
    capsys.readouterr()
    tasks_main(["report", *map(str, runs)])
    out = capsys.readouterr().out
    assert "| head | tail | few | all |" in out
    rows = {name: line for line in out.splitlines() for name in names if f"| {name} |" in line}
    assert set(rows) == set(names)
    for name, run in zip(names, runs):
        summary = json.loads((run / "results.json").read_text())["summary"]
        cells = [f"{100 * summary[f'test/{g}']['mean']:.1f}" for g in ("head", "tail", "few", "all")]
        assert rows[name].endswith("| " + " | ".join(cells) + " |")
