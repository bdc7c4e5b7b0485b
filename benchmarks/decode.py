"""Decode throughput and where a training clip's read time goes, before and after issue 17's loader changes.

Run from the repo root: `python benchmarks/decode.py [--clips DIR] [--repeats N] [--no-breakdown]`. The clips
default to ../shared/data/real_clips (or $SYNTHACT_CLIPS). Everything runs on one thread per process
(torch.set_num_threads(1), as in a DataLoader worker).
1. `read_clip` (16 TSN segments, thread_type NONE, each read checking its file to the end) vs decoding every
   frame with PyAV: with and without converting each frame to RGB (converted as `read_clip` converts).
2. Breakdown, before vs after (ms per clip, the dataset's training read: 16 random TSN frames, short side 256,
   thread_type AUTO, then `VideoTransform(train=True)` at 224 without colour jitter and with the recipes'
   (`color_jitter` 0.8, `grayscale` 0.2)). `read_clip`'s internals are wrapped to split its wall time into:
   probe (`video_info`), opening the file, packet decode up to the last wanted frame, the verify decode from
   there to the end of the stream (+ the claimed count), RGB conversion with the decode-time resize, the rest
   (sampling, stacking). "before" is the loader as it was: every read checked to the end, an exact resize to
   short side 256 at decode time, PyAV's default conversion (PyAV >= 17: a swscale thread pool per frame),
   colour ops on uint8 (`old_augmentation`). "after" is a later epoch today: files checked once per process,
   frames converted on the calling thread, resized at decode time only when their short side is over 1.5x
   256 (AREA), else by `VideoTransform` alone, colour jitter on float frames. The two alternate inside each
   round; the median of `--repeats` rounds is printed.
3. End to end (read + augmentation with the recipes' colour jitter, no instrumentation), each change added to
   the previous one, and the first read of each file in a process after (it checks the file), alternating.
4. Decode + augmentation (the recipes' colour jitter) clips/s of 1 and `--processes` forked processes (each
   loading the whole list, started together), before and after with thread_type AUTO, and after with NONE;
   `--parallel-only` runs just this (the GPU suite, on its host).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from torchvision.transforms.v2 import functional as F  # noqa: E402

from benchmarks.common import report  # noqa: E402
from datamodules import video  # noqa: E402
from datamodules.transforms import BRIGHTNESS, CONTRAST, HUE, SATURATION, VideoTransform  # noqa: E402
from datamodules.video import read_clip, video_info  # noqa: E402

VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".m4v", ".mov", ".webm"}
DEFAULT_CLIPS = Path(
    os.environ.get("SYNTHACT_CLIPS") or Path(__file__).resolve().parents[2] / "shared" / "data" / "real_clips"
)
FRAMES, SHORT_SIDE, SIZE = 16, 256, 224
RECIPE_JITTER = dict(color_jitter=0.8, grayscale=0.2)  # every configs/recipes/*.yaml trains with these
AUGMENT_PLAIN = "augmentation (VideoTransform train, 224, no colour jitter)"
AUGMENT_RECIPE = "augmentation with the recipes' colour jitter 0.8, greyscale 0.2"


def decode_all(path: Path, rgb: bool) -> int:
    """Decode every frame of `path` on one thread; convert each to RGB if `rgb`. Returns the frame count."""
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        count = 0
        for frame in container.decode(stream):
            if rgb:
                frame.to_ndarray(format="rgb24", **video._CONVERT_ARGS)  # (H, W, 3), converted as read_clip does
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


@dataclass(frozen=True)
class Way:
    """How a training read is done: the loader before issue 17's loader work, and each change after it."""

    name: str
    convert_args: dict  # extra to_ndarray arguments ({}: PyAV's default, a swscale thread pool per frame)
    exact_size: bool  # decode-time resize to exactly SHORT_SIDE (True) or only frames over 1.5x it (False)
    verify_once: bool  # check each file to its end once per process (True) or at every read (False)
    new_augmentation: bool = True  # VideoTransform as it is (True) or as it was (`old_augmentation`)


BEFORE = Way(
    "before: every read checked, exact resize, PyAV's conversion threads, uint8 colour ops", {}, True, False, False
)
WAYS = [
    BEFORE,
    Way("+ RGB conversion on the calling thread", video._CONVERT_ARGS, True, False, False),
    Way("+ decode-time resize only over 1.5x (AREA)", video._CONVERT_ARGS, False, False, False),
    Way("+ each file checked once per process", video._CONVERT_ARGS, False, True, False),
    Way("+ float colour jitter, contiguous crop (after)", video._CONVERT_ARGS, False, True, True),
]
AFTER = WAYS[-1]
FIRST_READ = Way("after, first read of each file in a process (checked)", video._CONVERT_ARGS, False, False)


