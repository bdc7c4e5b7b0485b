"""Cached per-video segment features for weakly-supervised anomaly detection (UCF-Crime, MIL).

A video is cut into snippets of `frames_per_snippet` consecutive frames (the last one padded with its
final frame); every snippet goes through a network's `encode_video((B, T, C, H, W)) -> (B, D)`. The
video's frames are then split into `num_segments` (32) equal segments (`segment_bounds`), and a
segment's feature is the mean of the snippets that overlap its frames, so every video becomes a
`(32, D)` bag. One file per video, `<out>/<video file stem>.pt`, holds the bag and the decoded frame
count (which `segment_bounds` turns back into the frames each segment score is spread to at test).
Files are written atomically (temp file + rename): a file that exists is complete, and a re-run skips
it. `python -m datamodules features --help` runs it; the network is any class with `encode_video`,
named by its dotted path and imported at run time (datamodules never import model code statically).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from datamodules.annotations import AnnotationError, read_list
from datamodules.manifest import ManifestError, read_manifest, safe_join
from datamodules.progress import Progress
from datamodules.transforms import VideoTransform
from datamodules.video import VideoDecodeError, iter_frames

log = logging.getLogger(__name__)

FEATURE_SUFFIX = ".pt"


# ------------------------------------------------------------------------------------------ cache format


def feature_path(feature_dir: str | Path, video: str | Path) -> Path:
    """Where the features of `video` live: `<feature_dir>/<file stem>.pt` (UCF-Crime names are unique).

    Raises:
        ValueError: the stem is no usable file name (empty, '.', '..', hidden) or the path leaves feature_dir.
    """
    stem = Path(video).stem
    if not stem or stem in (".", "..") or stem.startswith(".") or "/" in stem or "\\" in stem:
        raise ValueError(f"video {str(video)!r}: its file stem {stem!r} cannot name a feature file; rename the video")
    return safe_join(feature_dir, f"{stem}{FEATURE_SUFFIX}", "feature file")


def segment_bounds(num_frames: int, num_segments: int) -> np.ndarray:
    """Frame boundaries of `num_segments` equal segments: int array (num_segments + 1,), from 0 to num_frames.

    Segment j holds frames [bounds[j], bounds[j + 1]) (0-based); with fewer frames than segments some
    segments are empty. Used both to pool snippet features and to spread segment scores back to frames.
    """
    if num_frames < 1 or num_segments < 1:
        raise ValueError(f"need num_frames >= 1 and num_segments >= 1, got {num_frames} and {num_segments}")
    return np.round(np.linspace(0, num_frames, num_segments + 1)).astype(np.int64)


def pool_segments(snippets: torch.Tensor, num_frames: int, frames_per_snippet: int, num_segments: int) -> torch.Tensor:
    """(N, D) snippet features -> (num_segments, D): each segment is the mean of the snippets overlapping it.

    Snippet k covers frames [k * frames_per_snippet, (k + 1) * frames_per_snippet). An empty segment (a
    video with fewer frames than segments) takes the snippet holding its boundary frame.
    """
    n = snippets.shape[0]
    bounds = segment_bounds(num_frames, num_segments)
    out = []
    for start, end in zip(bounds[:-1], bounds[1:]):
        first = min(start // frames_per_snippet, n - 1)
        last = max(first, min((end - 1) // frames_per_snippet, n - 1))
        out.append(snippets[first : last + 1].mean(dim=0))
    return torch.stack(out)  # (S, D)


@dataclass(frozen=True)
class VideoFeatures:
    """One cached bag: `features` (S, D) float32 and the video's decoded frame count."""

    features: torch.Tensor
    num_frames: int


def save_features(path: str | Path, features: torch.Tensor, num_frames: int, video: str) -> None:
    """Write one bag atomically (temp file beside it, then rename), so a partial file never exists."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    record = {"features": features.detach().float().cpu().contiguous(), "num_frames": int(num_frames), "video": video}
    torch.save(record, tmp)
    os.replace(tmp, path)


def load_features(path: str | Path) -> VideoFeatures:
    """Read one bag written by `save_features`; errors name the file and what to do."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"feature file not found: {path}. Extract it with `python -m datamodules features`.")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
        features, num_frames = record["features"], int(record["num_frames"])
    except Exception as exc:  # any unreadable/foreign file: say which one and how to fix it
        raise ValueError(
            f"{path}: not a feature file of `python -m datamodules features` ({exc}); delete it and re-extract"
        ) from exc
    if features.ndim != 2 or num_frames < 1:
        raise ValueError(
            f"{path}: expected (segments, dim) features and num_frames >= 1, got {tuple(features.shape)}, {num_frames}"
        )
    return VideoFeatures(features.float(), num_frames)


