"""datamodules/mixing.py, the long-tail top-up (datamodules/splits.py) and ActionDataModule's `mixed` source:
the realised mix, DDP shards, resume, per-source on_error, the batch contract and per-source losses."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from datamodules.action import ActionDataModule
from datamodules.mixing import MixedDataLoader, MixedDataset, MixedSampler, _draw, realised_fraction
from datamodules.resume import ResumableLoader
from datamodules.splits import topup, topup_target
from lightning_modules.losses import LossConfig, action_loss

# A long-tailed real source (classes 0..5 with 40, 20, 10, 5, 3, 2 clips) and a balanced generated one.
REAL = np.repeat(np.arange(6), [40, 20, 10, 5, 3, 2])
SYNTHETIC = np.repeat(np.arange(6), 16)


def _samplers(rule: str, world: int, **kwargs) -> list[MixedSampler]:
    kwargs = {"batch_size": 8, "synthetic_fraction": 0.25, "seed": 7, **kwargs}
    return [MixedSampler(REAL, SYNTHETIC, rule=rule, num_replicas=world, rank=r, **kwargs) for r in range(world)]


def _epoch(samplers: list[MixedSampler], epoch: int) -> list[np.ndarray]:
    for s in samplers:
        s.set_epoch(epoch)
    return [np.array(list(s)) for s in samplers]


# ---------------------------------------------------------------------------------------- the realised mix


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize(("fraction", "batch"), [(0.25, 8), (0.5, 4), (0.75, 8), (0.3, 10)])
def test_batch_rule_puts_the_fraction_in_every_batch_and_every_real_clip_once(fraction, batch, world):
    samplers = _samplers("batch", world, synthetic_fraction=fraction, batch_size=batch)
    s = round(fraction * batch)  # generated clips per batch
    ranks = _epoch(samplers, epoch=3)
    assert {len(r) for r in ranks} == {len(samplers[0])} and len(samplers[0]) % batch == 0  # same steps per rank
    batches = [r.reshape(-1, batch) for r in ranks]  # (batches, B) per rank
    rounds = len(batches[0])
    for rank in batches:
        synthetic_per_batch = (rank >= len(REAL)).sum(axis=1)
        assert (synthetic_per_batch[:-1] == s).all()  # exact in every batch but the last round's
        assert synthetic_per_batch[-1] >= s  # which fills its spare real slots with generated clips
    flat = np.concatenate(ranks)
    real = flat[flat < len(REAL)]
    assert sorted(real) == list(range(len(REAL)))  # every real clip exactly once over all ranks
    uses = np.bincount(flat[flat >= len(REAL)] - len(REAL), minlength=len(SYNTHETIC))
    if len(flat) - len(REAL) <= len(SYNTHETIC):
        assert len(set(flat)) == len(flat)  # no clip twice in the epoch, within or across ranks
    else:  # the epoch needs more generated clips than there are: each is used as often as any other, +-1
        assert uses.max() - uses.min() <= 1
    spare = rounds * world * (batch - s) - len(REAL)  # real slots of the last round left over
    assert 0 <= spare < world * (batch - s)
    assert realised_fraction(flat, len(REAL)) == pytest.approx((rounds * world * s + spare) / len(flat))
    assert abs(realised_fraction(flat, len(REAL)) - fraction) <= spare / len(flat) + 1e-9


@pytest.mark.parametrize("world", [1, 2, 4])
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.8])
def test_epoch_rule_holds_the_fraction_over_the_epoch(fraction, world):
    real, synthetic = np.zeros(1000, dtype=int), np.zeros(300, dtype=int)
    samplers = [MixedSampler(real, synthetic, 16, "epoch", fraction, num_replicas=world, rank=r) for r in range(world)]
    flat = np.concatenate(_epoch(samplers, epoch=0))
    assert sorted(flat[flat < 1000]) == list(range(1000))  # each real clip once
    # m = round(f / (1 - f) * n_r) generated clips, + < world padding: within 1 clip + padding of f
    m = round(fraction / (1 - fraction) * 1000)
    assert m <= (flat >= 1000).sum() < m + world
    assert abs(realised_fraction(flat, 1000) - fraction) < (world + 1) / len(flat)
    # the batches mix the sources at random around f (not sorted by source)
    batches = flat[: len(flat) // 16 * 16].reshape(-1, 16)
    per_batch = (batches >= 1000).mean(axis=1)
    assert per_batch.std() > 0 and abs(per_batch.mean() - fraction) < 0.05


def test_epoch_rule_draws_a_new_subset_of_generated_clips_each_epoch_without_repeats():
    samplers = _samplers("epoch", 1, synthetic_fraction=0.2)  # 80 real -> 20 of the 96 generated per epoch
    draws = [set(e[e >= len(REAL)].tolist()) for e in (_epoch(samplers, epoch)[0] for epoch in range(4))]
    assert all(len(d) == 20 for d in draws)  # 20 distinct clips: none twice in an epoch
    assert len(set.union(*draws)) > 20  # other clips in other epochs


@pytest.mark.parametrize("world", [1, 3])
def test_concat_serves_every_clip_of_both_sources_once(world):
    flat = np.concatenate(_epoch(_samplers("concat", world), epoch=1))
    counts = Counter(flat.tolist())
    assert set(counts) == set(range(len(REAL) + len(SYNTHETIC)))
    padding = (-(len(REAL) + len(SYNTHETIC))) % world
    assert sum(n - 1 for n in counts.values()) == padding < world  # as DistributedSampler pads
    assert realised_fraction(flat, len(REAL)) == pytest.approx((len(SYNTHETIC) + padding) / len(flat))


def test_class_balanced_draws_fewer_clips_than_classes_from_distinct_classes():
    rng = np.random.default_rng(0)
    drawn = _draw(np.repeat(np.arange(6), [40, 20, 10, 5, 3, 2]), 4, rng, balanced=True)
    assert len(drawn) == 4 and len(set(REAL[drawn].tolist())) == 4


def test_class_balanced_draws_every_class_of_each_source_equally_often():
    flat = _epoch(_samplers("batch", 1, class_balanced=True, synthetic_fraction=0.5), epoch=0)[0]
    real = np.bincount(REAL[flat[flat < len(REAL)]], minlength=6)
    synthetic = np.bincount(SYNTHETIC[flat[flat >= len(REAL)] - len(REAL)], minlength=6)
    assert real.sum() == len(REAL) and real.max() - real.min() <= 1  # 80 draws: 13 or 14 per class
    assert synthetic.max() - synthetic.min() <= 1
    # class 5 has 2 real clips drawn ~13 times: each is drawn 6 or 7 times (cycling, not one clip 13 times)
    tail = Counter(flat[np.isin(flat, np.flatnonzero(REAL == 5))].tolist())
    assert sorted(tail.values()) in ([6, 7], [7, 7], [6, 6], [7, 6])


def test_bad_mixing_settings_are_refused_with_the_option_to_change():
    with pytest.raises(ValueError, match=r"`--data.mix` must be one of batch, epoch, concat"):
        MixedSampler(REAL, SYNTHETIC, 8, rule="interleave")
    with pytest.raises(ValueError, match=r"synthetic_fraction` must be in \[0, 1\).*`synthetic` source"):
        MixedSampler(REAL, SYNTHETIC, 8, synthetic_fraction=1.0)
    with pytest.raises(ValueError, match=r"leaves no real clip per batch.*--data.mix epoch"):
        MixedSampler(REAL, SYNTHETIC, 2, synthetic_fraction=0.8)
    with pytest.raises(ValueError, match=r"synthetic set is empty"):
        MixedSampler(REAL, [], 8, synthetic_fraction=0.5)
    with pytest.raises(ValueError, match=r"real training list is empty"):
        MixedSampler([], SYNTHETIC, 8)


# ---------------------------------------------------------------------------------------- DDP shards


@pytest.mark.parametrize("rule", ["batch", "epoch", "concat"])
def test_ranks_get_disjoint_shares_of_both_sources(rule):
    world = 4
    ranks = _epoch(_samplers(rule, world), epoch=2)
    assert len({len(r) for r in ranks}) == 1  # the same number of batches on every rank
    for r in ranks:  # every rank sees both sources
        assert (r < len(REAL)).any() and (r >= len(REAL)).any()
    shares = [set(r.tolist()) for r in ranks]
    overlap = sum(len(a & b) for i, a in enumerate(shares) for b in shares[i + 1 :])
    assert overlap <= (world - 1 if rule == "concat" else 0)  # only concat's padding may repeat a clip
    flat = np.concatenate(ranks)
    assert set(flat[flat < len(REAL)].tolist()) == set(range(len(REAL)))  # together they serve every real clip


def test_lightning_does_not_wrap_the_sampler():
    """Lightning re-shards a DataLoader's sampler under DDP unless it is a DistributedSampler."""
    from torch.utils.data import DistributedSampler

    assert isinstance(_samplers("batch", 2)[1], DistributedSampler)


