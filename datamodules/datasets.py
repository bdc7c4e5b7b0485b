"""Labelled video datasets: real clips from annotation lists and generated clips from a manifest.

Both become a list of `Clip` records served by one `VideoDataset`, so real and synthetic data go
through the same decoding, sampling and augmentation. A sample is a dict:
`video` float (T, C, H, W) in training or (V, T, C, H, W) at test (V temporal views),
`label` int, `uncertainty` float (the clip's CLIP uncertainty in [0, 1]; NaN for real clips) and
`synthetic` bool (a generated clip).

A clip that fails to decode either raises (`on_error="raise"`, the default) or is skipped
(`on_error="skip"`): the next decodable clip of the list is served in its place, so an epoch keeps its
size; every failure is counted in a counter shared by all DataLoader workers (`VideoDataset.skipped()`),
logged once per file, and `VideoDataLoader` logs the epoch's total when the epoch's iteration ends.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.annotations import AnnotationError, read_video_list
from datamodules.manifest import read_manifest
from datamodules.transforms import VideoTransform
from datamodules.video import VideoDecodeError, read_clip

log = logging.getLogger(__name__)
OnError = Literal["raise", "skip"]


@dataclass(frozen=True)
class Clip:
    """One labelled clip on disk."""

    path: Path
    label: int
    uncertainty: float | None = None  # normalised CLIP uncertainty of a generated clip; None if unscored/real
    synthetic: bool = False  # a generated clip (the module trains it with `synthetic_loss`)


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
        clips.append(Clip(manifest.parent / row.video, row.class_id, row.uncertainty, synthetic=True))
    if not clips:
        raise AnnotationError(f"{manifest}: the manifest has no clips; render some with `python -m generation`")
    return clips


def filter_uncertain(clips: list[Clip], quantile: float, source: str | Path) -> tuple[list[Clip], float]:
    """UF: keep the generated clips whose uncertainty is at most its `quantile` over `clips`.

    Returns:
        (kept clips in their order, the uncertainty threshold).

    Raises:
        ValueError: `quantile` outside [0, 1], or a clip of `source` has no uncertainty (unscored manifest).
    """
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"uncertainty_filter_quantile must be in [0, 1], got {quantile}")
    unscored = sum(c.uncertainty is None for c in clips)
    if unscored:
        raise ValueError(
            f"{source}: {unscored} of {len(clips)} clips have no uncertainty score; "
            f"run `python -m generation score --manifest {source} --labels <labels.csv>` first"
        )
    threshold = float(np.quantile([c.uncertainty for c in clips], quantile))
    return [c for c in clips if c.uncertainty <= threshold], threshold


class VideoDataset(Dataset):
    """Decodes, samples and augments clips.

    Random temporal offsets and augmentation come from torch's RNG, which DataLoader workers seed per
    worker (base seed + worker id, the base drawn from the main process's seeded RNG; Lightning's
    `seed_everything(workers=True)` derives it from the seed): offsets differ across workers and epochs
    and are reproducible from the seed.

    Args:
        clips: the clips to serve.
        num_frames: frames sampled per clip (TSN: one per equal segment).
        transform: frame transform; its `train` flag also selects random (train) or centred (test) sampling.
        num_views: temporal views per clip at test time (ignored in training).
        on_error: what a clip that cannot be decoded does. `raise`: a VideoDecodeError naming the file and
            the cause. `skip`: the next clip of the list (index + 1, + 2, ..., wrapping) is served instead,
            so the epoch keeps its size; each failure is counted (`skipped()`, shared by all DataLoader
            workers) and logged once per file per process. Only when no clip decodes does it raise.
    """

    def __init__(
        self,
        clips: list[Clip],
        num_frames: int,
        transform: VideoTransform,
        num_views: int = 1,
        on_error: OnError = "raise",
    ):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.clips = clips
        self.num_frames = num_frames
        self.transform = transform
        self.num_views = 1 if transform.train else num_views
        self.on_error = on_error
        # Shared memory, so the counts of forked or spawned DataLoader workers reach the main process.
        self._skips = multiprocessing.Value("q", 0)
        self._warned: set[Path] = set()  # files already logged by this process

    def __len__(self) -> int:
        return len(self.clips)

    def skipped(self) -> int:
        """Clip reads that failed and were replaced since construction or `reset_skipped`, over all workers."""
        return int(self._skips.value)

    def reset_skipped(self) -> None:
        with self._skips.get_lock():
            self._skips.value = 0

    def _load(self, clip: Clip) -> dict:
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
            "synthetic": clip.synthetic,
        }

    def __getitem__(self, index: int) -> dict:
        for offset in range(len(self.clips)):
            clip = self.clips[(index + offset) % len(self.clips)]
            try:
                return self._load(clip)
            except VideoDecodeError as exc:
                if self.on_error == "raise":
                    raise VideoDecodeError(
                        f"{exc} (dataset item {index}; `--data.on_error skip` serves the next clip instead)"
                    ) from exc
                with self._skips.get_lock():
                    self._skips.value += 1
                if clip.path not in self._warned:
                    self._warned.add(clip.path)
                    log.warning("skipping undecodable clip (on_error='skip'): %s", exc)
        raise VideoDecodeError(f"none of the {len(self.clips)} clips of the dataset decodes (on_error='skip')")


class VideoDataLoader(DataLoader):
    """A DataLoader that, when an epoch's iteration ends, logs how many clip reads its VideoDataset skipped.

    The count of the last complete epoch is kept in `last_epoch_skipped`. An epoch cut short (e.g.
    `limit_train_batches`) logs nothing; `VideoDataset.skipped()` still has the running total.
    """

    last_epoch_skipped: int = 0

    def __iter__(self) -> Iterator:
        dataset = self.dataset
        before = dataset.skipped() if isinstance(dataset, VideoDataset) else 0
        yield from super().__iter__()
        if isinstance(dataset, VideoDataset):
            self.last_epoch_skipped = dataset.skipped() - before
            if self.last_epoch_skipped:
                log.warning(
                    "%d clip read(s) failed to decode this epoch and were replaced by the next clip of the list "
                    "(on_error='skip'); the epoch kept its %d samples. Run `python -m datamodules validate` "
                    "to list the broken files.",
                    self.last_epoch_skipped,
                    len(dataset),
                )
