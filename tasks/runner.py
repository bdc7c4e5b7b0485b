"""Runs a task's phases and tests from one `fit` command, resumably, and writes the results record.

Layout of a run (the TensorBoard log dir is `--task.root`):
```
<root>/<task>/<phase>/                       shared phases (e.g. synthetic pre-training), in order
<root>/<task>/[<split>/]<phase>/             each split's own phases (e.g. s2/finetune), after the shared ones
    checkpoints/last.ckpt (+ best when validating), phase.json + weights.pt when the phase finished
<root>/<task>/[<split>/]test/<test>/         TensorBoard events of a test (confusion matrix) + test.json
<root>/<task>/results.json                   the `Results` record: every test, summary mean +- std, config hash
<root>/<task>/results.md                     the summary in the paper's layout (`tasks.report`)
```
A finished phase (phase.json present) is never re-run: its weights are loaded and the next phase
starts; a finished test (test.json) is not re-run by `fit`. A phase interrupted mid-way resumes from its
`last.ckpt` (model, optimiser, scheduler, epoch). Every split starts from the weights of the task's
shared phases (or the initial weights when there are none), never from another split's.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, instantiate_class
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn

from datamodules.annotations import read_video_list
from datamodules.manifest import write_text_atomic
from datamodules.skips import SkipLogger, record_excluded, with_data_section  # data accounting (issue 16)
from datamodules.splits import lt_groups
from tasks.metrics import class_mean, group_means, per_class_accuracy
from tasks.registry import Phase, Split, TaskSpec, Test, get_task
from tasks.report import Results, TestResult, summarise, task_table


@dataclass
class TaskConfig:
    """Which protocol to run and its per-phase schedule (the `task:` section of a task YAML).

    Args:
        name: registered task name (see `python -m tasks list`); None runs a plain Lightning fit/test.
        root: folder holding the run folders `<root>/<name>/`; also the TensorBoard log dir.
        epochs: max epochs per phase name, e.g. {pretrain: 10, finetune: 50}; default trainer.max_epochs.
        lr: peak learning rate per phase name; default the model's `lr`.
        warmup_epochs: warm-up epochs per phase name; default the model's `warmup_epochs`.
        accumulate_grad_batches: gradient accumulation per phase name, to reach the recipe's total batch
            (total = data.batch_size x devices x accumulate); default trainer.accumulate_grad_batches.
        synthetic_classes: which classes the synthetic phases train on: `protocol` (the phase's own label
            space, e.g. base-to-novel's base half) or `all` (the main label file, e.g. all 101 UCF classes).
            Recorded in results.json.
        init_weights: state dict (a `weights.pt`, or a Lightning `.ckpt`) loaded before the first phase,
            e.g. a Kinetics-400-trained model for zero-shot; None starts from the net's own weights.
        checkpoint_every_n_steps: also write `last.ckpt` every N optimiser steps, so a crash mid-epoch (long
            synthetic epochs: 600 classes x 128 clips is 300 steps of 256) resumes from there; None: at
            epoch ends only.
    """

    name: str | None = None
    root: str = "runs"
    epochs: dict[str, int] = field(default_factory=dict)
    lr: dict[str, float] = field(default_factory=dict)
    warmup_epochs: dict[str, float] = field(default_factory=dict)
    accumulate_grad_batches: dict[str, int] = field(default_factory=dict)
    synthetic_classes: Literal["protocol", "all"] = "protocol"
    init_weights: str | None = None
    checkpoint_every_n_steps: int | None = None


def phase_labels(phase: Phase, config: TaskConfig) -> str | None:
    """The label set a phase trains in: its own, or the main one for synthetic phases with `all`."""
    return None if phase.source == "synthetic" and config.synthetic_classes == "all" else phase.labels


def _use_labels(datamodule, key: str | None) -> None:
    """Switch the datamodule's label space; a datamodule without label sets only serves key None."""
    if hasattr(datamodule, "set_labels"):
        datamodule.set_labels(key)
    elif key is not None:
        raise ValueError(f"{type(datamodule).__name__} has no label sets, but the task needs label set {key!r}")


def _load(model: LightningModule, path: Path) -> None:
    """Load a state dict file, or the `state_dict` of a Lightning checkpoint."""
    if not path.is_file():
        raise FileNotFoundError(f"--task.init_weights: {path} not found; give a weights.pt or a Lightning .ckpt")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["state_dict"] if "state_dict" in state else state)


def _readable_checkpoint(path: Path) -> bool:
    """Whether a Lightning checkpoint loads (Lightning writes it in place: a kill mid-write truncates it).
    Our own file, so a full (non weights-only) load is safe; memory-mapped, so cheap."""
    try:
        torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        return True
    except Exception:  # noqa: BLE001 - any failure means the resume would fail the same way
        return False


