"""Issue 27 point 2 for the anomaly loaders: kill -9 mid-epoch of the end-to-end anomaly smoke task, then the
rerun a user types, gives the uninterrupted run's weights and AUCs, one `last.ckpt` and no step logged twice
(as tests/tasks/test_trust.py for the few-shot task)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from test_anomaly import _e2e_args, write_video_world

KILLER = """
import os, signal
from lightning.pytorch.callbacks import Callback

class KillAt(Callback):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= 3 and str(trainer.logger.version) == "train":
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9 mid-epoch 2, after the step-2 checkpoint
"""


@pytest.mark.slow
def test_kill_9_mid_epoch_then_rerun_gives_the_uninterrupted_anomaly_run(tmp_path):
    world = write_video_world(tmp_path / "data")
    (tmp_path / "killer.py").write_text(KILLER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), str(tmp_path)])}

    def fit(root, *extra):
        args = [*_e2e_args("fit", world, root), "--task.checkpoint_every_n_steps", "2", *extra]
        return subprocess.run(
            [sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=env, capture_output=True, text=True
        )

    killed = fit(tmp_path / "runs", "--trainer.callbacks+=killer.KillAt")
    assert killed.returncode == -9, killed.stderr[-2000:]
    phase = tmp_path / "runs/anomaly_ucf_crime/train"
    assert torch.load(phase / "checkpoints/last.ckpt", weights_only=True)["global_step"] == 2
    whole = fit(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-2000:]
    rerun = fit(tmp_path / "runs")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming phase 'train'" in rerun.stderr and "not resumable" not in rerun.stderr
    ours, theirs = (
        torch.load(r / "anomaly_ucf_crime/train/weights.pt", weights_only=True)
        for r in (tmp_path / "runs", tmp_path / "whole")
    )
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    result, expected = (
        json.loads((r / "anomaly_ucf_crime/results.json").read_text()) for r in (tmp_path / "runs", tmp_path / "whole")
    )
    assert result["metrics"] == expected["metrics"]
    assert sorted(p.name for p in (phase / "checkpoints").iterdir()) == ["last.ckpt"]
    points: dict[int, int] = {}
    for file in sorted(phase.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(file)).Load():
            if event.HasField("session_log") and event.session_log.status == 1:  # START: purge steps >= it
                points = {step: n for step, n in points.items() if step < event.step}
            for value in event.summary.value if event.HasField("summary") else ():
                if value.tag == "train/loss":
                    points[event.step] = points.get(event.step, 0) + 1
    assert sorted(points) and set(points.values()) == {1}  # no step logged twice
