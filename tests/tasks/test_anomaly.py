"""The anomaly tasks: `anomaly_ucf_crime` (UMIL's MIL baseline end to end, the default) and
`anomaly_ucf_crime_features` (frozen features): registration, YAMLs, the real UCF-Crime lists, smoke runs
through train.py on planted-signal worlds (AUC must exceed 0.9), and `python -m tasks evaluate-anomaly`."""

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

# MIL_ANCHORS: both worlds below give some abnormal training videos the planted signal throughout. MIL trains
# on each bag's top-scored instance; a net whose random init scores the planted signal below the background
# never picks a planted instance of a partly abnormal bag, pushes the background up (abnormal bags) and down
# (normal ones) to a stand-off, and the tiny run ends inverted (AUC 0.0) or half-way, by the luck of its
# draws (seen on 1 to 3 seeds in 10, with either loader). In an anomalous-throughout bag every instance is
# planted, so its top one is, whatever the init: the signal is learnt, then localised in the partly abnormal
# training and test videos (AUC 1.0 on every seed tried).


def _bag(rng: np.random.Generator, signal: np.ndarray, planted: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """(S, D) bag of L2-normalised features (as video encoders give): random directions, pulled towards
    `signal` in the segments of each [start, end) range."""
    bag = rng.normal(size=(SEGMENTS, DIM)).astype(np.float32) / np.sqrt(DIM)  # rows of norm about 1
    for start, end in planted:
        bag[start:end] += signal
    return torch.from_numpy(bag / np.linalg.norm(bag, axis=1, keepdims=True))


def write_planted(root: Path, seed: int = 0) -> dict[str, Path]:
    """UCF-Crime-shaped lists, a synthetic manifest and cached features; abnormal bags carry a signal.

    Every 4th abnormal training bag carries it in all its segments (MIL_ANCHORS below)."""
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
        planted = ((0, SEGMENTS),) if i % 4 == 0 else (planted_range(),)
        save_features(feature_path(features, path), _bag(rng, signal, planted), FRAMES, path)
        train_lines.append(path := f"Training_Normal_Videos_Anomaly/Normal_Videos{i:03d}_x264.mp4")
        save_features(feature_path(features, path), _bag(rng, signal, ()), FRAMES, path)
    (splits / "Anomaly_Train.txt").write_text("\n".join(train_lines) + "\n")

    rows = []
    for i in range(32):
        name = "Fighting" if i % 2 == 0 else "Normal walking"
        rows.append(
            ManifestRow(
                row_id=f"syn{i:03d}",
                class_id=i % 2,
                class_name=name,
                strategy="ie",
                prompt=name,
                seed=i,
                video=f"videos/syn{i:03d}.mp4",
                num_frames=49,
                fps=8.0,
                width=64,
                height=64,
                backend="procedural",
            )
        )
        planted = (planted_range(),) if i % 2 == 0 else ()
        save_features(feature_path(features, f"syn{i:03d}.mp4"), _bag(rng, signal, planted), 49, f"syn{i:03d}")
    manifest = root / "synthetic" / "manifest.jsonl"
    write_jsonl(manifest, rows)

    test_lines, umil_lines = [], []
    for i in range(6):
        name = f"Arrest{i:03d}_x264.mp4"
        ranges = (planted_range(), (26, 30)) if i == 0 else (planted_range(),)  # video 0: two intervals
        save_features(feature_path(features, name), _bag(rng, signal, ranges), FRAMES, name)
        slots = [x for s, e in ranges for x in (10 * s + 1, 10 * e)] + [-1, -1]  # 1-indexed inclusive frames
        test_lines.append(f"{name}  Arrest  " + "  ".join(map(str, slots[:4])))
        slots = [x for s, e in ranges for x in (10 * s, 10 * e)] + [-1, -1]  # UMIL: 0-based end-exclusive
        umil_lines.append(f"Arrest/{name} {FRAMES} 2 " + " ".join(map(str, slots[:4])))
        name = f"Normal_Videos_{i:03d}_x264.mp4"
        save_features(feature_path(features, name), _bag(rng, signal, ()), FRAMES, name)
        test_lines.append(f"{name}  Normal  -1  -1  -1  -1")
        umil_lines.append(f"Normal/{name} {FRAMES} 0 -1 -1 -1 -1")
    (splits / "Temporal_Anomaly_Annotation.txt").write_text("\n".join(test_lines) + "\n")
    (splits / "UCF_test.txt").write_text("\n".join(umil_lines) + "\n")
    return {"features": features, "splits": splits, "manifest": manifest}


def test_features_task_registered_with_its_yaml():
    spec = get_task("anomaly_ucf_crime_features")
    assert "anomaly_ucf_crime_features" in list_tasks()
    assert (spec.protocol, spec.dataset) == ("anomaly", "ucf_crime")
    assert [(p.name, p.source, p.train_list) for p in spec.phases] == [
        ("pretrain", "synthetic", None),
        ("train", "real", "Anomaly_Train.txt"),
    ]
    assert spec.test_list == "Temporal_Anomaly_Annotation.txt"
    text = (ROOT / "tasks" / "anomaly_ucf_crime_features.yaml").read_text()
    assert "name: anomaly_ucf_crime_features" in text and "test_list: Temporal_Anomaly_Annotation.txt" in text


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
        "--config",
        str(ROOT / "tasks" / "anomaly_ucf_crime_features.yaml"),
        "--config",
        str(ROOT / "configs" / "smoke_anomaly_features.yaml"),
        "--task.root",
        str(runs),
        "--data.feature_dir",
        str(data["features"]),
        "--data.split_dir",
        str(data["splits"]),
        "--data.synthetic_manifest",
        str(data["manifest"]),
    ]


