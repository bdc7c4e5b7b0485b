"""Training throughput with the data pipeline in the loop, against the same steps on an in-memory batch.

Run from the repo root: `python benchmarks/train_throughput.py [--model vifi|tc] [--arch ViT-B-16] [--quick]
[--bf16] [--channels-last] [--compile] [--workers N]`. The clips are the real ones in ../shared/data/real_clips
(all containers and sizes, up to 1080p and 160 s) or, with `--manifest`, a generated set. Random weights.

Two loops run the same number of optimiser steps (AdamW, fused on CUDA) of the same model:
- pipeline: batches come from `VideoDataLoader` (PyAV decode, TSN sampling, train augmentation, workers);
- compute only: one batch, decoded once, re-used every step.
Reported: clips/s of each, their ratio (target >= 0.9: the loader is not the bottleneck), the fraction of
the pipeline loop spent waiting for the next batch, peak memory (CUDA allocator, or the process's max RSS on
CPU), and the loader's own clips/s (batches drawn with no model step, workers already started) for
`--workers` and every count in `--loader-workers`.
The clip list is repeated so that an epoch holds at least `prefetch_factor` (2) batches per worker plus the
timed steps: every worker decodes throughout, and no epoch boundary (worker restart) falls in a timed loop.
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

# the real clips; SYNTHACT_CLIPS points elsewhere (the GPU suite's carried subset, benchmarks/gpu_prepare.sh)
SHARED_CLIPS = Path(
    os.environ.get("SYNTHACT_CLIPS") or Path(__file__).resolve().parents[2] / "shared" / "data" / "real_clips"
)


def real_clips(root: Path) -> list[Clip]:
    """Every decodable clip listed in real_clips/MANIFEST.tsv (label = row index of its class name)."""
    rows = [line.split("\t") for line in (root / "MANIFEST.tsv").read_text().splitlines()[1:]]
    names = sorted({r[2] for r in rows})
    return [Clip(root / r[0], names.index(r[2])) for r in rows if r[15] == "yes"]


def build_net(model: str, arch: str, context_tokens: int = 96) -> torch.nn.Module:
    if model == "vifi":
        from lightning_modules.models.vifi_clip import ViFiCLIP

        return ViFiCLIP(arch=arch, pretrained=None)
    from lightning_modules.models.tc_clip import TCCLIP

    return TCCLIP(arch=arch, pretrained=None, num_context_tokens=context_tokens)


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
    parser.add_argument("--context-tokens", type=int, default=96, help="tc: k context tokens (fewer for tiny archs)")
    parser.add_argument(
        "--loader-workers",
        type=int,
        nargs="*",
        default=[],
        help="also measure the loader alone with these worker counts (e.g. 1 14)",
    )
    parser.add_argument(
        "--loader-batches",
        type=int,
        default=None,
        help="batches per loader-only measurement (default: 2 per worker, at least --steps)",
    )
    parser.add_argument("--max-clips", type=int, default=None, help="use only the first N clips (dry runs)")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.batch_size, args.steps = 4, 2, 3
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    if args.manifest:
        from datamodules.annotations import read_labels

        clips = clips_from_manifest(args.manifest, read_labels(args.labels))
    else:
        clips = real_clips(SHARED_CLIPS)
    clips = clips[: args.max_clips] if args.max_clips else clips
    distinct = len(clips)
    # every worker busy for the whole timed loops: per worker 2 prefetched batches (drained by the loader-only
    # warm-up) and 2 more, plus the warm-up and timed steps
    needed = args.batch_size * (4 * max(args.workers, *args.loader_workers, 1) + args.steps + 2)
    clips = clips * -(-needed // len(clips))
    transform = VideoTransform(train=True, size=args.size)

    def make_loader(workers: int) -> VideoDataLoader:
        return VideoDataLoader(
            VideoDataset(clips, args.frames, transform),
            batch_size=args.batch_size,
            shuffle=True,
            num_workers=workers,
            pin_memory=device.type == "cuda",
            persistent_workers=workers > 0,
            drop_last=True,
        )

    loader = make_loader(args.workers)

    net = build_net(args.model, args.arch, args.context_tokens).to(device).train()
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    step_net = torch.compile(net) if args.compile else net
    tokens = net.tokenize([f"action number {i}" for i in range(args.classes)]).to(device)
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-6, fused=device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
    print(
        f"{args.model} {args.arch}, {distinct} distinct clips repeated to {len(clips)}, {args.frames} frames x {args.size}px, batch "
        f"{args.batch_size}, {args.classes} classes, {args.workers} workers, {device}, bf16 {args.bf16}, "
        f"channels-last {args.channels_last}, compile {args.compile}, torch threads {torch.get_num_threads()}"
    )

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
    print(
        f"pipeline: {n / piped:.2f} clips/s, waiting for data {100 * waited / piped:.1f}% of the loop; "
        f"compute only: {n / computed:.2f} clips/s; peak memory {peak_memory_mb(device):.0f} MiB"
    )
    label = f"{args.model} {args.arch} train clips/s, data in the loop vs in-memory batch ({device})"
    report(
        "train_throughput",
        label,
        n / piped,
        n / computed,
        "clips/s",
        min_ratio=0.9,
        note=f"step-wait fraction {waited / piped:.3f}; peak memory {peak_memory_mb(device):.0f} MiB",
    )

    # the loader alone: the same batches, no model step
    for workers in dict.fromkeys([args.workers, *args.loader_workers]):
        rate = loader_rate(
            make_loader(workers) if workers != args.workers else loader,
            workers,
            args.loader_batches or max(args.steps, 2 * max(workers, 1)),
            args.batch_size,
        )
        print(
            f"loader alone, {workers} workers: {rate:.2f} clips/s ({args.frames} frames x {args.size}px, "
            f"train augmentation)"
        )
        report(
            "train_throughput",
            f"loader clips/s, {workers} workers, {args.frames} frames, vs the {device} step rate (compute only)",
            rate,
            n / computed,
            "clips/s",
            note="ratio >= 1.5 keeps the accelerator fed with margin (issue 17)",
        )


def loader_rate(loader: VideoDataLoader, workers: int, batches: int, batch_size: int) -> float:
    """Clips/s of the loader by itself in steady state: timed after 2 batches per worker (start-up and the
    prefetch buffer drained), so from then on batches arrive only as fast as the workers decode them."""
    it = iter(loader)
    for _ in range(2 * max(workers, 1)):
        next(it)
    start = time.perf_counter()
    drawn = 0
    for _ in range(batches):
        try:
            next(it)
        except StopIteration:
            it = iter(loader)
            next(it)
        drawn += batch_size
    return drawn / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
