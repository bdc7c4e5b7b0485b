"""`ActionDataModule`: real and synthetic action clips for every phase of a task protocol.

One label space (a label CSV) is shared by all sources at a time. Which clips train the model is
switched per phase by the task runner (`set_phase`): the synthetic manifest for pre-training, a real
annotation list (e.g. `train1_few_shot_4.txt`) for fine-tuning. Validation and test always read real
annotation lists. A protocol that changes label space (base-to-novel halves, the Kinetics-600 zero-shot
splits) switches it with `set_labels(key)`: `label_files` names each extra label CSV, relative to
`labels_dir` (by default the folder of `label_file`, so pointing `label_file` at your copy of the label
lists is enough). Synthetic manifest rows are matched to the current label space by class NAME: rows of
other classes are left out, and a class without any generated clip is an error.
All paths are checked in `setup`, before any training step, with errors that name the missing path and
the option that sets it. A clip that fails to decode during training raises or is skipped (`on_error`);
skips are counted in the main process, logged at each epoch end (`datamodules.skips.SkipLogger`) and
reported by `skip_report()`. Evaluation never substitutes a clip: validation and test lists are read once
in full before use, and an undecodable clip stops the run with the list of bad files, or, with
`test_on_error: exclude`, is left out and recorded (`excluded()`, results.json).

A `mixed` phase trains on a real list and the manifest at once, combined by the `mix` rule of
`datamodules.mixing`; each sample carries `synthetic` (bool) so the module applies each source's loss.
`synthetic_topup` keeps only the generated clips that fill each class of the real list up to a target
count (the long-tail top-up).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader

from datamodules.annotations import AnnotationError, read_labels
from datamodules.clip_cache import ClipCache
from datamodules.datasets import (
    Clip,
    OnError,
    SkipTally,
    VideoDataLoader,
    VideoDataset,
    VideoLayout,
    clips_from_list,
    filter_uncertain,
    scan_clips,
)
from datamodules.manifest import read_manifest
from datamodules.mixing import MIX_RULES, MixedDataset, MixedSampler, MixRule
from datamodules.resume import EpochSampler, ResumableLoader, sampler_kwargs
from datamodules.splits import topup, topup_target
from datamodules.transforms import CLIP_MEAN, CLIP_STD, CROP_SCALES, VideoTransform
from datamodules.video import VideoDecodeError

Source = Literal["real", "synthetic", "mixed"]
SOURCES = ("real", "synthetic", "mixed")


class ActionDataModule(L.LightningDataModule):
    """Action clips from annotation lists (real) and a generated manifest (synthetic).

    Args:
        label_file: CSV `id,name` defining the main label space; class names are read from it.
        labels_dir: folder the `label_files` are relative to; default the folder of `label_file`.
        label_files: extra label spaces a task switches to, by key, e.g. `{base: ucf_101_base_labels.csv,
            novel: ucf_101_novel_labels.csv}` or `{zs1: ZS_split1_K600.csv, ...}` (the task says which keys).
        video_root: folder that the paths in the annotation lists are relative to.
        video_layout: `as_listed` (video_root / listed path) or `by_name` (each clip found by its file name
            anywhere under video_root, e.g. official `<Class>/<clip>.avi` folders with flat lists).
        split_dir: folder holding the annotation lists; list names below are relative to it.
        train_list: real training list (a task sets it per phase).
        val_list: real list validated on during fine-tuning; None to skip validation.
        test_list: real list the final model is tested on.
        synthetic_manifest: manifest.jsonl of generated clips (from `python -m generation render`).
        train_source: what trains the model: `real` (train_list), `synthetic` (the manifest) or `mixed`
            (both in one phase, combined by `mix`).
        uncertainty_filter_quantile: UF (paper Table 7): keep only the synthetic clips whose CLIP uncertainty
            is at most this quantile of the manifest's (0.8 drops the most uncertain 20%); None keeps all.
            Needs a scored manifest (`python -m generation score`).
        mix: how a `mixed` phase combines the sources: `batch` (every batch holds round(synthetic_fraction x
            batch_size) generated clips, the rest real), `epoch` (every real clip once plus generated clips
            making up synthetic_fraction of the epoch, shuffled together) or `concat` (every clip of both once
            per epoch). Every real clip is served once per epoch under each rule (datamodules/mixing.py).
        synthetic_fraction: share of generated clips per batch (`mix: batch`) or per epoch (`mix: epoch`), in
            [0, 1); `concat` ignores it.
        class_balanced: in a `mixed` phase, draw every class of each source equally often (a class cycling
            through its own clips) instead of every clip once per epoch.
        synthetic_topup: in a `mixed` phase, train only on the generated clips that fill each class of
            train_list up to this many clips (real + generated): `max` (the largest class's count, i.e. the
            head's) or a number; a class with fewer generated clips than it lacks gets all of them, a class
            at or above the target none. None uses the whole manifest. Drawn per class with a fixed seed.
        num_frames: frames per clip (TSN segments); None takes the net's (`input_spec`), or 8 without one. A value
            that differs from the net's is an error: the net's frames are set on the net.
        image_size: crop size in pixels; None takes the net's, or 224 without one.
        color_jitter: probability of a colour jitter per training clip (TC-CLIP recipe: 0.8).
        grayscale: probability of greyscale per training clip (TC-CLIP recipe: 0.2).
        flip: horizontal flip with probability 0.5 in training (TC-CLIP: on, except for SSv2, where
            left/right is part of the label).
        crop_scales: training crop sides as fractions of the short side (TSN's multi-scale crop, TC-CLIP's
            1 / 0.875 / 0.75 / 0.66); `[1.0]` keeps the whole short side (a random place along the long side).
        short_side: frames are resized to this shorter side before the crop (training: random crop; test:
            centre crop of `image_size`). None: `image_size * 256 / 224` (256 for 224, TC-CLIP's); equal to
            `image_size` for a test crop that keeps the whole short side.
        label_text: text the networks read instead of the class names, per label set: `{main: <json>,
            <label_files key>: <json>, ...}` (`main` is `label_file`), paths relative to `labels_dir`. Each JSON
            is TC-CLIP's LLM-rephrased labels (`{"0": "Brush hair: A person is ...", ...}`, ids of that
            set's CSV) or `{name: text}`; a set without its own file uses any listed file's text for its
            names. Pair it with a 77-token text context for TC-CLIP (`context_length: 77`).
        label_text_required: False: `label_text` files that are absent are left out, and a label set none of
            whose files is present reads its class names (`class_text_source` says which; results.json
            records it). The dataset fragments name FROSTER's files this way, so the paper's names are used
            whenever they are present. True: an absent file is an error.
        test_views: temporal views per test clip; softmax scores are summed over views.
        batch_size: clips per batch per device.
        num_workers: DataLoader worker processes.
        decode_cache_mb: decoded clips kept in memory, in MiB over the loader's processes (each worker gets
            its share): a small training list (few-shot) is decoded once instead of every epoch, and an
            evaluation list read once for its check is not decoded again for the test. Samples are the
            same as without it (`datamodules.clip_cache`); clips beyond the budget are decoded per read; 0
            turns it off.
        pin_memory: pin host memory for faster host-to-GPU copies (only when CUDA is available).
        on_error: a training clip that cannot be decoded: `raise` (an error naming the file and the cause)
            or `skip` (serve the next clip of the list instead, so the epoch keeps its size; each failure is
            counted over workers and ranks, logged at each epoch end and written to phase.json/results.json).
        input_spec: the net's input spec (`lightning_modules.models.spec.InputSpec` as a dict: num_frames,
            image_size, mean, std, context_length), linked from the model by the CLI; sets the frame
            normalisation and fills num_frames / image_size. None: CLIP's statistics and the values given.
        test_on_error: validation/test lists are read in full before use (same frames, same checks) and
            never substitute a clip: `raise` stops with the list of undecodable files; `exclude` leaves them
            out of the metric and records which and how many (`excluded()`, results.json `data`).
    """

    input_mean, input_std = CLIP_MEAN, CLIP_STD  # frame normalisation without a net's spec (the model re-normalises)

    def __init__(
        self,
        label_file: str,
        labels_dir: str | None = None,
        label_files: dict[str, str] | None = None,
        video_root: str | None = None,
        video_layout: VideoLayout = "as_listed",
        split_dir: str | None = None,
        train_list: str | None = None,
        val_list: str | None = None,
        test_list: str | None = None,
        synthetic_manifest: str | None = None,
        train_source: Source = "real",
        uncertainty_filter_quantile: float | None = None,
        mix: MixRule = "batch",
        synthetic_fraction: float = 0.5,
        class_balanced: bool = False,
        synthetic_topup: int | Literal["max"] | None = None,
        num_frames: int | None = None,
        image_size: int | None = None,
        color_jitter: float = 0.8,
        grayscale: float = 0.2,
        flip: bool = True,
        crop_scales: tuple[float, ...] = CROP_SCALES,
        short_side: int | None = None,
        label_text: dict[str, str] | None = None,
        label_text_required: bool = True,
        test_views: int = 2,
        batch_size: int = 8,
        num_workers: int = 4,
        decode_cache_mb: int = 1024,
        pin_memory: bool = True,
        on_error: OnError = "raise",
        test_on_error: Literal["raise", "exclude"] = "raise",
        input_spec: dict | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self._class_names: list[str] | None = None
        self.datasets: dict[str, VideoDataset] = {}
        self.label_file = label_file  # the current label space (set_labels switches it)
        self.main_label_file = label_file
        self.labels_dir = labels_dir
        self.label_files = dict(label_files or {})
        self.video_root = video_root
        self.video_layout = video_layout
        self.split_dir = split_dir
        self.train_list = train_list
        self.val_list = val_list
        self.test_list = test_list
        self.synthetic_manifest = synthetic_manifest
        self.train_source = train_source
        self.uncertainty_filter_quantile = uncertainty_filter_quantile
        if mix not in MIX_RULES:
            raise ValueError(f"`--data.mix` must be one of {', '.join(MIX_RULES)}, got {mix!r}")
        if not 0.0 <= synthetic_fraction < 1.0:
            raise ValueError(f"`--data.synthetic_fraction` must be in [0, 1), got {synthetic_fraction}")
        if synthetic_topup is not None:
            try:
                topup_target({0: 1}, synthetic_topup)
            except ValueError as exc:
                raise ValueError(f"`--data.synthetic_topup`: {exc}") from None
        self.mix = mix
        self.synthetic_fraction = synthetic_fraction
        self.class_balanced = class_balanced
        self.synthetic_topup = synthetic_topup
        spec = dict(input_spec or {})
        self.num_frames = _from_spec("num_frames", num_frames, spec, fallback=8)
        self.image_size = _from_spec("image_size", image_size, spec, fallback=224)
        if spec.get("mean") is not None and spec.get("std") is not None:
            self.input_mean, self.input_std = tuple(spec["mean"]), tuple(spec["std"])
        self.color_jitter, self.grayscale, self.flip = color_jitter, grayscale, flip
        self.crop_scales, self.short_side = tuple(crop_scales), short_side
        if not self.crop_scales or not all(0.0 < c <= 1.0 for c in self.crop_scales):
            raise ValueError(f"`--data.crop_scales` are fractions of the short side in (0, 1], got {crop_scales}")
        self.label_text = dict(label_text or {})
        self.label_text_required = label_text_required
        self.test_views = test_views
        self.batch_size = batch_size
        self.num_workers = num_workers
        if decode_cache_mb < 0:
            raise ValueError(f"`--data.decode_cache_mb` must be >= 0 (0 turns the cache off), got {decode_cache_mb}")
        self.decode_cache_mb = decode_cache_mb
        self._cache: ClipCache | None = None  # one per datamodule, shared by its datasets (built on first use)
        self.pin_memory = pin_memory
        if on_error not in ("raise", "skip"):
            raise ValueError(f"`--data.on_error` must be 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error
        if test_on_error not in ("raise", "exclude"):
            raise ValueError(f"`--data.test_on_error` must be 'raise' or 'exclude', got {test_on_error!r}")
        self.test_on_error = test_on_error
        self._tallies: dict[str, SkipTally] = {}
        self._excluded: dict[str, list[dict]] = {}  # evaluation list -> clips left out

    @property
    def class_names(self) -> list[str]:
        """Class names indexed by label id, from `label_file`."""
        if self._class_names is None:
            self._class_names = read_labels(self.label_file)
        return self._class_names

    def _label_text_files(self) -> dict[str, Path]:
        """label_text's files by label set key, without the absent ones unless they are required."""
        from datamodules.label_text import present_label_text

        folder = Path(self.labels_dir) if self.labels_dir else Path(self.main_label_file).parent
        return present_label_text(self.label_text, folder, self.label_text_required)

    @property
    def class_text_source(self) -> str:
        """Which class names the networks read: `csv` or `llm: <files>` (`datamodules.label_text.describe`)."""
        from datamodules.label_text import describe_class_text

        return describe_class_text(self._label_text_files())

    @property
    def class_texts(self) -> list[str]:
        """What the networks read for each class of the current label space: `label_text`'s text, else the name."""
        files = self._label_text_files()
        if not files:
            return self.class_names
        from datamodules.label_text import read_label_text

        texts: dict[str, str] = {}
        own = next((k for k in files if self.label_path(None if k == "main" else k) == self.label_file), None)
        for key in sorted(files, key=lambda k: k != own):  # the current set's own file wins
            csv_path = self.label_path(None if key == "main" else key)
            texts = {**read_label_text(files[key], csv_path), **texts}
        missing = [n for n in self.class_names if n not in texts]
        if missing:
            raise ValueError(
                f"`--data.label_text` has no text for {len(missing)} classes of {self.label_file} (e.g. "
                f"{', '.join(map(repr, missing[:3]))}); add that label set's JSON to `--data.label_text`"
            )
        return [texts[n] for n in self.class_names]

    @property
    def test_list(self) -> str | None:
        """The real list `test` reads; setting another one drops the built test set."""
        return self._test_list

    @test_list.setter
    def test_list(self, name: str | None) -> None:
        if name != getattr(self, "_test_list", None):
            self.datasets.pop("test", None)
        self._test_list = name

    def label_path(self, key: str | None) -> str:
        """The label CSV of label set `key` (None: the main `label_file`)."""
        if key is None:
            return self.main_label_file
        if key not in self.label_files:
            known = ", ".join(sorted(self.label_files)) or "none"
            raise ValueError(
                f"the task needs label set {key!r}, but `--data.label_files` has no such key (it has: {known}). "
                f"Add it, e.g. `--data.label_files '{{{key}: <file>.csv}}'` (relative to --data.labels_dir)"
            )
        folder = Path(self.labels_dir) if self.labels_dir else Path(self.main_label_file).parent
        path = folder / self.label_files[key]
        if not path.is_file():
            raise FileNotFoundError(
                f"label file of set {key!r} not found: {path}. Set `--data.labels_dir` to the folder holding "
                f"{self.label_files[key]} (default: the folder of --data.label_file) or fix `--data.label_files`."
            )
        return str(path)

    def set_labels(self, key: str | None) -> None:
        """Switch the label space to label set `key` (None: the main one); built datasets are dropped."""
        path = self.label_path(key)
        if path != self.label_file:
            self.label_file, self._class_names = path, None
            self.datasets.clear()

    def set_phase(self, train_source: Source, train_list: str | None = None) -> None:
        """Select the training data of the next `fit` (called by the task runner between phases); `mixed`
        trains on `train_list` (e.g. the long-tailed list) and the manifest together."""
        if train_source not in SOURCES:
            raise ValueError(f"train source must be one of {', '.join(SOURCES)}, got {train_source!r}")
        self.train_source = train_source
        if train_list is not None:
            self.train_list = train_list
        self.datasets.pop("train", None)
        self._tallies.pop("train", None)  # each phase counts its own skips

    def _list_path(self, name: str, option: str) -> Path:
        if self.split_dir is None:
            raise ValueError(f"`--data.split_dir` is not set; it must hold the list {name!r} ({option})")
        split_dir = Path(self.split_dir)
        if not split_dir.is_dir():
            raise FileNotFoundError(
                f"split folder not found: {split_dir}. Set `--data.split_dir` to the folder holding {name}."
            )
        return split_dir / name

    def _real(self, name: str | None, option: str) -> list[Clip]:
        if name is None:
            raise ValueError(f"`--data.{option}` is not set; name the annotation list to use")
        if self.video_root is None:
            raise ValueError("`--data.video_root` is not set; it must be the folder the listed clips are in")
        return clips_from_list(self._list_path(name, option), self.video_root, self.class_names, self.video_layout)

    def _train_clips(self) -> list[Clip]:
        if self.train_source == "real":
            return self._real(self.train_list, "train_list")
        if self.train_source == "mixed":
            real, synthetic = self._mixed_clips()
            return real + synthetic
        return self._synthetic_train_clips()

    def _synthetic_train_clips(self) -> list[Clip]:
        """The manifest's clips of the label space, less those UF filters out."""
        if self.synthetic_manifest is None:
            raise ValueError("`--data.synthetic_manifest` is not set; synthetic training needs a manifest.jsonl")
        clips = self._synthetic_clips()
        if self.uncertainty_filter_quantile is None:
            return clips
        kept, threshold = filter_uncertain(clips, self.uncertainty_filter_quantile, self.synthetic_manifest)
        rank_zero_info(
            f"uncertainty filter: dropped {len(clips) - len(kept)} of {len(clips)} synthetic clips with "
            f"uncertainty > {threshold:.4f} (quantile {self.uncertainty_filter_quantile})"
        )
        return kept

    def _mixed_clips(self) -> tuple[list[Clip], list[Clip]]:
        """(real, generated) clips of a mixed phase: train_list and the manifest, or its top-up of train_list."""
        real = self._real(self.train_list, "train_list")
        synthetic = self._synthetic_train_clips()
        if self.synthetic_topup is None:
            return real, synthetic
        counts = {i: 0 for i in range(len(self.class_names))}
        for clip in real:
            counts[clip.label] += 1
        synthetic = [synthetic[i] for i in topup([c.label for c in synthetic], counts, self.synthetic_topup)]
        target = topup_target(counts, self.synthetic_topup)
        added = {i: 0 for i in counts}
        for clip in synthetic:
            added[clip.label] += 1
        short = [self.class_names[i] for i in counts if counts[i] + added[i] < target]
        rank_zero_info(
            f"synthetic top-up to {target} clips per class: {len(synthetic)} generated clips added to the "
            f"{len(real)} of {self.train_list}"
            + (
                f"; {len(short)} class(es) stay below {target} for lack of generated clips (e.g. "
                f"{', '.join(map(repr, short[:3]))})"
                if short
                else ""
            )
        )
        return real, synthetic

    def _synthetic_clips(self) -> list[Clip]:
        """The manifest's clips of the current label space's classes, matched by class name."""
        manifest = Path(self.synthetic_manifest)
        ids = {name: i for i, name in enumerate(self.class_names)}
        rows = read_manifest(manifest)
        if not rows:
            raise AnnotationError(f"{manifest}: the manifest has no clips; render some with `python -m generation`")
        clips = [
            Clip(manifest.parent / r.video, ids[r.class_name], r.uncertainty, synthetic=True)
            for r in rows
            if r.class_name in ids
        ]
        covered = {c.label for c in clips}
        missing = [name for name, i in ids.items() if i not in covered]
        if missing:
            raise AnnotationError(
                f"{manifest}: {len(missing)} of the {len(ids)} classes of {self.label_file} have no generated clip "
                f"(e.g. {', '.join(map(repr, missing[:5]))}); class names must match the label file exactly. "
                f"Generate them with `python -m generation` from {self.label_file}, or use another manifest."
            )
        return clips

    def check_uncertainty(self, loss: str) -> None:
        """Raise unless the synthetic training clips carry the CLIP uncertainty that `loss` (ul/uw/uf) needs."""
        if loss == "uf" and self.uncertainty_filter_quantile is None:
            raise ValueError("loss 'uf' trains on a filtered synthetic set: set `--data.uncertainty_filter_quantile`")
        if self.train_source == "real":
            return  # real clips carry no uncertainty: they are trained with eps = 0 / weight 1
        train = self.datasets.get("train")
        if self.train_source == "mixed":  # only the generated clips need a score
            clips = train.synthetic.clips if train is not None else self._mixed_clips()[1]
        else:
            clips = train.clips if train is not None else self._train_clips()
        unscored = sum(c.uncertainty is None for c in clips)
        if unscored:
            raise ValueError(
                f"loss {loss!r} needs CLIP uncertainty, but {unscored} of {len(clips)} clips of "
                f"{self.synthetic_manifest} are unscored; run `python -m generation score --manifest "
                f"{self.synthetic_manifest} --labels {self.label_file}` first"
            )

    def check(self, lists: list[str], synthetic: bool, labels: str | None = None) -> dict[str, list[Path]]:
        """Validate inputs before any model is built: label file (of label set `labels`), each real list
        (labels in range, every listed clip present) and, if `synthetic`, the manifest's coverage of the
        label space. Raises with the path and the option to set. Returns the clips each list names (and,
        under the manifest's path, the synthetic clips), for a decode check (`datamodules.validate`)."""
        self.set_labels(labels)
        clips = {name: [c.path for c in self._real(name, "split_dir")] for name in lists}
        if synthetic:
            self.set_phase("synthetic")
            clips[str(self.synthetic_manifest)] = [c.path for c in self._train_clips()]
        return clips

    def _dataset(self, clips: list[Clip], train: bool) -> VideoDataset:
        augment = {"flip": self.flip, "color_jitter": self.color_jitter, "grayscale": self.grayscale} if train else {}
        transform = VideoTransform(
            train=train,
            size=self.image_size,
            short_side=self.short_side,
            mean=self.input_mean,
            std=self.input_std,
            crop_scales=self.crop_scales,
            **augment,
        )
        on_error = self.on_error if train else "raise"  # evaluation never substitutes a clip
        return VideoDataset(
            clips, self.num_frames, transform, num_views=self.test_views, on_error=on_error, cache=self.clip_cache()
        )

    def clip_cache(self) -> ClipCache | None:
        """The decoded-clip cache of this datamodule's datasets (this process's share of `decode_cache_mb`)."""
        if self.decode_cache_mb == 0:
            return None
        if self._cache is None:
            self._cache = ClipCache(self.decode_cache_mb * 2**20 // max(1, self.num_workers))
        return self._cache

    def _eval_dataset(self, name: str, option: str) -> VideoDataset:
        """An evaluation list's dataset, after reading every clip once: undecodable clips raise (all listed)
        or, with `test_on_error: exclude`, are left out and recorded."""
        dataset = self._dataset(self._real(name, option), train=False)
        bad = scan_clips(dataset, self.num_workers)
        if not bad:
            self._excluded.pop(name, None)
            return dataset
        listed = "\n  ".join(f"{clip.path}: {cause}" for clip, cause in bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        if self.test_on_error == "raise":
            raise VideoDecodeError(
                f"{len(bad)} of {len(dataset)} clips of the evaluation list {name!r} do not decode; a test never "
                f"replaces them:\n  {listed}{more}\nRe-download or re-encode them, drop them from the list, or "
                "pass `--data.test_on_error exclude` to test without them (recorded in results.json)."
            )
        bad_paths = {clip.path for clip, _ in bad}
        dataset.clips = [c for c in dataset.clips if c.path not in bad_paths]
        if not dataset.clips:
            raise VideoDecodeError(f"none of the clips of the evaluation list {name!r} decodes:\n  {listed}{more}")
        self._excluded[name] = [{"path": str(clip.path), "label": clip.label, "cause": cause} for clip, cause in bad]
        rank_zero_warn(
            f"test_on_error=exclude: {len(bad)} of {len(bad) + len(dataset.clips)} clips of {name!r} "
            f"do not decode and are left out of its metrics:\n  {listed}{more}"
        )
        return dataset

    def setup(self, stage: str) -> None:
        """Build (and check) the datasets the stage needs."""
        if stage == "fit" and "train" not in self.datasets:
            if self.train_source == "mixed":
                real, synthetic = self._mixed_clips()
                sources = self._dataset(real, train=True), self._dataset(synthetic, train=True)
                self.datasets["train"] = MixedDataset(*sources)
            else:
                self.datasets["train"] = self._dataset(self._train_clips(), train=True)
        if stage in ("fit", "validate") and self.val_list is not None and "val" not in self.datasets:
            self.datasets["val"] = self._eval_dataset(self.val_list, "val_list")
        if stage == "test" and "test" not in self.datasets:
            self.datasets["test"] = self._eval_dataset(self.test_list, "test_list")

    def skip_tally(self, split: str) -> SkipTally:
        """The failed-read counter of a split (main process of this rank; `SkipLogger` sums over ranks)."""
        return self._tallies.setdefault(split, SkipTally())

    def skip_report(self) -> dict:
        """Training reads replaced since the last `set_phase` (on_error=skip): total, per epoch, which files."""
        return self.skip_tally("train").report()

    def excluded(self, list_name: str | None = None) -> list[dict]:
        """Clips left out of an evaluation list (test_on_error=exclude): path, label, cause. Default: the
        current test list."""
        return list(self._excluded.get(list_name or self.test_list, []))

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return VideoDataLoader(
            self.datasets[split],
            tally=self.skip_tally(split),
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Resumable mid-epoch (`datamodules.resume`): a killed run resumes on the same batches and draws."""
        dataset = self.datasets["train"]
        if isinstance(dataset, MixedDataset):
            sampler = self.mixed_sampler()
        else:
            sampler = EpochSampler(len(dataset), self.batch_size, **sampler_kwargs(self))
        return ResumableLoader(
            dataset,
            sampler,
            tally=self.skip_tally("train"),
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def mixed_sampler(self) -> MixedSampler:
        """The sampler of a mixed phase for this rank (DDP: the trainer's world size and rank)."""
        dataset: MixedDataset = self.datasets["train"]
        return MixedSampler(
            [c.label for c in dataset.real.clips],
            [c.label for c in dataset.synthetic.clips],
            batch_size=self.batch_size,
            rule=self.mix,
            synthetic_fraction=self.synthetic_fraction,
            class_balanced=self.class_balanced,
            **sampler_kwargs(self),
        )

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val", shuffle=False) if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


def _from_spec(key: str, given: int | None, spec: dict, fallback: int) -> int:
    """A clip setting from the net's input spec: `given` must agree with it; without a spec, `given` or the
    fallback."""
    declared = spec.get(key)
    if given is not None and declared is not None and given != declared:
        raise ValueError(
            f"--data.{key} {given} differs from the net's {declared} (its input spec): drop --data.{key} and set "
            f"it on the net (e.g. --model.init_args.net.init_args.{key} {given} where the net takes it)"
        )
    for value in (given, declared, fallback):
        if value is not None:
            return int(value)
    return fallback
