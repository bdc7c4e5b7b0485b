"""The Trainer's progress display, chosen by where stdout goes (the runner adds it to every phase and test).

On a terminal: Lightning's tqdm bar without its version field (`v_num` showed the last 4 characters of the
TensorBoard version, i.e. the phase's name cut: `v_num: rain`; the runner names the phase when it starts). In a
file or a pipe, where a tqdm bar is one endless line of `\\r` redraws: one plain line per training epoch and one
per evaluation, e.g.

    [finetune] epoch 3/50: step 12, 4.1 s, train/loss 1.234, train/top1 0.5, val/top1 0.25
"""

from __future__ import annotations

import sys
import time

from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar

from datamodules.progress import is_terminal


def _without_version(items: dict) -> dict:
    return {k: v for k, v in items.items() if k != "v_num"}


class PhaseBar(TQDMProgressBar):
    """Lightning's tqdm progress bar, without the truncated version field."""

    def get_metrics(self, trainer, pl_module) -> dict:
        return _without_version(super().get_metrics(trainer, pl_module))


class EpochLines(ProgressBar):
    """One line per training epoch and per evaluation on stdout: readable in a log file or a pipe."""

    def __init__(self):
        super().__init__()
        self._enabled = True
        self._started = time.time()

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _where(self) -> str:
        logger = self.trainer.logger
        return f"[{logger.version}] " if logger is not None and logger.version not in (None, "") else ""

    def _line(self, text: str, pl_module) -> None:
        if not self._enabled:
            return
        values = [
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in _without_version(self.get_metrics(self.trainer, pl_module)).items()
        ]
        print(
            f"{self._where()}{text}, {time.time() - self._started:.1f} s" + "".join(f", {v}" for v in values),
            flush=True,
        )

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._started = time.time()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epochs = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        self._line(f"epoch {trainer.current_epoch + 1}{epochs}: step {trainer.global_step}", pl_module)

    def on_test_start(self, trainer, pl_module) -> None:
        self._started = time.time()

    def on_test_end(self, trainer, pl_module) -> None:
        self._line(f"test: {int(sum(trainer.num_test_batches))} batches", pl_module)


def progress_bar(stream=None) -> ProgressBar:
    """The progress display for output going to `stream` (default stdout, where Lightning's bar writes)."""
    return PhaseBar() if is_terminal(stream or sys.stdout) else EpochLines()
