"""Generation benchmarks: the render framework's overhead over the bare pipeline, and Ray scaling.

Run from the repo root: `python benchmarks/generation.py [--quick]`.
1. Overhead: the same prompts through (a) the bare CogVideoXPipeline call, one seeded generator per clip,
   and (b) `render_prompts` with the cogvideox backend around the same pipeline object (planning, per-clip
   atomic mp4 write, fsync, manifest append). Tiny random-weight pipeline on CPU, one torch thread, runs
   interleaved, best of `--repeats`. Target: framework time within 5% of the bare pipeline (ratio >= 0.95).
   The tiny pipeline takes a fraction of a second per clip, so this bounds the overhead from above: with
   CogVideoX-2B at ~45 s per clip the same fixed costs are far below 1%.
2. Ray: procedural clips rendered by 1 and by 2 Ray actors (`ray.init(num_cpus=2)`, 0.5 CPU per actor),
   clips/s as a ratio (2 workers over 1), actor start-up included.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import report  # noqa: E402
from generation import vocab  # noqa: E402
from generation.prompts import Label, make_prompts, write_prompts  # noqa: E402
from generation.render import render_prompts  # noqa: E402
from generation.t2v import T2VRenderer  # noqa: E402
from generation.tiny import tiny_pipeline, tiny_settings  # noqa: E402
from generation.video_io import write_video  # noqa: E402


def overhead(work: Path, clips: int, repeats: int, size: int, steps: int, batch: int) -> None:
    labels = [Label(i, a.name) for i, a in enumerate(vocab.ACTIONS[:4])]
    rows = make_prompts(labels, "ie", videos_per_class=-(-clips // 4))[:clips]
    write_prompts(work / "prompts.jsonl", rows)
    settings = tiny_settings("cogvideox", width=size, height=size, steps=steps, batch_size=batch)
    pipe = tiny_pipeline("cogvideox", channels=16).to("cpu")
    pipe.set_progress_bar_config(disable=True)
    renderer = T2VRenderer(settings, pipe=pipe)

    def bare(write_to: Path | None = None) -> None:
        for i in range(0, len(rows), batch):
            part = rows[i : i + batch]
            out = pipe(
                prompt=[r.prompt for r in part],
                generator=[torch.Generator().manual_seed(r.seed) for r in part],
                num_inference_steps=steps,
                guidance_scale=6.0,
                use_dynamic_cfg=False,
                num_frames=9,
                height=size,
                width=size,
                max_sequence_length=16,
                output_type="np",
            )
            if write_to is not None:  # what a hand-written script must do too: encode each clip to mp4
                write_to.mkdir(exist_ok=True)
                for r, f in zip(part, out.frames):  # f: (T, H, W, 3) floats in [0, 1]
                    write_video(write_to / f"{r.row_id}.mp4", (f * 255).round().clip(0, 255).astype(np.uint8))

    def ours(k: int) -> None:
        render_prompts(work / "prompts.jsonl", work / f"out{k}", backend=renderer, progress=False)

    bare()  # warm-up (allocator, first-call costs)
    times: dict[str, list[float]] = {"bare": [], "bare+write": [], "ours": []}
    for k in range(repeats):
        for name, fn in (
            ("bare", bare),
            ("bare+write", lambda k=k: bare(work / f"plain{k}")),
            ("ours", lambda k=k: ours(k)),
        ):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    b, bw, o = (min(times[n]) for n in ("bare", "bare+write", "ours"))
    what = f"{clips} clips {size}x{size}x9, {steps} steps (tiny pipeline, CPU, 1 torch thread)"
    report(
        "generation",
        f"render framework vs bare pipeline + the same mp4 writes, {what}",
        o / clips,
        bw / clips,
        "s/clip",
        higher_is_better=False,
        min_ratio=0.95,
        note=f"bookkeeping overhead {100 * (o / bw - 1):+.1f}% (best of {repeats})",
    )
    report(
        "generation",
        f"render framework vs bare CogVideoXPipeline (no files), {what}",
        o / clips,
        b / clips,
        "s/clip",
        higher_is_better=False,
        min_ratio=0.95,
        note=f"overhead {100 * (o / b - 1):+.1f}%: mp4 encoding, overlapped with rendering by a writer thread "
        "only where a core is free (on a GPU it always is)",
    )


def ray_scaling(work: Path, clips: int, frames: int, size: int) -> None:
    import ray

    labels = [Label(i, a.name) for i, a in enumerate(vocab.ACTIONS[:4])]
    write_prompts(work / "ray_prompts.jsonl", make_prompts(labels, "ie", videos_per_class=-(-clips // 4))[:clips])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        rate = {}
        for workers in (1, 2):
            t = time.perf_counter()
            s = render_prompts(
                work / "ray_prompts.jsonl",
                work / f"ray{workers}",
                backend="ray",
                ray_workers=workers,
                ray_batch_size=2,
                num_frames=frames,
                size=size,
                progress=False,
            )
            rate[workers] = s.rendered / (time.perf_counter() - t)
    finally:
        ray.shutdown()
    report(
        "generation",
        f"Ray procedural render, 2 actors vs 1 ({clips} clips {size}px x {frames} frames, num_cpus=2)",
        rate[2],
        rate[1],
        "clips/s",
        note="actor start-up included; 2 shared CPU cores",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer clips (the `python -m benchmarks` setting)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of the overhead run")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray scaling benchmark")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import diffusers

    diffusers.utils.logging.set_verbosity_error()  # the toy tokenizer's 16-token truncation notices
    work = Path(tempfile.mkdtemp(prefix="bench-generation-"))
    try:
        overhead(
            work, clips=16 if args.quick else 32, repeats=args.repeats, size=64, steps=6 if args.quick else 12, batch=2
        )
        if not args.no_ray:
            try:
                import ray  # noqa: F401
            except ImportError:
                print("ray not installed (pip install 'ray[data]'): Ray scaling skipped")
            else:
                ray_scaling(work, clips=24 if args.quick else 64, frames=16, size=64 if args.quick else 96)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