# ---------------------------------------------------------------------------------------- determinism and resume


def test_an_epoch_is_a_function_of_seed_and_epoch():
    first, again = _samplers("batch", 2), _samplers("batch", 2)
    for epoch in (0, 5):
        assert all(np.array_equal(a, b) for a, b in zip(_epoch(first, epoch), _epoch(again, epoch)))
    assert not np.array_equal(_epoch(first, 0)[0], _epoch(first, 1)[0])
    other_seed = _samplers("batch", 2, seed=8)
    assert not np.array_equal(_epoch(first, 0)[0], _epoch(other_seed, 0)[0])


class _Indexed(Dataset):
    """Samples that name themselves: {"index": i, "uncertainty": u}."""

    def __init__(self, n: int, uncertainty: float):
        self.n, self.uncertainty = n, uncertainty

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return {"index": i, "uncertainty": self.uncertainty, "x": torch.full((2,), float(i))}


def _loader(epoch_rule: str = "batch", **kwargs) -> MixedDataLoader:
    dataset = MixedDataset(_Indexed(len(REAL), math.nan), _Indexed(len(SYNTHETIC), 0.5))
    sampler = MixedSampler(REAL, SYNTHETIC, batch_size=8, rule=epoch_rule, seed=3)
    return MixedDataLoader(dataset, sampler, **kwargs)


