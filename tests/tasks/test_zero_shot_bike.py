"""BIKE through a whole zero-shot task on the smoke config (`--model configs/models/bike_tiny.yaml`)."""

import json
from pathlib import Path

import torch

from lightning_modules.models import BIKE
from lightning_modules.video_clip import VideoCLIPModule
from tasks.report import main as report
from train import main

ROOT = Path(__file__).resolve().parents[2]


def test_bike_tiny_trains_through_zero_shot_from_given_start_weights(smoke_data, tmp_path, capsys):
    """The synthetic phase starts from the given weights (a stand-in for a K400-trained BIKE) and changes
    CLIP's image tower, the temporal module and the attribute head, not the frozen text tower; the three val
    lists are tested and the report shows a BIKE+Ours row."""
    torch.manual_seed(0)
    start = VideoCLIPModule(
        net=BIKE("synthact-tiny", None, temporal_layers=2, attribute_weight=0.3, attribute_top_k=2)
    ).state_dict()
    torch.save(start, tmp_path / "start.pt")
    main(
        [
            "fit",
            "--config",
            str(ROOT / "tasks/zero_shot_ucf101.yaml"),
            "--config",
            str(ROOT / "configs/smoke.yaml"),
            "--model",
            str(ROOT / "configs/models/bike_tiny.yaml"),
            "--data.label_file",
            str(smoke_data / "labels.csv"),
            "--data.video_root",
            str(smoke_data / "real/videos"),
            "--data.split_dir",
            str(smoke_data / "real/splits"),
            "--data.synthetic_manifest",
            str(smoke_data / "synthetic/ie/manifest.jsonl"),
            "--data.labels_dir",
            str(smoke_data),
            "--task.root",
            str(tmp_path / "runs"),
            "--task.init_weights",
            str(tmp_path / "start.pt"),
        ]
    )
    run = tmp_path / "runs/zero_shot_ucf101"
    assert json.loads((run / "train/phase.json").read_text())["steps"] > 0
    trained = torch.load(run / "train/weights.pt", weights_only=True)
    assert trained.keys() == start.keys()
    changed = {k for k in trained if not torch.equal(start[k], trained[k])}
    for part in ("net.clip.visual.", "net.temporal.", "net.sentence_head.", "net.clip.logit_scale"):
        assert any(k.startswith(part) for k in changed), f"fine-tuning left {part}* unchanged"
    assert not any(k.startswith("net.clip.transformer.") for k in changed)  # text tower frozen (fix_text)
    results = json.loads((run / "results.json").read_text())
    assert sorted(t["test"] for t in results["tests"] if t["group"] == "test") == ["val1", "val2", "val3"]
    assert sorted(t["test"] for t in results["tests"] if t["group"] == "wise_ft") == ["val1", "val2", "val3"]
    assert all(0.0 <= t["metrics"]["test/top1"] <= 1.0 for t in results["tests"])
    assert results["synthetic_manifest"].endswith("manifest.jsonl")
    capsys.readouterr()
    assert report([str(run)]) == 0
    out = capsys.readouterr().out
    assert "| BIKE+Ours |" in out
