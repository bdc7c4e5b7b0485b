"""Runs a task's phases from one `fit` command, resumably, and tests the result.

Layout of a run (the TensorBoard log dir is `--task.root`):
```
<root>/<task>/<phase>/                 TensorBoard events + config.yaml of the phase
<root>/<task>/<phase>/checkpoints/     last.ckpt (+ best when validating)
<root>/<task>/<phase>/phase.json       written when the phase finished; its weights.pt beside it
<root>/<task>/test/                    TensorBoard events of the test
<root>/<task>/results.json             task, dataset, metrics, weights used
```
A finished phase (phase.json present) is never re-run: its weights are loaded and the next phase
starts. A phase interrupted mid-way resumes from its `last.ckpt` (model, optimiser, scheduler, epoch).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, instantiate_class
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info

from datamodules.manifest import write_text_atomic
from tasks.registry import Phase, TaskSpec, get_task


@dataclass
class TaskConfig:
    """Which protocol to run and its per-phase schedule (the `task:` section of a task YAML).

    Args:
        name: registered task name (see `tasks.list_tasks()`); None runs a plain Lightning fit/test.
        root: folder holding the run folders `<root>/<name>/`; also the TensorBoard log dir.
        epochs: max epochs per phase name, e.g. {pretrain: 10, finetune: 50}; default trainer.max_epochs.
        lr: peak learning rate per phase name; default the model's `lr`.
        warmup_epochs: warm-up epochs per phase name; default the model's `warmup_epochs`.
        accumulate_grad_batches: gradient accumulation per phase name, to reach the recipe's total batch
            (total = data.batch_size x devices x accumulate); default trainer.accumulate_grad_batches.
    """

    name: str | None = None
    root: str = "runs"
    epochs: dict[str, int] = field(default_factory=dict)
    lr: dict[str, float] = field(default_factory=dict)
    warmup_epochs: dict[str, float] = field(default_factory=dict)
    accumulate_grad_batches: dict[str, int] = field(default_factory=dict)


class TaskRunner:
    """Runs the phases of one task with the model and data the CLI built."""

    def __init__(self, cli: LightningCLI, config: TaskConfig):
        self.cli = cli
        self.config = config
        self.spec: TaskSpec = get_task(config.name)
        self.run_dir = Path(config.root) / self.spec.name

    @staticmethod
    def preflight(name: str, data_config, subcommand: str) -> None:
        """Validate the data a task needs from the (not yet instantiated) `data` config section."""
        spec = get_task(name)
        datamodule = instantiate_class((), data_config.as_dict())
        if subcommand == "fit":
            lists = [p.train_list for p in spec.phases if p.train_list] + [spec.test_list]
            datamodule.check(lists, synthetic=any(p.source == "synthetic" for p in spec.phases))
        else:
            datamodule.check([spec.test_list], synthetic=False)

    def _trainer(self, version: str, checkpoint: ModelCheckpoint | None = None, **overrides) -> Trainer:
        """A fresh Trainer per phase: its own logger version and checkpoint folder, fresh user callbacks."""
        user = self.cli.config[self.cli.subcommand].trainer.callbacks or []
        user = user if isinstance(user, list) else [user]
        callbacks = [instantiate_class((), cb.as_dict()) for cb in user]
        if checkpoint is not None:
            callbacks.append(checkpoint)
        logger = TensorBoardLogger(self.config.root, name=self.spec.name, version=version, default_hp_metric=False)
        return self.cli.instantiate_trainer(logger=logger, callbacks=callbacks, **overrides)

    def fit(self, model: LightningModule, datamodule) -> dict:
        """Run every phase (skipping finished ones), then test; returns the results record."""
        datamodule.test_list = self.spec.test_list
        for phase in self.spec.phases:
            self._run_phase(phase, model, datamodule)
        return self.test(model, datamodule)

    def _run_phase(self, phase: Phase, model: LightningModule, datamodule) -> None:
        phase_dir = self.run_dir / phase.name
        done = phase_dir / "phase.json"
        if done.is_file():
            record = json.loads(done.read_text())
            model.load_state_dict(torch.load(phase_dir / record["weights"], map_location="cpu", weights_only=True))
            rank_zero_info(f"[{self.spec.name}] phase {phase.name!r} already finished ({done}); skipping it")
            return
        datamodule.set_phase(phase.source, phase.train_list)
        model.lr = self.config.lr.get(phase.name, model.lr)
        model.warmup_epochs = self.config.warmup_epochs.get(phase.name, model.warmup_epochs)
        validate = phase.source == "real" and datamodule.val_list is not None
        checkpoint = ModelCheckpoint(
            dirpath=phase_dir / "checkpoints",
            filename="best-{epoch}",
            monitor=self.spec.monitor if validate else None,
            mode="max",
            save_top_k=1 if validate else 0,
            save_last=True,
        )
        overrides = {"limit_val_batches": 0} if not validate else {}
        if phase.name in self.config.epochs:
            overrides["max_epochs"] = self.config.epochs[phase.name]
        if phase.name in self.config.accumulate_grad_batches:
            overrides["accumulate_grad_batches"] = self.config.accumulate_grad_batches[phase.name]
        trainer = self._trainer(phase.name, checkpoint, **overrides)
        last = phase_dir / "checkpoints" / "last.ckpt"
        if last.is_file():
            rank_zero_info(f"[{self.spec.name}] resuming phase {phase.name!r} from {last}")
        rank_zero_info(f"[{self.spec.name}] phase {phase.name!r}: training on {phase.source} data")
        started = time.time()
        trainer.fit(model, datamodule=datamodule, ckpt_path=str(last) if last.is_file() else None)
        if trainer.interrupted:
            raise SystemExit(f"[{self.spec.name}] phase {phase.name!r} interrupted; re-run the command to resume")
        if trainer.is_global_zero:
            torch.save(model.state_dict(), phase_dir / "weights.pt")
            record = {
                "phase": phase.name,
                "source": phase.source,
                "train_list": phase.train_list,
                "epochs": trainer.current_epoch,
                "steps": trainer.global_step,
                "seconds": round(time.time() - started, 1),
                "weights": "weights.pt",
                "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
            }
            write_text_atomic(done, json.dumps(record, indent=2) + "\n")
        trainer.strategy.barrier()

    def test(self, model: LightningModule, datamodule) -> dict:
        """Test the current weights on the task's test list and write `results.json`."""
        datamodule.test_list = self.spec.test_list
        trainer = self._trainer("test")
        metrics = trainer.test(model, datamodule=datamodule, verbose=False)[0]
        results = {
            "task": self.spec.name,
            "protocol": self.spec.protocol,
            "dataset": self.spec.dataset,
            "test_list": self.spec.test_list,
            "label_file": str(datamodule.label_file),
            "metrics": {k: float(v) for k, v in metrics.items()},
            "phases": [p.name for p in self.spec.phases],
        }
        if trainer.is_global_zero:
            write_text_atomic(self.run_dir / "results.json", json.dumps(results, indent=2) + "\n")
            rows = "\n".join(f"| {k} | {100 * v:.2f} |" for k, v in sorted(results["metrics"].items()))
            print(f"\n{self.spec.name} ({self.spec.dataset}, {self.spec.test_list})\n| metric | % |\n|---|---|\n{rows}")
            print(f"results: {self.run_dir / 'results.json'}\nTensorBoard: tensorboard --logdir {self.config.root}")
        return results

    def load_final_weights(self, model: LightningModule) -> None:
        """Load the weights of the task's last finished phase (for `test` without --ckpt_path)."""
        last = self.spec.phases[-1]
        done = self.run_dir / last.name / "phase.json"
        if not done.is_file():
            raise FileNotFoundError(
                f"{done} not found: task {self.spec.name!r} has not finished phase {last.name!r}. "
                f"Run `python train.py fit --config tasks/{self.spec.name}.yaml` first, or pass --ckpt_path."
            )
        record = json.loads(done.read_text())
        model.load_state_dict(torch.load(done.parent / record["weights"], map_location="cpu", weights_only=True))