class TaskRunner:
    """Runs the phases and tests of one task with the model and data the CLI built."""

    def __init__(self, cli: LightningCLI, config: TaskConfig):
        self.cli = cli
        self.config = config
        self.spec: TaskSpec = get_task(config.name)
        self.run_dir = Path(config.root) / self.spec.name

    @staticmethod
    def preflight(name: str, data_config, subcommand: str, config: TaskConfig | None = None) -> None:
        """Validate the data a task needs from the (not yet instantiated) `data` config section: every
        list in the label space it is used with, and the synthetic manifest's coverage of each space."""
        spec, config = get_task(name), config or TaskConfig(name=name)
        datamodule = instantiate_class((), data_config.as_dict())
        checks: dict[str | None, tuple[list[str], bool]] = {}  # label set -> (real lists, synthetic?)
        for split in spec.plan():
            if subcommand == "fit":
                for phase in (*spec.phases, *split.phases):
                    lists, synthetic = checks.get(phase_labels(phase, config), ([], False))
                    lists += [phase.train_list] if phase.train_list else []
                    checks[phase_labels(phase, config)] = (lists, synthetic or phase.source == "synthetic")
            for test in split.tests:
                lists, synthetic = checks.get(test.labels, ([], False))
                checks[test.labels] = (lists + [test.test_list], synthetic)
        for key, (lists, synthetic) in checks.items():
            unique = list(dict.fromkeys(lists))
            if key is None:
                datamodule.check(unique, synthetic=synthetic)
            else:
                datamodule.check(unique, synthetic=synthetic, labels=key)

    def _trainer(self, version: str, checkpoints: list[ModelCheckpoint] | None = None, **overrides) -> Trainer:
        """A fresh Trainer per phase/test: its own logger version and checkpoint folder, fresh user callbacks."""
        user = self.cli.config[self.cli.subcommand].trainer.callbacks or []
        user = user if isinstance(user, list) else [user]
        callbacks = [instantiate_class((), cb.as_dict()) for cb in user]
        callbacks += checkpoints or []
        callbacks.append(SkipLogger())  # data accounting (issue 16): failed reads per epoch, over ranks
        logger = TensorBoardLogger(self.config.root, name=self.spec.name, version=version, default_hp_metric=False)
        return self.cli.instantiate_trainer(logger=logger, callbacks=callbacks, **overrides)

    def config_hash(self) -> str:
        """sha256 (12 hex digits) of the merged config, without `task.root` (where a run lives is not what it is)."""
        merged = self.cli.config[self.cli.subcommand].as_dict()
        merged = {k: v for k, v in merged.items() if k not in ("config", "ckpt_path")}
        merged["task"] = {k: v for k, v in merged.get("task", {}).items() if k != "root"}
        return hashlib.sha256(json.dumps(merged, sort_keys=True, default=str).encode()).hexdigest()[:12]

    # ------------------------------------------------------------------------------------------ phases

    def fit(self, model: LightningModule, datamodule) -> Results:
        """Run every phase and test (skipping finished ones); returns the results record."""
        if self.config.init_weights:
            _load(model, Path(self.config.init_weights))
        trains = any(p.requires_grad for p in model.parameters())  # False e.g. for vanilla CLIP: tests only
        if not trains:
            rank_zero_info(f"[{self.spec.name}] {type(getattr(model, 'net', model)).__name__} has no trainable "
                           "parameters: evaluation-only, so the training phases are skipped")  # fmt: skip
        for phase in self.spec.phases if trains else ():
            self._run_phase(phase, self.run_dir / phase.name, model, datamodule)
        plan = self.spec.plan()
        initial = None
        if trains and len(plan) > 1 and any(split.phases for split in plan):
            initial = copy.deepcopy(model.state_dict())  # each split starts from here
        tests = []
        for split in plan:
            if initial is not None:
                model.load_state_dict(initial)
            for phase in split.phases if trains else ():
                self._run_phase(phase, self.run_dir / split.name / phase.name, model, datamodule)
            tests += [self._test(split, test, model, datamodule, rerun=False) for test in split.tests]
        return self._write_results(tests, datamodule)

    def _run_phase(self, phase: Phase, phase_dir: Path, model: LightningModule, datamodule) -> None:
        label_key = phase_labels(phase, self.config)
        _use_labels(datamodule, label_key)
        done = phase_dir / "phase.json"
        where = phase_dir.relative_to(self.run_dir).as_posix()
        if done.is_file():
            record = json.loads(done.read_text())
            if record.get("label_file", str(datamodule.label_file)) != str(datamodule.label_file):
                raise ValueError(
                    f"{done}: this finished phase trained on the classes of {record['label_file']}, but the config "
                    f"now asks for {datamodule.label_file} (--task.synthetic_classes?). Use another --task.root."
                )
            model.load_state_dict(self._load_phase(phase_dir))
            rank_zero_info(f"[{self.spec.name}] phase {where!r} already finished ({done}); skipping it")
            return
        datamodule.set_phase(phase.source, phase.train_list)
        model.lr = self.config.lr.get(phase.name, model.lr)
        model.warmup_epochs = self.config.warmup_epochs.get(phase.name, model.warmup_epochs)
        validate = phase.source == "real" and getattr(datamodule, "val_list", None) is not None
        checkpoint = ModelCheckpoint(
            dirpath=phase_dir / "checkpoints",
            filename="best-{epoch}",
            monitor=self.spec.monitor if validate else None,
            mode="max",
            save_top_k=1 if validate else 0,
            save_last=True,
        )
        callbacks = [checkpoint]
        if self.config.checkpoint_every_n_steps:  # a second writer of last.ckpt, mid-epoch
            callbacks.append(ModelCheckpoint(dirpath=phase_dir / "checkpoints", save_top_k=0, save_last=True,
                                             every_n_train_steps=self.config.checkpoint_every_n_steps))  # fmt: skip
        overrides = {"limit_val_batches": 0} if not validate else {}
        if phase.name in self.config.epochs:
            overrides["max_epochs"] = self.config.epochs[phase.name]
        if phase.name in self.config.accumulate_grad_batches:
            overrides["accumulate_grad_batches"] = self.config.accumulate_grad_batches[phase.name]
        trainer = self._trainer(where, callbacks, **overrides)
        last = phase_dir / "checkpoints" / "last.ckpt"
        if last.is_file() and not _readable_checkpoint(last):
            last.replace(last.with_suffix(".ckpt.unreadable"))
            rank_zero_warn(f"[{self.spec.name}] {last} is unreadable (killed while it was written?); kept as "
                           f"{last.name}.unreadable, phase {where!r} starts over")  # fmt: skip
        if last.is_file():
            rank_zero_info(f"[{self.spec.name}] resuming phase {where!r} from {last}")
        rank_zero_info(f"[{self.spec.name}] phase {where!r}: training on {phase.source} data ({datamodule.label_file})")
        started = time.time()
        trainer.fit(model, datamodule=datamodule, ckpt_path=str(last) if last.is_file() else None)
        if trainer.interrupted:
            raise SystemExit(f"[{self.spec.name}] phase {where!r} interrupted; re-run the command to resume")
        if trainer.is_global_zero:
            torch.save(model.state_dict(), phase_dir / "weights.pt")
            record = {
                "phase": phase.name,
                "source": phase.source,
                "train_list": phase.train_list,
                "label_file": str(datamodule.label_file),
                "epochs": trainer.current_epoch,
                "steps": trainer.global_step,
                "seconds": round(time.time() - started, 1),
                "weights": "weights.pt",
                "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
                "data": datamodule.skip_report() if hasattr(datamodule, "skip_report") else None,  # issue 16
            }
            write_text_atomic(done, json.dumps(record, indent=2) + "\n")
        trainer.strategy.barrier()

    # ------------------------------------------------------------------------------------------ tests

    def _final_phase_dir(self, split: Split) -> Path | None:
        if split.phases:
            return self.run_dir / split.name / split.phases[-1].name
        return self.run_dir / self.spec.phases[-1].name if self.spec.phases else None

    def _test(self, split: Split, test: Test, model: LightningModule, datamodule, rerun: bool) -> TestResult:
        """Test the current weights on one list of a split; per-class accuracy when the model keeps it."""
        test_dir = self.run_dir / split.name / "test" / test.name
        done = test_dir / "test.json"
        if done.is_file() and not rerun:
            rank_zero_info(f"[{self.spec.name}] test {test_dir.relative_to(self.run_dir)} already done; skipping it")
            return TestResult(**json.loads(done.read_text()))
        _use_labels(datamodule, test.labels)
        datamodule.test_list = test.test_list
        trainer = self._trainer(test_dir.relative_to(self.config.root).relative_to(self.spec.name).as_posix())
        metrics = {k: float(v) for k, v in trainer.test(model, datamodule=datamodule, verbose=False)[0].items()}
        confusion = getattr(model, "test_confusion", None)
        per_class = per_class_accuracy(confusion) if confusion is not None else None
        if per_class is not None:
            metrics["test/class_mean"] = class_mean(per_class)
            if self.spec.protocol == "long_tail":
                for group, value in group_means(per_class, self._lt_groups(split, datamodule)).items():
                    metrics[f"test/{group}"] = value
        final = self._final_phase_dir(split)
        result = TestResult(
            split=split.name or test.name,
            test=test.name,
            group=test.group,
            test_list=test.test_list,
            label_file=str(datamodule.label_file),
            metrics={k: v for k, v in metrics.items() if v is not None},
            per_class=per_class,
            weights=str(final / "weights.pt") if final and (final / "phase.json").is_file()
            else (self.config.init_weights or "initial"),
        )
        if trainer.is_global_zero:
            test_dir.mkdir(parents=True, exist_ok=True)
            record_excluded(test_dir, datamodule, test.test_list)  # data accounting (issue 16)
            write_text_atomic(done, json.dumps(result.__dict__, indent=1) + "\n")
        return result

    def _lt_groups(self, split: Split, datamodule) -> dict[str, list[int]]:
        """Head / Tail / Few classes of the long-tailed training list: its builder's `<stem>_groups.json`
        when present, else computed from the list's clip counts (`datamodules.splits.lt_groups`)."""
        train_list = [p.train_list for p in (*self.spec.phases, *split.phases) if p.train_list][-1]
        path = Path(datamodule.split_dir) / train_list
        groups_file = path.with_name(path.stem + "_groups.json")
        if groups_file.is_file():
            groups = json.loads(groups_file.read_text())
            return {g: [int(c) for c in groups[g]] for g in ("head", "tail", "few")}
        counts: dict[int, int] = {i: 0 for i in range(len(datamodule.class_names))}
        for entry in read_video_list(path, len(datamodule.class_names)):
            counts[entry.label] += 1
        return lt_groups({c: n for c, n in counts.items() if n > 0})

    def test(self, model: LightningModule, datamodule) -> Results:
        """Re-test every split with its final weights (the `test` subcommand); rewrites results.json."""
        tests = []
        for split in self.spec.plan():
            final = self._final_phase_dir(split)
            if final is not None:
                model.load_state_dict(self._load_phase(final))
            tests += [self._test(split, test, model, datamodule, rerun=True) for test in split.tests]
        return self._write_results(tests, datamodule)

    def _load_phase(self, phase_dir: Path) -> dict:
        done = phase_dir / "phase.json"
        if not done.is_file():
            where = phase_dir.relative_to(self.run_dir).as_posix()
            raise FileNotFoundError(
                f"{done} not found: task {self.spec.name!r} has not finished phase {where!r}. "
                f"Run `python train.py fit --config tasks/{self.spec.name}.yaml` first, or pass --ckpt_path."
            )
        record = json.loads(done.read_text())
        return torch.load(phase_dir / record["weights"], map_location="cpu", weights_only=True)

    def _write_results(self, tests: list[TestResult], datamodule) -> Results:
        """The results record of all tests (+ summary), written as results.json and results.md."""
        _use_labels(datamodule, None)
        phases = [*self.spec.phases, *(p for split in self.spec.plan() for p in split.phases)]
        # A run whose synthetic phases were given 0 epochs (the "no pre-training" baseline) used no synthetic set.
        synthetic_trained = any(p.source == "synthetic" and self.config.epochs.get(p.name) != 0 for p in phases)
        results = Results(
            task=self.spec.name,
            protocol=self.spec.protocol,
            dataset=self.spec.dataset,
            description=self.spec.description,
            shots=self.spec.shots,
            label_file=str(datamodule.label_file),
            test_list=self.spec.plan()[0].tests[0].test_list,
            synthetic_manifest=getattr(datamodule, "synthetic_manifest", None) if synthetic_trained else None,
            synthetic_classes=self.config.synthetic_classes,
            init_weights=self.config.init_weights,
            config_hash=self.config_hash(),
            phases=[p.name for p in self.spec.phases] + sorted({p.name for s in self.spec.plan() for p in s.phases}),
            tests=tests,
            summary=summarise(tests),
        )
        results.metrics = {k: v["mean"] for k, v in results.summary.items()}
        if rank_zero_only.rank == 0:
            text, data_lines = with_data_section(results.to_json(), self.run_dir)  # data accounting (issue 16)
            write_text_atomic(self.run_dir / "results.json", text)
            table = task_table([results]) + (f"\n\n{data_lines}" if data_lines else "")
            write_text_atomic(self.run_dir / "results.md", table + "\n")
            print(f"\n{self.spec.name}: {self.spec.description}\n{table}")
            print(f"results: {self.run_dir / 'results.json'}\nTensorBoard: tensorboard --logdir {self.config.root}")
        return results
