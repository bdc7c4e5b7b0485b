"""Decode throughput and where a training clip's load time goes.

Run from the repo root: `python benchmarks/decode.py [--clips DIR] [--repeats N] [--no-breakdown]`. The clips
default to ../shared/data/real_clips (or $SYNTHACT_CLIPS).
1. Single thread: `read_clip` (16 TSN segments) vs decoding every frame with PyAV (torch.set_num_threads(1),
   PyAV thread_type="NONE"). The baseline is the naive loader: decode every frame and convert each to an RGB
   array, then take 16 of them; a second baseline line decodes every frame without the RGB conversion.
2. Breakdown (ms per clip, the dataset's training path: 16 random TSN frames, short side 256, then
   `VideoTransform(train=True)` at 224): probe (`video_info`), the counterfactual of decoding sequentially up
   to the last wanted frame without `read_clip`'s seeks (no conversion), conversion to RGB at the decode-time resize (swscale, as `read_clip` does it) and at the native
   size, the torch augmentation (crop/resize/flip/normalise), and `read_clip` end to end; then `read_clip` with
   thread_type AUTO vs NONE, in 1 process and in as many processes as cores (what DataLoader workers do).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import report  # noqa: E402
from datamodules.transforms import VideoTransform  # noqa: E402
from datamodules.video import read_clip, sample_indices, video_info  # noqa: E402

VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".m4v", ".mov", ".webm"}
DEFAULT_CLIPS = Path(os.environ.get("SYNTHACT_CLIPS") or Path(__file__).resolve().parents[2] / "shared" / "data" / "real_clips")
FRAMES, SHORT_SIDE, SIZE = 16, 256, 224


def decode_all(path: Path, rgb: bool) -> int:
    """Decode every frame of `path` on one thread; convert each to RGB if `rgb`. Returns the frame count."""
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        count = 0
        for frame in container.decode(stream):
            if rgb:
                frame.to_ndarray(format="rgb24")  # (H, W, 3)
            count += 1
        return count


def clips_per_second(clips: list[Path], read: Callable[[Path], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for path in clips:
            read(path)
        best = min(best, time.perf_counter() - start)
    return len(clips) / best


def decode_wanted(path: Path, wanted: list[int], thread_type: str) -> list:
    """Open, seek/decode forward to each wanted index (sequential decode, one seek to the first), no conversion:
    the av.VideoFrame objects."""
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = thread_type
        out, want = [], iter(sorted(set(wanted)))
        target = next(want)
        for i, frame in enumerate(container.decode(stream)):
            while target is not None and i >= target:
                out.append(frame)
                target = next(want, None)
            if target is None:
                break
        return out


def breakdown(clips: list[Path], repeats: int) -> dict[str, float]:
    """Best-of-`repeats` ms per clip of each stage of a training load (see the module docstring)."""
    transform = VideoTransform(train=True, size=SIZE, short_side=SHORT_SIDE)
    rng = np.random.default_rng(0)
    plans = []
    for path in clips:
        n = video_info(path).num_frames
        plans.append((path, sorted(sample_indices(n, FRAMES, train=True, rng=rng).tolist())))
    stages: dict[str, float] = {}

    def timed(name: str, fn) -> None:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for plan in plans:
                fn(*plan)
            best = min(best, time.perf_counter() - start)
        stages[name] = 1000 * best / len(plans)

    timed("probe (video_info)", lambda p, w: video_info(p))
    timed("open + sequential decode to the last of the 16 frames (no seeks, no conversion)",
          lambda p, w: decode_wanted(p, w, "NONE"))
    decoded = [decode_wanted(p, w, "NONE") for p, w in plans]

    def convert(resize: bool):
        for frames in decoded:
            f0 = frames[0]
            scale = SHORT_SIDE / min(f0.width, f0.height)
            size = (round(f0.width * scale), round(f0.height * scale)) if resize else (f0.width, f0.height)
            for f in frames:
                f.to_ndarray(format="rgb24", width=size[0], height=size[1])

    for name, resize in (("RGB conversion + resize to short side 256 (swscale)", True),
                         ("RGB conversion at native size", False)):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            convert(resize)
            best = min(best, time.perf_counter() - start)
        stages[name] = 1000 * best / len(plans)
    arrays = [torch.from_numpy(read_clip(p, FRAMES, train=True, rng=np.random.default_rng(0), short_side=SHORT_SIDE,
                                         thread_type="NONE")[0]) for p, _ in plans]
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for a in arrays:
            transform(a)
        best = min(best, time.perf_counter() - start)
    stages["augmentation (VideoTransform train, 224)"] = 1000 * best / len(plans)
    for tt in ("NONE", "AUTO"):
        timed(f"read_clip end to end, thread_type {tt}", lambda p, w, tt=tt: read_clip(
            p, FRAMES, train=True, rng=np.random.default_rng(0), short_side=SHORT_SIDE, thread_type=tt))
    return stages


def _load_all(args: tuple[list[Path], str]) -> int:
    clips, thread_type = args
    torch.set_num_threads(1)
    transform = VideoTransform(train=True, size=SIZE, short_side=SHORT_SIDE)
    for p in clips:
        transform(torch.from_numpy(read_clip(p, FRAMES, train=True, rng=np.random.default_rng(0),
                                             short_side=SHORT_SIDE, thread_type=thread_type)[0]))
    return len(clips)


def parallel_rate(clips: list[Path], processes: int, thread_type: str) -> float:
    """Clips/s of `processes` worker processes each loading the whole list (decode + augmentation)."""
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(_load_all, [(clips[:1], thread_type)] * processes))  # start-up
        start = time.perf_counter()
        done = sum(pool.map(_load_all, [(clips, thread_type)] * processes))
        return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=DEFAULT_CLIPS)
    parser.add_argument("--repeats", type=int, default=3, help="passes over the clips; the fastest counts")
    parser.add_argument("--no-breakdown", action="store_true", help="only the single-thread comparison")
    parser.add_argument("--parallel-only", action="store_true",
                        help="only the processes x thread_type measurement (the GPU suite runs this on its host)")
    parser.add_argument("--processes", type=int, default=None, help="processes of the parallel measurement "
                        "(default: every core)")
    parser.add_argument("--max-clips", type=int, default=None, help="only the first N clips (dry runs)")
    parser.add_argument("--max-width", type=int, default=None, help="only clips at most this wide (e.g. 400)")
    args = parser.parse_args()
    clips = sorted(p for p in args.clips.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if args.max_width:
        clips = [p for p in clips if video_info(p).width <= args.max_width]
    clips = clips[: args.max_clips] if args.max_clips else clips
    if not clips:
        sys.exit(f"no video files under {args.clips}")
    torch.set_num_threads(1)
    if args.parallel_only:
        return parallel(clips, args.processes)
    frames = sum(decode_all(p, rgb=False) for p in clips)  # also warms the file cache
    print(f"{len(clips)} clips, {frames} frames, 1 thread, best of {args.repeats}")

    def sample(path: Path) -> object:
        return read_clip(path, 16, train=False, thread_type="NONE")

    sampled = clips_per_second(clips, sample, args.repeats)
    naive = clips_per_second(clips, lambda p: decode_all(p, rgb=True), args.repeats)
    decode_only = clips_per_second(clips, lambda p: decode_all(p, rgb=False), args.repeats)
    print(f"read_clip (16 segments, test) : {sampled:8.1f} clips/s")
    print(f"all frames + RGB (naive)      : {naive:8.1f} clips/s")
    print(f"all frames, no RGB conversion : {decode_only:8.1f} clips/s")
    report("decode", "read_clip vs decode all frames + RGB", sampled, naive, "clips/s")
    report("decode", "read_clip vs decode all frames, no RGB", sampled, decode_only, "clips/s")
    if args.no_breakdown:
        return
    stages = breakdown(clips, args.repeats)
    total = stages["read_clip end to end, thread_type NONE"] + stages["augmentation (VideoTransform train, 224)"]
    print(f"\nwhere a training clip's load goes ({len(clips)} clips, {FRAMES} frames, short side {SHORT_SIDE}, "
          f"1 process):")
    for name, ms in stages.items():
        print(f"  {name:55s} {ms:8.2f} ms/clip")
        report("decode", f"ms/clip: {name}", ms, total, "ms", higher_is_better=False,
               note="baseline = read_clip (NONE) + augmentation; ratio = that total / this stage")
    parallel(clips, args.processes)


def parallel(clips: list[Path], processes: int | None) -> None:
    """Decode + augmentation clips/s of 1 and `processes` worker processes, PyAV thread_type NONE and AUTO."""
    cores = os.cpu_count() or 1
    processes = processes or cores
    for tt in ("NONE", "AUTO"):
        rates = {n: parallel_rate(clips, n, tt) for n in sorted({1, processes})}
        for n, r in rates.items():
            print(f"  decode + augmentation, {n} processes, thread_type {tt}: {r:7.1f} clips/s")
            report("decode", f"train clips/s, {n} processes, thread_type {tt}", r, rates[1], "clips/s",
                   note=f"{cores} cores; ratio vs 1 process, same thread_type")

if __name__ == "__main__":
    main()
