"""Shared test fixtures: the repo root, ../shared/data (skipped cleanly when absent), offline mode, and the
scored smoke world every task test trains on."""

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network

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
    score_manifest(out / "synthetic/ie/manifest.jsonl", out / "labels.csv", arch="synthact-tiny", pretrained=None,
                   num_frames=4, progress=False)  # fmt: skip
    (out / "real/splits/k400").mkdir()
    shutil.copy(out / "real/splits/train1_few_shot_4.txt", out / "real/splits/k400/train.txt")
    shutil.copy(out / "real/splits/val1.txt", out / "real/splits/k400/val.txt")
    return out
