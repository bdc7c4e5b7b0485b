"""UMIL's bag layout (mmaction SampleFrames placement, hand-computed), its test segments, and the video
anomaly datamodule's labels, batches and errors on tiny clips."""

import numpy as np
import pytest

from datamodules.anomaly_video import AnomalyVideoDataModule, instance_indices, segment_indices
from datamodules.manifest import ManifestRow, write_jsonl
from datamodules.resume import EpochSampler, ResumableLoader


def test_test_mode_instances_sit_at_stride_centres():
    # 100 frames, K=4 instances of T=5 frames every 6: stride (100 - 30 + 1) / 4 = 17.75, offsets int(17.75 k + 8.875)
    idx = instance_indices(100, 4, 5, 6, rng=None)
    assert idx[:, 0].tolist() == [8, 26, 44, 62]
    assert idx[0].tolist() == [8, 14, 20, 26, 32]


def test_train_instances_are_random_inside_their_stride():
    idx = instance_indices(100, 4, 5, 6, rng=np.random.default_rng(0))  # stride (100 - 30 + 1) // 4 = 17
    for k, offset in enumerate(idx[:, 0]):
        assert 17 * k <= offset < 17 * (k + 1)
    assert (np.diff(idx, axis=1) == 6).all()


def test_videos_without_a_whole_stride_draw_sorted_offsets():
    idx = instance_indices(40, 16, 5, 6, rng=np.random.default_rng(0))  # (40 - 30 + 1) // 16 = 0, 40 > 30
    offsets = idx[:, 0]
    assert (np.diff(offsets) >= 0).all() and offsets.max() <= 10 and len(set(offsets.tolist())) > 1
    # 30 frames: stride 0 and not longer than 30: offsets round(k / 16), 8 / 16 rounding half to even
    assert instance_indices(30, 16, 5, 6, rng=np.random.default_rng(0))[:, 0].tolist() == [0] * 9 + [1] * 7


def test_short_videos_start_at_zero_and_wrap():
    assert instance_indices(20, 4, 5, 6, rng=np.random.default_rng(0))[0].tolist() == [0, 6, 12, 18, 4]


def test_umil_test_segments_30_frames_last_kept_if_5_frames():
    segments = segment_indices(70, 5, 6)  # [0, 30), [30, 60), [60, 70)
    assert [s.tolist() for s in segments] == [[0, 6, 12, 18, 24], [30, 36, 42, 48, 54], [60, 66, 62, 68, 64]]
    assert len(segment_indices(62, 5, 6)) == 2  # [60, 62) has 2 < 5 frames: dropped, as UMIL


@pytest.fixture
def world(tmp_path):
    from generation.video_io import write_video

    splits, videos = tmp_path / "splits", tmp_path / "videos"
    splits.mkdir()
    frames = np.zeros((24, 32, 32, 3), dtype=np.uint8)
    for path in ("Abuse/Abuse001_x264.mp4", "Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4"):
        (videos / path).parent.mkdir(parents=True, exist_ok=True)
        write_video(videos / path, frames)
    (splits / "UCF_train.txt").write_text(
        "Abuse/Abuse001_x264.mp4 0 23 1\nTraining_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4 0 23 0\n"
    )
    (splits / "Anomaly_Train.txt").write_text("Abuse/Abuse001_x264.mp4\n")
    rows = [
        ManifestRow(
            row_id=f"s{i}",
            class_id=i,
            class_name=name,
            strategy="ie",
            prompt=name,
            seed=i,
            video=f"v/s{i}.mp4",
            num_frames=24,
            fps=8.0,
            width=32,
            height=32,
            backend="procedural",
        )
        for i, name in enumerate(["Fighting", "Normal activity", "Loitering"])
    ]
    (tmp_path / "syn" / "v").mkdir(parents=True)
    for i in range(3):
        write_video(tmp_path / "syn" / "v" / f"s{i}.mp4", frames)
    write_jsonl(tmp_path / "syn" / "manifest.jsonl", rows)
    return tmp_path


def _dm(world, **kwargs):
    args = dict(
        video_root=str(world / "videos"),
        split_dir=str(world / "splits"),
        num_instances=3,
        frames_per_instance=4,
        frame_interval=2,
        image_size=32,
        batch_size=2,
        num_workers=0,
        synthetic_manifest=str(world / "syn" / "manifest.jsonl"),
    )
    return AnomalyVideoDataModule(**{**args, **kwargs})


def test_real_and_synthetic_bags_and_their_labels(world):
    dm = _dm(world)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (2, 3, 4, 3, 32, 32)  # (B, K, T, C, H, W)
    assert sorted(batch["abnormal"].tolist()) == [False, True]
    dm.set_phase("synthetic")
    dm.setup("fit")
    assert [a for _, _, a in dm.datasets["train"].videos] == [True, False, True]  # "normal" in the name
    dm = _dm(world, normal_classes=["Loitering"])
    dm.set_phase("synthetic")
    dm.setup("fit")
    assert [a for _, _, a in dm.datasets["train"].videos] == [True, True, False]


