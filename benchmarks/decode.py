"""Single-thread decode throughput: `read_clip` (16 TSN segments) vs decoding every frame with PyAV.

Run from the repo root: `python benchmarks/decode.py [--clips DIR] [--repeats N]`. The clips default to
../shared/data/real_clips. Both readers run on one thread (torch.set_num_threads(1), PyAV
thread_type="NONE"). The baseline is the naive loader: decode every frame and convert each to an RGB
array, then take 16 of them; a second baseline line decodes every frame without the RGB conversion.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import report  # noqa: E402
from datamodules.video import read_clip  # noqa: E402

VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".m4v", ".mov", ".webm"}
DEFAULT_CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_clips"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=DEFAULT_CLIPS)
    parser.add_argument("--repeats", type=int, default=3, help="passes over the clips; the fastest counts")
    args = parser.parse_args()
    clips = sorted(p for p in args.clips.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if not clips:
        sys.exit(f"no video files under {args.clips}")
    torch.set_num_threads(1)
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


if __name__ == "__main__":
    main()
