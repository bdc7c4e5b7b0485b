"""Training throughput with the data pipeline in the loop, against the same steps on an in-memory batch.

Run from the repo root: `python benchmarks/train_throughput.py [--model vifi|tc] [--arch ViT-B-16] [--quick]
[--bf16] [--channels-last] [--compile] [--workers N]`. The clips are the real ones in ../shared/data/real_clips
(all containers and sizes, up to 1080p and 160 s) or, with `--manifest`, a generated set. Random weights.

Two loops run the same number of optimiser steps (AdamW, fused on CUDA) of the same model:
- pipeline: batches come from `VideoDataLoader` (PyAV decode, TSN sampling, train augmentation, workers);
- compute only: one batch, decoded once, re-used every step.
Reported: clips/s of each, their ratio (target >= 0.9: the loader is not the bottleneck), the fraction of
the pipeline loop spent waiting for the next batch, and peak memory (CUDA allocator, or the process's
max RSS on CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from benchmarks.common import report  # noqa: E402
from datamodules.datasets import Clip, VideoDataLoader, VideoDataset, clips_from_manifest  # noqa: E402
from datamodules.transforms import VideoTransform  # noqa: E402

SHARED_CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_clips"


def real_clips(root: Path) -> list[Clip]:
    """Every decodable clip listed in real_clips/MANIFEST.tsv (label = row index of its class name)."""
    rows = [line.split("\t") for line in (root / "MANIFEST.tsv").read_text().splitlines()[1:]]
    names = sorted({r[2] for r in rows})
    return [Clip(root / r[0], names.index(r[2])) for r in rows if r[15] == "yes"]


def build_net(model: str, arch: str) -> torch.nn.Module:
    if model == "vifi":
        from lightning_modules.models.vifi_clip import ViFiCLIP

        return ViFiCLIP(arch=arch, pretrained=None)
    from lightning_modules.models.tc_clip import TCCLIP

    return TCCLIP(arch=arch, pretrained=None)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["vifi", "tc"], default="vifi")
    parser.add_argument("--arch", default="ViT-B-16")
    parser.add_argument("--manifest", type=Path, help="a generated set's manifest.jsonl instead of the real clips")
    parser.add_argument("--labels", type=Path, help="label CSV of --manifest")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per loop (after one warm-up step)")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--classes", type=int, default=51, help="text classes per step (random names)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--quick", action="store_true", help="4 frames, batch 2, 3 steps (CPU-sized)")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.batch_size, args.steps = 4, 2, 3
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    if args.manifest:
        from datamodules.annotations import read_labels

        clips = clips_from_manifest(args.manifest, read_labels(args.labels))
    else:
        clips = real_clips(SHARED_CLIPS)
    dataset = VideoDataset(clips, args.frames, VideoTransform(train=True, size=args.size))
    loader = VideoDataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                             pin_memory=device.type == "cuda", persistent_workers=args.workers > 0, drop_last=True)  # fmt: skip

    net = build_net(args.model, args.arch).to(device).train()
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    step_net = torch.compile(net) if args.compile else net
    tokens = net.tokenize([f"action number {i}" for i in range(args.classes)]).to(device)
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-6, fused=device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
    print(f"{args.model} {args.arch}, {len(clips)} clips, {args.frames} frames x {args.size}px, batch "
          f"{args.batch_size}, {args.classes} classes, {args.workers} workers, {device}, bf16 {args.bf16}, "
          f"channels-last {args.channels_last}, compile {args.compile}, torch threads {torch.get_num_threads()}")

    def step(batch: dict) -> None:
        # (B, T, C, H, W); channels-last applies per frame, so it is set on the flattened frames' layout
        video = batch["video"].to(device, non_blocking=True)
        if args.channels_last:
            video = video.flatten(0, 1).contiguous(memory_format=memory_format).view_as(video)
        with autocast:
            logits = step_net(video, tokens)  # (B, K)
            loss = torch.nn.functional.cross_entropy(logits.float(), batch["label"].to(device) % args.classes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    batches = iter(loader)
    fixed = next(batches)
    step(fixed)  # warm-up (allocations, compile)

    def pipeline() -> tuple[float, float]:
        """(seconds, seconds waiting for batches) of `steps` steps fed by the loader."""
        nonlocal batches
        waited, start = 0.0, time.perf_counter()
        for _ in range(args.steps):
            t0 = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                batches = iter(loader)
                batch = next(batches)
            waited += time.perf_counter() - t0
            step(batch)
        return time.perf_counter() - start, waited

    def compute_only() -> float:
        start = time.perf_counter()
        for _ in range(args.steps):
            step(fixed)
        return time.perf_counter() - start

    piped, waited = pipeline()
    computed = compute_only()
    n = args.steps * args.batch_size
    print(f"pipeline: {n / piped:.2f} clips/s, waiting for data {100 * waited / piped:.1f}% of the loop; "
          f"compute only: {n / computed:.2f} clips/s; peak memory {peak_memory_mb(device):.0f} MiB")
    label = f"{args.model} {args.arch} train clips/s, data in the loop vs in-memory batch ({device})"
    report("train_throughput", label, n / piped, n / computed, "clips/s", min_ratio=0.9,
           note=f"step-wait fraction {waited / piped:.3f}; peak memory {peak_memory_mb(device):.0f} MiB")


if __name__ == "__main__":
    main()
