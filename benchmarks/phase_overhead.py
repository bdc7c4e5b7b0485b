"""Fixed cost of the task runner: one 4-shot demo phase through `train.py fit` against the same steps bare.

Run from the repo root: `python benchmarks/phase_overhead.py [--data data/demo] [--repeats 3] [--dry]`.
"Ours" is `train.py fit` in this process (SynthactCLI -> TaskRunner -> VideoCLIPModule -> Trainer) on the
demo world's 4-shot phase: DemoNet as configs/models/demo_net.yaml builds it (width 8, embed 64, 6 frames at
32 px) in VideoCLIPModule, batch 8, AdamW lr 3e-4 (wd 0.05, warm-up 1 epoch, cosine),
cross-entropy, no Mixup, 30 epochs on train1_few_shot_4 (32 clips: 120 optimiser steps), then the task's test
on val1. The task is demo_none (`make demo`'s row none: the finetune phase only, tested on its last weights).
Not few_shot_k4: the paper's few-shot protocol validates on val1 every 10th epoch to pick its best epoch,
which the bare loop does not do (and each validation loader draws from the global random stream, so after
epoch 10 the two paths' augmentations and weights part). The baseline is the same optimisation steps in
a plain PyTorch loop over the same datamodule's loader (the same net, optimiser, schedule and loss, no
Trainer, no checkpoint, no logger) and the same test, as `tasks/demo.py` ran them. Both run in one process,
alternating (runner, bare, runner, bare, ...), after one untimed warm-up of each (imports, first decodes);
interpreter start-up and imports are not in either figure.

Two ratios are reported (target <= 1.5x the bare loop): the phase (the runner's `_run_phase`: build,
Trainer, fit, checkpoints, weights.pt against the loop's data set-up and steps) and the whole command
(preflight, phase, test and results.json against the loop's steps and its test). A stage table says where
the runner's time went. With the same seed both paths start from the same weights and draw the same
random numbers, so their final weights must agree: the benchmark checks that (max abs difference printed;
`--dry` fails when they differ), which is what "the same optimisation steps" means here.

`--dry` (what the tests run): 2 epochs, one timed repeat, on any demo build (the smoke world is enough).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from functools import partial, wraps
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from benchmarks.common import report  # noqa: E402

SEED = 0  # train.py's default seed_everything
DEMO_NET = yaml.safe_load((ROOT / "configs/models/demo_net.yaml").read_text())["init_args"]["net"]["init_args"]
NUM_FRAMES = DEMO_NET["num_frames"]  # the data's frames per clip: the net's
TASK = "demo_none"  # one phase, tested on its last weights, no validation: what the bare loop does


def overlay(data: Path, root: Path, epochs: int, batch_size: int, width: int, embed_dim: int, lr: float) -> dict:
    """The demo's 4-shot settings as a config given after the task YAML (so it wins over the paper recipe)."""
    return {
        "task": {"root": str(root), "synthetic": False},
        "model": {
            "class_path": "lightning_modules.video_clip.VideoCLIPModule",
            "init_args": {
                "net": {
                    "class_path": "lightning_modules.models.DemoNet",
                    "init_args": {**DEMO_NET, "width": width, "embed_dim": embed_dim},
                },
                "lr": lr,
                "weight_decay": 0.05,
                "warmup_epochs": 1.0,
                "min_lr_ratio": 0.0,
                "loss": {"name": "ce"},
                "mixup": None,
            },
        },
        "data": {
            "class_path": "datamodules.action.ActionDataModule",
            "init_args": {
                "label_file": str(data / "labels.csv"),
                "labels_dir": str(data),
                "video_root": str(data / "real/videos"),
                "split_dir": str(data / "real/splits"),
                "synthetic_manifest": None,
                "num_frames": NUM_FRAMES,
                "image_size": 32,
                "test_views": 1,
                "batch_size": batch_size,
                "num_workers": 0,
                "pin_memory": False,
                "color_jitter": 0.0,
                "grayscale": 0.0,
            },
        },
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "precision": "32-true",
            "max_epochs": epochs,
            "accumulate_grad_batches": 1,
            "log_every_n_steps": 4,  # batch 8 on the 32-clip list: 4 steps an epoch (Lightning warns above that)
        },
    }


