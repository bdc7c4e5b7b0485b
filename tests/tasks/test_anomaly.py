"""The anomaly_ucf_crime task: registration, its YAML, the real UCF-Crime lists, and a smoke run through
train.py on cached features with a planted anomaly signal (AUC must exceed 0.9)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import train
from datamodules.annotations import read_crime_paths, read_crime_temporal
from datamodules.features import feature_path, save_features
from datamodules.manifest import ManifestRow, write_jsonl
from tasks import get_task, list_tasks

ROOT = Path(__file__).resolve().parents[2]
DIM, SEGMENTS, FRAMES = 16, 32, 320  # 10 frames per segment


def _bag(rng: np.random.Generator, signal: np.ndarray, planted: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """(S, D) bag of L2-normalised features (as video encoders give): random directions, pulled towards
    `signal` in the segments of each [start, end) range."""
    bag = rng.normal(size=(SEGMENTS, DIM)).astype(np.float32) / np.sqrt(DIM)  # rows of norm about 1
    for start, end in planted:
        bag[start:end] += signal
    return torch.from_numpy(bag / np.linalg.norm(bag, axis=1, keepdims=True))


def write_planted(root: Path, seed: int = 0) -> dict[str, Path]:
    """UCF-Crime-shaped lists, a synthetic manifest and cached features; abnormal bags carry a signal."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=DIM).astype(np.float32)
    signal = 2.0 * direction / np.linalg.norm(direction)  # twice the noise's norm
    features, splits = root / "features", root / "splits"
    splits.mkdir(parents=True)

    def planted_range() -> tuple[int, int]:
        start = int(rng.integers(0, SEGMENTS - 6))
        return start, start + int(rng.integers(2, 6))

    train_lines = []
    for i in range(48):
        train_lines.append(path := f"Abuse/Abuse{i:03d}_x264.mp4")
        save_features(feature_path(features, path), _bag(rng, signal, (planted_range(),)), FRAMES, path)
        train_lines.append(path := f"Training_Normal_Videos_Anomaly/Normal_Videos{i:03d}_x264.mp4")
        save_features(feature_path(features, path), _bag(rng, signal, ()), FRAMES, path)
    (splits / "Anomaly_Train.txt").write_text("\n".join(train_lines) + "\n")

    rows = []
    for i in range(32):
        name = "Fighting" if i % 2 == 0 else "Normal walking"
        rows.append(
            ManifestRow(
                row_id=f"syn{i:03d}", class_id=i % 2, class_name=name, strategy="ie", prompt=name, seed=i,
                video=f"videos/syn{i:03d}.mp4", num_frames=49, fps=8.0, width=64, height=64, backend="procedural",
            )
        )  # fmt: skip
        planted = (planted_range(),) if i % 2 == 0 else ()
        save_features(feature_path(features, f"syn{i:03d}.mp4"), _bag(rng, signal, planted), 49, f"syn{i:03d}")
    manifest = root / "synthetic" / "manifest.jsonl"
    write_jsonl(manifest, rows)

    test_lines = []
    for i in range(6):
        name = f"Arrest{i:03d}_x264.mp4"
        ranges = (planted_range(), (26, 30)) if i == 0 else (planted_range(),)  # video 0: two intervals
        save_features(feature_path(features, name), _bag(rng, signal, ranges), FRAMES, name)
        slots = [x for s, e in ranges for x in (10 * s + 1, 10 * e)] + [-1, -1]  # 1-indexed inclusive frames
        test_lines.append(f"{name}  Arrest  " + "  ".join(map(str, slots[:4])))
        name = f"Normal_Videos_{i:03d}_x264.mp4"
        save_features(feature_path(features, name), _bag(rng, signal, ()), FRAMES, name)
        test_lines.append(f"{name}  Normal  -1  -1  -1  -1")
    (splits / "Temporal_Anomaly_Annotation.txt").write_text("\n".join(test_lines) + "\n")
    return {"features": features, "splits": splits, "manifest": manifest}


def test_registered_with_its_yaml():
    spec = get_task("anomaly_ucf_crime")
    assert "anomaly_ucf_crime" in list_tasks()
    assert (spec.protocol, spec.dataset) == ("anomaly", "ucf_crime")
    assert [(p.name, p.source, p.train_list) for p in spec.phases] == [
        ("pretrain", "synthetic", None),
        ("train", "real", "Anomaly_Train.txt"),
    ]
    assert spec.test_list == "Temporal_Anomaly_Annotation.txt"
    text = (ROOT / "tasks" / "anomaly_ucf_crime.yaml").read_text()
    assert "name: anomaly_ucf_crime" in text and "test_list: Temporal_Anomaly_Annotation.txt" in text


def test_real_ucf_crime_lists_parse(shared_data):
    splits = shared_data / "splits" / "ucf_crime"
    test = read_crime_temporal(splits / "Temporal_Anomaly_Annotation.txt")
    assert len(test) == 290
    assert sum(v.anomalous for v in test) == 140
    assert all(v.intervals for v in test if v.anomalous) and not any(v.intervals for v in test if not v.anomalous)
    assert sum(len(v.intervals) == 2 for v in test) > 0  # some videos have two anomalous intervals
    train_list = read_crime_paths(splits / "Anomaly_Train.txt")
    assert len(train_list) == 1610
    assert sum(v.anomalous for v in train_list) == 810


def _args(subcommand: str, data: dict[str, Path], runs: Path) -> list[str]:
    return [
        subcommand,
        "--config", str(ROOT / "tasks" / "anomaly_ucf_crime.yaml"),
        "--config", str(ROOT / "configs" / "smoke_anomaly.yaml"),
        "--task.root", str(runs),
        "--data.feature_dir", str(data["features"]),
        "--data.split_dir", str(data["splits"]),
        "--data.synthetic_manifest", str(data["manifest"]),
    ]  # fmt: skip


def test_smoke_run_reaches_auc_on_planted_signal(tmp_path):
    data = write_planted(tmp_path / "data")
    runs = tmp_path / "runs"
    train.main(args=_args("fit", data, runs))
    results_file = runs / "anomaly_ucf_crime" / "results.json"
    results = json.loads(results_file.read_text())
    assert results["protocol"] == "anomaly"
    assert results["label_file"].endswith("Temporal_Anomaly_Annotation.txt")
    assert results["metrics"]["test/auc"] > 0.9
    assert results["metrics"]["test/auc_abnormal"] > 0.9
    for phase, steps in (("pretrain", 5 * 2), ("train", 20 * 6)):  # epochs x ceil(max(abnormal, normal) / 8)
        assert json.loads((runs / "anomaly_ucf_crime" / phase / "phase.json").read_text())["steps"] == steps
    # `test` re-tests the finished run's final weights: the same numbers
    results_file.unlink()
    train.main(args=_args("test", data, runs))
    assert json.loads(results_file.read_text())["metrics"] == pytest.approx(results["metrics"])


def test_missing_features_fail_before_training(tmp_path):
    data = write_planted(tmp_path / "data")
    feature_path(data["features"], "Abuse/Abuse003_x264.mp4").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 96 videos .*Anomaly_Train.txt.*Abuse003_x264.*python -m datamodules features"):
        train.main(args=_args("fit", data, tmp_path / "runs"))
