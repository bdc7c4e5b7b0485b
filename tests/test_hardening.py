"""Fault tests across packages (issue 8): generation killed at random moments, disk full mid-clip.

Training-side faults (kill mid-phase and resume, bad inputs) live next to the code they exercise
(tests/test_train.py, tests/datamodules/); these are the ones that need a subprocess killed many times.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from datamodules.manifest import read_manifest
from generation import vocab
from generation.prompts import Label, make_prompts, write_prompts
from generation.render import render_prompts
from generation.video_io import read_video

REPO = Path(__file__).resolve().parents[1]
LABELS = [Label(i, a.name) for i, a in enumerate(vocab.ACTIONS[:4])]


def _manifest_ids(out: Path) -> list[str]:
    """Row ids of the manifest's complete lines (a kill during an append may leave a torn last line, which
    the next run repairs; it does not count as registered)."""
    manifest = out / "manifest.jsonl"
    if not manifest.exists():
        return []
    complete = manifest.read_text().split("\n")[:-1]
    return [json.loads(line)["row_id"] for line in complete if line.strip()]


def test_render_survives_20_sigkills_at_random_moments(tmp_path):
    """kill -9 at 20 random moments: after every restart no finished clip is lost or duplicated, the manifest
    only names complete files, and the final run leaves every row exactly once and no partial file."""
    rows = make_prompts(LABELS, "ie", videos_per_class=40)  # 160 rows
    prompts = tmp_path / "prompts.jsonl"
    write_prompts(prompts, rows)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "generation",
        "render",
        "--prompts",
        str(prompts),
        "--out",
        str(out),
        "--frames",
        "8",
        "--size",
        "32",
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(0)
    kept: set[str] = set()
    kills_mid_render = 0
    for _ in range(20):
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # A random moment: after a random number (0-6) of new clips were registered, plus up to 0.2 s, so
        # kills land in start-up, in the resume scan, mid-encode and between rename and manifest append.
        target, deadline = len(kept) + rng.randint(0, 6), time.time() + 60
        while proc.poll() is None and len(_manifest_ids(out)) < target and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.2))
        finished = proc.poll() is not None
        os.kill(proc.pid, signal.SIGKILL) if not finished else None
        proc.wait()
        ids = _manifest_ids(out)
        assert len(ids) == len(set(ids)), "a clip was registered twice"
        assert kept <= set(ids), "a finished clip was lost"
        kills_mid_render += not finished and len(ids) > len(kept)
        kept = set(ids)
        for line in (out / "manifest.jsonl").read_text().split("\n")[:-1] if ids else []:
            video = out / json.loads(line)["video"]
            assert video.stat().st_size > 0, f"manifest names an empty file: {video}"
    assert kills_mid_render >= 5, "too few kills landed while clips were being written; render got faster?"
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ids = _manifest_ids(out)
    assert sorted(ids) == sorted(r.row_id for r in rows)
    assert not list(out.rglob("*.partial"))
    assert len(list((out / "videos").rglob("*.mp4"))) == len(rows)
    for row in read_manifest(out / "manifest.jsonl"):
        assert read_video(out / row.video).shape == (8, 32, 32, 3)


def test_disk_full_while_writing_a_clip_removes_the_partial_and_stops(tmp_path, monkeypatch):
    """ENOSPC in the middle of encoding: the run stops with the OS error, no partial or unregistered clip
    is left behind, the clips written before stay registered, and a re-run (disk freed) completes."""
    rows = make_prompts(LABELS, "basic", videos_per_class=2)  # 8 rows
    prompts = tmp_path / "prompts.jsonl"
    write_prompts(prompts, rows)
    out = tmp_path / "out"

    import av.container.output

    real_mux = av.container.output.OutputContainer.mux
    calls = {"n": 0}

    def mux_until_full(self, packets):
        calls["n"] += 1
        if calls["n"] > 12:  # a few clips in, mid-way through a clip's packets
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_mux(self, packets)

    monkeypatch.setattr(av.container.output.OutputContainer, "mux", mux_until_full)
    with pytest.raises(OSError, match="No space left on device"):
        render_prompts(prompts, out, num_frames=8, size=32, progress=False)
    registered = _manifest_ids(out)
    assert 0 < len(registered) < len(rows)
    assert not list(out.rglob("*.partial")), "a partial clip was left on disk"
    on_disk = sorted(p.stem for p in (out / "videos").rglob("*.mp4"))
    assert on_disk == sorted(registered), "a clip on disk is not in the manifest (or the reverse)"

    monkeypatch.setattr(av.container.output.OutputContainer, "mux", real_mux)
    summary = render_prompts(prompts, out, num_frames=8, size=32, progress=False)
    assert summary.already_done == len(registered) and summary.rendered == len(rows) - len(registered)
    assert sorted(_manifest_ids(out)) == sorted(r.row_id for r in rows)
    assert all(
        np.asarray(read_video(out / r.video)).shape == (8, 32, 32, 3) for r in read_manifest(out / "manifest.jsonl")
    )


PROBE = '''
import json, os
import lightning as L


class OptimizerProbe(L.Callback):
    """Records, when training starts, the step and the AdamW state the run (re)starts from."""

    def on_train_start(self, trainer, pl_module):
        state = trainer.optimizers[0].state_dict()["state"]
        first = state.get(0, {})
        record = {"global_step": trainer.global_step,
                  "adam_step": float(first["step"]) if "step" in first else 0.0,
                  "exp_avg_sum": float(first["exp_avg"].double().sum()) if "exp_avg" in first else 0.0}
        with open(os.environ["PROBE_OUT"], "a") as f:
            f.write(json.dumps(record) + "\\n")
'''


def test_training_killed_mid_epoch_resumes_from_the_saved_step_with_its_optimizer_state(tmp_path):
    """kill -9 while a phase trains (after a mid-epoch last.ckpt): the re-run resumes that phase from the
    checkpoint's step with the checkpoint's AdamW moments, runs exactly the remaining steps, and never
    re-runs a finished phase."""
    import torch

    from generation.demo import build_demo

    data = tmp_path / "smoke"
    build_demo(data, preset="smoke")
    from generation.score import score_manifest  # synthetic phases train with UL by default: score the clips

    score_manifest(
        data / "synthetic/ie/manifest.jsonl",
        data / "labels.csv",
        arch="synthact-tiny",
        pretrained=None,
        num_frames=4,
        progress=False,
    )
    (tmp_path / "probe.py").write_text(PROBE)
    root = tmp_path / "runs"
    cmd = [
        sys.executable,
        "train.py",
        "fit",
        "--config",
        "tasks/few_shot_k4.yaml",
        "--config",
        "configs/smoke.yaml",
        "--data.label_file",
        str(data / "labels.csv"),
        "--data.video_root",
        str(data / "real/videos"),
        "--data.split_dir",
        str(data / "real/splits"),
        "--data.labels_dir",
        str(data),
        "--data.synthetic_manifest",
        str(data / "synthetic/ie/manifest.jsonl"),
        "--task.root",
        str(root),
        "--trainer.max_epochs",
        "4",
        "--task.checkpoint_every_n_steps",
        "3",
        "--trainer.callbacks+=probe.OptimizerProbe",
    ]
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}", "PROBE_OUT": str(tmp_path / "probe.jsonl")}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = root / "few_shot_k4/pretrain/checkpoints/last.ckpt"
    steps_per_epoch = 32 // 4  # smoke: 32 synthetic clips, batch 4
    deadline = time.time() + 300
    saved = None
    while time.time() < deadline and proc.poll() is None:
        if last.is_file():
            try:
                saved = torch.load(last, map_location="cpu", weights_only=False)
            except Exception:  # noqa: BLE001 - caught mid-write; read it again
                saved = None
            if saved is not None and saved["global_step"] % steps_per_epoch and saved["global_step"] >= 6:
                break
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before a mid-epoch checkpoint was seen: {proc.stderr.read()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = torch.load(last, map_location="cpu", weights_only=False)  # what the re-run must resume from
    assert not (root / "few_shot_k4/pretrain/phase.json").exists()

    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resuming phase 'pretrain' from {last}" in done.stderr + done.stdout
    starts = [json.loads(line) for line in (tmp_path / "probe.jsonl").read_text().splitlines()]
    resumed = starts[1]  # [first run's pretrain start, resumed pretrain, finetune]
    adam = saved["optimizer_states"][0]["state"][0]
    assert resumed["global_step"] == saved["global_step"] > 0
    assert resumed["adam_step"] == float(adam["step"])
    assert resumed["exp_avg_sum"] == pytest.approx(float(adam["exp_avg"].double().sum()), rel=1e-6)
    record = json.loads((root / "few_shot_k4/pretrain/phase.json").read_text())
    assert record["steps"] == 4 * steps_per_epoch  # the remaining steps only, no epoch run twice

    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "phase 'pretrain' already finished" in again.stderr + again.stdout
    assert "phase 'finetune' already finished" in again.stderr + again.stdout