def test_features_smoke_run_reaches_auc_on_planted_signal(tmp_path):
    data = write_planted(tmp_path / "data")
    runs = tmp_path / "runs"
    train.main(args=_args("fit", data, runs))
    results_file = runs / "anomaly_ucf_crime_features" / "results.json"
    results = json.loads(results_file.read_text())
    assert results["protocol"] == "anomaly"
    assert results["label_file"].endswith("Temporal_Anomaly_Annotation.txt")
    assert results["metrics"]["test/auc"] > 0.9 and results["metrics"]["test/auc_a"] > 0.9
    assert results["metrics"]["test/auc"] == results["metrics"]["test/sultani/auc"]  # this variant's default
    assert results["metrics"]["test/umil/auc"] > 0.9
    scores = json.loads((runs / "anomaly_ucf_crime_features" / "test" / "test" / "SCORES.json").read_text())
    assert len(scores) == 12 and all(len(s) == SEGMENTS for s in scores.values())  # 32 segment scores per video
    for phase, steps in (("pretrain", 5 * 2), ("train", 20 * 6)):  # epochs x ceil(max(abnormal, normal) / 8)
        assert json.loads((runs / "anomaly_ucf_crime_features" / phase / "phase.json").read_text())["steps"] == steps
    # `test` re-tests the finished run's final weights: the same numbers
    results_file.unlink()
    train.main(args=_args("test", data, runs))
    assert json.loads(results_file.read_text())["metrics"] == pytest.approx(results["metrics"])


def test_missing_features_fail_before_training(tmp_path):
    data = write_planted(tmp_path / "data")
    feature_path(data["features"], "Abuse/Abuse003_x264.mp4").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"1 of 96 videos .*Anomaly_Train.txt.*Abuse003_x264.*python -m datamodules features"
    ):
        train.main(args=_args("fit", data, tmp_path / "runs"))


# ------------------------------------------------------------------------ anomaly_ucf_crime (end to end)

VIDEO_FRAMES, SIZE = 64, 32  # 64 frames: UMIL's 32 smoothing windows are 2 frames, test segments 8 (4 x 2)