def _ids(batch: dict) -> list[tuple[bool, int]]:
    return list(zip(batch["synthetic"].tolist(), batch["index"].tolist()))


def test_loader_state_resumes_the_epoch_after_the_served_batches():
    loader = _loader()
    loader.sampler.set_epoch(2)
    full = [_ids(b) for b in loader]
    partial = iter(loader)
    served = [_ids(next(partial)) for _ in range(5)]
    state = loader.state_dict()
    assert state["epoch"] == 2 and state["batches"] == 5 and served == full[:5]

    resumed = _loader()  # a fresh process: same data, same seed
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(2)  # as Lightning does after loading the state
    assert [_ids(b) for b in resumed] == full[5:]
    assert resumed.state_dict()["batches"] == len(loader)
    assert [_ids(b) for b in resumed] == full  # only the resumed epoch skips


def test_state_of_an_ended_epoch_or_another_layout_starts_the_epoch_from_its_first_batch(caplog):
    loader = _loader()
    ended = {**loader.state_dict(), "batches": len(loader)}
    resumed = _loader()
    resumed.load_state_dict(ended)
    resumed.sampler.set_epoch(1)
    assert len(list(resumed)) == len(loader)
    changed = _loader()
    changed.load_state_dict({**ended, "batches": 3, "layout": {**ended["layout"], "batch_size": 4}})
    assert len(list(changed)) == len(loader) and "layout" in caplog.text


class _Crash(Exception):
    pass


