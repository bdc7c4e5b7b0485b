"""Issue 27 point 4: progress written to a file or pipe stays readable (plain lines, no `\\r` redraws), and the
Trainer's version field is not cut to `v_num: rain`."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import lightning as L
import torch
from conftest import ROOT
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader, TensorDataset

from datamodules.progress import Progress
from tasks.progress import EpochLines, PhaseBar, progress_bar


def test_generation_demo_through_a_pipe_prints_short_plain_lines(tmp_path):
    proc = subprocess.run(  # stdout and stderr to a pipe, as `... 2>&1 | cat`
        [sys.executable, "-m", "generation", "demo", "--out", str(tmp_path / "smoke"), "--preset", "smoke"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    lines = proc.stdout.splitlines()
    assert "\r" not in proc.stdout
    assert max(len(line) for line in lines) < 200, max(lines, key=len)
    progress = [line for line in lines if line.startswith("real:")]
    assert 2 <= len(progress) <= 11 and progress[-1].startswith("real: 100% 144/144 [")  # ~ every 10%, then the end


def test_progress_writes_a_line_per_10_percent_and_the_end():
    out = io.StringIO()  # not a terminal
    with Progress(total=40, desc="score", unit="clip", file=out, mininterval=0) as bar:
        for _ in range(40):
            bar.update()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and len(lines) == 10
    assert [line.split()[1] for line in lines] == [f"{p}%" for p in range(10, 101, 10)]
    assert lines[-1].startswith("score: 100% 40/40 [")


class _Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).mean()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_trainer_writing_to_a_pipe_prints_one_line_per_epoch_with_the_whole_phase_name(tmp_path, capsys):
    bar = progress_bar(io.StringIO())
    assert isinstance(bar, EpochLines)
    trainer = L.Trainer(
        max_epochs=3,
        callbacks=[bar],
        logger=TensorBoardLogger(tmp_path, name="task", version="s1/train"),
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(_Tiny(), DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=2))
    lines = [line for line in capsys.readouterr().out.splitlines() if "epoch" in line]
    assert [line.split(",")[0] for line in lines] == [f"[s1/train] epoch {e}/3: step {4 * e}" for e in (1, 2, 3)]
    assert all("train/loss" in line and "v_num" not in line for line in lines)


def test_the_terminal_bar_shows_no_truncated_version(tmp_path):
    trainer = L.Trainer(logger=TensorBoardLogger(tmp_path, name="task", version="train"), enable_checkpointing=False)
    assert "v_num" not in PhaseBar().get_metrics(trainer, None)
