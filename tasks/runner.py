"""Runs a task's phases and tests for every LightningCLI subcommand, resumably, and writes the results record.

Configuration: every phase (and every evaluation) runs on its own config, parsed by jsonargparse from the
command line with the phase's layers inserted right after the task YAML: the recipe's overlay for that phase
(`recipe.phases.<phase>`, or `recipe.test` for evaluation), then the `loss:` and `prompts:` fragments, then
the user's arguments (later `--config` files and `--key value` flags) in order, so a value the user sets
wins over the recipe in every phase. Each phase builds
its own model, datamodule and Trainer from that config and saves it as `<phase>/config.yaml`.

Layout of a run (the TensorBoard log dir is `--task.root`):
```
<root>/<task>/<phase>/                       shared phases (e.g. synthetic pre-training), in order
<root>/<task>/[<split>/]<phase>/             each split's own phases (e.g. s2/finetune), after the shared ones
    config.yaml (the phase's effective config), checkpoints/last.ckpt, phase.json + weights.pt when finished
<root>/<task>/[<split>/]test/<test>/         TensorBoard events of a test (confusion matrix) + test.json
<root>/<task>/results.json                   the `Results` record: every test, summary mean +- std, config hash
<root>/<task>/results.md                     the summary in the paper's layout (`tasks.report`)
```
A finished phase (phase.json present) is never re-run: its weights are loaded and the next phase starts;
a finished test (test.json) is not re-run by `fit`. A phase interrupted mid-way resumes from its
`last.ckpt` (written every `--task.checkpoint_every_n_steps` optimiser steps, after each validation of a
validated phase and when training ends, not at other epoch ends: `phase_checkpoints`; the resumed
TensorBoard log purges the steps after it). Every split starts from the weights of the task's shared
phases (or the starting weights when there are none), never from another split's.

Evaluation under DDP is exact: each rank tests a disjoint share of the list (no clip repeated to pad the
shards), and the metric states are summed over the ranks.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from jsonargparse import Namespace
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states, seed_everything
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn
from torch.utils.data import DataLoader

from datamodules.manifest import prompt_provenance, write_text_atomic
from datamodules.resume import LoaderStateOnResume
from datamodules.skips import SkipLogger, record_excluded, with_data_section  # data accounting (issue 16)
from tasks import phase_config
from tasks.metrics import class_mean, per_class_accuracy
from tasks.progress import progress_bar
from tasks.recipe import accumulation, phase_layer, user_sets
from tasks.registry import Phase, Split, TaskSpec, Test, get_task, list_tasks
from tasks.report import Results, TestResult, summarise, task_table
from tasks.selection import save_best, selection_for, wise_ft

GENERATED = ("synthetic", "mixed")  # phase sources that train on the generated set


@dataclass
class TaskConfig:
    """Which protocol to run and how (the `task:` section of a task YAML). The schedule of each phase is
    the recipe's (`recipe.phases`), not here.

    Args:
        name: registered task name (see `python -m tasks list`); None runs a plain Lightning fit/test.
        root: folder holding the run folders `<root>/<name>/`; also the TensorBoard log dir.
        synthetic: True ("+Ours"): run the synthetic phases; False: the baseline, exactly the reference
            recipe without synthetic data (synthetic phases are skipped; a zero-shot baseline only tests its
            starting model). Recorded in results.json as `variant`.
        synthetic_classes: which classes the synthetic phases train on: `protocol` (the phase's own label
            space, e.g. base-to-novel's base half) or `all` (the main label file, e.g. all 101 UCF classes).
            Recorded in results.json.
        init_weights: state dict (a `weights.pt`, or a Lightning `.ckpt`) loaded before the first phase,
            e.g. the Kinetics-400-trained model that zero-shot tasks start from; None starts from the net's
            own weights.
        from_clip: start a task that needs a Kinetics-400-trained model (zero-shot) from the net's own (CLIP)
            weights instead; recorded in results.json as `start: clip`.
        checkpoint_every_n_steps: write `last.ckpt` every N optimiser steps, so a crash mid-epoch resumes from
            there (a synthetic epoch of 600 classes x 128 clips is 300 steps of 256); it is also written after
            each validation and when training ends. None: only then (a phase that does not validate then
            starts over after a crash).
        print_phase: print the effective config of this phase (or `test`) and exit.
        overwrite: retrain a phase whose folder holds work of another configuration (and so every phase
            after it); False: stop with the keys that differ (`tasks.phase_config`).
    """

    name: str | None = None
    root: str = "runs"
    synthetic: bool = True
    synthetic_classes: Literal["protocol", "all"] = "protocol"
    init_weights: str | None = None
    from_clip: bool = False
    checkpoint_every_n_steps: int | None = 50
    print_phase: str | None = None
    overwrite: bool = False


def phase_labels(phase: Phase, config: TaskConfig) -> str | None:
    """The label set a phase trains in: its own, or the main one for synthetic phases with `all`."""
    return None if phase.source == "synthetic" and config.synthetic_classes == "all" else phase.labels


def _use_labels(datamodule, key: str | None) -> None:
    """Switch the datamodule's label space; a datamodule without label sets only serves key None."""
    if hasattr(datamodule, "set_labels"):
        datamodule.set_labels(key)
    elif key is not None:
        raise ValueError(f"{type(datamodule).__name__} has no label sets, but the task needs label set {key!r}")


def _read_state(path: Path, what: str) -> dict:
    """A state dict file, or the `state_dict` of a Lightning checkpoint."""
    if not path.is_file():
        raise FileNotFoundError(f"{what}: {path} not found; give a weights.pt or a Lightning .ckpt")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state["state_dict"] if "state_dict" in state else state


def _readable_checkpoint(path: Path) -> int | None:
    """The global step of a Lightning checkpoint, or None when it does not load (Lightning writes it in
    place: a kill mid-write truncates it). Our own file, so a full load is safe; memory-mapped, so cheap."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=False, mmap=True).get("global_step", 0))
    except Exception:  # noqa: BLE001 - any failure means the resume would fail the same way
        return None


def _unrepeated(loader: DataLoader, trainer: Trainer) -> DataLoader:
    """Under DDP, the same loader over a disjoint share of the dataset per rank (no clip repeated to pad
    the shards, unlike DistributedSampler), so every clip is counted exactly once."""
    if trainer.world_size <= 1 or not isinstance(loader, DataLoader):
        return loader
    sampler = UnrepeatedDistributedSampler(
        loader.dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
    )
    return type(loader)(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        persistent_workers=loader.persistent_workers,
    )


class _ExactEvaluation:
    """Wraps a datamodule's val/test loaders with `_unrepeated` for one Trainer (use_distributed_sampler off)."""

    def __init__(self, datamodule, trainer: Trainer):
        self.datamodule, self.trainer = datamodule, trainer

    def __enter__(self):
        for name in ("val_dataloader", "test_dataloader"):
            original = getattr(type(self.datamodule), name)
            loader = lambda original=original: _unrepeated(original(self.datamodule), self.trainer)  # noqa: E731
            setattr(self.datamodule, name, loader)
        return self

    def __exit__(self, *exc):
        for name in ("val_dataloader", "test_dataloader"):
            self.datamodule.__dict__.pop(name, None)


class _Predictor(LightningModule):
    """Per-clip predictions of a video-CLIP module: (label, predicted class, its score) over the test views."""

    def __init__(self, module: LightningModule):
        super().__init__()
        self.module = module

    def setup(self, stage: str) -> None:
        self.module.trainer = self.trainer  # the wrapped module reads the label space from the datamodule
        self.module.setup("test")

    def predict_step(self, batch: dict, batch_idx: int) -> list[tuple[int, int, float]]:
        video = batch["video"]
        scores = self.module.scores(video) if video.ndim == 6 else self.module(video).softmax(dim=-1)
        score, pred = scores.max(dim=-1)
        return list(zip(batch["label"].tolist(), pred.tolist(), score.tolist()))


class TaskRunner:
    """Runs the phases and tests of one task, each from its own merged config.

    Args:
        config: the `task:` section.
        parser: the subcommand's parser (merges overlays and builds the classes).
        base: the subcommand's parsed config (all config files and arguments).
        task_args: `--config <task YAML>` (empty when the task is given without one).
        user_args: every other argument after the subcommand, in order; they win over the phase's layers.
        subcommand: fit, validate, test or predict.
        on_build: called with a phase's config just before its classes are built (train.py points the
            CLI's saved hyperparameters at it, so a checkpoint's `hyper_parameters` are the phase's own).
    """

    def __init__(
        self,
        config: TaskConfig,
        parser,
        base: Namespace,
        task_args: list[str],
        user_args: list[str],
        subcommand: str,
        on_build: Callable[[Namespace], None] | None = None,
    ):
        self.on_build = on_build
        self.config = config
        self.parser = parser
        self.base = base
        self.task_args = task_args
        self.user_args = user_args
        self.subcommand = subcommand
        self.spec: TaskSpec = get_task(config.name)
        self.run_dir = Path(config.root) / self.spec.name

    # ------------------------------------------------------------------------------------------ configs

    def phase_names(self) -> list[str]:
        names = [p.name for p in self.spec.phases] + [p.name for s in self.spec.plan() for p in s.phases]
        return list(dict.fromkeys(names))

    def phase_config(self, phase: str | None) -> Namespace:
        """The effective config of a phase (None: of evaluation), parsed as: task YAML, recipe overlay of the
        phase, loss and prompts fragments, then the user's arguments. Parsed once per phase (a parse takes
        ~0.5 s); each call gets its own copy."""
        cache = self.__dict__.setdefault("_parsed", {})
        if phase not in cache:
            cache[phase] = self._parse_phase(phase)
        return cache[phase].clone()

    def _parse_phase(self, phase: str | None) -> Namespace:
        recipe, total = self.base.recipe, None
        if phase is None:
            layers = [recipe.test]
        else:
            shared, own = _plain(recipe.get("shared") or {}), _plain(recipe.phases.get(phase, {}))
            layer, total = phase_layer(shared, own)
            layers = [layer]
        for key in ("loss", "prompts"):
            fragment = self.base[key]
            layers.append({k: fragment[k] for k in ("model", "data", "trainer") if fragment[k]})
        args = [*self.task_args]
        for layer in layers:
            args += ["--config", json.dumps(_plain(layer))] if layer else []
        where = f"recipe.phases.{phase}" if phase else "recipe.test"
        exit_on_error, self.parser.exit_on_error = self.parser.exit_on_error, False
        try:
            cfg = self.parser.parse_args(args + self.user_args)
        except Exception as error:  # noqa: BLE001 - jsonargparse's errors name the bad key
            message = " ".join(str(error).split())
            raise ValueError(
                f"the config of {self.spec.name} with {where} and the loss/prompts fragments does not parse: {message}"
            ) from error
        finally:
            self.parser.exit_on_error = exit_on_error
        if total is not None and not user_sets(self.user_args, "trainer.accumulate_grad_batches"):
            batch = (cfg.data.get("init_args") or cfg.data).get("batch_size")
            if batch is None:
                raise ValueError(f"{where}: total_batch needs a datamodule with a batch_size")
            cfg.trainer.accumulate_grad_batches = accumulation(total, batch, cfg.trainer.as_dict(), where)
        return cfg

    def _build(self, cfg: Namespace, keep_rng: bool = True) -> tuple[LightningModule, Any, Namespace]:
        """The model, datamodule and instantiated config of `cfg`. With `keep_rng`, the random streams are as
        before the build (a phase's model takes its weights from the previous phase; its random init must not
        shift the seeded data order and dropout of the run)."""
        states = _collect_rng_states() if keep_rng else None
        if self.on_build is not None:
            self.on_build(cfg)
        init = self.parser.instantiate_classes(cfg)
        if states is not None:
            _set_rng_states(states)
        return init.model, init.data, init

    def _save_config(self, cfg: Namespace, folder: Path) -> None:
        if rank_zero_only.rank == 0:
            folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(folder / "config.yaml", self.parser.dump(cfg, skip_unset=False))

    def _trainer(
        self, init: Namespace, version: str, callbacks: list | None = None, purge_step: int | None = None, **overrides
    ) -> Trainer:
        """A Trainer of a phase/test from its own config: its own logger version, fresh user callbacks."""
        kwargs = {**init.trainer, **overrides}
        user = kwargs.pop("callbacks", None) or []
        user = list(user) if isinstance(user, list) else [user]
        logger = TensorBoardLogger(
            self.config.root,
            name=self.spec.name,
            version=version,
            default_hp_metric=False,
            **({"purge_step": purge_step} if purge_step else {}),
        )
        callbacks = user + (callbacks or []) + [SkipLogger()]  # data accounting (issue 16): failed reads, over ranks
        callbacks.append(LoaderStateOnResume())  # exact mid-epoch resume of every training loader (issue 27)
        if kwargs.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in user):
            callbacks.append(progress_bar())  # a line per epoch in a file or pipe; no truncated version on a terminal
        return Trainer(**{**kwargs, "logger": logger, "callbacks": callbacks})

    def config_hash(self) -> str:
        """sha256 (12 hex digits) of the merged config, without where the run lives or what to print."""
        merged = self.base.as_dict()
        merged = {k: v for k, v in merged.items() if k not in ("config", "ckpt_path")}
        merged["task"] = {k: v for k, v in merged.get("task", {}).items() if k not in ("root", "print_phase")}
        return hashlib.sha256(json.dumps(merged, sort_keys=True, default=str).encode()).hexdigest()[:12]

    # ------------------------------------------------------------------------------------------ checks

    def _start(self) -> str:
        """Where the weights come from: `clip` (the net's own), or the net checkpoint / init_weights path. A release
        given as the net's `checkpoint` (e.g. TC-CLIP's zero-shot K400 model) wins over the YAML's init_weights."""
        net_args = (self.base.model or {}).get("init_args", {}).get("net", {}) or {}
        checkpoint = (net_args.get("init_args") or {}).get("checkpoint")
        if checkpoint:
            return str(checkpoint)
        if self.config.init_weights and not self.config.from_clip:
            return self.config.init_weights
        return "clip"

    def preflight(self) -> None:
        """Checks that need no model, in the first seconds: the recipe's phase names, the starting weights
        of a task that needs a Kinetics-400-trained model, and every list / manifest the task reads."""
        if self.config.print_phase:
            names = [*self.phase_names(), "test"]
            if self.config.print_phase not in names:
                raise ValueError(
                    f"--task.print_phase {self.config.print_phase!r}: {self.spec.name} has phases {', '.join(names)}"
                )
            phase = None if self.config.print_phase == "test" else self.config.print_phase
            print(self.parser.dump(self.phase_config(phase), skip_unset=False))
            raise SystemExit(0)
        # A recipe shared by several protocols (e.g. configs/recipes/demo.yaml) may name phases of other tasks; a name
        # no registered task has is a typo.
        specs = [get_task(name) for name in list_tasks()]
        known = {p.name for spec in specs for s in spec.plan() for p in (*spec.phases, *s.phases)}
        unknown = sorted(set(self.base.recipe.phases) - known)
        if unknown:
            raise ValueError(
                f"the recipe sets phase(s) {', '.join(unknown)}, but no task has such a phase; "
                f"{self.spec.name} has {', '.join(self.phase_names()) or 'none'}. "
                "Fix `recipe.phases`"
            )
        if self.spec.start == "k400" and not self.config.from_clip and self.subcommand == "fit":
            start = self._start()
            if start == "clip":
                raise ValueError(
                    f"{self.spec.name} starts from a Kinetics-400-trained model (as the paper's baselines do), but "
                    f"--task.init_weights is not set. Train one with `python train.py fit --config "
                    f"tasks/zero_shot_k400.yaml` (then --task.init_weights runs/zero_shot_k400/train/best.pt), "
                    f"or give an official TC-CLIP zero-shot release as --model.init_args.net.init_args.checkpoint, "
                    f"or pass --task.from_clip true to start from CLIP's weights (recorded in results.json)"
                )
            if not Path(start).is_file():
                raise FileNotFoundError(
                    f"{self.spec.name} starts from a Kinetics-400-trained model: {start} not found. Train it with "
                    f"`python train.py fit --config tasks/zero_shot_k400.yaml`, give an official TC-CLIP zero-shot "
                    f"release with --model.init_args.net.init_args.checkpoint FILE, point --task.init_weights at "
                    f"another weights.pt/.ckpt, or pass --task.from_clip true to start from CLIP's weights"
                )
        elif self.config.init_weights and not self.config.from_clip and not Path(self.config.init_weights).is_file():
            raise FileNotFoundError(
                f"--task.init_weights: {self.config.init_weights} not found; give a weights.pt or a Lightning .ckpt"
            )
        self._check_data()

    def _check_data(self) -> None:
        """Validate every list in the label space it is used with, and the synthetic manifest's coverage; then
        decode-check (`datamodules.validate.check_decodes`, cached) the clips of every list whose bad clip would
        stop the run mid-way: training lists with `on_error: raise`, validation and test lists with
        `test_on_error: raise`. So a corrupt clip of a later phase's list or of a test list stops the run
        here, before the first phase spends compute."""
        from lightning.pytorch.cli import instantiate_class

        data = self.phase_config(None).data
        datamodule = instantiate_class((), data.as_dict())
        init = data.get("init_args") or {}
        checks: dict[str | None, tuple[list[str], bool]] = {}  # label set -> (real lists, synthetic?)
        decode: dict[str, str] = {}  # list name (the manifest's path: the synthetic set) -> what reads it
        selection = selection_for(self.spec.protocol)
        strict_tests = init.get("test_on_error", "raise") == "raise"
        for split in self.spec.plan():
            if self.subcommand == "fit":
                for phase in self._phases(split):
                    key = phase_labels(phase, self.config)
                    lists, synthetic = checks.get(key, ([], False))
                    where = f"phase {Path(split.name if phase in split.phases else '', phase.name).as_posix()!r}"
                    phase_data = self.phase_config(phase.name).data.get("init_args") or {}
                    strict = phase_data.get("on_error", "raise") == "raise"
                    if phase.train_list:
                        lists += [phase.train_list]
                        if strict:
                            decode.setdefault(phase.train_list, f"the training list of {where}")
                    if phase.source in GENERATED and strict and phase_data.get("synthetic_manifest"):
                        decode.setdefault(str(phase_data["synthetic_manifest"]), f"the synthetic set of {where}")
                    if selection.validates(phase.name) and phase.source != "synthetic" and selection.val_list:
                        lists += [selection.val_list]
                        if strict_tests:
                            decode.setdefault(selection.val_list, f"the validation list of {where}")
                    checks[key] = (lists, synthetic or phase.source in GENERATED)
            for test in split.tests:
                lists, synthetic = checks.get(test.labels, ([], False))
                checks[test.labels] = (lists + [test.test_list], synthetic)
                if strict_tests:
                    decode.setdefault(test.test_list, f"the list of test {test.name!r}")
        clips: dict[str, list[Path]] = {}
        for key, (lists, synthetic) in checks.items():
            unique = list(dict.fromkeys(lists))
            found = datamodule.check(unique, synthetic) if key is None else datamodule.check(unique, synthetic, key)
            for name, paths in (found or {}).items():  # a datamodule of cached features returns no clips
                clips.setdefault(name, []).extend(paths)
        self._check_decodes(clips, decode, init)

    def _check_decodes(self, clips: dict[str, list[Path]], decode: dict[str, str], data: dict) -> None:
        """One line for the first list (in the order the run reads them) holding a clip that does not decode."""
        from datamodules.validate import check_cache, check_decodes

        todo = {name: paths for name, paths in clips.items() if name in decode}
        everything = [p for paths in todo.values() for p in paths]
        if not everything:
            return
        frames = int(data.get("num_frames") or (data.get("input_spec") or {}).get("num_frames") or 8)
        started = time.time()
        bad = dict(
            check_decodes(
                everything,
                frames,
                cache=check_cache(),
                num_workers=int(data.get("num_workers") or 0),
                save=rank_zero_only.rank == 0,
            )
        )
        if time.time() - started > 5:
            rank_zero_info(f"[{self.spec.name}] decode check of {len(everything)} clips: {time.time() - started:.0f} s")
        for name in sorted(todo, key=list(decode).index):
            broken = [p for p in dict.fromkeys(Path(p).absolute() for p in todo[name]) if p in bad]
            if broken:
                source = name if name.endswith(".jsonl") else Path(data.get("split_dir") or "", name)
                more = f" (and {len(broken) - 1} more of its clips)" if len(broken) > 1 else ""
                cause = bad[broken[0]].removeprefix(f"cannot read video {str(broken[0])!r}: ")
                raise ValueError(
                    f"{broken[0]} does not decode ({cause}){more}; it is in {source}, "
                    f"{decode[name]}. Re-encode or replace it, or drop it from the list (`python -m datamodules "
                    "validate` lists every bad clip); `--data.on_error skip` trains past bad clips, "
                    "`--data.test_on_error exclude` tests without them"
                )

    def _phases(self, split: Split) -> list[Phase]:
        """The phases a split runs (the shared ones first); the baseline skips the synthetic ones."""
        phases = [*self.spec.phases, *split.phases]
        if not self.config.synthetic and any(p.source == "mixed" for p in phases):
            raise ValueError(
                f"task {self.spec.name!r} trains on real and generated clips in one phase, so it has "
                "no baseline of its own: run its pre-train-then-fine-tune task with --task.synthetic "
                "false (e.g. long_tail_hmdb51)"
            )
        return [p for p in phases if self.config.synthetic or p.source != "synthetic"]

    # ------------------------------------------------------------------------------------------ fit

    def _evaluation_parts(self) -> tuple[LightningModule, Any, Namespace]:
        """The model, datamodule and config of evaluation (`recipe.test`), built once per command and given
        each split's weights in turn."""
        if getattr(self, "_eval_parts", None) is None:
            self._eval_parts = self._build(self.phase_config(None), keep_rng=False)  # the run's one random init
        return self._eval_parts

    def _initial_state(self) -> tuple[dict, bool]:
        """The starting weights (init_weights, or the net's own) and whether the model has trainable parameters."""
        model, _, _ = self._evaluation_parts()
        if self._start() == self.config.init_weights and not self.config.from_clip:
            model.load_state_dict(_read_state(Path(self.config.init_weights), "--task.init_weights"))
        trains = any(p.requires_grad for p in model.parameters())
        return {k: v.detach().clone() for k, v in model.state_dict().items()}, trains

    def fit(self, ckpt_path: str | None = None) -> Results:
        """Run every phase and test (skipping finished ones); returns the results record."""
        initial, trains = self._initial_state()
        self._trainable = trains
        if not trains:
            rank_zero_info(
                f"[{self.spec.name}] the net has no trainable parameters: evaluation-only, so the "
                "training phases are skipped"
            )
        shared = [p for p in self.spec.phases if self.config.synthetic or p.source != "synthetic"]
        state = initial
        for phase in shared if trains else ():
            state = self._run_phase(phase, self.run_dir / phase.name, state)
        tests = []
        for split in self.spec.plan():
            split_state = state
            own = [p for p in split.phases if self.config.synthetic or p.source != "synthetic"]
            for phase in own if trains else ():
                split_state = self._run_phase(phase, self.run_dir / split.name / phase.name, split_state)
            tests += self._test_split(split, split_state, rerun=False)
        return self._write_results(tests)

    def _run_phase(self, phase: Phase, phase_dir: Path, state: dict) -> dict:
        """Train one phase from `state` on its own config; returns its final weights."""
        where = phase_dir.relative_to(self.run_dir).as_posix()
        cfg = self.phase_config(phase.name)
        done = phase_dir / "phase.json"
        manifest = (cfg.data.get("init_args") or {}).get("synthetic_manifest") if phase.source in GENERATED else None
        ident = phase_config.identity(cfg, state, manifest)  # issue 27: reuse only the same configuration
        zero = rank_zero_only.rank == 0
        reuse = phase_config.check(phase_dir, ident, where, self.config.overwrite, delete=zero)
        if reuse and done.is_file():
            record = json.loads(done.read_text())
            _, datamodule, _ = self._build_data_only(cfg)
            _use_labels(datamodule, phase_labels(phase, self.config))
            if record.get("label_file", str(datamodule.label_file)) != str(datamodule.label_file):
                raise ValueError(
                    f"{done}: this finished phase trained on the classes of {record['label_file']}, but the config "
                    f"now asks for {datamodule.label_file} (--task.synthetic_classes?). Use another --task.root."
                )
            rank_zero_info(f"[{self.spec.name}] phase {where!r} already finished ({done}); skipping it")
            return self._load_phase(phase_dir)
        if zero and not reuse:
            phase_config.record(phase_dir, ident)
        seed = cfg.get("seed_everything")
        # a phase = f(config, start): its own random stream, from the run's seed and the phase's place in the run
        # (phases of one run must not replay one another's draws: same bag order, same crops)
        seed_everything(phase_seed(run_seed(seed), where), verbose=False)
        model, datamodule, init = self._build(cfg)
        model.load_state_dict(state)
        _use_labels(datamodule, phase_labels(phase, self.config))
        datamodule.set_phase(phase.source, phase.train_list)
        selection = selection_for(self.spec.protocol)  # the protocol's model selection (tasks/selection.py)
        if selection.validates(phase.name):
            datamodule.val_list = selection.val_list
        self._save_config(cfg, phase_dir)
        validate = phase.source in ("real", "mixed") and getattr(datamodule, "val_list", None) is not None
        every = (
            min(selection.every_n_epochs, init.trainer.get("max_epochs") or 1) if selection.validates(phase.name) else 1
        )
        checkpoints = phase_checkpoints(
            phase_dir / "checkpoints", self.spec.monitor if validate else None, self.config.checkpoint_every_n_steps
        )
        last = phase_dir / "checkpoints" / "last.ckpt"
        resume_step = _readable_checkpoint(last) if reuse and last.is_file() else None
        if reuse and last.is_file() and resume_step is None:
            last.replace(last.with_suffix(".ckpt.unreadable"))
            rank_zero_warn(
                f"[{self.spec.name}] {last} is unreadable (killed while it was written?); kept as "
                f"{last.name}.unreadable, phase {where!r} starts over"
            )
        trainer = self._trainer(
            init,
            where,
            checkpoints,
            purge_step=resume_step,
            **({"check_val_every_n_epoch": every} if validate else {"limit_val_batches": 0}),
        )
        if resume_step is not None:
            rank_zero_info(f"[{self.spec.name}] resuming phase {where!r} from {last} (step {resume_step})")
        rank_zero_info(
            f"[{self.spec.name}] phase {where!r}: training on {phase.source} data "
            f"({datamodule.label_file}), "
            f"{trainer.max_epochs} epochs, lr {getattr(model, 'lr', '?')}, "
            f"accumulating {trainer.accumulate_grad_batches} batches"
        )
        started = time.time()
        with _ExactEvaluation(datamodule, trainer):
            trainer.fit(model, datamodule=datamodule, ckpt_path=str(last) if resume_step is not None else None)
        if trainer.interrupted:
            raise SystemExit(f"[{self.spec.name}] phase {where!r} interrupted; re-run the command to resume")
        if trainer.is_global_zero:
            torch.save(model.state_dict(), phase_dir / "weights.pt")
            record = {
                "phase": phase.name,
                "source": phase.source,
                "train_list": phase.train_list,
                "label_file": str(datamodule.label_file),
                "synthetic_manifest": getattr(datamodule, "synthetic_manifest", None)
                if phase.source in GENERATED
                else None,
                "epochs": trainer.current_epoch,
                "steps": trainer.global_step,
                "seconds": round(time.time() - started, 1),
                "weights": "weights.pt",
                "config": "config.yaml",
                "config_hash": ident["hash"],
                "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
                "data": datamodule.skip_report() if hasattr(datamodule, "skip_report") else None,  # issue 16
                "best": save_best(checkpoints[0], phase_dir) if validate else None,  # tasks/selection.py
            }
            write_text_atomic(done, json.dumps(record, indent=2) + "\n")
        trainer.strategy.barrier()
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def _build_data_only(self, cfg: Namespace):
        from lightning.pytorch.cli import instantiate_class

        return None, instantiate_class((), cfg.data.as_dict()), None

    # ------------------------------------------------------------------------------------------ evaluation

    def _final_phase_dir(self, split: Split) -> Path | None:
        phases = self._phases(split)
        if not phases:
            return None
        last = phases[-1]
        return self.run_dir / (split.name if last in split.phases else "") / last.name

    def _weights_of(self, split: Split, ckpt_path: str | None) -> tuple[dict | None, str]:
        """The weights a split is evaluated with: --ckpt_path, else its final phase's, else the start."""
        if ckpt_path:
            return _read_state(Path(ckpt_path), "--ckpt_path"), str(ckpt_path)
        final = self._final_phase_dir(split)
        if final is not None and self._trainable:
            return self._load_phase(final), str(final / "weights.pt")
        return None, self._start()

    def _evaluate(self, ckpt_path: str | None, rerun: bool, stage: str) -> list:
        initial, self._trainable = self._initial_state()
        self._ckpt_path = ckpt_path
        out = []
        for split in self.spec.plan():
            state, weights = self._weights_of(split, ckpt_path)
            out += self._test_split(
                split, initial if state is None else state, rerun=rerun, stage=stage, weights=weights
            )
        return out

    def test(self, ckpt_path: str | None = None) -> Results:
        """Test every split with its final weights (or --ckpt_path, or the starting weights of an
        evaluation-only net) on the task's test lists and labels; rewrites results.json."""
        return self._write_results(self._evaluate(ckpt_path, rerun=True, stage="test"), ckpt_path=ckpt_path)

    def validate(self, ckpt_path: str | None = None) -> list[dict]:
        """Validate the same weights as `test` on the task's test lists; prints the metrics, records nothing."""
        results = self._evaluate(ckpt_path, rerun=True, stage="validate")
        for r in results:
            rank_zero_info(
                f"[{self.spec.name}] validate {r['where']}: "
                + ", ".join(f"{k} {v:.4f}" for k, v in sorted(r["metrics"].items()))
            )
        return results

    def predict(self, ckpt_path: str | None = None) -> list[Path]:
        """Per-clip predictions of every test list: `<split>/predict/<test>/predictions[_rank<r>].csv`
        (path, label, predicted class, score)."""
        return self._evaluate(ckpt_path, rerun=True, stage="predict")

    def _test_split(
        self, split: Split, state: dict, rerun: bool, stage: str = "test", weights: str | None = None
    ) -> list:
        if weights is None:
            final = self._final_phase_dir(split)
            finished = final is not None and (final / "phase.json").is_file()
            weights = str(final / "weights.pt") if finished else self._start()
        variants = self._selected(split, state, weights)
        return [self._test(split, test, s, rerun, stage, w, tag) for s, w, tag in variants for test in split.tests]

    def _selected(self, split: Split, state: dict, weights: str) -> list[tuple[dict, str, str]]:
        """(weights, their name, tag) of each evaluation of a split, per the protocol's rule (tasks/selection.py):
        the selected weights (tag ""), then the last epoch's ("last") and the WiSE-FT ensemble ("wise_ft")."""
        selection = selection_for(self.spec.protocol)
        final = None if getattr(self, "_ckpt_path", None) else self._final_phase_dir(split)
        done = final / "phase.json" if final is not None else None
        best = (json.loads(done.read_text()).get("best") if done and done.is_file() else None) or None
        out = [(state, weights, "")]
        if selection.rule == "best_val" and best and final.name == selection.phase:
            chosen = torch.load(final / best["weights"], map_location="cpu", weights_only=True)
            out = [(chosen, str(final / best["weights"]), "")] + (
                [(state, weights, "last")] if selection.also_last else []
            )
        if selection.wise_ft and getattr(self, "_trainable", True):
            fused = wise_ft(out[0][0], self._clip_state(), selection.wise_ft)
            out.append((fused, f"WiSE-FT {selection.wise_ft}: {out[0][1]} with CLIP's weights", "wise_ft"))
        return out

    def _clip_state(self) -> dict:
        """The net's own (CLIP) weights, built without a release checkpoint: WiSE-FT's partner."""
        if getattr(self, "_clip", None) is None:
            cfg = self.phase_config(None)
            if cfg.get("model.init_args.net.init_args.checkpoint") is not None:
                cfg["model.init_args.net.init_args.checkpoint"] = None
            states = _collect_rng_states()
            model = self.parser.instantiate_classes(cfg).model
            _set_rng_states(states)
            self._clip = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return self._clip

    def _test(self, split: Split, test: Test, state: dict, rerun: bool, stage: str, weights: str, tag: str = ""):
        """Evaluate `state` on one list of a split, from the evaluation config (`recipe.test`); a `tag` (e.g. the
        WiSE-FT row) tests under `<stage>_<tag>/` and reports in the summary group `tag`."""
        folder = ("test" if stage == "test" else stage) + (f"_{tag}" if tag else "")
        test_dir = self.run_dir / split.name / folder / test.name
        done = test_dir / "test.json"
        ident = phase_config.identity(self.phase_config(None), state) if stage == "test" else None
        current = ident is not None and (phase_config.recorded(test_dir) or {}).get("hash") == ident["hash"]
        if stage == "test" and done.is_file() and not rerun and current:  # same weights and evaluation config
            rank_zero_info(f"[{self.spec.name}] test {test_dir.relative_to(self.run_dir)} already done; skipping it")
            return TestResult(**json.loads(done.read_text()))
        model, datamodule, init = self._evaluation_parts()
        model.load_state_dict(state)
        _use_labels(datamodule, test.labels)
        datamodule.test_list = test.test_list
        version = test_dir.relative_to(self.config.root).relative_to(self.spec.name).as_posix()
        trainer = self._trainer(init, version, use_distributed_sampler=False)
        if stage == "predict":
            return self._predict(trainer, model, datamodule, test_dir)
        with _ExactEvaluation(datamodule, trainer):
            if stage == "validate":
                datamodule.val_list = test.test_list
                raw = trainer.validate(model, datamodule=datamodule, verbose=False)[0]
                where = test_dir.relative_to(self.run_dir).as_posix()
                return {"where": where, "metrics": {k: float(v) for k, v in raw.items()}}
            raw = trainer.test(model, datamodule=datamodule, verbose=False)[0]
        metrics = {k: float(v) for k, v in raw.items()}
        confusion = getattr(model, "test_confusion", None)
        per_class = per_class_accuracy(confusion) if confusion is not None else None
        if per_class is not None:
            metrics["test/class_mean"] = class_mean(per_class)
            if self.spec.class_metrics is not None:  # the protocol's own, e.g. long-tail's head/tail/few
                metrics.update(self.spec.class_metrics(self.spec, split, per_class, datamodule))
            if trainer.is_global_zero and trainer.logger is not None:  # the same in TensorBoard, beside test/top1
                shown = {k: v for k, v in metrics.items() if k not in raw and v is not None}
                names = datamodule.class_names
                shown |= {f"test/per_class/{names[i]}": a for i, a in enumerate(per_class) if a is not None}
                trainer.logger.log_metrics(shown, step=trainer.global_step)
                trainer.logger.save()
        result = TestResult(
            split=split.name or test.name,
            test=test.name,
            group=tag or test.group,
            test_list=test.test_list,
            label_file=str(datamodule.label_file),
            metrics={k: v for k, v in metrics.items() if v is not None},
            per_class=per_class,
            weights=weights,
        )
        if trainer.is_global_zero:
            test_dir.mkdir(parents=True, exist_ok=True)
            record_excluded(test_dir, datamodule, test.test_list)  # data accounting (issue 16)
            write_text_atomic(done, json.dumps(result.__dict__, indent=1) + "\n")
            phase_config.record(test_dir, ident)
        return result

    def _predict(self, trainer: Trainer, model: LightningModule, datamodule, out_dir: Path) -> Path:
        loaders: list[DataLoader] = []

        def predict_dataloader() -> DataLoader:
            datamodule.setup("test")
            loaders.append(_unrepeated(datamodule.test_dataloader(), trainer))
            return loaders[-1]

        datamodule.predict_dataloader = predict_dataloader
        rows = [row for batch in trainer.predict(_Predictor(model), datamodule=datamodule) for row in batch]
        clips = datamodule.datasets["test"].clips
        indices = list(loaders[-1].sampler) if trainer.world_size > 1 else range(len(clips))
        name = "predictions.csv" if trainer.world_size == 1 else f"predictions_rank{trainer.global_rank}.csv"
        out_dir.mkdir(parents=True, exist_ok=True)
        with open(out_dir / name, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "label", "pred", "pred_name", "score"])
            for i, (label, pred, score) in zip(indices, rows):
                writer.writerow([clips[i].path, label, pred, datamodule.class_names[pred], f"{score:.6f}"])
        rank_zero_info(f"[{self.spec.name}] predictions: {out_dir / name}")
        return out_dir / name

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

    # ------------------------------------------------------------------------------------------ record

    def _variant(self, trained_synthetic: bool) -> dict:
        """What ran, for results.json and the report: method row name, baseline/ours, start, loss, data."""
        cfg = self.phase_config(None)
        net_path = ((cfg.model or {}).get("init_args", {}).get("net") or {}).get("class_path") or cfg.model.class_path
        net = net_path.rsplit(".", 1)[-1]
        net_name = {
            "TCCLIP": "TC-CLIP",
            "ViFiCLIP": "ViFi-CLIP",
            "XCLIP": "X-CLIP",
            "CLIPZeroShot": "CLIP",
            "MILAnomalyModule": "MIL",
            "XCLIPMIL": "MIL",
        }.get(net, net)
        ours = trained_synthetic
        model_args = (cfg.model or {}).get("init_args", {})
        data_args = (cfg.data or {}).get("init_args", {})
        return {
            "model": net_path,  # Results.model: the net's class path (the report's row name)
            "method": f"{net_name}+Ours" if ours else net_name,
            "variant": "ours" if ours else "baseline",
            "start": self._start(),  # a net checkpoint (release) is loaded even with --task.from_clip
            "loss": {key: _plain(model_args.get(key)) for key in ("loss", "synthetic_loss") if key in model_args},
            "loss_variant": cfg.loss.name,
            "prompts_variant": cfg.prompts.name,
            "data": {
                k: _plain(data_args.get(k))
                for k in (
                    "label_file",
                    "labels_dir",
                    "label_files",
                    "video_root",
                    "split_dir",
                    "synthetic_manifest",
                    "num_frames",
                    "image_size",
                    "test_views",
                )
                if k in data_args
            },
        }

    def _write_results(self, tests: list[TestResult], ckpt_path: str | None = None) -> Results:
        """The results record of all tests (+ summary), written as results.json and results.md."""
        plan = self.spec.plan()
        _, datamodule, _ = self._evaluation_parts()
        _use_labels(datamodule, None)  # the main label file (says which data stood in for the dataset)
        # The synthetic set the tested weights were trained on, as the finished synthetic phases recorded it.
        manifest = None
        if not ckpt_path:
            for split in plan:
                for phase in self._phases(split):
                    done = self.run_dir / (split.name if phase in split.phases else "") / phase.name / "phase.json"
                    if phase.source in GENERATED and done.is_file():
                        manifest = json.loads(done.read_text()).get("synthetic_manifest") or manifest
        has_synthetic = any(p.source in GENERATED for split in plan for p in self._phases(split))
        variant = self._variant(manifest is not None if not ckpt_path else self.config.synthetic and has_synthetic)
        results = Results(
            task=self.spec.name,
            protocol=self.spec.protocol,
            dataset=self.spec.dataset,
            description=self.spec.description,
            shots=self.spec.shots,
            label_file=str(datamodule.label_file),
            test_list=plan[0].tests[0].test_list,
            synthetic_manifest=manifest,
            prompts=_prompt_source(manifest),
            synthetic_classes=self.config.synthetic_classes,
            init_weights=self.config.init_weights if self._start() == self.config.init_weights else None,
            config_hash=self.config_hash(),
            model=variant["model"],
            checkpoint=selection_for(self.spec.protocol).describe(),  # tasks/selection.py
            class_names=getattr(datamodule, "class_text_source", "csv"),  # datamodules/label_text.py
            phases=[p.name for p in self.spec.phases] + sorted({p.name for s in plan for p in s.phases}),
            tests=tests,
            summary=summarise(tests),
        )
        results.metrics = {k: v["mean"] for k, v in results.summary.items()}
        if rank_zero_only.rank == 0:
            hashes = {}  # issue 27: the configuration each tested phase's weights came from
            for split in plan if not ckpt_path else ():
                for phase in self._phases(split):
                    where = Path(split.name if phase in split.phases else "") / phase.name
                    hashes[where.as_posix()] = (phase_config.recorded(self.run_dir / where) or {}).get("hash")
            record = {**dataclasses.asdict(results), **variant, "ckpt_path": ckpt_path, "phase_config_hashes": hashes}
            text, data_lines = with_data_section(json.dumps(record, indent=1) + "\n", self.run_dir)  # issue 16
            write_text_atomic(self.run_dir / "results.json", text)
            table = task_table([results]) + (f"\n\n{data_lines}" if data_lines else "")
            write_text_atomic(self.run_dir / "results.md", table + "\n")
            print(f"\n{self.spec.name} ({variant['method']}): {self.spec.description}\n{table}")
            print(f"results: {self.run_dir / 'results.json'}\nTensorBoard: tensorboard --logdir {self.config.root}")
        return results


