"""Clip-level augmentation for video classifiers: one random crop, flip and colour change per clip.

`VideoTransform` turns a decoded uint8 clip `(T, H, W, 3)` into a normalised float tensor `(T, 3, size,
size)`. Training uses the TSN multi-scale crop and a horizontal flip; test uses a resize plus centre crop.
Every random choice is drawn once per clip and applied to all of its frames, from torch's global RNG (so
DataLoader's per-worker seeding applies) or from a generator passed to the call.
"""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# TSN multi-scale crop: crop sides are these fractions of the short side, height and width at most one
# step apart (TSN's max_distort=1), so aspect ratios stay between 0.66 / 0.875 and 0.875 / 0.66.
CROP_SCALES = (1.0, 0.875, 0.75, 0.66)
# Colour-jitter strengths (torchvision ColorJitter semantics), used with probability `color_jitter`: TC-CLIP's
# (datasets/pipeline.py ColorJitter: brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1). The reference
# draws them per frame in torchvision's random order; here one draw per clip in a fixed order, so a clip's
# frames stay consistent, applied to float frames (no rounding to uint8 between the steps).
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0.4, 0.4, 0.2, 0.1


def shift_hue(x: torch.Tensor, shift: float) -> torch.Tensor:
    """torchvision's `adjust_hue` for float RGB in [0, 1] (..., 3, H, W): the HSV hue moved by `shift` (a
    fraction of the circle), saturation and value kept; computed in closed form on (max, chroma) instead of
    torchvision's HSV round trip (~2x faster, equal to ~2e-6)."""
    r, g, b = x.unbind(-3)
    high, low = x.amax(-3), x.amin(-3)
    chroma = high - low
    divisor = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    # hue in sixths of the circle, [0, 6): red 0, green 2, blue 4 (grey: 0, and chroma 0 keeps it grey)
    hue = torch.where(
        high == r, (g - b) / divisor, torch.where(high == g, 2 + (b - r) / divisor, 4 + (r - g) / divisor)
    )
    hue = torch.remainder(hue + 6 * shift, 6)
    # channel c = value - chroma * clamp(min(k, 4 - k), 0, 1) with k = (n + hue) mod 6, n = 5 (R), 3 (G), 1 (B)
    out = []
    for n in (5, 3, 1):
        k = torch.remainder(hue + n, 6)
        out.append(high - chroma * torch.clamp(torch.minimum(k, 4 - k), 0, 1))
    return torch.stack(out, dim=-3)


