"""Labelled video datasets: real clips from annotation lists and generated clips from a manifest.

Both become a list of `Clip` records served by one `VideoDataset`, so real and synthetic data go
through the same decoding, sampling and augmentation. A sample is a dict:
`video` float (T, C, H, W) in training or (V, T, C, H, W) at test (V temporal views),
`label` int, `uncertainty` float (the clip's CLIP uncertainty in [0, 1]; NaN for real clips) and
`synthetic` bool (a generated clip).

A clip that fails to decode either raises (`on_error="raise"`, the default) or is skipped
(`on_error="skip"`, meant for training sets): the next decodable clip of the list is served in its place,
so an epoch keeps its size, and the served sample carries the failures as a marker (`skipped`: how many
reads failed before it, `skipped_files`: which files, newline-joined). DataLoader workers are separate
processes, so nothing is counted there: `VideoDataLoader` pops the markers from every batch in the main
process and adds them to its `SkipTally`, which the `datamodules.skips.SkipLogger` callback sums over
ranks and logs at each epoch end. Evaluation lists never substitute (see `scan_clips` and the
datamodule's `test_on_error`).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.annotations import AnnotationError, read_video_list
from datamodules.clip_cache import ClipCache
from datamodules.manifest import read_manifest
from datamodules.transforms import VideoTransform
from datamodules.video import (
    _VERIFIED,
    VideoDecodeError,
    _file_key,
    decode_frames,
    read_clip,
    sample_indices,
    video_info,
)

log = logging.getLogger(__name__)
OnError = Literal["raise", "skip"]
# Where the clips of a list live under its root: `as_listed` (root / listed path, the split lists' own
# layout) or `by_name` (found by file name anywhere under root, e.g. the official `<Class>/<clip>.avi`
# folders while the lists name bare `<clip>.avi`).
VideoLayout = Literal["as_listed", "by_name"]


def resolve_paths(root: Path, listed: list[str], layout: VideoLayout = "as_listed") -> list[Path]:
    """The file of each listed path under `root`: `root / path`, or with `by_name` the file of that name
    anywhere under `root` (when `root / path` does not exist). A name that is not found stays
    `root / path` (callers report it missing); a name found twice raises ValueError naming both."""
    direct = [root / p for p in listed]
    if layout == "as_listed" or all(p.exists() for p in direct):
        return direct
    if layout != "by_name":
        raise ValueError(f"video layout must be 'as_listed' or 'by_name', got {layout!r}")
    index: dict[str, list[Path]] = {}
    for path in root.rglob("*"):
        index.setdefault(path.name, []).append(path)
    out = []
    for rel, path in zip(listed, direct):
        found = index.get(Path(rel).name, []) if not path.exists() else [path]
        if len(found) > 1:
            raise ValueError(
                f"{Path(rel).name!r} is found {len(found)} times under {root} ({found[0]}, {found[1]}); "
                "by_name needs unique file names: point the root at one copy"
            )
        out.append(found[0] if found else path)
    return out


def layout_hint(root: Path, missing: list[str]) -> str | None:
    """Why listed clips are missing under `root`, and what to do: they sit deeper (class sub-folders: the
    option that finds them), or the root holds only sub-folders; None when nothing explains it."""
    wanted = {Path(m).name for m in missing}
    files = [p for p in root.rglob("*") if p.is_file()]
    found = [p for p in files if p.name in wanted and p.parent != root]
    option = (
        "use `--root-layout by-name` (validate) / `--data.video_layout by_name` (training) to find each "
        "clip by its file name under the root"
    )
    if found:
        return (
            f"{len({p.name for p in found})} of the {len(wanted)} missing clips sit in sub-folders of the root "
            f"(e.g. {found[0].relative_to(root)}): the clips are in class sub-folders but the list names them "
            f"without; {option}"
        )
    subfolders = [p for p in root.iterdir() if p.is_dir()]
    if subfolders and not any(p.parent == root for p in files):
        return (
            f"the root holds {len(subfolders)} sub-folders (e.g. {subfolders[0].name}/) and no files, but the "
            f"list names clips without a folder: if these are class sub-folders, {option}; otherwise point the "
            "root at the folder the listed paths are relative to"
        )
    return None


@dataclass(frozen=True)
class Clip:
    """One labelled clip on disk."""

    path: Path
    label: int
    uncertainty: float | None = None  # normalised CLIP uncertainty of a generated clip; None if unscored/real
    synthetic: bool = False  # a generated clip (the module trains it with `synthetic_loss`)


def clips_from_list(
    list_file: str | Path, video_root: str | Path, class_names: list[str], layout: VideoLayout = "as_listed"
) -> list[Clip]:
    """Clips of an annotation list, checking that the files exist under `video_root` (see `resolve_paths`).

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
    paths = resolve_paths(video_root, [e.path for e in entries], layout)
    clips = [Clip(path=path, label=e.label) for e, path in zip(entries, paths)]
    missing = [(e, c.path) for e, c in zip(entries, clips) if not c.path.exists()]
    if missing:
        examples = ", ".join(f"line {e.line}: {p}" for e, p in missing[:3])
        hint = layout_hint(video_root, [e.path for e, _ in missing]) if layout == "as_listed" else None
        raise FileNotFoundError(
            f"{len(missing)} of {len(clips)} clips listed in {list_file} are missing under {video_root} "
            f"({examples}). " + (f"{hint}." if hint else "Check `--data.video_root`.")
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


@dataclass
class SkipTally:
    """Failed clip reads of one split, counted in the main process from the batches' markers.

    `total` counts every failed read (a file failing twice counts twice); `files` maps each failing file
    to its failures; `per_epoch` holds the epoch totals summed over ranks (appended by `SkipLogger`).
    """

    total: int = 0
    files: Counter = field(default_factory=Counter)
    per_epoch: list[int] = field(default_factory=list)
    epoch_start: int = 0  # `total` when the current epoch started

    def add(self, count: int, files: list[str]) -> None:
        self.total += count
        self.files.update(f for f in files if f)

    def report(self) -> dict:
        return {
            "skipped_reads": sum(self.per_epoch) if self.per_epoch else self.total,
            "per_epoch": list(self.per_epoch),
            "files": sorted(self.files),
        }


class VideoDataset(Dataset):
    """Decodes, samples and augments clips.

    Random temporal offsets and augmentation come from torch's RNG, which DataLoader workers seed per
    worker (base seed + worker id, the base drawn from the main process's seeded RNG; Lightning's
    `seed_everything(workers=True)` derives it from the seed): offsets differ across workers and epochs
    and are reproducible from the seed.

    A process checks each file once (`read_clip`'s verify: decoded to its end, frame count against the
    container's claim) and remembers it while the file is unchanged; the persistent DataLoader workers then
    decode only up to a clip's last sampled frame in later epochs. Frames are decoded at their own size unless
    their short side is over 1.5x the transform's, so the transform does the one resize.

    Args:
        clips: the clips to serve.
        num_frames: frames sampled per clip (TSN: one per equal segment).
        transform: frame transform; its `train` flag also selects random (train) or centred (test) sampling.
        num_views: temporal views per clip at test time (ignored in training).
        on_error: what a clip that cannot be decoded does. `raise`: a VideoDecodeError naming the file and
            the cause. `skip`: the next clip of the list (index + 1, + 2, ..., wrapping) is served instead,
            so the epoch keeps its size; the sample carries the failures (`skipped`, `skipped_files`) for
            the main process to count, and each failure is logged once per file per process. Only when no
            clip decodes does it raise.
        cache: keep decoded clips in memory (`datamodules.clip_cache`): each clip is decoded once per
            process while the budget lasts; samples are the same as without it. None decodes every read.
    """

    def __init__(
        self,
        clips: list[Clip],
        num_frames: int,
        transform: VideoTransform,
        num_views: int = 1,
        on_error: OnError = "raise",
        cache: ClipCache | None = None,
    ):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.clips = clips
        self.num_frames = num_frames
        self.transform = transform
        self.num_views = 1 if transform.train else num_views
        self.on_error = on_error
        self.cache = cache
        self._warned: set[Path] = set()  # files already logged by this process

    def __len__(self) -> int:
        return len(self.clips)

    def _load(self, clip: Clip) -> dict:
        # Random offsets come from torch's RNG, which Lightning seeds per worker and epoch.
        rng = np.random.default_rng(int(torch.randint(2**62, ()))) if self.transform.train else None
        frames = self._cached(clip.path, rng) if self.cache is not None else None
        if frames is None:
            frames = read_clip(
                clip.path,
                self.num_frames,
                train=self.transform.train,
                rng=rng,
                num_views=self.num_views,
                short_side=self.transform.short_side,
                exact_size=False,  # the transform does the one resize; decoding only shrinks big frames
            )  # (V, T, H, W, 3) uint8
        views = torch.stack([self.transform(torch.from_numpy(v)) for v in frames])  # (V, T, C, H, W)
        return {
            "video": views[0] if self.transform.train else views,
            "label": clip.label,
            "uncertainty": math.nan if clip.uncertainty is None else clip.uncertainty,
            "synthetic": clip.synthetic,
        }

    def _cached(self, path: Path, rng: np.random.Generator | None) -> np.ndarray | None:
        """`read_clip`'s (V, T, H, W, 3) frames served from the cache (decoding and keeping the clip when it
        is not there yet and the budget allows); None when the cache is full and does not hold the clip.
        Training keeps every frame of the clip and samples `rng`'s offsets from them, as `read_clip` does."""
        train = self.transform.train
        file = _file_key(path)
        if file is None:
            return None  # unreadable: `read_clip` raises with the reason
        key = (file, self.transform.short_side, self.num_frames, 0 if train else self.num_views)
        frames = self.cache.get(key)
        if frames is None:
            if self.cache.full:
                return None
            if train:  # every frame, as `read_clip` would decode its sampled ones (verified once per process)
                count = _VERIFIED.get(_file_key(path)) or video_info(path).num_frames
                frames = decode_frames(path, range(count), short_side=self.transform.short_side, exact_size=False)
            else:
                frames = read_clip(
                    path,
                    self.num_frames,
                    train=False,
                    num_views=self.num_views,
                    short_side=self.transform.short_side,
                    exact_size=False,
                )  # (V, T, H, W, 3)
            self.cache.put(key, frames)
        if not train:
            return frames.copy()
        index = sample_indices(len(frames), self.num_frames, train=True, rng=rng)
        return frames[index][None]  # (1, T, H, W, 3), a copy

    def __getitem__(self, index: int) -> dict:
        failed: list[str] = []
        for offset in range(len(self.clips)):
            clip = self.clips[(index + offset) % len(self.clips)]
            try:
                sample = self._load(clip)
            except VideoDecodeError as exc:
                if self.on_error == "raise":
                    raise VideoDecodeError(
                        f"{exc} (dataset item {index}; `--data.on_error skip` serves the next clip instead "
                        "in training, counted and reported)"
                    ) from exc
                failed.append(str(clip.path))
                if clip.path not in self._warned:
                    self._warned.add(clip.path)
                    log.warning("skipping undecodable clip (on_error='skip'): %s", exc)
                continue
            if self.on_error == "skip":  # the marker the main process counts (VideoDataLoader)
                sample["skipped"] = len(failed)
                sample["skipped_files"] = "\n".join(failed)
            return sample
        raise VideoDecodeError(f"none of the {len(self.clips)} clips of the dataset decodes (on_error='skip')")


def scan_clips(dataset: VideoDataset, num_workers: int = 0) -> list[tuple[Clip, str]]:
    """Read every clip of `dataset` as it will be read (same frames, same checks) and return the ones that
    fail, with the cause; used before evaluation, which never substitutes a clip. Runs in `num_workers`
    DataLoader processes; frames are decoded at a 16 px short side (decoding dominates the cost). In this
    process (`num_workers` 0) with a clip cache, each clip is read at full size into the cache instead, so
    the evaluation that follows decodes nothing again (until the cache is full: then at 16 px)."""
    probe = _ScanDataset(dataset)
    if num_workers == 0 and dataset.cache is not None and not dataset.cache.full:
        return [(dataset.clips[i], cause) for i, cause in map(probe.read_cached, range(len(probe))) if cause]
    loader = DataLoader(probe, batch_size=None, num_workers=num_workers)
    return [(dataset.clips[i], cause) for i, cause in loader if cause]


class _ScanDataset(Dataset):
    def __init__(self, dataset: VideoDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[int, str]:
        d = self.dataset
        try:
            read_clip(d.clips[index].path, d.num_frames, train=False, num_views=d.num_views, short_side=16)
        except VideoDecodeError as exc:
            return index, _cause(exc)
        return index, ""

    def read_cached(self, index: int) -> tuple[int, str]:
        """The clip read as evaluation reads it, kept in the dataset's cache; the 16 px probe once it is full."""
        if self.dataset.cache.full:
            return self[index]
        try:
            if self.dataset._cached(self.dataset.clips[index].path, None) is None:
                return self[index]
        except VideoDecodeError as exc:
            return index, _cause(exc)
        return index, ""


def _cause(exc: VideoDecodeError) -> str:
    """A decode error's cause, without the file name and the generic advice."""
    cause = str(exc).split(". Check that it exists")[0]
    return cause.split("': ", 1)[-1] if cause.startswith("cannot read video '") else cause


class VideoDataLoader(DataLoader):
    """A DataLoader that counts, in the main process, the failed reads its batches carry as markers.

    Each batch's `skipped` / `skipped_files` entries are removed from the batch (models never see them)
    and added to `tally` (a `SkipTally`, shared with the datamodule). When an epoch's iteration ends it
    logs that epoch's local count; `datamodules.skips.SkipLogger` also sums it over ranks and logs it to
    the Lightning logger (an epoch cut short, e.g. `limit_train_batches`, is still counted there).
    """

    def __init__(self, *args, tally: SkipTally | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.tally = tally if tally is not None else SkipTally()

    def __iter__(self) -> Iterator:
        before = self.tally.total
        for batch in super().__iter__():
            if isinstance(batch, dict) and "skipped" in batch:
                count = int(torch.as_tensor(batch.pop("skipped")).sum())
                files = [f for text in batch.pop("skipped_files") for f in text.split("\n") if f]
                self.tally.add(count, files)
            yield batch
        skipped = self.tally.total - before
        if skipped:
            log.warning(
                "%d clip read(s) failed to decode this epoch and were replaced by the next clip of the list "
                "(on_error='skip'); the epoch kept its %d samples. Run `python -m datamodules validate` "
                "to list the broken files.",
                skipped,
                len(self.dataset),
            )