# ------------------------------------------------------------------------------------------ extraction


def load_net(class_path: str, init_args: dict | None = None) -> torch.nn.Module:
    """Instantiate `class_path` (e.g. `lightning_modules.models.xclip.XCLIP`) with `init_args`; it must have
    `encode_video`."""
    module_name, _, class_name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(
            f"--model-class {class_path!r}: cannot import it ({exc}); give a dotted path `package.module.Class`"
        ) from exc
    net = cls(**(init_args or {}))
    if not callable(getattr(net, "encode_video", None)):
        raise ValueError(f"--model-class {class_path!r} has no `encode_video(video) -> (B, D)`; pick a video network")
    return net


@torch.no_grad()
def extract_video(
    net: torch.nn.Module,
    path: Path,
    transform: VideoTransform,
    frames_per_snippet: int = 8,
    num_segments: int = 32,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
) -> VideoFeatures:
    """Encode one video: snippets -> `net.encode_video` -> (num_segments, D) bag and its frame count."""
    snippet_features: list[torch.Tensor] = []
    batch: list[torch.Tensor] = []
    frames: list[np.ndarray] = []
    num_frames = 0

    def flush() -> None:
        video = torch.stack(batch).to(device)  # (B, T, C, H, W)
        try:
            features = net.encode_video(video)  # (B, D)
        except (ValueError, RuntimeError) as exc:
            raise ValueError(
                f"{type(net).__name__}.encode_video refused snippets of shape {tuple(video.shape)} from {path} "
                f"({exc}); set --frames-per-snippet / --image-size to what the net expects"
            ) from exc
        snippet_features.append(features.float().cpu())
        batch.clear()

    def close_snippet() -> None:
        frames.extend([frames[-1]] * (frames_per_snippet - len(frames)))  # pad the last snippet
        batch.append(transform(torch.from_numpy(np.stack(frames))))  # (T, H, W, 3) -> (T, C, H, W)
        frames.clear()
        if len(batch) == batch_size:
            flush()

    for frame in iter_frames(path):
        frames.append(frame)
        num_frames += 1
        if len(frames) == frames_per_snippet:
            close_snippet()
    if frames:
        close_snippet()
    if batch:
        flush()
    if num_frames == 0:
        raise VideoDecodeError(f"cannot read video {str(path)!r}: no frame decodes")
    snippets = torch.cat(snippet_features)  # (N, D), N = ceil(num_frames / frames_per_snippet)
    return VideoFeatures(pool_segments(snippets, num_frames, frames_per_snippet, num_segments), num_frames)


def list_videos(list_file: str | Path, video_root: str | Path | None) -> list[Path]:
    """Video files of a UCF-Crime/annotation list (relative to `video_root`) or of a synthetic manifest.

    Lists whose lines hold bare file names (the temporal annotation) are looked up by name anywhere under
    `video_root`. Raises when a video is missing or two videos share a file stem (their features would clash).
    """
    list_file = Path(list_file)
    if list_file.suffix == ".jsonl":
        try:
            rows = read_manifest(list_file)
        except ManifestError as exc:
            raise ValueError(str(exc)) from exc
        videos = [list_file.parent / row.video for row in rows]
    else:
        if video_root is None:
            raise ValueError(f"--video-root is required for the annotation list {list_file}")
        root = Path(video_root)
        _, records = read_list(list_file)
        by_name: dict[str, Path] | None = None
        videos = []
        for record in records:
            path = root / record.path
            if not path.exists():
                if by_name is None:  # index the root once, for lists of bare names
                    by_name = {p.name: p for p in root.rglob("*") if p.is_file()}
                path = by_name.get(Path(record.path).name, path)
            videos.append(path)
    missing = [str(v) for v in videos if not v.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(videos)} videos of {list_file} not found, e.g. {missing[:3]}; "
            "check --video-root (paths in the list are relative to it)"
        )
    stems: dict[str, Path] = {}
    for v in videos:
        if v.stem in stems and stems[v.stem] != v:
            raise ValueError(
                f"{list_file}: {stems[v.stem]} and {v} share the file stem {v.stem!r}; features are keyed by stem"
            )
        stems[v.stem] = v
    return list(stems.values())


