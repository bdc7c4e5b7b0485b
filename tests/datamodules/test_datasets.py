"""datamodules/datasets.py + action.py: on_error raise/skip (counted across workers) and per-worker seeding."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.data import _auto_add_worker_init_fn
from lightning.fabric.utilities.seed import seed_everything
from PIL import Image

from datamodules.action import ActionDataModule
from datamodules.datasets import Clip, VideoDataLoader, VideoDataset
from datamodules.transforms import VideoTransform
from datamodules.video import VideoDecodeError

NUM_FRAMES = 32  # frames per folder; frame i is a constant image of value 8 * i
SEGMENTS = 4


def _frame_folder(folder: Path, num_frames: int = NUM_FRAMES) -> Path:
    folder.mkdir(parents=True)
    for i in range(num_frames):
        Image.fromarray(np.full((8, 8, 3), 8 * i, np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def _frame_indices(video: torch.Tensor, transform: VideoTransform) -> list[int]:
    """Undo the normalisation of constant frames: (..., T, C, H, W) -> the frame number of each of the T frames."""
    value = video[..., 0, 0, 0] * transform.std[0] + transform.mean[0]  # red channel, in [0, 1]
    return [round(v * 255 / 8) for v in value.reshape(-1).tolist()]


@pytest.fixture
def clips(tmp_path: Path) -> list[Clip]:
    """Five clips: 0, 2 and 4 decode; 1 is garbage bytes, 3 is missing."""
    good = _frame_folder(tmp_path / "good")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 50)
    paths = [good, garbage, good, tmp_path / "missing.mp4", good]
    return [Clip(path=p, label=i) for i, p in enumerate(paths)]


def _dataset(clips: list[Clip], on_error: str = "raise", train: bool = False) -> VideoDataset:
    return VideoDataset(clips, SEGMENTS, VideoTransform(train=train, size=8), on_error=on_error)


# ---------------------------------------------------------------------------------------- on_error


def test_raise_names_the_file_the_cause_and_the_option(clips: list[Clip]) -> None:
    dataset = _dataset(clips)
    assert dataset[0]["video"].shape == (1, SEGMENTS, 3, 8, 8)  # (V, T, C, H, W) at test time
    with pytest.raises(VideoDecodeError, match=r"garbage\.mp4.*(InvalidDataError|Invalid data).*on_error skip"):
        dataset[1]
    with pytest.raises(VideoDecodeError, match=r"missing\.mp4.*file not found"):
        dataset[3]


def test_skip_serves_the_next_clip_counts_and_warns_once_per_file(clips: list[Clip], caplog) -> None:
    dataset = _dataset(clips, on_error="skip")
    caplog.set_level(logging.WARNING, logger="datamodules.datasets")
    samples = [dataset[i] for i in range(len(dataset))]
    assert [s["label"] for s in samples] == [0, 2, 2, 4, 4]  # 1 -> 2, 3 -> 4: same number of samples
    # each served sample carries the failed reads it replaced: the marker the main process counts
    assert [s["skipped"] for s in samples] == [0, 1, 0, 1, 0]
    assert samples[1]["skipped_files"].endswith("garbage.mp4") and samples[3]["skipped_files"].endswith("missing.mp4")
    [dataset[i] for i in range(len(dataset))]  # a second epoch
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2  # each file is logged once per process
    assert "garbage.mp4" in warned[0] and "missing.mp4" in warned[1]


def test_skip_wraps_around_and_raises_when_nothing_decodes(clips: list[Clip]) -> None:
    dataset = _dataset(clips[1:4] + clips[1:2], on_error="skip")  # garbage, good, missing, garbage
    sample = dataset[2]
    assert sample["label"] == 2  # missing -> garbage -> wraps: garbage -> good (label 2)
    assert sample["skipped"] == 3 and len(sample["skipped_files"].split("\n")) == 3
    with pytest.raises(VideoDecodeError, match="none of the 2 clips"):
        _dataset([clips[1], clips[3]], on_error="skip")[0]


def test_bad_on_error_value_is_rejected(clips: list[Clip], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip', got 'ignore'"):
        _dataset(clips, on_error="ignore")
    with pytest.raises(ValueError, match=r"--data.on_error"):
        ActionDataModule(label_file="x.csv", on_error="ignore")


def test_skips_in_workers_reach_the_main_process_and_are_logged_at_epoch_end(clips: list[Clip], caplog) -> None:
    dataset = _dataset(clips, on_error="skip")
    loader = VideoDataLoader(dataset, batch_size=1, num_workers=2)
    caplog.set_level(logging.WARNING, logger="datamodules.datasets")
    batches = list(loader)
    assert [int(b["label"]) for b in batches] == [0, 2, 2, 4, 4]
    assert all("skipped" not in b and "skipped_files" not in b for b in batches)  # models never see markers
    assert loader.tally.total == 2 and sorted(Path(f).name for f in loader.tally.files) == [
        "garbage.mp4",
        "missing.mp4",
    ]
    end = [r.getMessage() for r in caplog.records if "this epoch" in r.getMessage()]
    assert end == [
        "2 clip read(s) failed to decode this epoch and were replaced by the next clip of the list "
        "(on_error='skip'); the epoch kept its 5 samples. Run `python -m datamodules validate` to list the "
        "broken files."
    ]
    assert len(list(loader)) == 5 and loader.tally.total == 4  # counted in the main process, every epoch


def _write_dataset(root: Path, num_clips: int, broken: tuple[int, ...] = ()) -> dict:
    """A label CSV, a list of `num_clips` copies of one frame folder (plus broken files), as ActionDataModule reads."""
    _frame_folder(root / "videos" / "clip")
    (root / "videos" / "broken.avi").write_bytes(b"garbage" * 20)
    (root / "labels.csv").write_text("id,name\n0,a\n1,b\n")
    lines = [f"{'broken.avi' if i in broken else 'clip'} {i % 2}" for i in range(num_clips)]
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("\n".join(lines) + "\n")
    return dict(
        label_file=str(root / "labels.csv"),
        video_root=str(root / "videos"),
        split_dir=str(root / "splits"),
        train_list="train.txt",
        num_frames=SEGMENTS,
        image_size=8,
        color_jitter=0.0,  # pixel values encode frame numbers: no colour change
        grayscale=0.0,
    )


def test_datamodule_passes_on_error_and_reports_skips(tmp_path: Path) -> None:
    kwargs = _write_dataset(tmp_path, 4, broken=(1,))
    dm = ActionDataModule(**kwargs, batch_size=2, num_workers=0, on_error="skip")
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader, VideoDataLoader)
    assert sum(len(b["label"]) for b in loader) == 4
    report = dm.skip_report()
    assert report["skipped_reads"] == 1 and [Path(f).name for f in report["files"]] == ["broken.avi"]
    dm.set_phase("real")  # a new phase counts its own skips
    assert dm.skip_report()["skipped_reads"] == 0
    strict = ActionDataModule(**kwargs, batch_size=2, num_workers=0)
    strict.setup("fit")
    with pytest.raises(VideoDecodeError, match=r"broken\.avi"):
        list(strict.train_dataloader())


# ---------------------------------------------------------------------------------------- seeding


def _offsets(kwargs: dict, seed: int, epochs: int, lightning_init: bool) -> list[list[list[int]]]:
    """Per epoch, per batch: the frame numbers sampled, through ActionDataModule's loader (2 persistent workers)."""
    seed_everything(seed, workers=True)
    dm = ActionDataModule(**kwargs, batch_size=2, num_workers=2)
    dm.setup("fit")
    loader = dm.train_dataloader()
    if lightning_init:
        _auto_add_worker_init_fn(loader, rank=0)  # what the Trainer does after seed_everything(workers=True)
    transform = dm.datasets["train"].transform
    offsets = [[_frame_indices(b["video"], transform) for b in loader] for _ in range(epochs)]
    loader._iterator._shutdown_workers()  # stop the persistent workers now: left to the gc, each join waits 5 s
    return offsets


