"""Issue 27: finished work is reused only under the same configuration, and a killed run resumes exactly.

Both run the few-shot smoke task (tasks/few_shot_k2.yaml through configs/smoke.yaml); the uninterrupted
reference is the session's `task_run` fixture.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, smoke_args, tensorboard_points

from train import main

KILLER = """
import os, signal
from lightning.pytorch.callbacks import Callback

class KillAt(Callback):
    def __init__(self, step: int = 3):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= self.step and str(trainer.logger.version).endswith("finetune"):
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9, mid-epoch, after the step-2 checkpoint
"""


def test_a_changed_configuration_never_reuses_a_finished_phase(task_run, smoke_data, tmp_path):
    run = tmp_path / "few_shot_k2"
    shutil.copytree(task_run("few_shot_k2"), run)
    first = json.loads((run / "results.json").read_text())
    assert set(first["phase_config_hashes"]) == {"pretrain", "finetune"}
    assert (
        first["phase_config_hashes"]["finetune"] == json.loads((run / "finetune/phase.json").read_text())["config_hash"]
    )
    args = smoke_args(ROOT / "tasks/few_shot_k2.yaml", smoke_data, tmp_path)
    with pytest.raises(ValueError, match=r"phase 'pretrain' .*trainer.max_epochs 1 -> 2\).*--task.root.*overwrite"):
        main([*args, "--trainer.max_epochs", "2"])
    with pytest.raises(ValueError, match=r"phase 'finetune' .*task.synthetic true -> false; starting weights"):
        main([*args, "--task.synthetic", "false"])
    assert json.loads((run / "results.json").read_text()) == first  # nothing rewritten


@pytest.mark.slow
def test_overwrite_retrains_and_the_row_names_the_weights_it_came_from(task_run, smoke_data, tmp_path):
    run = tmp_path / "few_shot_k2"
    shutil.copytree(task_run("few_shot_k2"), run)
    first = json.loads((run / "results.json").read_text())
    args = smoke_args(ROOT / "tasks/few_shot_k2.yaml", smoke_data, tmp_path)
    main([*args, "--task.synthetic", "false", "--task.overwrite", "true"])
    again = json.loads((run / "results.json").read_text())
    assert again["variant"] == "baseline" and set(again["phase_config_hashes"]) == {"finetune"}
    assert again["phase_config_hashes"]["finetune"] != first["phase_config_hashes"]["finetune"]
    assert again["tests"][0]["metrics"] != first["tests"][0]["metrics"]  # retrained and re-tested, not relabelled


def test_explicit_task_root_wins_over_a_later_config(smoke_data, tmp_path, capsys):
    args = [a for a in smoke_args(ROOT / "tasks/few_shot_k2.yaml", smoke_data, tmp_path / "mine") if a]
    i = args.index("--task.root")
    args = [*args[:1], *args[i : i + 2], *args[1:i], *args[i + 2 :], "--task.print_phase", "test"]
    assert args.index("--task.root") < args.index(str(ROOT / "configs/smoke.yaml"))  # configs/smoke.yaml sets root too
    with pytest.raises(SystemExit):
        main(args)
    assert f"root: {tmp_path / 'mine'}" in capsys.readouterr().out


def test_kill_9_mid_epoch_then_rerun_gives_the_uninterrupted_weights_and_metrics(task_run, smoke_data, tmp_path):
    (tmp_path / "killer.py").write_text(KILLER)
    args = smoke_args(ROOT / "tasks/few_shot_k2.yaml", smoke_data, tmp_path, "--task.checkpoint_every_n_steps", "2")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), str(tmp_path)])}
    killed = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args, "--trainer.callbacks+=killer.KillAt"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    # the uninterrupted run, also in a fresh process (the killed one starts as this one does)
    whole = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            *smoke_args(ROOT / "tasks/few_shot_k2.yaml", smoke_data, tmp_path / "whole"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert whole.returncode == 0, whole.stderr[-2000:]
    reference = tmp_path / "whole/few_shot_k2"
    phase = tmp_path / "few_shot_k2/finetune"
    assert torch.load(phase / "checkpoints/last.ckpt", weights_only=True)["global_step"] == 2
    rerun = subprocess.run(  # the rerun a user types after the kill: a fresh process too
        [sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming phase 'finetune'" in rerun.stderr
    ours, theirs = (
        torch.load(r / "finetune/weights.pt", weights_only=True) for r in (tmp_path / "few_shot_k2", reference)
    )
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    result, expected = (json.loads((r / "results.json").read_text()) for r in (tmp_path / "few_shot_k2", reference))
    assert result["tests"][0]["metrics"] == expected["tests"][0]["metrics"]
    lasts = sorted(p.name for p in (phase / "checkpoints").iterdir() if p.name.startswith("last"))
    assert lasts == ["last.ckpt"]  # no last-v1.ckpt (a best-epoch file of the model selection may sit beside it)
    points = tensorboard_points(sorted(phase.glob("events.out.tfevents.*")))
    assert sorted(points) == list(range(4)) and set(points.values()) == {1}  # no step logged twice


def test_seed_1_is_its_own_run_not_lightnings_true():
    """`--seed_everything 1` seeds the phases with 1 (it read as True, i.e. seed 0, since `1 == True`)."""
    from tasks.runner import phase_seed, run_seed

    assert [run_seed(v) for v in (None, True, False, 0, 1, 2)] == [0, 0, 0, 0, 1, 2]
    assert phase_seed(run_seed(1), "pretrain") != phase_seed(run_seed(0), "pretrain")
