"""Scoring throughput: `python -m generation score` vs the bare open_clip encode of the same frames.

Run from the repo root: `python benchmarks/score.py [--manifest M --labels C] [--arch A --pretrained P]
[--clips N] [--repeats R]`. The default is the demo set (`make demo-data`) with the small random CLIP on
CPU. Both sides decode the same frames the same way (T segment centres, CLIP preprocessing, the same
DataLoader) and run the same model; the baseline stops at `model.encode_image`, the scorer is the whole
`score_manifest` call: model loading, text features, pooling, softmax, entropy, the manifest rewrite and
the report figures. Runs alternate; the best of each side counts. Prints clips/s and the ratio by wall
time and by this process's CPU time (steadier on a shared machine); the target is overhead <= 10%.
The wall time of the encode loop alone (ScoreSummary.seconds) is printed too.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from benchmarks.common import report  # noqa: E402
from datamodules.manifest import read_manifest  # noqa: E402
from generation.clip_features import ClipEncoder  # noqa: E402
from generation.score import score_manifest  # noqa: E402


def bare_encode(encoder: ClipEncoder, paths: list[Path], batch_size: int) -> None:
    """Decode + open_clip `encode_image` of every frame, nothing else."""
    with torch.no_grad():
        for video in encoder.loader(paths, batch_size):  # (B, T, C, H, W)
            with torch.autocast(encoder.device.type, enabled=encoder.device.type == "cuda"):
                encoder.model.encode_image(video.to(encoder.device).flatten(0, 1))  # (B*T, D)
    if encoder.device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of fn()."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=Path("data/demo/synthetic/ie/manifest.jsonl"))
    parser.add_argument("--labels", type=Path, default=Path("data/demo/labels.csv"))
    parser.add_argument("--arch", default="synthact-small")
    parser.add_argument("--pretrained", default=None)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--clips", type=int, default=None, help="use the first N clips (default all)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side; the fastest counts")
    args = parser.parse_args()

    rows = read_manifest(args.manifest)[: args.clips]
    paths = [args.manifest.parent / r.video for r in rows]
    encoder = ClipEncoder(args.arch, args.pretrained, num_frames=args.frames)
    print(
        f"{len(rows)} clips x {args.frames} frames, {args.arch} ({args.pretrained or 'random'}), "
        f"{encoder.image_size}px, batch {args.batch_size}, {encoder.device}, torch threads {torch.get_num_threads()}"
    )
    bare_encode(encoder, paths[: args.batch_size], args.batch_size)  # warm-up

    bare, score, loop = [], [], []  # (wall, cpu) seconds per run, alternating; wall s of the encode loop
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "manifest.jsonl"
        for folder in {Path(r.video).parts[0] for r in rows}:
            (Path(tmp) / folder).symlink_to((args.manifest.parent / folder).resolve())

        def run_score() -> None:
            copy.write_text(
                "".join(
                    r.model_copy(update={"entropy": None, "uncertainty": None}).model_dump_json() + "\n" for r in rows
                )
            )
            summary = score_manifest(
                copy,
                args.labels,
                arch=args.arch,
                pretrained=args.pretrained,
                num_frames=args.frames,
                batch_size=args.batch_size,
                progress=False,
            )
            loop.append(summary.seconds)

        for _ in range(args.repeats):
            bare.append(timed(lambda: bare_encode(encoder, paths, args.batch_size)))
            score.append(timed(run_score))
    n = len(rows)
    for i, what in enumerate(("wall", "CPU")):
        b, s = min(x[i] for x in bare), min(x[i] for x in score)
        print(
            f"{what:>4} time, best of {args.repeats}: bare open_clip encode {n / b:7.1f} clips/s, "
            f"score_manifest {n / s:7.1f} clips/s, ratio {b / s:.3f} (overhead {100 * (s / b - 1):+.1f}%)"
        )
        report(
            "score",
            f"score_manifest vs bare encode ({what} time)",
            n / s,
            n / b,
            "clips/s",
            min_ratio=1 / 1.10 if what == "wall" else None,
            note="target: overhead <= 10%",
        )
    b, s = min(x[0] for x in bare), min(loop)
    print(
        f"wall time of score_manifest's encode loop only (no model load, final rewrite, figures): "
        f"{n / s:7.1f} clips/s, ratio {b / s:.3f} (overhead {100 * (s / b - 1):+.1f}%)"
    )
    print("runs (wall s): bare", [round(x[0], 1) for x in bare], "score", [round(x[0], 1) for x in score])


if __name__ == "__main__":
    main()