class VideoTransform:
    """Crop, flip and normalise a clip; the same geometry and colour change for every frame.

    Args:
        train: random multi-scale crop, flip and optional colour jitter/greyscale if True; resize and
            centre crop if False.
        size: side of the square output frames.
        short_side: the clip's shorter side is resized to this before cropping; default
            `round(size * 256 / 224)` (256 for size 224).
        mean: per-channel RGB mean in [0, 1], subtracted after scaling to [0, 1] (default: CLIP's).
        std: per-channel RGB std in [0, 1] (default: CLIP's).
        flip: flip the clip horizontally with probability 0.5 in training.
        crop_scales: sides of the training crop as fractions of the short side (TSN's multi-scale crop; height
            and width at most one step apart); `(1.0,)` crops the full short side at a random place.
        color_jitter: probability of a random brightness/contrast/saturation/hue change in training.
        grayscale: probability of converting the clip to greyscale (3 equal channels) in training.
    """

    def __init__(
        self,
        train: bool,
        size: int = 224,
        short_side: int | None = None,
        mean: tuple[float, float, float] = CLIP_MEAN,
        std: tuple[float, float, float] = CLIP_STD,
        flip: bool = True,
        crop_scales: tuple[float, ...] = CROP_SCALES,
        color_jitter: float = 0.0,
        grayscale: float = 0.0,
    ) -> None:
        if short_side is None:
            short_side = round(size * 256 / 224)
        if short_side < size:
            raise ValueError(f"short_side ({short_side}) must be >= size ({size}) to crop a {size}px square")
        if not crop_scales or not all(0.0 < c <= 1.0 for c in crop_scales):
            raise ValueError(f"crop_scales are fractions of the short side in (0, 1], got {crop_scales}")
        for name, p in (("color_jitter", color_jitter), ("grayscale", grayscale)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1], got {p}")
        self.train = train
        self.size = size
        self.short_side = short_side
        self.mean = list(mean)
        self.std = list(std)
        self.flip = flip
        self.crop_scales = tuple(crop_scales)
        self.color_jitter = color_jitter
        self.grayscale = grayscale

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(train={self.train}, size={self.size}, short_side={self.short_side}, "
            f"flip={self.flip}, crop_scales={self.crop_scales}, color_jitter={self.color_jitter}, grayscale={self.grayscale})"
        )

    def __call__(self, clip: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Transform one clip.

        Args:
            clip: uint8 tensor (T, H, W, 3), RGB.
            generator: source of randomness; torch's global RNG if None.

        Returns:
            float32 tensor (T, 3, size, size), normalised with mean/std.
        """
        if clip.dtype != torch.uint8 or clip.ndim != 4 or clip.shape[-1] != 3:
            raise ValueError(f"expected a uint8 (T, H, W, 3) clip, got {clip.dtype} {tuple(clip.shape)}")
        x = clip.permute(0, 3, 1, 2)  # (T, H, W, 3) -> (T, 3, H, W)
        height, width = x.shape[-2:]

        # 1. Crop box in the frame resized to `short_side`, mapped back to input pixels: one resize only.
        scale = self.short_side / min(height, width)
        if self.train:
            top, left, box_h, box_w = self._random_box(round(height * scale), round(width * scale), generator)
        else:
            top = (round(height * scale) - self.size) // 2
            left = (round(width * scale) - self.size) // 2
            box_h = box_w = self.size
        x = F.resized_crop(
            x,
            top=round(top / scale),
            left=round(left / scale),
            height=max(1, round(box_h / scale)),
            width=max(1, round(box_w / scale)),
            size=[self.size, self.size],
            antialias=True,
        ).contiguous()  # (T, 3, size, size) uint8; the crop keeps the clip's channels-last strides, on which
        # the float normalisation below ran ~6x slower (4 of a transform's 7 ms at 16 x 224 x 224)

        # 2. Flip and colour, one draw per clip; colour in float (torchvision's uint8 colour ops convert to float
        # and back at every step: ~10x slower).
        if self.train and self.flip and self._coin(0.5, generator):
            x = F.horizontal_flip(x)
        x = F.to_dtype(x, torch.float32, scale=True)  # [0, 255] -> [0, 1]
        if self.train:
            if self._coin(self.color_jitter, generator):
                x = self._jitter(x, generator)
            if self._coin(self.grayscale, generator):
                x = F.rgb_to_grayscale(x, num_output_channels=3)

        # 3. Normalise.
        return F.normalize(x, mean=self.mean, std=self.std)

    def _random_box(self, height: int, width: int, generator: torch.Generator | None) -> tuple[int, int, int, int]:
        """TSN multi-scale crop box (top, left, h, w) inside a height x width frame."""
        base = min(height, width)
        sides = [max(1, int(base * s)) for s in self.crop_scales]
        pairs = [(h, w) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= 1]
        box_h, box_w = pairs[self._randint(len(pairs), generator)]
        top = self._randint(height - box_h + 1, generator)
        left = self._randint(width - box_w + 1, generator)
        return top, left, box_h, box_w

    def _jitter(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Random brightness, contrast, saturation and hue change (fixed order), same for all frames."""

        def factor(strength: float) -> float:
            return 1.0 + strength * (2.0 * self._uniform(generator) - 1.0)

        x = F.adjust_brightness(x, factor(BRIGHTNESS))
        x = F.adjust_contrast(x, factor(CONTRAST))
        x = F.adjust_saturation(x, factor(SATURATION))
        return shift_hue(x, HUE * (2.0 * self._uniform(generator) - 1.0))

    @staticmethod
    def _uniform(generator: torch.Generator | None) -> float:
        return torch.rand((), generator=generator).item()

    @classmethod
    def _coin(cls, p: float, generator: torch.Generator | None) -> bool:
        return p > 0 and cls._uniform(generator) < p

    @staticmethod
    def _randint(high: int, generator: torch.Generator | None) -> int:
        return int(torch.randint(high, (), generator=generator).item())
