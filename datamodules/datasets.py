"""Labelled video datasets: real clips from annotation lists and generated clips from a manifest.

Both become a list of `Clip` records served by one `VideoDataset`, so real and synthetic data go
through the same decoding, sampling and augmentation. A sample is a dict:
`video` float (T, C, H, W) in training or (V, T, C, H, W) at test (V temporal views),
`label` int, and `uncertainty` float (the clip's CLIP uncertainty in [0, 1]; NaN for real clips).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.annotations import AnnotationError, read_video_list
from datamodules.manifest import read_manifest
from datamodules.transforms import VideoTransform
from datamodules.video import read_clip


@dataclass(frozen=True)
class Clip:
    """One labelled clip on disk."""

    path: Path
    label: int
    uncertainty: float | None = None  # normalised CLIP uncertainty of a generated clip; None if unscored/real


def clips_from_list(list_file: str | Path, video_root: str | Path, class_names: list[str]) -> list[Clip]:
    """Clips of an annotation list, checking that the files exist under `video_root`.

    Raises:
        FileNotFoundError: the root is missing, or listed clips are missing (count and examples named).
    """
    video_root = Path(video_root)
    if not video_root.is_dir():
        raise FileNotFoundError(
            f"video root not found: {video_root}. Set `--data.video_root` to the folder the paths in "
            f"{list_file} are relative to."
        )
    entries = read_video_list(list_file, len(class_names))
    clips = [Clip(path=video_root / e.path, label=e.label) for e in entries]
    missing = [(e, c.path) for e, c in zip(entries, clips) if not c.path.exists()]
    if missing:
        examples = ", ".join(f"line {e.line}: {p}" for e, p in missing[:3])
        raise FileNotFoundError(
            f"{len(missing)} of {len(clips)} clips listed in {list_file} are missing under {video_root} "
            f"({examples}). Check `--data.video_root`."
        )
    return clips


def clips_from_manifest(manifest: str | Path, class_names: list[str]) -> list[Clip]:
    """Clips of a generated set, checking every row's class against the label space.

    Raises:
        AnnotationError: a row's class id/name disagrees with the label file.
    """
    manifest = Path(manifest)
    clips = []
    for row in read_manifest(manifest):
        if row.class_id >= len(class_names) or class_names[row.class_id] != row.class_name:
            expected = class_names[row.class_id] if row.class_id < len(class_names) else "<out of range>"
            raise AnnotationError(
                f"{manifest}: row {row.row_id!r} has class {row.class_id} {row.class_name!r}, but the label "
                f"file says {expected!r}; generate with the same label file you train with"
            )
        clips.append(Clip(path=manifest.parent / row.video, label=row.class_id, uncertainty=row.uncertainty))
    if not clips:
        raise AnnotationError(f"{manifest}: the manifest has no clips; render some with `python -m generation`")
    return clips


class VideoDataset(Dataset):
    """Decodes, samples and augments clips.

    Args:
        clips: the clips to serve.
        num_frames: frames sampled per clip (TSN: one per equal segment).
        transform: frame transform; its `train` flag also selects random (train) or centred (test) sampling.
        num_views: temporal views per clip at test time (ignored in training).
    """

    def __init__(self, clips: list[Clip], num_frames: int, transform: VideoTransform, num_views: int = 1):
        self.clips = clips
        self.num_frames = num_frames
        self.transform = transform
        self.num_views = 1 if transform.train else num_views

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        clip = self.clips[index]
        # Random offsets come from torch's RNG, which Lightning seeds per worker and epoch.
        rng = np.random.default_rng(int(torch.randint(2**62, ()))) if self.transform.train else None
        frames = read_clip(
            clip.path,
            self.num_frames,
            train=self.transform.train,
            rng=rng,
            num_views=self.num_views,
            short_side=self.transform.short_side,
        )  # (V, T, H, W, 3) uint8
        views = torch.stack([self.transform(torch.from_numpy(v)) for v in frames])  # (V, T, C, H, W)
        return {
            "video": views[0] if self.transform.train else views,
            "label": clip.label,
            "uncertainty": math.nan if clip.uncertainty is None else clip.uncertainty,
        }