def _prompt_source(manifest: str | None) -> str | None:
    """Who wrote the prompts of the synthetic set a run trained on (None: no set, or it is gone)."""
    if manifest is None or not Path(manifest).is_file():
        return None
    return prompt_provenance(manifest)["prompts"]


def phase_checkpoints(folder: Path, monitor: str | None, every_n_steps: int | None) -> list[ModelCheckpoint]:
    """The checkpoint writers of a phase: `last.ckpt` (one per folder, a resumed run overwrites it) is written
    every `every_n_steps` optimiser steps, after each validation of a validated phase (`monitor` set; with the
    best epoch's `best-epoch=N.ckpt`) and when training ends; Lightning writes none at other epoch ends."""
    checkpoints = [
        ModelCheckpoint(
            dirpath=folder,
            filename="best-{epoch}",
            monitor=monitor,
            mode="max",
            save_top_k=1 if monitor else 0,
            save_last=True,
            enable_version_counter=False,  # one last.ckpt per folder (a resumed run overwrites it)
        )
    ]
    if every_n_steps:  # a second writer of last.ckpt, mid-epoch
        checkpoints.append(
            ModelCheckpoint(
                dirpath=folder,
                save_top_k=0,
                save_last=True,
                enable_version_counter=False,
                every_n_train_steps=every_n_steps,
            )
        )
    return checkpoints


def run_seed(value: int | bool | None) -> int:
    """The run's seed from `seed_everything`: an int as given; None or a bool (Lightning's "pick one") -> 0.
    (`1 in (True, False)` is true in Python: seed 1 must not read as True.)"""
    return 0 if value is None or isinstance(value, bool) else int(value)


def phase_seed(seed: int, where: str) -> int:
    """The seed of the phase at `where` (e.g. `s1/finetune`) of a run seeded `seed`: stable across processes."""
    return (seed + zlib.crc32(where.encode())) % 2**31


def _plain(value):
    """A config value as plain JSON (Namespaces as dicts)."""
    if isinstance(value, Namespace):
        return value.as_dict()
    return value