class Stages:
    """Wall seconds per named stage, from wrappers put around the runner's and Lightning's methods."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._patched: list[tuple[object, str, object]] = []

    def wrap(self, owner: object, name: str, stage: str) -> None:
        original = getattr(owner, name)
        self.seconds.setdefault(stage, 0.0)  # the table lists stages in the order they were wrapped

        @wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - start

        self._patched.append((owner, name, original))
        setattr(owner, name, timed)

    def restore(self) -> None:
        for owner, name, original in reversed(self._patched):
            setattr(owner, name, original)
        self._patched.clear()


def instrument(stages: Stages) -> None:
    """Time the runner's stages (nested ones are inside their parents: the table says which)."""
    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    from datamodules.action import ActionDataModule
    from tasks.runner import TaskRunner

    stages.wrap(TaskRunner, "preflight", "preflight (config, data checks)")
    stages.wrap(TaskRunner, "_initial_state", "starting weights (eval model build)")
    stages.wrap(TaskRunner, "_run_phase", "phase")
    stages.wrap(TaskRunner, "_build", "  build model + data")
    stages.wrap(Trainer, "__init__", "  Trainer(...) construction")
    stages.wrap(Trainer, "fit", "  Trainer.fit")
    stages.wrap(ActionDataModule, "train_dataloader", "    train loader")
    stages.wrap(ModelCheckpoint, "_save_checkpoint", "    checkpoint writes")
    stages.wrap(TensorBoardLogger, "log_metrics", "    TensorBoard writes")
    stages.wrap(TaskRunner, "_test_split", "test")
    stages.wrap(Trainer, "test", "  Trainer.test")
    stages.wrap(ActionDataModule, "_eval_dataset", "  eval list check (decode scan)")
    stages.wrap(TaskRunner, "_write_results", "results.json")


def run_runner(args, data: Path, work: Path, stages: Stages | None = None) -> dict:
    """`train.py fit` in this process: its seconds (wall, CPU, phase), final phase weights and test top-1."""
    from train import main

    root = Path(tempfile.mkdtemp(dir=work))
    config = root / "overlay.json"
    cfg = overlay(data, root / "runs", args.epochs, args.batch_size, args.width, args.embed_dim, args.lr)
    config.write_text(json.dumps(cfg))
    argv = ["fit", "--config", str(ROOT / f"tasks/{TASK}.yaml"), "--config", str(config)]
    stages = stages or Stages()
    instrument(stages)
    phase_before = stages.seconds["phase"]
    quiet = contextlib.redirect_stdout(io.StringIO()) if not args.verbose else contextlib.nullcontext()
    start, cpu = time.perf_counter(), time.process_time()
    try:
        with quiet:
            main(argv)
    finally:
        stages.restore()
    total, cpu = time.perf_counter() - start, time.process_time() - cpu
    phase_dir = root / "runs" / TASK / "finetune"
    weights = torch.load(phase_dir / "weights.pt", map_location="cpu", weights_only=True)
    top1 = json.loads((root / "runs" / TASK / "test/test/test.json").read_text())["metrics"]["test/top1"]
    phase = stages.seconds["phase"] - phase_before
    return {"total": total, "cpu": cpu, "phase": phase, "weights": weights, "top1": top1}


