"""`AnomalyVideoDataModule`: UCF-Crime videos as bags of instances, UMIL's sampling, and the test protocols.

Training: every video of the real list (UMIL: `UCF_train.txt`; `Anomaly_Train.txt` also reads) or every
clip of the synthetic manifest is a bag of K instances of T frames taken every `frame_interval` frames,
placed as mmaction's `SampleFrames(clip_len=T, frame_interval, num_clips=K)` places them in training
(UMIL `configs/ucf/32_5.yaml`: K = 16, T = 5, interval 6); the label is video-level (abnormal unless
the class is Normal; a synthetic class is normal when its name is in `normal_classes`, default: names
containing "normal"). Frames are resized (short side `round(size * 256 / 224)`), centre-cropped and
normalised with ImageNet statistics, as UMIL's training pipeline (its first view) and X-CLIP's weights
expect. Batches are drawn at random, as UMIL's DistributedSampler(shuffle=True) + drop_last draws them (no
abnormal/normal pairing): an `EpochSampler` shuffle per (seed, epoch), resumable mid-epoch after a kill.

Test: as UMIL's `RawFramesTestDataset`, every video of `test_list` is cut into segments of T x interval
frames (the last may be shorter; one of fewer than T frames is dropped) and every segment is one item: T
frames every `interval` from its start, wrapping inside the segment. The module scores the items; the
scores of each video, in order, are scored against `test_annotations()` (every protocol of `protocols`,
read by `datamodules.anomaly_eval`) by the module's metric (`lightning_modules.anomaly_metrics`):
`test/<protocol>/auc` and `test/<protocol>/auc_a`, and the default protocol's as `test/auc`, `test/auc_a`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.annotations import AnnotationError, read_list
from datamodules.anomaly import Source, UCFCrimeLists
from datamodules.anomaly_eval import PROTOCOLS, EvalVideo, read_annotation, video_name
from datamodules.manifest import read_manifest
from datamodules.resume import EpochSampler, ResumableLoader, sampler_kwargs
from datamodules.transforms import VideoTransform
from datamodules.video import decode_frames, video_info

log = logging.getLogger(__name__)

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # UMIL img_norm_cfg / 255


def instance_indices(
    num_frames: int, num_instances: int, frames_per_instance: int, frame_interval: int, rng: np.random.Generator | None
) -> np.ndarray:
    """Frame indices (K, T) of a bag, as mmaction's SampleFrames: training offsets with `rng`, test without.

    Training: K offsets, one at random inside each of K strides of (n - T * interval + 1) // K frames; a
    video too short for that but longer than K and T * interval draws K sorted offsets from
    [0, n - T * interval]; shorter ones spread them evenly (stride 0) or start all at 0. Test: offsets at the strides'
    centres. Each instance takes T frames every `frame_interval` from its offset; indices past the end
    wrap around (mmaction's `out_of_bound_opt='loop'`).
    """
    if num_frames < 1:
        raise ValueError(f"a video needs frames, got num_frames={num_frames}")
    span = frames_per_instance * frame_interval
    k = np.arange(num_instances)
    if rng is not None:
        stride = (num_frames - span + 1) // num_instances
        if stride > 0:
            offsets = k * stride + rng.integers(stride, size=num_instances)
        elif num_frames > max(num_instances, span):
            offsets = np.sort(rng.integers(num_frames - span + 1, size=num_instances))
        elif stride == 0:
            offsets = np.around(k * (num_frames - span + 1.0) / num_instances)
        else:
            offsets = np.zeros(num_instances)
    else:
        stride = (num_frames - span + 1) / num_instances
        offsets = (k * stride + stride / 2).astype(np.int64) if num_frames > span - 1 else np.zeros(num_instances)
    indices = offsets.astype(np.int64)[:, None] + np.arange(frames_per_instance)[None] * frame_interval  # (K, T)
    return indices % num_frames


def segment_indices(num_frames: int, frames_per_instance: int, frame_interval: int) -> list[np.ndarray]:
    """UMIL's test items of one video: per segment of T x interval frames, its (T,) frame indices."""
    span = frames_per_instance * frame_interval
    items = []
    for i in range(math.ceil(num_frames / span)):
        start, end = span * i, min(span * (i + 1), num_frames)
        if end - start < frames_per_instance:
            continue  # UMIL: `if end - start < 5: continue`
        items.append(start + instance_indices(end - start, 1, frames_per_instance, frame_interval, None)[0])
    return items


class BagDataset(Dataset):
    """Training bags: (path, num_frames or None, abnormal) -> {"video": (K, T, C, H, W), "abnormal": bool}."""

    def __init__(
        self, videos: list[tuple[Path, int | None, bool]], transform: VideoTransform, layout: tuple[int, int, int]
    ):
        self.videos, self.transform, self.layout = videos, transform, layout

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict:
        path, num_frames, abnormal = self.videos[index]
        num_frames = num_frames or video_info(path).num_frames
        rng = np.random.default_rng(int(torch.randint(2**62, ())))  # seeded by Lightning per worker and epoch
        idx = instance_indices(num_frames, *self.layout, rng)  # (K, T)
        frames = decode_frames(
            path, idx.reshape(-1), short_side=self.transform.short_side, exact_size=False
        )  # (K*T, H, W, 3); the transform does the one resize
        clip = self.transform(torch.from_numpy(frames))  # (K*T, C, S, S): one crop for the whole bag
        return {"video": clip.view(*idx.shape, *clip.shape[1:]), "abnormal": abnormal}


class SegmentDataset(Dataset):
    """Test items: one segment of one video -> {"video": (T, C, H, W), "name": file name, "instance": i}."""

    def __init__(self, items: list[tuple[Path, str, int, np.ndarray]], transform: VideoTransform):
        self.items, self.transform = items, transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        path, name, instance, idx = self.items[index]
        frames = decode_frames(path, idx, short_side=self.transform.short_side, exact_size=False)  # (T, H, W, 3)
        return {"video": self.transform(torch.from_numpy(frames)), "name": name, "instance": instance}


class AnomalyVideoDataModule(UCFCrimeLists, L.LightningDataModule):
    """UCF-Crime (real) and generated anomaly/normal clips (synthetic) as bags of instances.

    Args:
        video_root: folder the list paths are relative to (videos, or UMIL's folders of frames).
        split_dir: folder holding the UCF-Crime lists; list names below are relative to it.
        train_list: real training list with video-level labels (UMIL: `UCF_train.txt`, which gives frame
            counts; `Anomaly_Train.txt` also reads, counting frames from the files).
        test_list: the videos to score (UMIL: `UCF_test.txt`); the task runner sets it per test.
        protocols: evaluation protocol -> annotation file it labels frames from (`umil`: UCF_test.txt,
            `sultani`: Temporal_Anomaly_Annotation.txt); all are evaluated on the same scores.
        default_protocol: the protocol reported as `test/auc` / `test/auc_a` (`umil`: the paper's).
        synthetic_manifest: manifest.jsonl of generated anomaly-class and normal clips (paths relative to it).
        normal_classes: synthetic class names that count as normal; None: names containing "normal" (any case).
        train_source: what trains the model: `real` (train_list) or `synthetic` (the manifest).
        num_instances: instances K per training bag (UMIL: 16).
        frames_per_instance: frames T per instance (UMIL: 5; the net's num_frames).
        frame_interval: frames between an instance's frames (UMIL: 6; test segments are T x interval long).
        image_size: side of the square crop (UMIL: 224).
        batch_size: bags per training batch (UMIL: 2 per GPU, with 8 accumulation steps).
        test_batch_size: test segments per batch.
        num_workers: DataLoader worker processes.
    """

    val_list = None  # no validation split in this protocol

    def __init__(
        self,
        video_root: str,
        split_dir: str | None = None,
        train_list: str | None = "UCF_train.txt",
        test_list: str | None = "UCF_test.txt",
        protocols: dict[str, str] | None = None,
        default_protocol: str = "umil",
        synthetic_manifest: str | None = None,
        normal_classes: list[str] | None = None,
        train_source: Source = "real",
        num_instances: int = 16,
        frames_per_instance: int = 5,
        frame_interval: int = 6,
        image_size: int = 224,
        batch_size: int = 2,
        test_batch_size: int = 16,
        num_workers: int = 4,
    ):
        super().__init__()
        protocols = dict(protocols or {"umil": "UCF_test.txt", "sultani": "Temporal_Anomaly_Annotation.txt"})
        unknown = sorted(set(protocols) - set(PROTOCOLS))
        if unknown or default_protocol not in protocols:
            raise ValueError(
                f"`--data.protocols` keys must be among {', '.join(PROTOCOLS)} (got {sorted(protocols)}) and "
                f"`--data.default_protocol` ({default_protocol!r}) one of them"
            )
        if min(num_instances, frames_per_instance, frame_interval, batch_size, test_batch_size) < 1:
            raise ValueError("num_instances, frames_per_instance, frame_interval and the batch sizes must be >= 1")
        self.video_root, self.split_dir = video_root, split_dir
        self.train_list, self.test_list = train_list, test_list
        self.protocols, self.default_protocol = protocols, default_protocol
        self.synthetic_manifest, self.normal_classes = synthetic_manifest, normal_classes
        self.train_source = train_source
        self.layout = (num_instances, frames_per_instance, frame_interval)
        self.transform = VideoTransform(train=False, size=image_size, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        self.batch_size, self.test_batch_size, self.num_workers = batch_size, test_batch_size, num_workers
        self.datasets: dict[str, Dataset] = {}
        self.frame_counts: dict[str, int] = {}  # test video file name -> frames (the sultani protocol needs them)

    @property
    def label_file(self) -> str:
        """The default protocol's annotation (recorded in results.json)."""
        return str(self._list_path(self.protocols[self.default_protocol], "protocols"))

    # -------------------------------------------------------------------------------------- reading

    def _real(self, name: str | None, option: str) -> list[tuple[Path, int | None, bool]]:
        path = self._list_path(name, option)
        fmt, records = read_list(path)
        if not fmt.startswith("crime-"):
            raise AnnotationError(f"{path}: a {fmt!r} list is not a UCF-Crime list; `--data.{option}` needs one")
        videos = [(Path(self.video_root) / r.path, r.num_frames, r.anomalous) for r in records]
        self._require(videos, str(path))
        return videos

    def _synthetic(self) -> list[tuple[Path, int | None, bool]]:
        if self.synthetic_manifest is None:
            raise ValueError("`--data.synthetic_manifest` is not set; synthetic pre-training needs a manifest.jsonl")
        manifest = Path(self.synthetic_manifest)
        normal = (
            (lambda c: c in self.normal_classes)
            if self.normal_classes is not None
            else (lambda c: "normal" in c.lower())
        )
        videos = [(manifest.parent / r.video, r.num_frames, not normal(r.class_name)) for r in read_manifest(manifest)]
        self._require(videos, str(manifest))
        return videos

    def _require(self, videos: list[tuple[Path, int | None, bool]], source: str) -> None:
        missing = [p for p, _, _ in videos if not p.exists()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} of {len(videos)} videos of {source} are missing (e.g. {', '.join(map(str, missing[:3]))}); "
                "check `--data.video_root` (list paths are relative to it) or the manifest's folder"
            )

    def _train_bags(self) -> BagDataset:
        if self.train_source == "real":
            videos, source = self._real(self.train_list, "train_list"), self.train_list
        else:
            videos, source = self._synthetic(), self.synthetic_manifest
        abnormal = sum(a for _, _, a in videos)
        if abnormal in (0, len(videos)):
            raise ValueError(
                f"{source}: {abnormal} abnormal and {len(videos) - abnormal} normal videos; MIL training needs "
                "both (synthetic: check `--data.normal_classes` against the manifest's class names)"
            )
        return BagDataset(videos, self.transform, self.layout)

    def _test_items(self) -> SegmentDataset:
        items, self.frame_counts = [], {}
        for path, num_frames, _ in self._real(self.test_list, "test_list"):
            num_frames = num_frames or video_info(path).num_frames
            name = video_name(str(path))
            self.frame_counts[name] = num_frames
            segments = segment_indices(num_frames, *self.layout[1:])
            items += [(path, name, i, idx) for i, idx in enumerate(segments)]
        return SegmentDataset(items, self.transform)

    def test_annotations(self) -> tuple[dict[str, list[EvalVideo]], str]:
        """(protocol -> the test videos with their frame labels, the default protocol): what the module's AUC
        metric (`lightning_modules.anomaly_metrics`) scores against."""
        videos = {
            p: read_annotation(p, self._list_path(a, "protocols"), self.frame_counts) for p, a in self.protocols.items()
        }
        return videos, self.default_protocol

    # -------------------------------------------------------------------------------------- Lightning

    def check(self, lists: list[str], synthetic: bool) -> dict[str, list[Path]]:
        """Validate before any model is built: every list parses and its videos exist; so do the protocol
        annotations and (if `synthetic`) the manifest's clips. Raises naming the file and the fix. Returns
        the videos of each list (and, under the manifest's path, the synthetic ones) for a decode check."""
        videos = {}
        for name in lists:
            videos[name] = [v for v, _, _ in self._real(name, "test_list" if name == self.test_list else "train_list")]
        for protocol, annotation in self.protocols.items():
            path = self._list_path(annotation, "protocols")
            if not path.is_file():
                raise FileNotFoundError(f"`--data.protocols.{protocol}`: {path} not found")
        if synthetic:
            videos[str(self.synthetic_manifest)] = [v for v, _, _ in self._synthetic()]
        return videos

    def setup(self, stage: str) -> None:
        if stage == "fit" and "train" not in self.datasets:
            self.datasets["train"] = self._train_bags()
        if stage == "test":
            self.datasets["test"] = self._test_items()

    def train_dataloader(self) -> DataLoader:
        """Resumable mid-epoch (`datamodules.resume`): a killed run resumes on the same bags and draws."""
        dataset = self.datasets["train"]
        sampler = EpochSampler(len(dataset), self.batch_size, **sampler_kwargs(self))
        return ResumableLoader(
            dataset,
            sampler,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["test"], batch_size=self.test_batch_size, num_workers=self.num_workers)