def old_augmentation(t: VideoTransform, clip: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """`t(clip)` in training as `VideoTransform` did it before (same random draws and crop): the crop left on the
    clip's channels-last strides, colour ops on uint8 (torchvision goes to float and back at each) with
    torchvision's HSV hue, float conversion last."""
    x = clip.permute(0, 3, 1, 2)  # (T, H, W, 3) -> (T, 3, H, W)
    height, width = x.shape[-2:]
    scale = t.short_side / min(height, width)
    top, left, box_h, box_w = t._random_box(round(height * scale), round(width * scale), generator)
    x = F.resized_crop(
        x,
        top=round(top / scale),
        left=round(left / scale),
        height=max(1, round(box_h / scale)),
        width=max(1, round(box_w / scale)),
        size=[t.size, t.size],
        antialias=True,
    )
    if t.flip and t._coin(0.5, generator):
        x = F.horizontal_flip(x)
    if t._coin(t.color_jitter, generator):
        for adjust, strength in (
            (F.adjust_brightness, BRIGHTNESS),
            (F.adjust_contrast, CONTRAST),
            (F.adjust_saturation, SATURATION),
        ):
            x = adjust(x, 1.0 + strength * (2.0 * t._uniform(generator) - 1.0))
        x = F.adjust_hue(x, HUE * (2.0 * t._uniform(generator) - 1.0))
    if t._coin(t.grayscale, generator):
        x = F.rgb_to_grayscale(x, num_output_channels=3)
    return F.normalize(F.to_dtype(x, torch.float32, scale=True), mean=t.mean, std=t.std)


def augmentation(way: Way, jitter: bool = True) -> Callable[[np.ndarray, int], torch.Tensor]:
    """The training augmentation (224 crop of short side 256; with the recipes' colour jitter and greyscale if
    `jitter`), done `way`; (clip, seed) -> (T, 3, 224, 224)."""
    t = VideoTransform(train=True, size=SIZE, short_side=SHORT_SIDE, **(RECIPE_JITTER if jitter else {}))

    def augment(clip: np.ndarray, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        x = torch.from_numpy(clip)
        return t(x, generator) if way.new_augmentation else old_augmentation(t, x, generator)

    return augment


_CHECKED: dict = {}  # the files the ways with `verify_once` have checked (other ways start from none)


def training_read(way: Way, thread_type: str = "AUTO") -> Callable[[Path, int], np.ndarray]:
    """`read_clip` as `VideoDataset` calls it in training, done `way`; (path, seed) -> (T, H, W, 3) uint8."""

    def read(path: Path, seed: int) -> np.ndarray:
        video._CONVERT_ARGS = way.convert_args
        video._VERIFIED = _CHECKED if way.verify_once else {}  # {}: as if this process had not read the file
        return read_clip(
            path,
            FRAMES,
            train=True,
            rng=np.random.default_rng(seed),
            short_side=SHORT_SIDE,
            thread_type=thread_type,
            exact_size=way.exact_size,
        )[0]

    return read


class Stages:
    """Wall time of `read_clip` split by stage: `datamodules.video`'s internals are wrapped while `patched`.

    Time goes to the innermost stage running (exclusive time), except inside the probe and the check, which
    keep everything they call (their own open, demuxing, a second `video_info`). The decode of frames after the
    last wanted one is the check (verify); `_claimed_frames` (the count the check compares with) is too.
    """

    NAMES = (
        "probe (video_info)",
        "open the file for decoding",
        "packet decode up to the last wanted frame",
        "verify: decode on to the end + frame count",
        "RGB conversion (+ decode-time resize)",
        "sampling, stacking, rest of read_clip",
    )
    PROBE, OPEN, DECODE, VERIFY, CONVERT, OTHER = NAMES
    _STICKY = (PROBE, VERIFY)

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(self.NAMES, 0.0)
        self._stack: list[str] = []
        self._since = 0.0
        self._last_wanted = 0
        self._verifying = False

    def enter(self, stage: str) -> None:
        now = time.perf_counter()
        if self._stack:
            self.seconds[self._stack[-1]] += now - self._since
            stage = self._stack[-1] if self._stack[-1] in self._STICKY else stage
        self._stack.append(stage)
        self._since = now

    def exit(self) -> None:
        now = time.perf_counter()
        self.seconds[self._stack.pop()] += now - self._since
        self._since = now

    def _wrap(self, fn: Callable, stage: str) -> Callable:
        def timed(*args, **kwargs):
            self.enter(stage)
            try:
                return fn(*args, **kwargs)
            finally:
                self.exit()

        return timed

    @contextmanager
    def patched(self):
        """Wrap the internals of `datamodules.video` (restored on exit)."""
        names = ("video_info", "_claimed_frames", "_open", "_frames_from", "_decode_video", "_rgb")
        saved = {name: getattr(video, name) for name in names}

        def frames_from(*args, **kwargs):
            frames = saved["_frames_from"](*args, **kwargs)
            while True:
                self.enter(self.VERIFY if self._verifying else self.DECODE)
                try:
                    index, frame = next(frames)
                except StopIteration:
                    return
                finally:
                    self.exit()
                self._verifying = self._verifying or index >= self._last_wanted
                yield index, frame

        def decode_video(path, wanted, *args, **kwargs):
            self._last_wanted, self._verifying = max(wanted), False
            return saved["_decode_video"](path, wanted, *args, **kwargs)

        video.video_info = self._wrap(saved["video_info"], self.PROBE)
        video._claimed_frames = self._wrap(saved["_claimed_frames"], self.VERIFY)
        video._open = self._wrap(saved["_open"], self.OPEN)
        video._rgb = self._wrap(saved["_rgb"], self.CONVERT)
        video._frames_from, video._decode_video = frames_from, decode_video
        try:
            yield self
        finally:
            for name, fn in saved.items():
                setattr(video, name, fn)


def breakdown(clips: list[Path], repeats: int, ways: list[Way]) -> dict[str, dict[str, float]]:
    """Median over `repeats` rounds of the ms per clip of each stage of a training read (16 random TSN frames,
    short side 256), then of the augmentation (`VideoTransform(train=True)` at 224, without and with the recipes'
    colour jitter), for each of `ways`; the ways alternate inside a round. A way that checks files once per
    process is timed after a first pass that checked them."""
    for way in ways:
        if way.verify_once:
            for i, path in enumerate(clips):
                training_read(way)(path, i)
    runs: dict[str, list[dict[str, float]]] = {way.name: [] for way in ways}
    for _ in range(repeats):
        for way in ways:
            read, stages = training_read(way), Stages()
            augments = {AUGMENT_PLAIN: augmentation(way, jitter=False), AUGMENT_RECIPE: augmentation(way)}
            seconds = dict.fromkeys(augments, 0.0)
            with stages.patched():
                for i, path in enumerate(clips):
                    stages.enter(Stages.OTHER)
                    clip = read(path, i)
                    stages.exit()
                    for name, augment in augments.items():
                        start = time.perf_counter()
                        augment(clip, i)
                        seconds[name] += time.perf_counter() - start
            ms = {name: 1000 * s / len(clips) for name, s in {**stages.seconds, **seconds}.items()}
            runs[way.name].append(ms)
    return {
        name: {stage: statistics.median(r[stage] for r in rounds) for stage in rounds[0]}
        for name, rounds in runs.items()
    }


def end_to_end(clips: list[Path], repeats: int, ways: list[Way]) -> dict[str, float]:
    """Median ms per clip of a whole training read + augmentation with the recipes' colour jitter (no
    instrumentation), ways alternating."""
    times: dict[str, list[float]] = {way.name: [] for way in ways}
    for _ in range(repeats):
        for way in ways:
            read, augment = training_read(way), augmentation(way)
            start = time.perf_counter()
            for i, path in enumerate(clips):
                augment(read(path, i), i)
            times[way.name].append(1000 * (time.perf_counter() - start) / len(clips))
    return {name: statistics.median(t) for name, t in times.items()}


def _load_worker(clips: list[Path], way: Way, thread_type: str, barrier, results) -> None:
    """One loader process: warm up (and with `verify_once`, check every file: the first epoch), wait for the
    others, then time one pass of decode + augmentation (the recipes' colour jitter) over `clips`."""
    torch.set_num_threads(1)
    read, augment = training_read(way, thread_type), augmentation(way)
    for i, path in enumerate(clips if way.verify_once else clips[:1]):
        read(path, i)
    barrier.wait()
    start = time.perf_counter()
    for i, path in enumerate(clips):
        augment(read(path, i + 1), i)
    results.put((start, time.perf_counter()))


def parallel_rate(clips: list[Path], processes: int, way: Way, thread_type: str) -> float:
    """Clips/s of `processes` forked loader processes each loading the whole list (decode + augmentation), from
    the first start to the last finish of their timed passes."""
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [
        ctx.Process(target=_load_worker, args=(clips, way, thread_type, barrier, results)) for _ in range(processes)
    ]
    for w in workers:
        w.start()
    spans = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join()
    return processes * len(clips) / (max(end for _, end in spans) - min(start for start, _ in spans))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=DEFAULT_CLIPS)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="rounds (the ways alternate inside each); the fastest (part 1) or the median counts",
    )
    parser.add_argument("--no-breakdown", action="store_true", help="only the single-thread comparison")
    parser.add_argument(
        "--parallel-only",
        action="store_true",
        help="only the processes x way measurement (the GPU suite runs this on its host)",
    )
    parser.add_argument(
        "--processes", type=int, default=None, help="processes of the parallel measurement (default: every core)"
    )
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
        return parallel(clips, args.processes, args.repeats)
    frames = sum(decode_all(p, rgb=False) for p in clips)  # also warms the file cache
    print(f"{len(clips)} clips, {frames} frames, 1 thread, best of {args.repeats}")

    def sample(path: Path) -> object:
        video._VERIFIED = {}  # every read checks its file to the end, as a first read does
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
    ways = [BEFORE, AFTER]
    stages = breakdown(clips, args.repeats, ways)
    print(
        f"\nwhere a training clip's read goes ({len(clips)} clips, {FRAMES} random TSN frames, short side "
        f"{SHORT_SIDE}, thread_type AUTO, 1 process; ms/clip, median of {args.repeats} alternating rounds):"
    )
    print(f"  {'stage':55s} {'before':>8s} {'after':>8s}")
    for stage in stages[BEFORE.name]:
        before, after = stages[BEFORE.name][stage], stages[AFTER.name][stage]
        print(f"  {stage:55s} {before:8.2f} {after:8.2f}")
        if min(before, after) > 0:  # a stage that is gone (after = 0) is printed, not reported as a ratio
            report(
                "decode",
                f"ms/clip: {stage}",
                after,
                before,
                "ms",
                higher_is_better=False,
                note="ours = after (files checked once per process, a later epoch), baseline = before",
            )
    total = {name: sum(ms for stage, ms in s.items() if stage != AUGMENT_PLAIN) for name, s in stages.items()}
    print(
        f"  {'sum (read + augmentation with the recipes jitter)':55s} {total[BEFORE.name]:8.2f} "
        f"{total[AFTER.name]:8.2f}"
    )
    totals = end_to_end(clips, args.repeats, [*WAYS, FIRST_READ])
    print(
        f"\ntraining read + augmentation end to end, each change added to the one above, then the first epoch "
        f"of a process after (ms/clip, median of {args.repeats} alternating rounds):"
    )
    for name, ms in totals.items():
        print(f"  {name:70s} {ms:8.2f}")
        if name != BEFORE.name:
            report(
                "decode",
                f"train ms/clip: {name}",
                ms,
                totals[BEFORE.name],
                "ms",
                higher_is_better=False,
                note="baseline = before",
            )
    parallel(clips, args.processes, args.repeats)