def run_bare(args, data: Path) -> dict:
    """The same steps without a Trainer: seconds (train + test wall and CPU, train), weights, top-1, steps."""
    from lightning.fabric.utilities.seed import seed_everything

    from datamodules.action import ActionDataModule
    from lightning_modules.losses import LossConfig, soft_cross_entropy, soft_targets
    from lightning_modules.models import DemoNet
    from lightning_modules.video_clip import warmup_cosine
    from tasks.runner import phase_seed

    start, cpu = time.perf_counter(), time.process_time()
    seed_everything(SEED, workers=True, verbose=False)
    net = DemoNet(**{**DEMO_NET, "width": args.width, "embed_dim": args.embed_dim})
    seed_everything(phase_seed(SEED, "finetune"), workers=True, verbose=False)  # as the runner seeds the phase
    init = overlay(data, data, args.epochs, args.batch_size, args.width, args.embed_dim, args.lr)["data"]["init_args"]
    dm = ActionDataModule(**init)
    dm.set_phase("real", f"train1_few_shot_{args.shots}.txt")
    dm.setup("fit")
    loader = dm.train_dataloader()
    tokens = net.tokenize(dm.class_names)
    k = len(dm.class_names)
    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.05)
    total = args.epochs * len(loader)
    warmup = round(total * 1.0 / args.epochs)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(warmup_cosine, warmup=warmup, total=total, min_ratio=0.0)
    )
    ce = LossConfig(name="ce")
    net.train()
    for epoch in range(args.epochs):
        loader.sampler.set_epoch(epoch)  # as Lightning's fit loop does: each epoch its own seeded order
        for batch in loader:
            targets, weights, _ = soft_targets(batch["label"], batch["uncertainty"], ce, k)
            loss = (weights * soft_cross_entropy(net(batch["video"], tokens), targets)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    trained = time.perf_counter() - start
    dm.test_list = "val1.txt"
    dm.setup("test")
    net.eval()
    correct = n = 0
    with torch.no_grad():
        for batch in dm.test_dataloader():
            video = batch["video"]  # (B, V, T, C, H, W)
            b, v = video.shape[:2]
            probs = net(video.flatten(0, 1), tokens).softmax(-1).view(b, v, -1).sum(1)  # (B, K)
            correct += int((probs.argmax(-1) == batch["label"]).sum())
            n += b
    return {
        "total": time.perf_counter() - start,
        "cpu": time.process_time() - cpu,
        "phase": trained,
        "weights": {f"net.{k}": v for k, v in net.state_dict().items()},
        "top1": correct / n,
        "steps": total,
    }


def max_difference(a: dict, b: dict) -> float:
    """Largest absolute difference between two state dicts over the keys of `b` (floating tensors)."""
    missing = sorted(set(b) - set(a))
    if missing:
        raise KeyError(f"weights differ in keys: {missing[:3]}")
    return max((a[key].double() - b[key].double()).abs().max().item() for key in b if b[key].is_floating_point())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data/demo", help="a demo build (generation demo)")
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--embed-dim", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the demo's runs: 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed pairs (runner, bare), after one warm-up pair")
    parser.add_argument("--dry", action="store_true", help="tiny: 2 epochs, one timed pair (what the tests run)")
    parser.add_argument("--verbose", action="store_true", help="show the runner's own output")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the timed runner repeats to this file")
    args = parser.parse_args(argv)
    if args.dry:
        args.epochs, args.repeats = 2, 1
    if not (args.data / "DONE.json").is_file():
        parser.error(
            f"no demo build in {args.data}: build it with `python -m generation demo --out {args.data} --preset demo`"
        )
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return measure(args)
    finally:
        torch.set_num_threads(threads)


def measure(args: argparse.Namespace) -> int:
    """The interleaved repeats, the stage table and the two reports."""
    runs: list[tuple[dict, dict]] = []  # (runner, bare) per timed pair
    stages = Stages()
    with tempfile.TemporaryDirectory(prefix="phase_overhead_") as work:
        for i in range(args.repeats + 1):  # pair 0 is the warm-up
            timed = i > 0
            profile = cProfile.Profile() if args.profile and timed else None
            with profile or contextlib.nullcontext():
                ours = run_runner(args, args.data, Path(work), stages if timed else None)
            if profile is not None:
                profile.dump_stats(args.profile)
            bare = run_bare(args, args.data)
            diff = max_difference(ours["weights"], bare["weights"])
            print(
                f"{'repeat ' + str(i) if timed else 'warm-up'}: runner {ours['total']:.2f} s (CPU {ours['cpu']:.2f} s, "
                f"phase {ours['phase']:.2f} s), bare {bare['total']:.2f} s (CPU {bare['cpu']:.2f} s, train "
                f"{bare['phase']:.2f} s); test top-1 {ours['top1']:.4f} vs {bare['top1']:.4f}; "
                f"max |weight difference| {diff:.3g}",
                flush=True,
            )
            if diff != 0.0 or abs(ours["top1"] - bare["top1"]) > 1e-6:
                print("runner and bare loop DIFFER: they no longer run the same optimisation steps", flush=True)
                if args.dry:
                    return 1
            if timed:
                runs.append((ours, bare))

    def median(key: str, side: int) -> float:
        values = sorted(pair[side][key] for pair in runs)
        return values[len(values) // 2]

    def paired(key: str) -> float:  # median of the per-pair ratios: robust to the machine's drift
        ratios = sorted(ours[key] / bare[key] for ours, bare in runs)
        return ratios[len(ratios) // 2]

    print(f"\nrunner stages, seconds (mean of {len(runs)} timed runs; indented: inside the stage above it):")
    print("| stage | s |\n|---|---|")
    for stage, seconds in stages.seconds.items():
        print(f"| {stage} | {seconds / len(runs):.2f} |")
    tag = f"{args.shots}-shot demo phase, {args.epochs} epochs ({runs[0][1]['steps']} steps), {args.threads} threads"
    report("phase_overhead", f"phase s, {tag}", median("phase", 0), median("phase", 1), "s", False, 1 / 1.5)
    report("phase_overhead", f"fit+test s, {tag}", median("total", 0), median("total", 1), "s", False, 1 / 1.5)
    print(
        f"runner / bare loop (median of {len(runs)} paired ratios; target <= 1.5): phase {paired('phase'):.2f}x, "
        f"fit+test {paired('total'):.2f}x (CPU seconds: {paired('cpu'):.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