class _Recorder(L.LightningModule):
    """Records every training sample's (source, index); fails once after `crash_at` batches of epoch 1."""

    def __init__(self, crash_at: int | None = None):
        super().__init__()
        self.layer = nn.Linear(2, 1)
        self.seen: list[tuple[int, list]] = []
        self.crash_at = crash_at

    def training_step(self, batch, batch_idx):
        if self.crash_at is not None and self.current_epoch == 1 and batch_idx == self.crash_at:
            raise _Crash  # the process dies; last.ckpt is from after batch crash_at - 1
        self.seen.append((self.current_epoch, _ids(batch)))
        return self.layer(batch["x"]).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Data(L.LightningDataModule):
    def train_dataloader(self):
        return _loader()


def _fit(root: Path, model: _Recorder, ckpt_path: str | None = None) -> L.Trainer:
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(dirpath=root, save_last=True, save_top_k=0, every_n_train_steps=1)
    trainer = L.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[checkpoint],
    )
    trainer.fit(model, datamodule=_Data(), ckpt_path=ckpt_path)
    return trainer


def test_a_fit_killed_mid_epoch_resumes_on_the_clips_an_uninterrupted_fit_sees(tmp_path):
    L.seed_everything(3)
    whole = _Recorder()
    _fit(tmp_path / "whole", whole)
    L.seed_everything(3)
    crashed = _Recorder(crash_at=4)
    with pytest.raises(_Crash):
        _fit(tmp_path / "crash", crashed)
    assert len(crashed.seen) == len(whole.seen) // 3 + 4  # epoch 0 and 4 batches of epoch 1
    state = torch.load(tmp_path / "crash/last.ckpt", weights_only=False)["loops"]["fit_loop"]["state_dict"]
    state = state["combined_loader"]
    assert state[0]["epoch"] == 1 and state[0]["batches"] == 4
    resumed = _Recorder()
    _fit(tmp_path / "crash", resumed, ckpt_path=str(tmp_path / "crash/last.ckpt"))
    assert crashed.seen + resumed.seen == whole.seen  # the same batches in the same order, none twice


# ---------------------------------------------------------------------------------------- long-tail top-up


def test_topup_fills_each_class_to_the_target_or_gives_all_it_has():
    real = {0: 40, 1: 20, 2: 10, 3: 5, 4: 3, 5: 2, 6: 0}
    synthetic = [c for c, n in {0: 8, 1: 30, 2: 30, 3: 12, 4: 30, 5: 4, 6: 30}.items() for _ in range(n)]
    kept = topup(synthetic, real, target=25, seed=1)
    added = Counter(synthetic[i] for i in kept)
    # exactly the target where enough clips exist; all of them where fewer; none at or above it
    assert {c: real[c] + added[c] for c in real} == {0: 40, 1: 25, 2: 25, 3: 17, 4: 25, 5: 6, 6: 25}
    assert added[0] == 0 and added[3] == 12 and added[5] == 4
    assert kept == sorted(set(kept)) and kept == topup(synthetic, real, target=25, seed=1)  # seeded, in order
    assert kept != topup(synthetic, real, target=25, seed=2)
    assert topup_target(real, "max") == 40
    assert Counter(synthetic[i] for i in topup(synthetic, real, "max")) == {1: 20, 2: 30, 3: 12, 4: 30, 5: 4, 6: 30}
    with pytest.raises(ValueError, match=r"'max' or a positive int"):
        topup(synthetic, real, target=0)


# ---------------------------------------------------------------------------------------- the datamodule


def _frame_folder(folder: Path, value: int) -> None:
    folder.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(folder / f"{i:03d}.png")