def parallel(clips: list[Path], processes: int | None, repeats: int) -> None:
    """Decode + augmentation clips/s of `processes` and of 1 loader process (reported in that order, so a time
    limit keeps the many-process rows), before and after with thread_type AUTO and after with NONE; each the
    median of `repeats` rounds in which the three alternate."""
    cores = os.cpu_count() or 1
    runs = [(BEFORE, "AUTO"), (AFTER, "AUTO"), (AFTER, "NONE")]
    print(
        f"\ndecode + augmentation, each process loading all {len(clips)} clips (clips/s, median of {repeats} "
        "alternating rounds; after = a later epoch, files checked):"
    )
    for n in sorted({1, processes or cores}, reverse=True):
        rates: dict[tuple[str, str], list[float]] = {}
        for _ in range(repeats):
            for way, tt in runs:
                rates.setdefault((way.name, tt), []).append(parallel_rate(clips, n, way, tt))
        before = statistics.median(rates[BEFORE.name, "AUTO"])
        print(f"  {n} processes, before, thread_type AUTO: {before:7.1f}")
        for tt in ("AUTO", "NONE"):
            after = statistics.median(rates[AFTER.name, tt])
            print(f"  {n} processes, after,  thread_type {tt}: {after:7.1f}")
            report(
                "decode",
                f"train clips/s, {n} processes, thread_type {tt}",
                after,
                before,
                "clips/s",
                note=f"{cores} cores; ours = after, baseline = before with thread_type AUTO, {n} processes",
            )


if __name__ == "__main__":
    main()
