"""Batch-level Mixup / CutMix for video clips, blending per-clip soft targets (TC-CLIP's training recipe).

TC-CLIP (naver-ai/tc-clip `datasets/blending.py`, from X-CLIP / ViFi-CLIP `CutmixMixupBlending`) mixes every
training batch: with probability `switch_prob` CutMix (one box, the same for every frame of every clip,
pasted from a shuffled copy of the batch; lambda ~ Beta(cutmix_alpha, cutmix_alpha) then corrected to the
box's true area), otherwise Mixup (lambda ~ Beta(mixup_alpha, mixup_alpha), clips blended pixel-wise). The
targets are its label-smoothed one-hots blended with the same lambda, trained with a soft-target
cross-entropy.

Here the targets being blended are whatever `losses.soft_targets` gave each clip: the reference's smoothed
one-hot for real clips, and UL's per-clip smoothing (eps_i = w u_i) for generated ones, so clip i mixed with
clip j gets target lam q_i + (1 - lam) q_j and loss weight lam w_i + (1 - lam) w_j (UW's weights; 1
otherwise). torchvision's `v2.MixUp` / `v2.CutMix` are not used: they pair clips by rolling the batch (not a
random permutation), build hard one-hots from integer labels (no per-clip smoothing) and draw a box per
call, so their semantics differ from the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MixupConfig:
    """Mixup / CutMix of training batches (defaults: TC-CLIP configs/aug/default_aug.yaml).

    Args:
        mixup_alpha: Beta(alpha, alpha) of Mixup's lambda; 0 disables Mixup (CutMix only).
        cutmix_alpha: Beta(alpha, alpha) of CutMix's lambda; 0 disables CutMix (Mixup only).
        switch_prob: probability that a batch gets CutMix rather than Mixup (reference: 0.5).
    """

    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0
    switch_prob: float = 0.5

    def __post_init__(self) -> None:
        if self.mixup_alpha < 0 or self.cutmix_alpha < 0:
            raise ValueError(f"mixup.mixup_alpha and mixup.cutmix_alpha must be >= 0, got {self}")
        if self.mixup_alpha == 0 and self.cutmix_alpha == 0:
            raise ValueError("mixup: both alphas are 0; set `mixup: null` to train without Mixup/CutMix")
        if not 0.0 <= self.switch_prob <= 1.0:
            raise ValueError(f"mixup.switch_prob must be in [0, 1], got {self.switch_prob}")


Box = tuple[int, int, int, int]  # (top, bottom, left, right) pixel bounds, bottom/right exclusive


def cutmix_box(height: int, width: int, lam: float, cy: int, cx: int) -> Box:
    """The reference's CutMix box: sides int(side * sqrt(1 - lam)) centred at (cy, cx), clipped to the frame."""
    cut = (1.0 - lam) ** 0.5
    half_h, half_w = int(height * cut) // 2, int(width * cut) // 2
    return (max(cy - half_h, 0), min(cy + half_h, height), max(cx - half_w, 0), min(cx + half_w, width))


def blend(
    video: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    lam: float,
    perm: torch.Tensor,
    box: Box | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mix each clip i with clip perm[i]: Mixup if `box` is None, else CutMix with that box.

    Args:
        video: (B, T, C, H, W) clips (not modified).
        targets: (B, K) per-clip target distributions.
        weights: (B,) per-clip loss weights.
        lam: the weight of clip i (Mixup); for CutMix it is replaced by 1 - box area / frame area.
        perm: (B,) partner of each clip.
        box: CutMix box, the same for every frame.

    Returns:
        (mixed video, mixed targets, mixed weights, the lambda used).
    """
    if box is None:
        mixed = lam * video + (1 - lam) * video[perm]
    else:
        top, bottom, left, right = box
        mixed = video.clone()
        mixed[..., top:bottom, left:right] = video[perm][..., top:bottom, left:right]
        h, w = video.shape[-2:]
        lam = 1.0 - (bottom - top) * (right - left) / (h * w)
    return mixed, lam * targets + (1 - lam) * targets[perm], lam * weights + (1 - lam) * weights[perm], lam


def mix_batch(
    video: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, config: MixupConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Draw the batch's Mixup or CutMix (torch's global RNG, so seeding applies) and `blend` with it."""
    b, h, w = video.shape[0], video.shape[-2], video.shape[-1]
    perm = torch.randperm(b, device=video.device)
    use_cutmix = config.cutmix_alpha > 0 and (config.mixup_alpha == 0 or torch.rand(()).item() < config.switch_prob)
    alpha = config.cutmix_alpha if use_cutmix else config.mixup_alpha
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    if not use_cutmix:
        return blend(video, targets, weights, lam, perm)
    cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
    return blend(video, targets, weights, lam, perm, cutmix_box(h, w, lam, cy, cx))