@pytest.fixture
def world(tmp_path: Path) -> dict:
    """Three classes; a long-tailed real list (6, 3, 1 clips) of frame folders and 4 scored generated clips
    per class (u = 0.1 * clip number), one of them unreadable."""
    (tmp_path / "labels.csv").write_text("id,name\n0,a\n1,b\n2,c\n")
    _frame_folder(tmp_path / "real" / "clip", 10)
    (tmp_path / "splits").mkdir()
    lines = [f"clip {c}" for c, n in enumerate([6, 3, 1]) for _ in range(n)]
    (tmp_path / "splits" / "train_lt.txt").write_text("\n".join(lines) + "\n")
    rows = []
    for i in range(12):
        video = "videos/broken.mp4" if i == 5 else "videos/clip"
        rows.append(
            {
                "row_id": f"r{i}",
                "class_id": i // 4,
                "class_name": "abc"[i // 4],
                "strategy": "ie",
                "prompt": "p",
                "seed": i,
                "video": video,
                "num_frames": 4,
                "fps": 8.0,
                "width": 8,
                "height": 8,
                "backend": "procedural",
                "uncertainty": 0.1 * (i % 4),
            }
        )
    _frame_folder(tmp_path / "synthetic" / "videos" / "clip", 200)
    (tmp_path / "synthetic" / "videos" / "broken.mp4").write_bytes(b"garbage" * 20)
    (tmp_path / "synthetic" / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return dict(
        label_file=str(tmp_path / "labels.csv"),
        video_root=str(tmp_path / "real"),
        split_dir=str(tmp_path / "splits"),
        synthetic_manifest=str(tmp_path / "synthetic/manifest.jsonl"),
        num_frames=4,
        image_size=8,
        num_workers=0,
    )


def test_mixed_batches_carry_origin_and_uncertainty_and_skip_within_their_source(world, caplog):
    dm = ActionDataModule(**world, batch_size=4, mix="batch", synthetic_fraction=0.5, on_error="skip")
    dm.set_phase("mixed", "train_lt.txt")
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader, ResumableLoader) and len(loader.sampler) == 20  # 10 real in 5 batches of 2 + 2 generated
    batches = list(loader)
    for batch in batches:
        synthetic = batch["synthetic"]
        assert synthetic.dtype == torch.bool and synthetic.sum() == 2
        # uncertainty comes from the clip served: a skipped generated clip was replaced by a generated one
        assert batch["uncertainty"][~synthetic].isnan().all() and not batch["uncertainty"][synthetic].isnan().any()
    served = sum(len(b["label"]) for b in batches)
    assert served == 20 and all("skipped" not in b for b in batches)  # markers counted, never fed to the model
    every = ActionDataModule(**world, batch_size=4, mix="concat", on_error="skip")  # serves every clip once
    every.set_phase("mixed", "train_lt.txt")
    every.setup("fit")
    batches = list(every.train_dataloader())
    assert sum(len(b["label"]) for b in batches) == 22 and sum(int(b["synthetic"].sum()) for b in batches) == 12
    report = every.skip_report()  # the broken generated clip: counted once, named, replaced by a generated one
    assert report["skipped_reads"] == 1 and [Path(f).name for f in report["files"]] == ["broken.mp4"]
    strict = ActionDataModule(**world, batch_size=4, mix="concat")
    strict.set_phase("mixed", "train_lt.txt")
    strict.setup("fit")
    with pytest.raises(Exception, match=r"broken\.mp4"):  # concat serves every clip, the broken one included
        list(strict.train_dataloader())


def test_mixed_topup_trains_on_the_long_tailed_list_plus_the_clips_each_class_lacks(world):
    dm = ActionDataModule(**world, batch_size=4, mix="concat", synthetic_topup="max")
    dm.set_phase("mixed", "train_lt.txt")
    dm.setup("fit")
    dataset = dm.datasets["train"]
    real = Counter(c.label for c in dataset.real.clips)
    added = Counter(c.label for c in dataset.synthetic.clips)
    assert real == {0: 6, 1: 3, 2: 1} and added == {1: 3, 2: 4}  # target 6: class 1 exactly, class 2 all it has
    assert len(dm.train_dataloader()) == math.ceil(17 / 4)
    dm.check_uncertainty("ul")  # the generated clips are scored; real clips need no score
    again = ActionDataModule(**world, batch_size=4, mix="concat", synthetic_topup="max")
    again.set_phase("mixed", "train_lt.txt")
    again.setup("fit")
    assert again.datasets["train"].clips == dataset.clips  # the same top-up every run


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mix": "zip"}, r"`--data.mix` must be one of batch, epoch, concat, got 'zip'"),
        ({"synthetic_fraction": 1.0}, r"`--data.synthetic_fraction` must be in \[0, 1\)"),
        ({"synthetic_topup": 0}, r"`--data.synthetic_topup`: .*'max' or a positive int"),
        ({"synthetic_topup": "head"}, r"`--data.synthetic_topup`: .*got 'head'"),
    ],
)
def test_bad_mixed_options_fail_at_construction(world, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ActionDataModule(**world, **kwargs)


def test_unknown_source_is_refused(world):
    with pytest.raises(ValueError, match=r"train source must be one of real, synthetic, mixed"):
        ActionDataModule(**world).set_phase("both")


# ---------------------------------------------------------------------------------------- per-source losses


def test_per_source_loss_selection_by_value(world):
    """The module's contract: real clips of a mixed batch take `loss` (CE), generated ones `synthetic_loss`
    (UL, w = 0.3: eps_i = 0.3 * u_i), selected by the batch's `synthetic` key."""
    dm = ActionDataModule(**world, batch_size=4, mix="batch", synthetic_fraction=0.5, on_error="skip")
    dm.set_phase("mixed", "train_lt.txt")
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    synthetic, labels, u = (torch.cat([b[key] for b in batches]) for key in ("synthetic", "label", "uncertainty"))
    logits = torch.randn(len(labels), 3, generator=torch.Generator().manual_seed(0))
    real_loss, real_eps = action_loss(logits[~synthetic], labels[~synthetic], u[~synthetic], LossConfig("ce"))
    syn_loss, syn_eps = action_loss(logits[synthetic], labels[synthetic], u[synthetic], LossConfig("ul"))
    logp = logits.log_softmax(-1)
    nll = -logp[torch.arange(len(labels)), labels]
    off = (-logp.sum(-1) - nll) / 2  # mean -log p over the K - 1 = 2 other classes
    eps = 0.3 * u.nan_to_num(0.0)
    assert real_loss.item() == pytest.approx(nll[~synthetic].mean().item(), rel=1e-6) and real_eps == 0
    expected = ((1 - eps) * nll + eps * off)[synthetic].mean()
    assert syn_loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert syn_eps.item() == pytest.approx(eps[synthetic].mean().item(), rel=1e-6)
    assert eps[synthetic].max() > 0  # the uncertainty of generated clips reached the loss


def test_worker_processes_serve_the_same_batches_and_resume_the_same_way():
    """The sampler runs in the main process: workers (persistent, as the datamodule makes them) change nothing."""
    single, workers = _loader(), _loader(num_workers=2, persistent_workers=True)
    for epoch in (0, 1):
        single.sampler.set_epoch(epoch)
        workers.sampler.set_epoch(epoch)
        assert [_ids(b) for b in workers] == [_ids(b) for b in single]
    resumed = _loader(num_workers=2, persistent_workers=True)
    resumed.load_state_dict({**single.state_dict(), "batches": 3})
    resumed.sampler.set_epoch(1)
    assert [_ids(b) for b in resumed] == [_ids(b) for b in single][3:]


def test_uncertainty_losses_check_only_the_generated_clips_of_a_mixed_phase(world):
    manifest = Path(world["synthetic_manifest"])
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    manifest.write_text("".join(json.dumps({**r, "uncertainty": None}) + "\n" for r in rows))
    dm = ActionDataModule(**world, mix="concat", synthetic_topup="max")
    dm.set_phase("mixed", "train_lt.txt")
    with pytest.raises(ValueError, match=r"needs CLIP uncertainty, but 7 of 7 clips .* generation score"):
        dm.check_uncertainty("ul")  # the 7 top-up clips; the 10 real clips need no score
