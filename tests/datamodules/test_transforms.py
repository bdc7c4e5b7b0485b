"""datamodules/transforms.py: output layout, normalisation values, one geometry per clip, determinism."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as F

from datamodules.transforms import (
    BRIGHTNESS,
    CLIP_MEAN,
    CLIP_STD,
    CONTRAST,
    CROP_SCALES,
    HUE,
    SATURATION,
    VideoTransform,
    shift_hue,
)


def _clip(t: int = 8, h: int = 60, w: int = 90, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (t, h, w, 3), dtype=torch.uint8, generator=generator)  # (T, H, W, 3)


@pytest.mark.parametrize("train", [True, False])
def test_output_shape_and_dtype(train: bool) -> None:
    out = VideoTransform(train=train, size=32)(_clip())
    assert out.shape == (8, 3, 32, 32) and out.dtype == torch.float32


def test_default_short_side_scales_with_size() -> None:
    assert VideoTransform(train=False).short_side == 256
    assert VideoTransform(train=False, size=112).short_side == 128
    with pytest.raises(ValueError, match="short_side"):
        VideoTransform(train=False, size=224, short_side=200)


@pytest.mark.parametrize("train", [True, False])
def test_constant_colour_normalises_to_hand_computed_values(train: bool) -> None:
    clip = torch.empty(4, 50, 70, 3, dtype=torch.uint8)
    clip[:] = torch.tensor([200, 100, 50], dtype=torch.uint8)
    out = VideoTransform(train=train, size=32)(clip)
    expected = [
        (200 / 255 - 0.48145466) / 0.26862954,
        (100 / 255 - 0.4578275) / 0.26130258,
        (50 / 255 - 0.40821073) / 0.27577711,
    ]
    assert expected == pytest.approx([1.1274, -0.2513, -0.7692], abs=1e-4)
    for c in range(3):
        torch.testing.assert_close(out[:, c], torch.full_like(out[:, c], expected[c]), atol=1e-5, rtol=0)


def test_custom_mean_std() -> None:
    clip = torch.full((2, 40, 40, 3), 255, dtype=torch.uint8)
    out = VideoTransform(train=False, size=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))(clip)
    torch.testing.assert_close(out.amax(dim=(0, 2, 3)), torch.tensor([2.0, 1.0, 0.5]))
    torch.testing.assert_close(out.amin(dim=(0, 2, 3)), torch.tensor([2.0, 1.0, 0.5]))


@pytest.mark.parametrize("seed", range(10))
def test_train_applies_one_crop_flip_and_colour_to_every_frame(seed: int) -> None:
    clip = _clip(t=1, seed=seed).expand(6, -1, -1, -1)  # 6 identical frames
    transform = VideoTransform(train=True, size=32, color_jitter=1.0, grayscale=0.5)
    out = transform(clip, generator=torch.Generator().manual_seed(seed))
    for t in range(1, 6):
        torch.testing.assert_close(out[t], out[0], atol=0, rtol=0)


def test_flip_happens_about_half_the_time_and_only_when_enabled() -> None:
    clip = torch.zeros(2, 40, 40, 3, dtype=torch.uint8)
    clip[:, :, 20:] = 255  # left black, right white

    def right_is_white(transform: VideoTransform, seed: int) -> bool:
        out = transform(clip, generator=torch.Generator().manual_seed(seed))
        return bool(out[0, 0, :, -1].mean() > out[0, 0, :, 0].mean())

    flips = [not right_is_white(VideoTransform(train=True, size=32), s) for s in range(200)]
    assert 60 < sum(flips) < 140
    assert not any(not right_is_white(VideoTransform(train=True, size=32, flip=False), s) for s in range(50))


def test_multi_scale_crop_boxes_use_tsn_scales() -> None:
    transform = VideoTransform(train=True, size=32)
    generator = torch.Generator().manual_seed(0)
    sides = {int(100 * s) for s in CROP_SCALES}  # short side 100 -> {100, 87, 75, 66}
    seen = set()
    for _ in range(500):
        top, left, h, w = transform._random_box(100, 150, generator)
        assert h in sides and w in sides
        assert abs(sorted(sides, reverse=True).index(h) - sorted(sides, reverse=True).index(w)) <= 1
        assert 0 <= top <= 100 - h and 0 <= left <= 150 - w
        seen.add((h, w))
    assert len(seen) == 10  # 4 square + 6 one-step-distorted boxes all occur


def test_train_is_random_but_reproducible() -> None:
    transform = VideoTransform(train=True, size=32)
    clip = _clip()
    a = transform(clip, generator=torch.Generator().manual_seed(1))
    b = transform(clip, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    torch.manual_seed(2)
    c = transform(clip)
    torch.manual_seed(2)
    torch.testing.assert_close(transform(clip), c, atol=0, rtol=0)  # global RNG, as in DataLoader workers
    outs = {transform(clip, generator=torch.Generator().manual_seed(s)).sum().item() for s in range(10)}
    assert len(outs) > 5


def test_test_mode_is_a_deterministic_centre_crop() -> None:
    # already at the short side (37 = round(32 * 256 / 224)): the output is the centre 32x32, unresized
    clip = _clip(t=3, h=37, w=64)
    transform = VideoTransform(train=False, size=32)
    torch.manual_seed(0)
    a = transform(clip)
    torch.manual_seed(1)
    torch.testing.assert_close(transform(clip), a, atol=0, rtol=0)
    centre = clip[:, 2:34, 16:48].permute(0, 3, 1, 2).float() / 255  # (T, 3, 32, 32)
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(a, (centre - mean) / std, atol=1e-5, rtol=0)


def test_rejects_non_uint8_or_channels_first_input() -> None:
    transform = VideoTransform(train=False, size=32)
    with pytest.raises(ValueError, match="uint8"):
        transform(torch.zeros(4, 40, 40, 3))
    with pytest.raises(ValueError, match="uint8"):
        transform(torch.zeros(4, 3, 40, 40, dtype=torch.uint8))


def test_shift_hue_equals_torchvision_adjust_hue() -> None:
    x = torch.rand((4, 3, 20, 30), generator=torch.Generator().manual_seed(0))  # (T, C, H, W) in [0, 1]
    x[0, :, :5] = 0.5  # grey: no hue
    x[0, 0, 5:10], x[0, 1:, 5:10] = 1.0, 0.0  # pure red
    x[1, 1] = x[1, 0]  # red == green: ties between the max channels
    x[2] = (x[2] * 255).round() / 255  # values of a uint8 clip
    for shift in (-0.5, -0.1, -0.03, 0.0, 0.07, 0.1, 0.5):
        torch.testing.assert_close(shift_hue(x, shift), F.adjust_hue(x, shift), atol=1e-5, rtol=0)


def test_colour_jitter_is_torchvision_float_colour_ops_in_a_fixed_order() -> None:
    """Brightness, contrast, saturation, hue (TC-CLIP's strengths), on float frames: no uint8 rounding between
    the steps (torchvision's uint8 ops truncate each step, ~0.4/255 darker per step)."""
    x = torch.rand((4, 3, 16, 16), generator=torch.Generator().manual_seed(1))
    got = VideoTransform(train=True)._jitter(x, torch.Generator().manual_seed(7))
    u = torch.rand(4, generator=torch.Generator().manual_seed(7)).tolist()  # the same four draws
    expected = F.adjust_brightness(x, 1 + BRIGHTNESS * (2 * u[0] - 1))
    expected = F.adjust_contrast(expected, 1 + CONTRAST * (2 * u[1] - 1))
    expected = F.adjust_saturation(expected, 1 + SATURATION * (2 * u[2] - 1))
    expected = F.adjust_hue(expected, HUE * (2 * u[3] - 1))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("train", [True, False])
def test_output_is_contiguous(train: bool) -> None:
    """(T, 3, size, size) in standard layout: on the channels-last strides the crop of a (T, H, W, 3) clip keeps,
    the normalisation ran ~6x slower, and so would every later op."""
    out = VideoTransform(train=train, size=32)(_clip())
    assert out.is_contiguous()


def test_crop_scales_one_with_short_side_equal_to_size_keeps_the_whole_square_frame() -> None:
    """`crop_scales=(1.0,)` + `short_side=size` (ActionDataModule's `--data.crop_scales [1.0] --data.short_side`):
    a square clip is only resized (and maybe flipped), never cropped; the default scales do crop."""
    clip = torch.randint(0, 256, (4, 48, 48, 3), dtype=torch.uint8)
    whole = VideoTransform(train=False, size=32, short_side=32)(clip)
    keep = VideoTransform(train=True, size=32, short_side=32, crop_scales=(1.0,))
    for seed in range(6):
        out = keep(clip, torch.Generator().manual_seed(seed))
        assert torch.equal(out, whole) or torch.equal(out, whole.flip(-1))
    crop = VideoTransform(train=True, size=32, short_side=32, flip=False)
    outs = [crop(clip, torch.Generator().manual_seed(s)) for s in range(6)]
    assert any(not torch.equal(o, whole) for o in outs)
    with pytest.raises(ValueError, match=r"crop_scales are fractions of the short side in \(0, 1\], got \(0.0,\)"):
        VideoTransform(train=True, size=32, crop_scales=(0.0,))


def test_the_datamodule_passes_crop_scales_and_short_side_to_its_transforms() -> None:
    from datamodules.action import ActionDataModule

    dm = ActionDataModule(label_file="labels.csv", image_size=32, short_side=32, crop_scales=[1.0, 0.5])
    transform = dm._dataset([], train=True).transform
    assert (transform.crop_scales, transform.short_side, transform.size) == ((1.0, 0.5), 32, 32)
    assert dm._dataset([], train=False).transform.short_side == 32  # the test's centre crop keeps the whole side
    with pytest.raises(ValueError, match=r"`--data.crop_scales` are fractions of the short side in \(0, 1\]"):
        ActionDataModule(label_file="labels.csv", crop_scales=[1.5])