def _clip(rng: np.random.Generator, planted: tuple[tuple[int, int], ...]) -> np.ndarray:
    """(64, 32, 32, 3) uint8 clip: dark noise, a bright square on the frames of each [start, end)."""
    frames = rng.integers(30, 90, size=(VIDEO_FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    for start, end in planted:
        frames[start:end, 8:24, 8:24] = 235
    return frames


def write_video_world(root: Path, seed: int = 0) -> dict[str, Path]:
    """UMIL-layout lists (UCF_train.txt, UCF_test.txt), the temporal annotation, a synthetic manifest and
    small mp4 clips; abnormal clips show a bright square on some frames, the first 2 abnormal training clips
    on all of them (MIL_ANCHORS below)."""
    from generation.video_io import write_video

    rng = np.random.default_rng(seed)
    videos, splits = root / "videos", root / "splits"
    splits.mkdir(parents=True)

    def interval() -> tuple[int, int]:
        start = 8 * int(rng.integers(0, 6))
        return start, start + 16

    def clip(path: str, planted) -> None:
        (videos / path).parent.mkdir(parents=True, exist_ok=True)
        write_video(videos / path, _clip(rng, planted))

    train = []
    for i in range(6):
        clip(path := f"Abuse/Abuse{i:03d}_x264.mp4", ((0, VIDEO_FRAMES),) if i < 2 else (interval(),))
        train.append(f"{path} 0 {VIDEO_FRAMES - 1} 1")
        clip(path := f"Training_Normal_Videos_Anomaly/Normal_Videos{i:03d}_x264.mp4", ())
        train.append(f"{path} 0 {VIDEO_FRAMES - 1} 0")
    (splits / "UCF_train.txt").write_text("\n".join(train) + "\n")

    rows = []
    for i in range(4):
        name = "Fighting" if i % 2 == 0 else "Normal walking"
        clip(f"../synthetic/videos/syn{i:03d}.mp4", (interval(),) if i % 2 == 0 else ())
        rows.append(
            ManifestRow(
                row_id=f"syn{i:03d}",
                class_id=i % 2,
                class_name=name,
                strategy="ie",
                prompt=name,
                seed=i,
                video=f"videos/syn{i:03d}.mp4",
                num_frames=VIDEO_FRAMES,
                fps=8.0,
                width=SIZE,
                height=SIZE,
                backend="procedural",
            )
        )
    manifest = root / "synthetic" / "manifest.jsonl"
    write_jsonl(manifest, rows)

    umil, temporal = [], []
    for i in range(4):
        ranges = ((8, 24), (48, 56)) if i == 0 else (interval(),)  # video 0: two intervals
        clip(path := f"Arrest/Arrest{i:03d}_x264.mp4", ranges)
        slots = [x for s, e in ranges for x in (s, e)] + [-1, -1]  # UMIL: 0-based end-exclusive
        umil.append(f"{path} {VIDEO_FRAMES} 2 " + " ".join(map(str, slots[:4])))
        slots = [x for s, e in ranges for x in (s + 1, e)] + [-1, -1]  # temporal: 1-indexed inclusive
        temporal.append(f"{Path(path).name}  Arrest  " + "  ".join(map(str, slots[:4])))
        clip(path := f"Testing_Normal_Videos_Anomaly/Normal_Videos_{i:03d}_x264.mp4", ())
        umil.append(f"{path} {VIDEO_FRAMES} 0 -1 -1 -1 -1")
        temporal.append(f"{Path(path).name}  Normal  -1  -1  -1  -1")
    (splits / "UCF_test.txt").write_text("\n".join(umil) + "\n")
    (splits / "Temporal_Anomaly_Annotation.txt").write_text("\n".join(temporal) + "\n")
    return {"videos": videos, "splits": splits, "manifest": manifest}


def test_end_to_end_task_registered_with_umil_values_in_its_yaml():
    spec = get_task("anomaly_ucf_crime")
    assert (spec.protocol, spec.dataset, spec.test_list) == ("anomaly", "ucf_crime", "UCF_test.txt")
    assert [(p.name, p.source, p.train_list) for p in spec.phases] == [
        ("pretrain", "synthetic", None),
        ("train", "real", "UCF_train.txt"),
    ]
    text = (ROOT / "tasks" / "anomaly_ucf_crime.yaml").read_text()
    for value in (
        "lightning_modules.umil.UMILBaselineModule",
        "microsoft/xclip-base-patch32",
        "lr: 8.0e-6",
        "smoothness: 0.01",
        "sparsity: 0.001",
        "num_instances: 16",
        "frames_per_instance: 5",
        "frame_interval: 6",
        "default_protocol: umil",
    ):
        assert value in text


def _e2e_args(subcommand: str, world: dict[str, Path], runs: Path) -> list[str]:
    return [
        subcommand,
        "--config",
        str(ROOT / "tasks" / "anomaly_ucf_crime.yaml"),
        "--config",
        str(ROOT / "configs" / "smoke_anomaly.yaml"),
        "--task.root",
        str(runs),
        "--data.video_root",
        str(world["videos"]),
        "--data.split_dir",
        str(world["splits"]),
        "--data.synthetic_manifest",
        str(world["manifest"]),
    ]


def test_end_to_end_smoke_run_reaches_auc_on_planted_signal(tmp_path, capsys):
    from tasks.__main__ import main as tasks_main

    world = write_video_world(tmp_path / "data")
    runs = tmp_path / "runs"
    train.main(args=_e2e_args("fit", world, runs))
    run = runs / "anomaly_ucf_crime"
    results = json.loads((run / "results.json").read_text())
    metrics = results["metrics"]
    assert results["label_file"].endswith("UCF_test.txt")
    assert metrics["test/auc"] > 0.9 and metrics["test/auc_a"] > 0.9
    assert metrics["test/auc"] == metrics["test/umil/auc"]
    assert {"test/sultani/auc", "test/sultani/auc_a"} <= set(metrics)
    for phase, steps in (("pretrain", 1 * 1), ("train", 4 * 3)):  # epochs x (videos // batch 4)
        assert json.loads((run / phase / "phase.json").read_text())["steps"] == steps
    # the report reads what the run wrote: Table 5's MIL row with both AUCs (in %, two decimals)
    capsys.readouterr()
    assert tasks_main(["report", str(run)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| MIL+Ours |"))
    assert row.endswith(f"| {100 * metrics['test/auc']:.2f} | {100 * metrics['test/auc_a']:.2f} |")
    # `test` re-tests the finished run's final weights: the same numbers
    (run / "results.json").unlink()
    train.main(args=_e2e_args("test", world, runs))
    assert json.loads((run / "results.json").read_text())["metrics"] == pytest.approx(metrics)
    scores_file = run / "test" / "test" / "SCORES.json"
    scores = json.loads(scores_file.read_text())
    assert len(scores) == 8 and all(len(s) == 8 for s in scores.values())  # 64 frames / 8-frame segments
    # evaluate-anomaly on the test's SCORES.json gives the numbers the run recorded, under both protocols
    capsys.readouterr()
    for protocol, annotation, extra in (
        ("umil", "UCF_test.txt", []),
        ("sultani", "Temporal_Anomaly_Annotation.txt", ["--frame-counts", str(world["splits"] / "UCF_test.txt")]),
    ):
        code = tasks_main(
            [
                "evaluate-anomaly",
                "--annotation",
                str(world["splits"] / annotation),
                "--scores",
                str(scores_file),
                "--protocol",
                protocol,
                *extra,
            ]
        )
        printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert code == 0
        assert printed == pytest.approx(
            {"auc": metrics[f"test/{protocol}/auc"], "auc_a": metrics[f"test/{protocol}/auc_a"]}
        )


def test_evaluate_anomaly_cli_prints_one_json_line_and_fails_clearly(tmp_path, capsys):
    from tasks.__main__ import main as tasks_main

    annotation = tmp_path / "UCF_test.txt"
    annotation.write_text("frames/Arrest/A_x264.mp4 40 2 4 8 20 24\nframes/Normal/N_x264.mp4 40 0 -1 -1 -1 -1\n")
    scores = tmp_path / "SCORES.json"
    scores.write_text(json.dumps({"A_x264.mp4": [0.9, 0.1, 0.8, 0.2], "N_x264.mp4": [0.5, 0.3]}))
    assert tasks_main(["evaluate-anomaly", "--annotation", str(annotation), "--scores", str(scores)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and json.loads(out[0]) == pytest.approx({"auc": 528 / 576, "auc_a": 208 / 256})
    scores.write_text(json.dumps({"A_x264.mp4": [0.9]}))
    assert tasks_main(["evaluate-anomaly", "--annotation", str(annotation), "--scores", str(scores)]) == 2
    assert "1 of 2 annotated videos have no scores (e.g. N_x264.mp4)" in capsys.readouterr().err


def test_anomaly_prompt_label_set_covers_ucf_crime_and_writes_ie_prompts():
    from datamodules.annotations import UCF_CRIME_CLASSES, read_labels
    from generation.prompts import labels_from_csv, make_prompts

    path = ROOT / "configs" / "datasets" / "ucf_crime_anomaly_labels.csv"
    names = read_labels(path)
    normal = [n for n in names if "normal" in n.lower()]  # what the datamodules count as normal by default
    assert normal == ["Normal activity"]
    assert sorted(n for n in names if n not in normal) == sorted(UCF_CRIME_CLASSES[1:])  # the 13 anomaly classes
    rows = make_prompts(labels_from_csv(path), strategy="ie", videos_per_class=4)
    assert len(rows) == 14 * 4 and {r.class_name for r in rows} == set(names)
    assert all(r.env_text and r.char_text for r in rows)  # information enhancement: where + who
