"""Corrupted copies of the shipped real clips: every kind is raised by `read_clip`, flagged by `validate`,
counted under `on_error: skip` (over an epoch, logged by `SkipLogger`), and kept out of test metrics
(a test list stops with the list of bad files, or excludes and records them). The 66 shipped clips,
including the HMDB-51 cartwheel AVI whose metadata is not UTF-8, still decode (no false positives)."""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.action import ActionDataModule
from datamodules.skips import SkipLogger, record_excluded, run_data, with_data_section
from datamodules.validate import validate
from datamodules.video import VideoDecodeError, iter_frames, probe, read_clip

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
REAL = SHARED / "real_clips"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real_clips is not present")

AVI = "ucf101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c03.avi"  # 259 frames, the clip of issue 16
MP4 = "kinetics400/tai_chi/ta_chi.mp4"  # 300 frames, h264
GOOD = ["ucf101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "ucf101/Archery/v_Archery_g01_c01.avi"]
# kind -> (file name, what the error must say)
KINDS = {
    "truncated": ("v_ApplyEyeMakeup_g01_c90.avi", r"only \d+ of the 259 frames"),
    "half_truncated": ("v_ApplyEyeMakeup_g01_c91.avi", r"only \d+ of the 259 frames"),
    "bit_flipped": ("v_ApplyEyeMakeup_g01_c92.avi", r"only \d+ of the 259 frames"),
    "zeroed_mp4": ("v_ApplyEyeMakeup_g01_c93.mp4", r"decoding stopped at frame \d+"),
    "header_only": ("v_ApplyEyeMakeup_g01_c94.avi", r"0 of the 259"),
    "empty": ("v_ApplyEyeMakeup_g01_c95.avi", "empty"),
    "garbage": ("v_ApplyEyeMakeup_g01_c96.mp4", "Invalid data"),
    "wrong_extension": ("v_ApplyEyeMakeup_g01_c97.mp4", r"wrong extension.*'avi'.*rename it to .*\.avi"),
    "image_as_video": ("v_ApplyEyeMakeup_g01_c98.mp4", "still image"),
}


def _corrupt(kind: str, src_avi: bytes, src_mp4: bytes) -> bytes:
    n = len(src_avi)
    if kind == "truncated":
        return src_avi[: n // 10]
    if kind == "half_truncated":
        return src_avi[: n // 2]
    if kind == "bit_flipped":
        data, rng = bytearray(src_avi), random.Random(0)
        for _ in range(200):
            data[rng.randrange(n // 20, n)] ^= 0xFF
        return bytes(data)
    if kind == "zeroed_mp4":
        data = bytearray(src_mp4)
        data[len(data) // 4 : len(data) // 4 + 20_000] = bytes(20_000)
        return bytes(data)
    if kind == "header_only":
        return src_avi[: src_avi.find(b"movi") + 4]  # every header, no frame data
    if kind == "empty":
        return b""
    if kind == "garbage":
        return np.random.default_rng(0).bytes(50_000)
    if kind == "wrong_extension":
        return src_avi  # an intact AVI named .mp4
    raise AssertionError(kind)


@pytest.fixture(scope="module")
def corrupt_root(tmp_path_factory) -> Path:
    """A video root with two intact clips and one corrupted copy of each kind (flat, as split lists are)."""
    root = tmp_path_factory.mktemp("corrupt")
    src_avi, src_mp4 = (REAL / AVI).read_bytes(), (REAL / MP4).read_bytes()
    for rel in GOOD:
        shutil.copy(REAL / rel, root / Path(rel).name)
    for kind, (name, _) in KINDS.items():
        if kind == "image_as_video":
            Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(root / name, format="JPEG")
        else:
            (root / name).write_bytes(_corrupt(kind, src_avi, src_mp4))
    return root


@pytest.mark.parametrize("kind", list(KINDS))
def test_read_clip_raises_naming_the_file_and_got_vs_expected(corrupt_root: Path, kind: str) -> None:
    name, expected = KINDS[kind]
    path = corrupt_root / name
    for train in (False, True):
        with pytest.raises(VideoDecodeError, match=expected) as err:
            read_clip(path, 8, train=train, rng=np.random.default_rng(0), short_side=32)
        assert str(path) in str(err.value)
    with pytest.raises(VideoDecodeError, match=name):  # the whole-file readers (features, galleries) too
        list(iter_frames(path))


def test_validate_flags_every_corrupt_kind(corrupt_root: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("id,name\n0,ApplyEyeMakeup\n1,Archery\n")
    names = [Path(g).name for g in GOOD] + [name for name, _ in KINDS.values()]
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"{n} {int('Archery' in n)}\n" for n in names))
    report = validate(lst, labels, corrupt_root, frames=8)
    decode = next(c for c in report.checks if c.name == "decode")
    assert not report.ok and decode.status == "error"
    assert sorted(item["path"] for item in decode.items) == sorted(name for name, _ in KINDS.values())
    assert decode.summary.startswith(f"{len(KINDS)} of {len(names)} clips do not decode")


def _write_lists(root: Path, tmp_path: Path) -> dict:
    (tmp_path / "labels.csv").write_text("id,name\n0,ApplyEyeMakeup\n1,Archery\n")
    splits = tmp_path / "splits"
    splits.mkdir()
    good = [f"{Path(g).name} {i}" for i, g in enumerate(GOOD)]
    bad = [f"{name} 0" for name, _ in KINDS.values()]
    (splits / "train.txt").write_text("\n".join(good + bad) + "\n")
    (splits / "test.txt").write_text("\n".join(good + bad) + "\n")
    (splits / "clean.txt").write_text("\n".join(good) + "\n")
    return dict(
        label_file=str(tmp_path / "labels.csv"),
        video_root=str(root),
        split_dir=str(splits),
        train_list="train.txt",
        test_list="test.txt",
        num_frames=4,
        image_size=16,
        test_views=1,
        batch_size=4,
        num_workers=0,
    )


class _Tiny(L.LightningModule):
    """Consumes batches as a model does (video, label); fails if a skip marker reaches it."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(3, 2)

    def training_step(self, batch, _):
        assert set(batch) == {"video", "label", "uncertainty", "synthetic"}
        x = batch["video"].mean(dim=(1, 3, 4))  # (B, T, C, H, W) -> (B, C)
        return torch.nn.functional.cross_entropy(self.head(x), batch["label"])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_skips_are_counted_per_epoch_logged_and_reported(corrupt_root: Path, tmp_path: Path) -> None:
    dm = ActionDataModule(**_write_lists(corrupt_root, tmp_path), on_error="skip")
    trainer = L.Trainer(
        max_epochs=2,
        logger=L.pytorch.loggers.CSVLogger(tmp_path / "logs"),
        callbacks=[SkipLogger()],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(_Tiny(), datamodule=dm)
    report = dm.skip_report()
    # every corrupt clip fails once per epoch (a failing neighbour's replacement may fail again)
    assert report["per_epoch"][0] >= len(KINDS) and len(report["per_epoch"]) == 2
    assert report["skipped_reads"] == sum(report["per_epoch"])
    assert sorted(Path(f).name for f in report["files"]) == sorted(name for name, _ in KINDS.values())
    logged = (tmp_path / "logs" / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    rows = [r for r in csv.DictReader(logged.splitlines()) if r.get("data/skipped_reads")]
    assert [float(r["data/skipped_reads"]) for r in rows] == [float(n) for n in report["per_epoch"]]


def test_a_test_list_with_corrupt_clips_stops_with_all_of_them(corrupt_root: Path, tmp_path: Path) -> None:
    dm = ActionDataModule(**_write_lists(corrupt_root, tmp_path), on_error="skip")  # skip is for training only
    with pytest.raises(VideoDecodeError) as err:
        dm.setup("test")
    message = str(err.value)
    assert f"{len(KINDS)} of {len(KINDS) + 2} clips of the evaluation list 'test.txt' do not decode" in message
    assert all(name in message for name, _ in KINDS.values()) and "--data.test_on_error exclude" in message


def test_exclude_leaves_corrupt_clips_out_and_records_them(corrupt_root: Path, tmp_path: Path) -> None:
    dm = ActionDataModule(**_write_lists(corrupt_root, tmp_path), test_on_error="exclude")
    dm.setup("test")
    served = [Path(c.path).name for c in dm.datasets["test"].clips]
    assert served == [Path(g).name for g in GOOD]  # no substitute: exactly the decodable clips, once each
    batch = next(iter(dm.test_dataloader()))
    assert batch["label"].tolist() == [0, 1]
    excluded = dm.excluded("test.txt")
    assert sorted(Path(e["path"]).name for e in excluded) == sorted(name for name, _ in KINDS.values())
    # what the runner writes: excluded.json beside test.json, summed into results.json's `data` section
    run = tmp_path / "run"
    record_excluded(run / "test" / "val1", dm, "test.txt")
    (run / "pretrain").mkdir(parents=True)
    (run / "pretrain" / "phase.json").write_text(json.dumps({"data": {"skipped_reads": 3, "files": ["a.avi"]}}))
    text, summary = with_data_section(json.dumps({"task": "t"}), run)
    data = json.loads(text)["data"]
    assert data["excluded_from_tests"] == len(KINDS) and data["excluded"]["test/val1"]["count"] == len(KINDS)
    assert data["skipped_reads"] == 3 and data["skipped_reads_per_phase"] == {"pretrain": 3}
    assert f"test/val1 excluded {len(KINDS)} undecodable clip(s)" in summary and "3 training clip read(s)" in summary
    dm.test_list = "clean.txt"
    dm.setup("test")
    record_excluded(run / "test" / "val1", dm, "clean.txt")  # a clean re-test clears the old record
    assert run_data(run)["excluded"] == {}


def _shipped() -> list[Path]:
    rows = (REAL / "MANIFEST.tsv").read_text().splitlines()[1:] if REAL.is_dir() else []
    return [REAL / row.split("\t")[0] for row in rows]


def test_no_false_positive_on_the_66_shipped_clips() -> None:
    clips = _shipped()
    assert len(clips) == 66
    for path in clips:  # includes hmdb51/cartwheel (non-UTF-8 metadata), raw m4v named .mp4, mkv, 1080p AVI
        assert read_clip(path, 4, train=False, short_side=16).shape[:2] == (1, 4), path
        probe(path)


@pytest.mark.slow
def test_a_task_run_records_skips_and_exclusions_end_to_end(tmp_path: Path) -> None:
    """train.py on the smoke demo with one truncated synthetic clip and one truncated test clip: the skip is
    logged to TensorBoard and phase.json and summed into results.json; the test clip is excluded and recorded."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from datamodules.annotations import read_list
    from datamodules.manifest import read_manifest
    from generation.demo import build_demo
    from train import main

    data, root = tmp_path / "smoke", tmp_path / "runs"
    build_demo(data, preset="smoke")
    synthetic = data / "synthetic/ie/manifest.jsonl"
    clip = synthetic.parent / read_manifest(synthetic)[0].video
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    _, entries = read_list(data / "real/splits/val1.txt")
    test_clip = data / "real/videos" / entries[0].path
    test_clip.write_bytes(test_clip.read_bytes()[: test_clip.stat().st_size // 2])
    repo = Path(__file__).resolve().parents[2]
    main(
        [
            "fit",
            "--config",
            str(repo / "tasks/few_shot_k4.yaml"),
            "--config",
            str(repo / "configs/smoke.yaml"),
            "--data.label_file",
            str(data / "labels.csv"),
            "--data.video_root",
            str(data / "real/videos"),
            "--data.split_dir",
            str(data / "real/splits"),
            "--data.synthetic_manifest",
            str(synthetic),
            "--data.labels_dir",
            str(data),
            "--task.root",
            str(root),
            "--data.on_error",
            "skip",
            "--data.test_on_error",
            "exclude",
        ]
    )
    run = root / "few_shot_k4"
    phase = json.loads((run / "pretrain/phase.json").read_text())
    assert phase["data"]["skipped_reads"] >= 1 and phase["data"]["files"] == [str(clip)]
    results = json.loads((run / "results.json").read_text())
    assert results["data"]["skipped_reads"] == phase["data"]["skipped_reads"]
    assert results["data"]["excluded_from_tests"] == 1
    (excluded,) = results["data"]["excluded"].values()
    assert excluded["clips"][0]["path"] == str(test_clip) and "Invalid data" in excluded["clips"][0]["cause"]
    assert "excluded 1 undecodable clip" in (run / "results.md").read_text()
    events = EventAccumulator(str(run / "pretrain"))
    events.Reload()
    assert "data/skipped_reads" in events.Tags()["scalars"]
