"""Mixed real + synthetic training in one phase: a dataset over both sources and the sampler that mixes them.

`MixedDataset` serves the real clips (indices 0..n_r-1) and the generated ones (n_r..n_r+n_s-1) and tags
every sample with its origin: `synthetic` (bool) beside `uncertainty` (NaN for real clips), so the module
trains real clips with the real recipe's loss and generated ones with UL. A clip that fails to decode is
replaced by the next clip of its own source (`on_error="skip"` of each source's `VideoDataset`), so a
sample never changes origin.

`MixedSampler` decides what an epoch draws, by `rule` (f = `synthetic_fraction`, B = batch size per rank):
- `batch`: every batch holds round(f * B) generated clips and the rest real; an epoch serves every real
  clip once. Real slots left over in the epoch's last round of batches are filled with generated clips
  (so batches are full and nothing repeats): those few batches carry more generated clips.
- `epoch`: every real clip once plus round(f / (1 - f) * n_r) generated clips, shuffled together, so the
  epoch (not each batch) holds the fraction f.
- `concat`: every real and every generated clip once, shuffled together (f is ignored); with a top-up set
  this gives each class its target count per epoch.
Generated clips are drawn without replacement within an epoch (a new random subset each epoch when the
epoch needs fewer than the source has; repeated only when it needs more). `class_balanced` draws each
source's clips so that every class of that source is drawn equally often (+-1), cycling a class's own clips.

Determinism and DDP: an epoch's indices are a function of (seed, epoch, sizes, rule) only. Every rank
builds the same global epoch and takes its own share (whole batches under `batch`, every
`num_replicas`-th clip otherwise), so ranks see disjoint clips of both sources and the same number of
batches; the only repeats are the padding of `concat` (< num_replicas clips, as torch's
DistributedSampler pads). The sampler subclasses DistributedSampler, so Lightning neither re-shards it
nor wraps it, and calls its `set_epoch`.

Resume mid-epoch: `MixedDataLoader` is stateful (`state_dict` / `load_state_dict`, which Lightning saves
in its checkpoints): it records the epoch and the batches served; a resumed run rebuilds the same epoch and
skips those batches.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
from torch.utils.data import Dataset, DistributedSampler

from datamodules.datasets import VideoDataLoader

log = logging.getLogger(__name__)
MixRule = Literal["batch", "epoch", "concat"]
MIX_RULES = ("batch", "epoch", "concat")
_REAL, _SYNTHETIC, _ORDER = 0, 1, 2  # RNG stream tags: one stream per (seed, epoch, purpose)


class MixedDataset(Dataset):
    """Real clips then generated clips, each sample tagged `synthetic` (bool).

    Args:
        real: dataset of real clips (samples are dicts, e.g. a `VideoDataset`).
        synthetic: dataset of generated clips.
    """

    def __init__(self, real: Dataset, synthetic: Dataset):
        self.real = real
        self.synthetic = synthetic
        self.num_real = len(real)

    def __len__(self) -> int:
        return self.num_real + len(self.synthetic)

    def __getitem__(self, index: int) -> dict:
        if index < self.num_real:
            return {**self.real[index], "synthetic": False}
        return {**self.synthetic[index - self.num_real], "synthetic": True}

    @property
    def clips(self) -> list:
        """All clips, real first (as the indices)."""
        return [*getattr(self.real, "clips", []), *getattr(self.synthetic, "clips", [])]


def realised_fraction(indices: Sequence[int], num_real: int) -> float:
    """Share of generated clips (index >= num_real) among `indices`."""
    indices = np.asarray(indices)
    return float((indices >= num_real).mean()) if len(indices) else math.nan


def _draw(labels: np.ndarray, count: int, rng: np.random.Generator, balanced: bool) -> np.ndarray:
    """`count` positions into `labels`, in random order: each position once before any repeats, or, when
    `balanced`, every class `count // K` or one more times (each class cycling through its own clips)."""
    n = len(labels)
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    if not balanced:
        return np.concatenate([rng.permutation(n) for _ in range(-(-count // n))])[:count]
    classes = np.unique(labels)
    quota = np.full(len(classes), count // len(classes))
    quota[rng.choice(len(classes), size=count % len(classes), replace=False)] += 1
    drawn = []
    for c, q in zip(classes, quota):
        if q == 0:  # fewer draws than classes
            continue
        members = np.flatnonzero(labels == c)
        drawn.append(np.concatenate([rng.permutation(members) for _ in range(-(-q // len(members)))])[:q])
    return rng.permutation(np.concatenate(drawn))


class MixedSampler(DistributedSampler):
    """Indices into a `MixedDataset` for one rank: the epoch's mix of real and generated clips.

    Args:
        real_labels: class of each real clip (dataset indices 0..n_r-1).
        synthetic_labels: class of each generated clip (dataset indices n_r..).
        batch_size: clips per batch per rank (the DataLoader's batch size).
        rule: `batch`, `epoch` or `concat` (module docstring).
        synthetic_fraction: share f of generated clips per batch (`batch`) or per epoch (`epoch`), in [0, 1).
        class_balanced: draw every class of a source equally often instead of every clip once.
        num_replicas: number of ranks (DDP world size).
        rank: this rank.
        seed: seeds every epoch's draw; must be the same on every rank.
    """

    def __init__(
        self,
        real_labels: Sequence[int],
        synthetic_labels: Sequence[int],
        batch_size: int,
        rule: MixRule = "batch",
        synthetic_fraction: float = 0.5,
        class_balanced: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
    ):
        self.real_labels = np.asarray(real_labels, dtype=np.int64)
        self.synthetic_labels = np.asarray(synthetic_labels, dtype=np.int64)
        n_r, n_s = len(self.real_labels), len(self.synthetic_labels)
        super().__init__(range(n_r + n_s), num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        if rule not in MIX_RULES:
            raise ValueError(f"`--data.mix` must be one of {', '.join(MIX_RULES)}, got {rule!r}")
        if not 0.0 <= synthetic_fraction < 1.0:
            raise ValueError(
                f"`--data.synthetic_fraction` must be in [0, 1), got {synthetic_fraction}; "
                "train on generated clips alone with the `synthetic` source"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if n_r == 0:
            raise ValueError("a mixed phase needs real clips: the real training list is empty")
        self.rule, self.batch_size, self.class_balanced = rule, batch_size, class_balanced
        self.synthetic_fraction = synthetic_fraction
        self.num_real, self.num_synthetic = n_r, n_s
        self.synthetic_per_batch = round(synthetic_fraction * batch_size)
        if rule == "batch" and self.synthetic_per_batch == batch_size:
            raise ValueError(
                f"synthetic_fraction {synthetic_fraction} of batch_size {batch_size} leaves no real clip per batch; "
                "lower the fraction, raise the batch size, or use `--data.mix epoch`"
            )
        if n_s == 0 and self._synthetic_count() > 0:
            raise ValueError(
                "a mixed phase needs generated clips, but the synthetic set is empty (all filtered out by "
                "uncertainty_filter_quantile, or no class below the synthetic_topup target?)"
            )
        self.num_samples = self._per_rank()  # clips per rank per epoch
        self.total_size = self.num_samples * num_replicas
        self.skip_batches = 0  # batches of the next iteration's epoch already served (set on resume)

    # -------------------------------------------------------------------------------- epoch layout

    def _rounds(self) -> int:
        """`batch` rule: batch rounds (one batch per rank each) that serve every real clip once."""
        real_per_batch = self.batch_size - self.synthetic_per_batch
        return -(-self.num_real // (real_per_batch * self.num_replicas))

    def _synthetic_count(self) -> int:
        """Generated clips of one epoch over all ranks (padding included)."""
        n_r, world = self.num_real, self.num_replicas
        if self.rule == "batch":
            return self._rounds() * world * self.batch_size - n_r
        if self.rule == "epoch":
            m = round(self.synthetic_fraction / (1 - self.synthetic_fraction) * n_r)
        else:
            m = self.num_synthetic
        return m + (-(n_r + m)) % world  # pad so every rank gets as many clips

    def _per_rank(self) -> int:
        return (self.num_real + self._synthetic_count()) // self.num_replicas

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """(num_replicas, num_samples) dataset indices of one epoch: row r is rank r's clips in order."""
        n_r, world, b = self.num_real, self.num_replicas, self.batch_size

        def rng(tag: int) -> np.random.Generator:  # one stream per (seed, epoch, purpose)
            return np.random.default_rng([self.seed, epoch, tag])

        real = _draw(self.real_labels, n_r, rng(_REAL), self.class_balanced)
        synthetic = _draw(self.synthetic_labels, self._synthetic_count(), rng(_SYNTHETIC), self.class_balanced)
        synthetic = synthetic + n_r  # dataset indices
        if self.rule != "batch":
            order = rng(_ORDER).permutation(np.concatenate([real, synthetic]))
            return order.reshape(-1, world).T  # rank r takes every world-th clip, as DistributedSampler
        # batch: real slots (the surplus of the last round filled with generated clips), then generated slots
        s = self.synthetic_per_batch
        batches = self._rounds() * world
        surplus = batches * (b - s) - n_r
        real_slots = np.concatenate([real, synthetic[:surplus]]).reshape(batches, b - s)
        synthetic_slots = synthetic[surplus:].reshape(batches, s)
        shuffle = rng(_ORDER)
        layout = np.stack([shuffle.permutation(row) for row in np.concatenate([real_slots, synthetic_slots], 1)])
        return layout.reshape(-1, world, b).transpose(1, 0, 2).reshape(world, -1)  # batch g goes to rank g % world

    # -------------------------------------------------------------------------------- sampler protocol

    def __iter__(self) -> Iterator[int]:
        skip, self.skip_batches = self.skip_batches * self.batch_size, 0
        yield from (int(i) for i in self.epoch_indices(self.epoch)[self.rank, skip:])

    def __len__(self) -> int:
        return self.num_samples

    def resume_from(self, epoch: int, batches: int) -> None:
        """Make the next iteration serve epoch `epoch` without its first `batches` batches."""
        self.epoch, self.skip_batches = epoch, batches

    def layout(self) -> dict:
        """What decides the epochs' indices: a resumed run skips served batches only when this is unchanged."""
        return {
            "rule": self.rule,
            "synthetic_fraction": self.synthetic_fraction,
            "class_balanced": self.class_balanced,
            "num_real": self.num_real,
            "num_synthetic": self.num_synthetic,
            "batch_size": self.batch_size,
            "num_replicas": self.num_replicas,
            "seed": self.seed,
        }


def global_seed() -> int:
    """The run's seed as Lightning publishes it (`seed_everything` sets PL_GLOBAL_SEED), else 0; the same on
    every rank, as Lightning's own DistributedSampler seed."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


class MixedDataLoader(VideoDataLoader):
    """A DataLoader over a `MixedDataset` with a `MixedSampler`, resumable mid-epoch.

    Lightning saves `state_dict()` in its checkpoints and hands it back to `load_state_dict()` before the
    resumed run iterates: the epoch's served batches are skipped, so the run sees the clips an
    uninterrupted run would. Replaced reads (on_error="skip") travel as markers in the samples and are
    counted by `datamodules.skips.SkipLogger`, as in every other phase.
    """

    def __init__(self, dataset: MixedDataset, sampler: MixedSampler, **kwargs):  # kwargs: tally=, DataLoader's
        super().__init__(dataset, batch_size=sampler.batch_size, sampler=sampler, shuffle=False, **kwargs)
        self._served = 0  # batches served in the current epoch's iteration (resumed ones included)
        self._resume: tuple[int, int] | None = None  # (epoch, batches served) of a loaded checkpoint

    def __iter__(self) -> Iterator:
        # A generator: runs on the first `next`, after Lightning's `set_epoch`, before the sampler is iterated.
        sampler: MixedSampler = self.sampler
        resume, self._resume = self._resume, None
        sampler.skip_batches = resume[1] if resume is not None and resume[0] == sampler.epoch else 0
        self._served = sampler.skip_batches
        for batch in super().__iter__():
            self._served += 1
            yield batch

    def state_dict(self) -> dict:
        sampler: MixedSampler = self.sampler
        return {"epoch": sampler.epoch, "batches": self._served, "layout": sampler.layout()}

    def load_state_dict(self, state: dict) -> None:
        sampler: MixedSampler = self.sampler
        if state.get("layout") != sampler.layout():
            log.warning(
                "mixed sampler: the checkpoint's epoch layout %s differs from this run's %s (data or batch size "
                "changed?); the resumed epoch starts from its first batch",
                state.get("layout"),
                sampler.layout(),
            )
            return
        if state["batches"] < len(self):  # else the epoch had ended: the next one starts from its first batch
            sampler.set_epoch(state["epoch"])  # Lightning sets it too; the layout is built from it
            self._resume = (state["epoch"], state["batches"])
