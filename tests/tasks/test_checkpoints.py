"""When a phase writes `last.ckpt` (tasks/runner.py `phase_checkpoints`): the schedule README's resume guarantee
states, measured on a tiny model (4 epochs of 5 optimiser steps)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from tasks.runner import phase_checkpoints


class _Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/top1", float(self.current_epoch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _last_writes(tmp_path, monitor: str | None, every_n_steps: int | None) -> list[int]:
    """The global steps at which last.ckpt is written."""
    checkpoints = phase_checkpoints(tmp_path, monitor, every_n_steps)
    steps: list[int] = []
    for callback in checkpoints:
        save = callback._save_checkpoint

        def recording(trainer, path, save=save):
            if path.endswith("last.ckpt"):
                steps.append(trainer.global_step)
            save(trainer, path)

        callback._save_checkpoint = recording
    loader = DataLoader(TensorDataset(torch.randn(10, 2)), batch_size=2)  # 5 steps an epoch
    validation = {"check_val_every_n_epoch": 2} if monitor else {"limit_val_batches": 0}
    trainer = L.Trainer(
        max_epochs=4,
        callbacks=checkpoints,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **validation,
    )
    trainer.fit(_Tiny(), loader, loader if monitor else None)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("last")) == ["last.ckpt"]
    return sorted(set(steps))


@pytest.mark.parametrize(
    ("monitor", "every", "expected"),
    [
        (None, 3, [3, 6, 9, 12, 15, 18, 20]),  # every 3 steps and at the end; not at the epoch ends 5, 10, 15
        (None, None, [20]),  # at the end only
        ("val/top1", None, [10, 20]),  # after each validation (epochs 2 and 4) and at the end
        ("val/top1", 3, [3, 6, 9, 10, 12, 15, 18, 20]),
    ],
)
def test_last_ckpt_is_written_every_n_steps_after_validations_and_at_the_end(tmp_path, monitor, every, expected):
    assert _last_writes(tmp_path, monitor, every) == expected
