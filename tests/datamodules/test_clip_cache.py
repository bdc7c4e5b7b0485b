"""datamodules/clip_cache.py: decoded clips kept in memory give the same samples, decoded once, within budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import datamodules.datasets as datasets
from datamodules.clip_cache import ClipCache
from datamodules.datasets import Clip, VideoDataset, scan_clips
from datamodules.transforms import VideoTransform


def _clips(shared_data: Path, n: int = 4) -> list[Clip]:
    """Real HMDB-51 .avi clips (AVI with B-frames: decoded forward, the hardest case for 'same frames')."""
    files = sorted((shared_data / "real_clips/hmdb51").rglob("*.avi"))[:n]
    assert len(files) == n
    return [Clip(path, i) for i, path in enumerate(files)]


def _epochs(dataset: VideoDataset, epochs: int, seed: int = 7) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    return [dataset[i]["video"] for _ in range(epochs) for i in range(len(dataset))]


@pytest.fixture
def decodes(monkeypatch) -> list[Path]:
    """Every file that `datasets` decodes (through read_clip or decode_frames), in order."""
    seen: list[Path] = []
    for name in ("read_clip", "decode_frames"):
        original = getattr(datasets, name)

        def counted(path, *args, _original=original, **kwargs):
            seen.append(Path(path))
            return _original(path, *args, **kwargs)

        monkeypatch.setattr(datasets, name, counted)
    return seen


@pytest.mark.parametrize("train", [True, False])
def test_cached_samples_equal_decoded_ones_and_each_clip_is_decoded_once(shared_data, decodes, train):
    clips = _clips(shared_data)
    transform = VideoTransform(train=train, size=32, color_jitter=0.8, grayscale=0.2)
    plain = _epochs(VideoDataset(clips, 8, transform, num_views=2), epochs=2)
    decodes.clear()
    cache = ClipCache(256 * 2**20)
    cached = _epochs(VideoDataset(clips, 8, transform, num_views=2, cache=cache), epochs=2)
    assert len(plain) == len(cached) == 8
    for a, b in zip(plain, cached):
        assert torch.equal(a, b)  # same random offsets, crops and colours drawn, same frames
    if train:  # the two epochs drew different offsets: the cache held the whole clip, not one sample
        assert any(not torch.equal(plain[i], plain[i + 4]) for i in range(4))
    assert decodes == [c.path for c in clips] and len(cache) == 4 and 0 < cache.used <= cache.budget


def test_a_full_cache_decodes_the_rest_per_read_with_the_same_samples(shared_data, decodes):
    clips = _clips(shared_data)
    transform = VideoTransform(train=True, size=32)
    plain = _epochs(VideoDataset(clips, 8, transform), epochs=2)
    first = datasets.decode_frames(clips[0].path, range(2), short_side=transform.short_side, exact_size=False)
    cache = ClipCache(1)  # nothing fits: the first clip is decoded whole once, then per read as without a cache
    decodes.clear()
    cached = _epochs(VideoDataset(clips, 8, transform, cache=cache), epochs=2)
    assert all(torch.equal(a, b) for a, b in zip(plain, cached))
    assert cache.full and len(cache) == 0 and cache.used == 0 and first.nbytes > 1
    assert len(decodes) == 1 + 7  # the first read decodes the whole clip (it does not fit), the other 7 per read


def test_evaluation_check_fills_the_cache_and_the_test_reads_nothing_again(shared_data, decodes, tmp_path):
    clips = _clips(shared_data, 3)
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"not a video")
    dataset = VideoDataset([*clips, Clip(broken, 0)], 8, VideoTransform(train=False, size=32), num_views=2)
    dataset.cache = ClipCache(64 * 2**20)
    bad = scan_clips(dataset)
    assert [(clip.path, "broken" in str(clip.path)) for clip, _ in bad] == [(broken, True)] and bad[0][1]
    dataset.clips = clips
    decodes.clear()
    reference = VideoDataset(clips, 8, VideoTransform(train=False, size=32), num_views=2)
    for i in range(len(clips)):
        assert torch.equal(dataset[i]["video"], reference[i]["video"])
    assert decodes == [c.path for c in clips]  # only the uncached reference decoded


def test_budget_is_checked_and_split_over_workers(tmp_path):
    from datamodules.action import ActionDataModule

    with pytest.raises(ValueError, match="decode_cache_mb` must be >= 0"):
        ActionDataModule(label_file="x.csv", decode_cache_mb=-1)
    assert ActionDataModule(label_file="x.csv", decode_cache_mb=0).clip_cache() is None
    cache = ActionDataModule(label_file="x.csv", decode_cache_mb=64, num_workers=4).clip_cache()
    assert cache.budget == 16 * 2**20
    with pytest.raises(ValueError, match="budget must be >= 0"):
        ClipCache(-1)
    small = ClipCache(100)
    assert small.put("a", np.zeros(60, np.uint8)) and not small.put("b", np.zeros(60, np.uint8))
    assert small.full and small.get("a") is not None and small.get("b") is None