def test_a_list_of_one_kind_and_missing_videos_are_refused(world):
    dm = _dm(world, train_list="Anomaly_Train.txt")
    with pytest.raises(ValueError, match=r"Anomaly_Train.txt: 1 abnormal and 0 normal videos; MIL training needs both"):
        dm.setup("fit")
    (world / "videos" / "Abuse" / "Abuse001_x264.mp4").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 2 videos of .*UCF_train.txt are missing.*--data.video_root"):
        _dm(world).setup("fit")


def test_unknown_protocol_is_refused(world):
    with pytest.raises(ValueError, match=r"`--data.protocols` keys must be among umil, sultani"):
        _dm(world, protocols={"ucf": "UCF_test.txt"})


def _frame_of(video) -> list[int]:
    """Frame index written into each frame of a (..., T, C, H, W) normalised clip (value = 2 x index)."""
    mean, std = 0.485, 0.229  # red channel, ImageNet statistics
    red = video[..., 0, :, :].mean(dim=(-1, -2)) * std + mean  # back to [0, 1]
    return (red * 255 / 2).round().int().flatten().tolist()


def test_items_decode_the_frames_umil_samples_from_frame_folders(tmp_path):
    """UMIL reads extracted frame folders: a folder per video, frame f written with value 2 f."""
    from PIL import Image

    folder = tmp_path / "videos" / "Arrest" / "Arrest001_x264.mp4"  # UMIL's layout: a folder named like the video
    folder.mkdir(parents=True)
    for f in range(70):
        Image.fromarray(np.full((32, 32, 3), 2 * f, dtype=np.uint8)).save(folder / f"img_{f:08d}.png")
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "UCF_test.txt").write_text("Arrest/Arrest001_x264.mp4 70 2 10 20 -1 -1\n")
    dm = AnomalyVideoDataModule(str(tmp_path / "videos"), str(tmp_path / "splits"), image_size=32, num_workers=0)
    dm.setup("test")
    items = [dm.datasets["test"][i] for i in range(len(dm.datasets["test"]))]
    assert [(i["name"], i["instance"]) for i in items] == [("Arrest001_x264.mp4", k) for k in range(3)]
    assert [_frame_of(i["video"]) for i in items] == [[0, 6, 12, 18, 24], [30, 36, 42, 48, 54], [60, 66, 62, 68, 64]]
    assert dm.frame_counts == {"Arrest001_x264.mp4": 70}
    (tmp_path / "splits" / "UCF_train.txt").write_text(
        "Arrest/Arrest001_x264.mp4 0 69 2\nArrest/Arrest001_x264.mp4 0 69 0\n"  # the same frames, labelled twice
    )
    dm = AnomalyVideoDataModule(
        str(tmp_path / "videos"), str(tmp_path / "splits"), num_instances=2, image_size=32, batch_size=2, num_workers=0
    )
    dm.setup("fit")
    bag = dm.datasets["train"][0]["video"]  # (K=2, T=5, C, H, W); 70 frames: strides of (70 - 30 + 1) // 2 = 20
    frames = _frame_of(bag)
    assert bag.shape[:2] == (2, 5) and 0 <= frames[0] < 20 and 20 <= frames[5] < 40
    assert frames[:5] == [frames[0] + 6 * t for t in range(5)]


def test_train_loader_is_the_run_seeded_resumable_epoch_with_drop_last(world, monkeypatch):
    """UMIL's DistributedSampler(shuffle) + drop_last, seeded by the run (`seed_everything` publishes it) and
    resumable mid-epoch (`datamodules.resume`)."""
    monkeypatch.setenv("PL_GLOBAL_SEED", "7")
    dm = _dm(world, batch_size=1)
    dm.set_phase("synthetic")
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader, ResumableLoader) and isinstance(loader.sampler, EpochSampler)
    assert loader.sampler.seed == 7 and loader.drop_last and len(loader) == 3
    loader.sampler.set_epoch(1)
    order = list(loader.sampler)
    labels = [bool(b["abnormal"]) for b in loader]
    assert labels == [[True, False, True][i] for i in order]
    partial = iter(loader)
    next(partial)
    state = loader.state_dict()
    resumed = _dm(world, batch_size=1)
    resumed.set_phase("synthetic")
    resumed.setup("fit")
    rest = resumed.train_dataloader()
    rest.load_state_dict(state)
    rest.sampler.set_epoch(1)
    assert [bool(b["abnormal"]) for b in rest] == labels[1:]
    pairs = _dm(world, batch_size=2, train_source="synthetic")
    pairs.setup("fit")
    assert [len(b["abnormal"]) for b in pairs.train_dataloader()] == [2]  # 3 bags: the last, partial batch dropped
