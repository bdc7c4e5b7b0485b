"""Shared test fixtures: the repo root, ../shared/data (skipped cleanly when absent), offline mode, and the
scored smoke world every task test trains on."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
# the runs' decode-check cache (datamodules.validate.check_cache) in a folder of this session, not the user's
os.environ["SYNTHACT_CACHE"] = tempfile.mkdtemp(prefix="synthact-cache-")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (real split/label files and clips); skips the test where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory) -> Path:
    """The smoke world (`python -m generation demo --preset smoke`), built once per session. Generated clips
    train with UL by default, which needs CLIP uncertainty: the set is scored with the tiny random CLIP.
    Its 4-shot train and val lists also stand in for Kinetics-400's (`supervised_k400`)."""
    from generation.demo import build_demo
    from generation.score import score_manifest

    out = tmp_path_factory.mktemp("smoke")
    build_demo(out, preset="smoke", progress=False)
    score_manifest(
        out / "synthetic/ie/manifest.jsonl",
        out / "labels.csv",
        arch="synthact-tiny",
        pretrained=None,
        num_frames=4,
        progress=False,
    )
    (out / "real/splits/k400").mkdir()
    shutil.copy(out / "real/splits/train1_few_shot_4.txt", out / "real/splits/k400/train.txt")
    shutil.copy(out / "real/splits/val1.txt", out / "real/splits/k400/val.txt")
    return out


def smoke_args(task_yaml: Path, data: Path, root: Path, *extra: str) -> list[str]:
    """`python train.py fit` arguments that run a task YAML on the smoke world through configs/smoke.yaml."""
    return [
        "fit",
        "--config",
        str(task_yaml),
        "--config",
        str(ROOT / "configs/smoke.yaml"),
        "--data.label_file",
        str(data / "labels.csv"),
        "--data.video_root",
        str(data / "real/videos"),
        "--data.split_dir",
        str(data / "real/splits"),
        "--data.synthetic_manifest",
        str(data / "synthetic/ie/manifest.jsonl"),
        "--data.labels_dir",
        str(data),
        "--task.root",
        str(root),
        *extra,
    ]


def tensorboard_points(files: list[Path], tag: str = "train/loss") -> dict[int, int]:
    """{step: points of `tag` at that step} as TensorBoard shows the event files read in order: a session START
    marker (written by a resumed run) purges the steps at and after it, as TensorBoard does."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    points: dict[int, int] = {}
    for file in files:
        for event in EventFileLoader(str(file)).Load():
            if event.HasField("session_log") and event.session_log.status == 1:  # START: purge steps >= it
                points = {step: n for step, n in points.items() if step < event.step}
            for value in event.summary.value if event.HasField("summary") else ():
                if value.tag == tag:
                    points[event.step] = points.get(event.step, 0) + 1
    return points


_RUNS: dict[str, Path] = {}


@pytest.fixture(scope="session")
def task_run(smoke_data, tmp_path_factory):
    """Run a task (tasks/<name>.yaml) through the smoke config once per session; returns its run folder."""
    from train import main

    def run(name: str) -> Path:
        if name not in _RUNS:
            root = tmp_path_factory.mktemp(f"runs_{name}")
            main(smoke_args(ROOT / f"tasks/{name}.yaml", smoke_data, root))
            _RUNS[name] = root / name
        return _RUNS[name]

    return run