@pytest.mark.parametrize("lightning_init", [False, True], ids=["torch-default", "lightning-worker-init"])
def test_random_offsets_differ_across_workers_and_epochs_and_follow_the_seed(
    tmp_path: Path, monkeypatch, lightning_init: bool
) -> None:
    monkeypatch.setenv("PL_SEED_WORKERS", "0")  # restored after the test (seed_everything sets them)
    monkeypatch.setenv("PL_GLOBAL_SEED", "0")
    kwargs = _write_dataset(tmp_path, 8)  # 8 copies of one clip: offsets depend only on the RNG
    run = _offsets(kwargs, seed=3, epochs=2, lightning_init=lightning_init)
    (b0, b1, b2, b3), epoch2 = run[0], run[1]
    # TSN training offsets: one frame inside each of the 4 segments of 8 frames
    for batch in run[0] + run[1]:
        for t, frame in enumerate(batch):
            assert 8 * (t % SEGMENTS) <= frame < 8 * (t % SEGMENTS + 1)
    # batches alternate between the two workers: 0 and 2 come from worker 0, 1 and 3 from worker 1
    assert b0 != b1 and b2 != b3
    assert run[0] != epoch2
    assert _offsets(kwargs, seed=3, epochs=2, lightning_init=lightning_init) == run
    assert _offsets(kwargs, seed=4, epochs=1, lightning_init=lightning_init)[0] != run[0]


def test_training_reads_check_a_file_once_and_decode_it_at_its_own_size(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first read of a file checks it to its end (frame count); later epochs' reads in the same process do
    not, and a 320x240 clip is decoded at 320x240 for a 224 crop (short side 256): the transform resizes once."""
    from datamodules import video

    path = shared_data / "real_clips" / "ucf101" / "Archery" / "v_Archery_g01_c01.avi"  # 320x240, 131 frames
    monkeypatch.setattr(video, "_VERIFIED", {})  # a fresh process
    checks, sizes = [], []
    check_count, rgb = video._check_count, video._rgb
    monkeypatch.setattr(video, "_check_count", lambda *a: checks.append(a) or check_count(*a))
    monkeypatch.setattr(video, "_rgb", lambda frame, size, *a: sizes.append(size) or rgb(frame, size, *a))
    dataset = VideoDataset([Clip(path, 0)], num_frames=8, transform=VideoTransform(train=True, size=224))
    for epoch in range(3):
        assert dataset[0]["video"].shape == (8, 3, 224, 224)
        assert len(checks) == 1, f"epoch {epoch}: the file was checked {len(checks)} times"
    assert checks[0][1:] == (131, 131) and set(sizes) == {(320, 240)}
    test = VideoDataset([Clip(path, 0)], 8, transform=VideoTransform(train=False, size=224), num_views=2)
    assert test[0]["video"].shape == (2, 8, 3, 224, 224) and len(checks) == 1
