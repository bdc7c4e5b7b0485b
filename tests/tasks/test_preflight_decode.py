"""Issue 27 point 3: a corrupt clip in any list the run reads (a later phase's training list, a test list) stops
the run in one line before the first phase spends compute, and the decode check is cached for the rerun."""

from __future__ import annotations

import os
import shutil
import sys

import pytest
import torch
from conftest import ROOT, smoke_args

from datamodules import validate as validate_module
from datamodules.validate import check_decodes
from train import cli

TASK = ROOT / "tasks/few_shot_k2.yaml"


@pytest.fixture
def world(smoke_data, tmp_path):
    """The smoke world with its own copy of the real clips (the shared one stays intact)."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("labels.csv", "synthetic"):
        os.symlink(smoke_data / name, data / name)
    for name in [p.name for p in smoke_data.glob("labels_*.csv")]:
        os.symlink(smoke_data / name, data / name)
    shutil.copytree(smoke_data / "real", data / "real")
    return data


def _corrupt(path) -> None:
    path.write_bytes(path.read_bytes()[:3000])  # cut mid-stream: the container does not open


def _fit(data, root, capsys, monkeypatch, *extra) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["train.py"])
    code = cli(smoke_args(TASK, data, root, *extra))
    return code, capsys.readouterr().err


def test_a_corrupt_clip_of_a_later_phase_stops_the_run_in_one_line_before_pretraining(
    world, tmp_path, capsys, monkeypatch
):
    listed = (world / "real/splits/train1_few_shot_2.txt").read_text().split()[0]
    _corrupt(world / "real/videos" / listed)  # the finetune phase's list; pretraining reads the synthetic set
    code, err = _fit(world, tmp_path / "runs", capsys, monkeypatch)
    errors = [line for line in err.splitlines() if line.strip() and "Seed set to" not in line]  # Lightning's line
    assert code == 2 and len(errors) == 1, err
    assert errors[0].startswith(f"error: {world / 'real/videos' / listed} does not decode (")
    assert f"it is in {world / 'real/splits/train1_few_shot_2.txt'}, the training list of phase 'finetune'" in err
    assert "--data.on_error skip" in err and "Traceback" not in err
    assert not (tmp_path / "runs/few_shot_k2").exists()  # no phase started: nothing of the run is left behind


def test_a_corrupt_test_clip_stops_the_run_too(world, tmp_path, capsys, monkeypatch):
    listed = (world / "real/splits/val1.txt").read_text().split()[0]
    _corrupt(world / "real/videos" / listed)
    code, err = _fit(world, tmp_path / "runs", capsys, monkeypatch)
    assert (
        code == 2 and f"it is in {world / 'real/splits/val1.txt'}, the validation list of phase 'finetune'" in err
    )  # val1 is also the test list
    assert "--data.test_on_error exclude" in err and not (tmp_path / "runs/few_shot_k2").exists()


def test_the_decode_check_is_cached_by_path_size_and_mtime(world, tmp_path, monkeypatch):
    clips = sorted((world / "real/videos").glob("*.mp4"))[:6]
    cache = tmp_path / "checks.json"
    before = torch.random.get_rng_state()
    assert check_decodes(clips, 4, cache=cache) == []
    assert torch.equal(torch.random.get_rng_state(), before)  # a checked run draws its model init as a cached one
    calls = []
    real = validate_module.decode_check
    monkeypatch.setattr(validate_module, "decode_check", lambda p, f=8: calls.append(p) or real(p, f))
    assert check_decodes(clips, 4, cache=cache) == [] and calls == []  # the rerun decodes nothing
    _corrupt(clips[2])  # a changed file (size, mtime) is checked again
    bad = check_decodes(clips, 4, cache=cache)
    assert calls == [clips[2].absolute()] and [p for p, _ in bad] == [clips[2].absolute()]
    assert "does not decode" not in bad[0][1] and bad[0][1].startswith(f"cannot read video {str(clips[2])!r}")


def test_the_decode_check_cache_is_shared_by_run_folders(monkeypatch, tmp_path):
    """One cache for every --task.root (the demo's seeds run in their own folders and read the same clips), under
    $SYNTHACT_CACHE; what a run beside this one wrote meanwhile is kept."""
    from datamodules.manifest import write_text_atomic
    from datamodules.validate import _read_checks, check_cache

    monkeypatch.setenv("SYNTHACT_CACHE", str(tmp_path / "c"))
    assert check_cache() == tmp_path / "c" / "decode_checks.json"
    monkeypatch.delenv("SYNTHACT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert check_cache() == tmp_path / "x" / "synthact" / "decode_checks.json"
    cache = check_cache()
    cache.parent.mkdir(parents=True)
    write_text_atomic(cache, '{"/elsewhere.mp4": {"key": [1, 2], "cause": ""}}\n')
    clip = tmp_path / "missing.mp4"
    assert check_decodes([clip], 4, cache=cache) == [(clip.absolute(), "not found")]
    clip.write_bytes(b"not a video")
    assert check_decodes([clip], 4, cache=cache)[0][0] == clip.absolute()
    assert set(_read_checks(cache)) == {"/elsewhere.mp4", str(clip.absolute())}
