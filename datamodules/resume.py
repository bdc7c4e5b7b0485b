"""Exact mid-epoch resume for every training loader: a seeded per-epoch shuffle and a stateful DataLoader.

`EpochSampler` is torch's DistributedSampler (so Lightning neither re-shards nor wraps it, and calls its
`set_epoch`): an epoch's order is a function of (seed, epoch, dataset size, world size) only, and it can skip
the batches a killed run had already trained on. `ResumableLoader` takes that sampler, or any sampler with
the same `epoch` / `skip_batches` / `batch_size` / `layout()` attributes (`datamodules.mixing.MixedSampler`),
and implements Lightning's stateful-dataloader protocol (`state_dict` / `load_state_dict`, saved in every
checkpoint). Its state is the epoch, the batches the training loop has read (Lightning does not prefetch
from a loader of known length, so read = trained on when a step's checkpoint is written) and the random
streams (torch, numpy, python) at that moment; a resumed run skips those batches in the sampler (no clip is
decoded for them) and restores the streams before its next read, so it draws the same augmentation, Mixup
and dropout as an uninterrupted run. After an epoch's last batch the next epoch starts from its first.

Exact means: same clips in the same order and, with `num_workers=0`, the same random draws, so the final
weights are the uninterrupted run's. With worker processes the clip order is still exact; each worker's
augmentation stream restarts at the resume point (the DataLoader's own `generator` is seeded per loader, so
the global stream is not consumed by worker seeding).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DistributedSampler

from datamodules.datasets import VideoDataLoader
from datamodules.mixing import global_seed

log = logging.getLogger(__name__)


def shard(datamodule) -> tuple[int, int]:
    """(num_replicas, rank) of the trainer a datamodule is attached to (DDP), or (1, 0) without one."""
    trainer = getattr(datamodule, "trainer", None)
    kwargs = (trainer.distributed_sampler_kwargs if trainer is not None else None) or {}
    return kwargs.get("num_replicas", 1), kwargs.get("rank", 0)


def sampler_kwargs(datamodule) -> dict:
    """`num_replicas`, `rank` (`shard`) and `seed` (the run's, the same on every rank) of a training sampler."""
    replicas, rank = shard(datamodule)
    return {"num_replicas": replicas, "rank": rank, "seed": global_seed()}


def _rng_states() -> dict:
    """The random states as checkpoint-safe values (numpy's key array as a tensor: weights_only loads)."""
    states = _collect_rng_states()
    name, keys, pos, has_gauss, gauss = states["numpy"]
    states["numpy"] = (name, torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss), float(gauss))
    return states


def _restore_rng(states: dict) -> None:
    name, keys, pos, has_gauss, gauss = states["numpy"]
    _set_rng_states({**states, "numpy": (name, keys.numpy().astype("uint32"), pos, has_gauss, gauss)})


class EpochSampler(DistributedSampler):
    """A rank's share of a seeded shuffle (or of the list in order) per epoch, able to skip served batches.

    Args:
        size: dataset length.
        batch_size: clips per batch (the DataLoader's), the unit of `skip_batches`.
        shuffle: shuffle each epoch (seed + epoch), else the list order.
        num_replicas: number of ranks (DDP world size).
        rank: this rank.
        seed: seeds every epoch's order; must be the same on every rank.
    """

    def __init__(
        self, size: int, batch_size: int, shuffle: bool = True, num_replicas: int = 1, rank: int = 0, seed: int = 0
    ):
        super().__init__(range(size), num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.batch_size = batch_size
        self.skip_batches = 0  # batches of the next iteration's epoch already served (set on resume)

    def __iter__(self) -> Iterator[int]:
        skip, self.skip_batches = self.skip_batches * self.batch_size, 0
        yield from list(super().__iter__())[skip:]

    def layout(self) -> dict:
        """What decides the epochs' indices: a resumed run skips served batches only when this is unchanged."""
        return {
            "size": len(self.dataset),
            "shuffle": self.shuffle,
            "batch_size": self.batch_size,
            "num_replicas": self.num_replicas,
            "seed": self.seed,
        }


class ResumableLoader(VideoDataLoader):
    """A `VideoDataLoader` over a resumable sampler that saves and restores its place in the epoch.

    Args:
        dataset: the training dataset.
        sampler: `EpochSampler` or `MixedSampler` (anything with epoch, skip_batches, batch_size, layout()).
        **kwargs: `tally=` and DataLoader's own arguments (num_workers, pin_memory, ...).
    """

    def __init__(self, dataset, sampler, **kwargs):
        generator = torch.Generator().manual_seed(int(sampler.seed))  # worker seeding leaves the global stream
        super().__init__(
            dataset, batch_size=sampler.batch_size, sampler=sampler, shuffle=False, generator=generator, **kwargs
        )
        self._fetched = 0  # batches read in the current epoch's iteration (resumed ones included)
        self._resume: dict | None = None

    def __iter__(self) -> Iterator:
        # A generator: runs on the first `next`, after Lightning's `set_epoch`, before the sampler is iterated.
        sampler = self.sampler
        resume, self._resume = self._resume, None
        if resume is not None and resume["epoch"] != sampler.epoch:
            resume = None
        sampler.skip_batches = resume["batches"] if resume else 0
        self._fetched = sampler.skip_batches
        batches = super().__iter__()
        if resume is not None:
            _restore_rng(resume["rng"])
        for batch in batches:
            self._fetched += 1
            yield batch

    def state_dict(self) -> dict:
        """Where the training loop is: the epoch, the batches it has read, and the random states now."""
        sampler = self.sampler
        return {"epoch": sampler.epoch, "batches": self._fetched, "layout": sampler.layout(), "rng": _rng_states()}

    def load_state_dict(self, state: dict) -> None:
        sampler = self.sampler
        if state.get("layout") != sampler.layout():
            log.warning(
                "resume: the checkpoint's epoch layout %s differs from this run's %s (data or batch size changed?); "
                "the resumed epoch starts from its first batch",
                state.get("layout"),
                sampler.layout(),
            )
            return
        if state["batches"] >= len(self):  # the epoch had ended: the next one starts from its first batch
            self._resume = {**state, "epoch": state["epoch"] + 1, "batches": 0}
        else:
            sampler.set_epoch(state["epoch"])  # Lightning sets it too
            self._resume = dict(state)


class LoaderStateOnResume(Callback):
    """Hands a resumed checkpoint's loader states to the training loaders (Lightning 2.6 skips it when the
    module asked for `trainer.estimated_stepping_batches` in `configure_optimizers`: the loaders are then built
    before the checkpoint is read, and `FitLoop.setup_data` does not run again)."""

    def on_train_start(self, trainer, pl_module) -> None:
        loop = trainer.fit_loop
        if getattr(loop, "_combined_loader_states_to_load", None):
            loop._load_combined_loader_states()