@dataclass
class ExtractReport:
    """What a `features` run did."""

    extracted: int = 0
    skipped_done: int = 0
    failed: int = 0


def extract(
    net: torch.nn.Module,
    videos: list[Path],
    out_dir: str | Path,
    *,
    num_segments: int = 32,
    frames_per_snippet: int = 8,
    image_size: int = 224,
    batch_size: int = 16,
    device: str = "cpu",
    on_error: str = "raise",
    progress: bool = True,
) -> ExtractReport:
    """Extract and cache the bag of every video not cached yet (see the module docstring).

    Args:
        net: a network with `encode_video((B, T, C, H, W)) -> (B, D)`.
        videos: video files.
        out_dir: feature folder; one `<stem>.pt` per video.
        num_segments: segments per video (32 in the MIL paper).
        frames_per_snippet: consecutive frames per snippet (8 for X-CLIP-B/32).
        image_size: centre-crop size fed to the network (CLIP normalisation).
        batch_size: snippets per forward pass.
        device: torch device of the network.
        on_error: a video that fails to decode: `raise`, or `skip` (counted and logged, exit code 1).
        progress: show a progress bar.
    """
    net = net.to(device).eval()
    # Frames are normalised the way the net was trained (X-CLIP: ImageNet statistics; CLIP nets: OpenAI's).
    stats = {k: getattr(net, f"input_{k}") for k in ("mean", "std") if hasattr(net, f"input_{k}")}
    transform = VideoTransform(train=False, size=image_size, **stats)
    report = ExtractReport()
    for video in Progress(videos, desc="features", unit="video", disable=not progress):
        target = feature_path(out_dir, video)
        if target.is_file():
            report.skipped_done += 1
            continue
        try:
            bag = extract_video(net, video, transform, frames_per_snippet, num_segments, batch_size, device)
        except VideoDecodeError as exc:
            if on_error == "raise":
                raise
            report.failed += 1
            log.warning("skipped %s: %s", video, exc)
            continue
        save_features(target, bag.features, bag.num_frames, str(video))
        report.extracted += 1
    return report


# ------------------------------------------------------------------------------------------ CLI


def add_parser(subparsers) -> None:
    """Register `features` on the `python -m datamodules` command line."""
    p = subparsers.add_parser(
        "features",
        help="cache (segments, D) video features for anomaly detection (MIL)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--model-class", required=True, help="dotted class path of a net with encode_video")
    p.add_argument("--model-args", default="{}", help="JSON object of the net's init args")
    p.add_argument("--list", required=True, help="UCF-Crime list (any format) or a synthetic manifest.jsonl")
    p.add_argument("--video-root", help="folder the list's paths are relative to (not needed for a manifest)")
    p.add_argument("--out", required=True, help="feature folder (one <video stem>.pt per video)")
    p.add_argument("--segments", type=int, default=32, help="segments per video (default 32)")
    p.add_argument("--frames-per-snippet", type=int, default=8, help="frames per encoded snippet (default 8)")
    p.add_argument("--image-size", type=int, default=224, help="crop size fed to the net (default 224)")
    p.add_argument("--batch-size", type=int, default=16, help="snippets per forward pass (default 16)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0, help="torch seed before building the net (random-weight nets)")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        init_args = json.loads(args.model_args)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"--model-args is not valid JSON ({exc.msg}): {args.model_args!r}") from exc
    if not isinstance(init_args, dict):
        raise SystemExit(f"--model-args must be a JSON object, got {args.model_args!r}")
    for name in ("segments", "frames_per_snippet", "image_size", "batch_size"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    try:
        videos = list_videos(args.list, args.video_root)
        torch.manual_seed(args.seed)
        net = load_net(args.model_class, init_args)
    except (FileNotFoundError, ValueError, AnnotationError) as exc:
        raise SystemExit(str(exc)) from exc
    report = extract(
        net,
        videos,
        args.out,
        num_segments=args.segments,
        frames_per_snippet=args.frames_per_snippet,
        image_size=args.image_size,
        batch_size=args.batch_size,
        device=args.device,
        on_error=args.on_error,
    )
    log.info(
        "features: %d extracted, %d already done, %d failed -> %s",
        report.extracted,
        report.skipped_done,
        report.failed,
        args.out,
    )
    return 1 if report.failed else 0
