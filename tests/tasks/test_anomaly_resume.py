"""Issue 27 point 2 for the anomaly loaders: kill -9 mid-epoch of an anomaly smoke task (end to end, and on
cached features), then the rerun a user types, gives the uninterrupted run's weights and AUCs, one
`last.ckpt` and no step logged twice (as tests/tasks/test_trust.py for the few-shot task). Slow: three
train.py processes each, about 45 s on 2 busy cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import ROOT, tensorboard_points
from test_anomaly import _args, _e2e_args, write_planted, write_video_world

KILLER = """
import os, signal
from lightning.pytorch.callbacks import Callback

class KillAt(Callback):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= int(os.environ["KILL_AT_STEP"]) and str(trainer.logger.version) == "train":
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9 mid-epoch of the `train` phase
"""


def _kill_rerun_and_compare(
    tmp_path: Path, task: str, args: Callable[[Path], list[str]], kill_at: int, checkpoint: int
) -> None:
    """Kill `task`'s train phase after step `kill_at` (last.ckpt from step `checkpoint`, mid-epoch), rerun it,
    and compare with an uninterrupted run; all three in fresh processes."""
    (tmp_path / "killer.py").write_text(KILLER)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), str(tmp_path)]),
        "KILL_AT_STEP": str(kill_at),
    }

    def fit(root: Path, *extra: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(ROOT / "train.py"), *args(root), "--task.checkpoint_every_n_steps", "2", *extra]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)

    killed = fit(tmp_path / "runs", "--trainer.callbacks+=killer.KillAt")
    assert killed.returncode == -9, killed.stderr[-2000:]
    phase = tmp_path / "runs" / task / "train"
    assert torch.load(phase / "checkpoints/last.ckpt", weights_only=True)["global_step"] == checkpoint
    whole = fit(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-2000:]
    rerun = fit(tmp_path / "runs")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming phase 'train'" in rerun.stderr and "not resumable" not in rerun.stderr
    assert "starts from its first batch" not in rerun.stderr  # the loader skipped the served batches
    ours, theirs = (
        torch.load(r / task / "train/weights.pt", weights_only=True) for r in (tmp_path / "runs", tmp_path / "whole")
    )
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    result, expected = (
        json.loads((r / task / "results.json").read_text()) for r in (tmp_path / "runs", tmp_path / "whole")
    )
    assert result["metrics"] == expected["metrics"]
    assert sorted(p.name for p in (phase / "checkpoints").iterdir()) == ["last.ckpt"]
    points = tensorboard_points(sorted(phase.glob("events.out.tfevents.*")))
    assert sorted(points) and set(points.values()) == {1}  # no step logged twice


@pytest.mark.slow
def test_kill_9_mid_epoch_then_rerun_gives_the_uninterrupted_anomaly_run(tmp_path):
    """End to end (UMIL's MIL baseline): 3 batches an epoch; killed after step 3, last.ckpt from step 2."""
    world = write_video_world(tmp_path / "data")
    _kill_rerun_and_compare(tmp_path, "anomaly_ucf_crime", lambda root: _e2e_args("fit", world, root), 3, 2)


@pytest.mark.slow
def test_kill_9_mid_epoch_then_rerun_gives_the_uninterrupted_feature_anomaly_run(tmp_path):
    """Cached features (paired batches, dropout 0.6): 6 batches an epoch; killed after step 15 (epoch 2),
    last.ckpt from step 14."""
    data = write_planted(tmp_path / "data")
    _kill_rerun_and_compare(tmp_path, "anomaly_ucf_crime_features", lambda root: _args("fit", data, root), 15, 14)
