"""`AnomalyDataModule`: bags of cached segment features for weakly-supervised anomaly detection (UCF-Crime).

Each video is a bag of (S, D) segment features cached by `python -m datamodules features` as
`<feature dir>/<video stem>.pt`. Training bags carry a video-level label only: a real video (UCF-Crime
`Anomaly_Train.txt`) is abnormal unless its class is Normal; a synthetic clip (generated manifest) is
normal when its class name is in `normal_classes` (default: names containing "normal", any case) and
abnormal otherwise. The task runner switches the training source per phase (`set_phase`): synthetic
clips for pre-training, the real list for training. Training batches pair `batch_size` abnormal with
`batch_size` normal bags, reshuffled every epoch (the shorter side is cycled) from the run's seed, and
resume exactly mid-epoch after a kill (`BagPairSampler` + `datamodules.resume.ResumableLoader`). The test list is a
UCF-Crime annotation with temporal intervals (the temporal annotation file named in the config); its
test items carry the per-frame labels (1-indexed inclusive intervals, `CrimeVideo.frame_labels`) and the
segment frame bounds that spread segment scores to frames, and the video's file name: the module hands
the per-video segment scores to its metric (`lightning_modules.anomaly_metrics`), against `test_annotations()`
(the `protocols`; default: `sultani` on the test list; read by `datamodules.anomaly_eval`). Missing features are reported, with the
command that extracts them, before anything trains. The head trains in minutes on one device (extraction is
what to spread over GPUs).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from datamodules.annotations import AnnotationError, CrimeVideo, read_list
from datamodules.anomaly_eval import PROTOCOLS, EvalVideo, read_annotation, video_name
from datamodules.features import feature_path, load_features, segment_bounds
from datamodules.manifest import read_manifest
from datamodules.resume import ResumableLoader, sampler_kwargs

log = logging.getLogger(__name__)

Source = Literal["real", "synthetic"]
TEST_LAYOUTS = ("temporal", "counts_test", "ucf_test")  # UCF-Crime list layouts that carry intervals


class BagDataset(Dataset):
    """Training bags: `features` (N, S, D) and `abnormal` (N,) bool; an item is one bag."""

    def __init__(self, features: torch.Tensor, abnormal: torch.Tensor):
        self.features, self.abnormal = features, abnormal

    def __len__(self) -> int:
        return len(self.abnormal)

    def __getitem__(self, index: int) -> dict:
        return {"features": self.features[index], "abnormal": self.abnormal[index]}


class BagPairSampler(DistributedSampler):
    """Batches of `pairs` abnormal then `pairs` normal bag indices, freshly shuffled each epoch, served as
    one index stream that the DataLoader cuts into batches of 2 x `pairs` (`batch_size`).

    An epoch has ceil(max(n_abnormal, n_normal) / pairs) batches; the shorter side is cycled (each cycle
    in a new random order), so every bag of the longer side is seen once per epoch. An epoch's batches are
    a function of (seed, epoch) only, and the sampler can skip the batches a killed run had trained on: it
    is resumable as `datamodules.resume.EpochSampler` (`ResumableLoader` saves and restores its place).
    Under DDP, rank r takes every R-th batch of the epoch (the list cycled to a multiple of R).

    Args:
        abnormal: (N,) bool, the bags' video labels.
        pairs: abnormal/normal bag pairs per batch.
        num_replicas: number of ranks (DDP world size).
        rank: this rank.
        seed: seeds every epoch's order; must be the same on every rank.
    """

    def __init__(self, abnormal: torch.Tensor, pairs: int, num_replicas: int = 1, rank: int = 0, seed: int = 0):
        super().__init__(range(len(abnormal)), num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.abnormal_idx = torch.nonzero(abnormal).flatten()
        self.normal_idx = torch.nonzero(~abnormal).flatten()
        if len(self.abnormal_idx) == 0 or len(self.normal_idx) == 0:
            raise ValueError(
                f"training needs abnormal and normal bags; got {len(self.abnormal_idx)} abnormal and "
                f"{len(self.normal_idx)} normal"
            )
        self.pairs, self.batch_size = pairs, 2 * pairs  # the DataLoader's batch: pairs abnormal + pairs normal
        longest = max(len(self.abnormal_idx), len(self.normal_idx))
        self.num_batches = -(-longest // pairs)  # over all ranks
        self.num_samples = -(-self.num_batches // num_replicas) * self.batch_size  # this rank's indices an epoch
        self.total_size = self.num_samples * num_replicas
        self.skip_batches = 0  # batches of the next iteration's epoch already served (set on resume)

    def _cycled(self, idx: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        rounds = -(-n // len(idx))
        return torch.cat([idx[torch.randperm(len(idx), generator=generator)] for _ in range(rounds)])[:n]

    def batches(self) -> list[list[int]]:
        """This rank's batches of the current epoch (`set_epoch`): `pairs` abnormal then `pairs` normal indices."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        n = self.num_batches * self.pairs
        abnormal, normal = self._cycled(self.abnormal_idx, n, generator), self._cycled(self.normal_idx, n, generator)
        epoch = [
            abnormal[b * self.pairs : (b + 1) * self.pairs].tolist()
            + normal[b * self.pairs : (b + 1) * self.pairs].tolist()
            for b in range(self.num_batches)
        ]
        epoch = [epoch[b % len(epoch)] for b in range(self.total_size // self.batch_size)]  # as many on every rank
        return epoch[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        skip, self.skip_batches = self.skip_batches, 0
        for batch in self.batches()[skip:]:
            yield from batch

    def layout(self) -> dict:
        """What decides the epochs' indices: a resumed run skips served batches only when this is unchanged."""
        return {
            "abnormal": len(self.abnormal_idx),
            "normal": len(self.normal_idx),
            "pairs": self.pairs,
            "num_replicas": self.num_replicas,
            "seed": self.seed,
        }


class TestBagDataset(Dataset):
    """Test videos: a bag, its segment frame bounds (S + 1,), per-frame labels (N,), and abnormality."""

    def __init__(self, items: list[dict]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


def collate_test(items: list[dict]) -> dict:
    """Stack bags and bounds; concatenate the variable-length frame labels (sum of N,)."""
    return {
        "features": torch.stack([i["features"] for i in items]),  # (B, S, D)
        "bounds": torch.stack([i["bounds"] for i in items]),  # (B, S + 1)
        "frame_labels": torch.cat([i["frame_labels"] for i in items]),  # (sum N,)
        "num_frames": torch.tensor([i["num_frames"] for i in items]),  # (B,)
        "abnormal": torch.tensor([i["abnormal"] for i in items]),  # (B,)
        "name": [i["name"] for i in items],  # video file names (the SCORES.json keys)
    }


class UCFCrimeLists:
    """Phase switching and list paths, shared by the UCF-Crime datamodules (frozen features and videos)."""

    split_dir: str | None
    train_list: str | None
    datasets: dict

    def set_phase(self, train_source: Source, train_list: str | None = None) -> None:
        """Select the training bags of the next `fit` (called by the task runner between phases)."""
        self.train_source = train_source
        if train_list is not None:
            self.train_list = train_list
        self.datasets.pop("train", None)

    def _list_path(self, name: str | None, option: str) -> Path:
        if name is None:
            raise ValueError(f"`--data.{option}` is not set; name the UCF-Crime list to use")
        if self.split_dir is None:
            raise ValueError(f"`--data.split_dir` is not set; it must hold the list {name!r} ({option})")
        return Path(self.split_dir) / name


class AnomalyDataModule(UCFCrimeLists, L.LightningDataModule):
    """Cached feature bags of UCF-Crime (real) and generated anomaly/normal clips (synthetic).

    Args:
        feature_dir: folder of the real videos' cached features (`python -m datamodules features --out`).
        split_dir: folder holding the UCF-Crime lists; list names below are relative to it.
        train_list: real training list with video-level labels (`Anomaly_Train.txt`; any UCF-Crime layout).
        test_list: annotation with temporal intervals the frame-level AUC is computed against
            (`Temporal_Anomaly_Annotation.txt`; `Test_Annotation_with_frame_counts.txt` and `UCF_test.txt`
            also read; the latter's intervals differ on 14 videos).
        synthetic_manifest: manifest.jsonl of generated anomaly and normal-activity clips.
        synthetic_feature_dir: cached features of the synthetic clips; default `feature_dir`.
        normal_classes: synthetic class names that count as normal; None: names containing "normal" (any case).
        protocols: evaluation protocol -> annotation file (relative to split_dir), all evaluated on the same
            scores (e.g. `{sultani: Temporal_Anomaly_Annotation.txt, umil: UCF_test.txt}`); None: `sultani`
            on the test list.
        default_protocol: the protocol reported as `test/auc` / `test/auc_a`.
        train_source: what trains the model: `real` (train_list) or `synthetic` (the manifest).
        batch_size: abnormal/normal bag pairs per batch (30 in Sultani et al.: 30 + 30 bags).
        test_batch_size: test videos per batch.
        num_workers: DataLoader worker processes (the bags are in memory; 0 is usually fastest).
    """

    val_list = None  # no validation split in this protocol

    def __init__(
        self,
        feature_dir: str,
        split_dir: str | None = None,
        train_list: str | None = "Anomaly_Train.txt",
        test_list: str | None = "Temporal_Anomaly_Annotation.txt",
        synthetic_manifest: str | None = None,
        synthetic_feature_dir: str | None = None,
        normal_classes: list[str] | None = None,
        protocols: dict[str, str] | None = None,
        default_protocol: str = "sultani",
        train_source: Source = "real",
        batch_size: int = 30,
        test_batch_size: int = 16,
        num_workers: int = 0,
    ):
        super().__init__()
        if batch_size < 1 or test_batch_size < 1:
            raise ValueError(
                f"`--data.batch_size` and `--data.test_batch_size` must be >= 1, got {batch_size}, {test_batch_size}"
            )
        self.feature_dir = feature_dir
        self.split_dir = split_dir
        self.train_list = train_list
        self.test_list = test_list
        self.synthetic_manifest = synthetic_manifest
        self.synthetic_feature_dir = synthetic_feature_dir or feature_dir
        self.normal_classes = normal_classes
        if protocols is not None and (set(protocols) - set(PROTOCOLS) or default_protocol not in protocols):
            raise ValueError(
                f"`--data.protocols` keys must be among {', '.join(PROTOCOLS)} (got {sorted(protocols)}) and "
                f"`--data.default_protocol` ({default_protocol!r}) one of them"
            )
        self.protocols, self.default_protocol = protocols, default_protocol
        self.frame_counts: dict[str, int] = {}  # test video file name -> decoded frames
        self.train_source = train_source
        self.batch_size = batch_size
        self.test_batch_size = test_batch_size
        self.num_workers = num_workers
        self.datasets: dict[str, Dataset] = {}
        self.feature_dim: int | None = None  # D of the bags, known once a split is loaded

    @property
    def label_file(self) -> str:
        """The annotation file whose intervals label the test frames (recorded in results.json)."""
        return str(self._list_path(self.test_list, "test_list")) if self.test_list else "none"

    # -------------------------------------------------------------------------------------- reading

    def _read_real(self, name: str | None, option: str) -> list[CrimeVideo]:
        path = self._list_path(name, option)
        fmt, records = read_list(path)
        if not fmt.startswith("crime-"):
            raise AnnotationError(f"{path}: a {fmt!r} list is not a UCF-Crime list; `--data.{option}` needs one")
        return records

    def _is_normal(self, class_name: str) -> bool:
        if self.normal_classes is not None:
            return class_name in self.normal_classes
        return "normal" in class_name.lower()

    def _synthetic(self) -> list[tuple[str, bool]]:
        """(video path, abnormal) of every synthetic clip."""
        if self.synthetic_manifest is None:
            raise ValueError("`--data.synthetic_manifest` is not set; synthetic pre-training needs a manifest.jsonl")
        return [(row.video, not self._is_normal(row.class_name)) for row in read_manifest(self.synthetic_manifest)]

    def _require_features(self, videos: list[str], feature_dir: str, source: str) -> None:
        missing = [v for v in videos if not feature_path(feature_dir, v).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} of {len(videos)} videos of {source} have no cached features in {feature_dir} "
                f"(e.g. {', '.join(Path(v).name for v in missing[:3])}). Extract them first: `python -m datamodules "
                f"features --model-class <net class> --model-args '<json>' --list {source} --video-root <videos> "
                f"--out {feature_dir}`"
            )

    def _bags(self, videos: list[str], feature_dir: str) -> list:
        bags = [load_features(feature_path(feature_dir, v)) for v in videos]
        shapes = {tuple(b.features.shape) for b in bags}
        if len(shapes) > 1 or (self.feature_dim is not None and bags[0].features.shape[1] != self.feature_dim):
            raise ValueError(
                f"cached features in {feature_dir} have different shapes {sorted(shapes)} (dim so far "
                f"{self.feature_dim}); extract every split with the same net and --segments"
            )
        self.feature_dim = bags[0].features.shape[1]
        return bags

    def _train_bags(self) -> BagDataset:
        if self.train_source == "real":
            records = self._read_real(self.train_list, "train_list")
            videos, abnormal, directory = [r.path for r in records], [r.anomalous for r in records], self.feature_dir
            source = str(self._list_path(self.train_list, "train_list"))
        else:
            pairs = self._synthetic()
            videos, abnormal = [v for v, _ in pairs], [a for _, a in pairs]
            directory, source = self.synthetic_feature_dir, str(self.synthetic_manifest)
        if all(abnormal) or not any(abnormal):
            raise ValueError(
                f"{source}: {sum(abnormal)} abnormal and {len(abnormal) - sum(abnormal)} normal videos; MIL training "
                "needs both (synthetic: check `--data.normal_classes` against the manifest's class names)"
            )
        self._require_features(videos, directory, source)
        bags = self._bags(videos, directory)
        features = torch.stack([b.features for b in bags])  # (N, S, D)
        return BagDataset(features, torch.tensor(abnormal))

    def _check_intervals(self, records: list[CrimeVideo], name: str) -> None:
        if records[0].layout not in TEST_LAYOUTS:
            raise AnnotationError(
                f"{self._list_path(name, 'test_list')}: a {records[0].layout!r} list has no temporal intervals; "
                "`--data.test_list` must be Temporal_Anomaly_Annotation.txt, Test_Annotation_with_frame_counts.txt "
                "or UCF_test.txt"
            )

    def _test_items(self) -> TestBagDataset:
        records = self._read_real(self.test_list, "test_list")
        path = self._list_path(self.test_list, "test_list")
        self._check_intervals(records, self.test_list)
        self._require_features([r.path for r in records], self.feature_dir, str(path))
        bags = self._bags([r.path for r in records], self.feature_dir)
        items, self.frame_counts = [], {}
        for record, bag in zip(records, bags):
            self.frame_counts[video_name(record.path)] = bag.num_frames
            if record.num_frames is not None and record.num_frames != bag.num_frames:
                log.warning(
                    "%s: %s lists %d frames, %d decoded; using the decoded count",
                    path,
                    record.path,
                    record.num_frames,
                    bag.num_frames,
                )
            items.append(
                {
                    "features": bag.features,
                    "bounds": torch.from_numpy(segment_bounds(bag.num_frames, bag.features.shape[0])),
                    "frame_labels": torch.from_numpy(record.frame_labels(bag.num_frames)),
                    "num_frames": bag.num_frames,
                    "abnormal": record.anomalous,
                    "name": video_name(record.path),
                }
            )
        return TestBagDataset(items)

    def test_annotations(self) -> tuple[dict[str, list[EvalVideo]], str]:
        """(protocol -> the test videos with their frame labels, the default protocol): what the module's AUC
        metric (`lightning_modules.anomaly_metrics`) scores against."""
        protocols = self.protocols or {"sultani": self.test_list}
        videos = {
            p: read_annotation(p, self._list_path(a, "protocols"), self.frame_counts) for p, a in protocols.items()
        }
        return videos, self.default_protocol

    # -------------------------------------------------------------------------------------- Lightning

    def check(self, lists: list[str], synthetic: bool) -> None:
        """Validate before any model is built: each list parses and every listed video (and, if
        `synthetic`, every manifest clip) has cached features. Raises naming the file and the fix."""
        for name in lists:
            option = "test_list" if name == self.test_list else "train_list"
            records = self._read_real(name, option)
            if option == "test_list":
                self._check_intervals(records, name)
            self._require_features([r.path for r in records], self.feature_dir, str(self._list_path(name, option)))
        for protocol, annotation in (self.protocols or {}).items():
            if not self._list_path(annotation, "protocols").is_file():
                raise FileNotFoundError(
                    f"`--data.protocols.{protocol}`: {self._list_path(annotation, 'protocols')} not found"
                )
        if synthetic:
            videos = [v for v, _ in self._synthetic()]
            self._require_features(videos, self.synthetic_feature_dir, str(self.synthetic_manifest))

    def setup(self, stage: str) -> None:
        if stage == "fit" and "train" not in self.datasets:
            self.datasets["train"] = self._train_bags()
        if stage == "test" and "test" not in self.datasets:
            self.datasets["test"] = self._test_items()

    def train_dataloader(self) -> DataLoader:
        """Paired batches, resumable mid-epoch (`datamodules.resume`): a killed run resumes on the same bags and draws."""
        dataset = self.datasets["train"]
        sampler = BagPairSampler(dataset.abnormal, self.batch_size, **sampler_kwargs(self))
        return ResumableLoader(dataset, sampler, num_workers=self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(
            self.datasets["test"],
            batch_size=self.test_batch_size,
            collate_fn=collate_test,
            num_workers=self.num_workers,
        )
