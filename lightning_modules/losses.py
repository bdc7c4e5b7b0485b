"""The classification loss family of the paper (Table 7): CE, LS, UW, UF and UL, as one function.

Every LightningModule computes its training loss with `action_loss(logits, labels, uncertainty, config)`.
`uncertainty` is each clip's normalised CLIP uncertainty u in [0, 1] (from `python -m generation score`),
NaN for real clips. With K classes and eps_i the smoothing of clip i, the target puts 1 - eps_i on the
label and eps_i / (K - 1) on every other class, and the clip's loss is the cross-entropy to that target:

    ce  eps_i = 0                                   (plain cross-entropy)
    ls  eps_i = label_smoothing                     (fixed smoothing; note the eps / (K - 1) convention,
                                                     not PyTorch's eps / K on all classes)
    ul  eps_i = uncertainty_weight * u_i            (uncertainty label smoothing; real clips: real_eps)
    uw  eps_i = 0, loss of clip i weighted by w_i = max(1 - u_i, 0) / mean_batch(max(1 - u, 0))
        (real clips: 1 - u taken as 1; a batch whose raw weights are all 0 falls back to equal weights)
    uf  plain cross-entropy; the high-uncertainty clips were dropped from the synthetic set by the
        datamodule (`ActionDataModule(uncertainty_filter_quantile=...)`) before training

    nce BIKE's in-batch contrastive loss (whwu95/BIKE utils/NCELoss.py, train.py `loss_type: NCE`, the loss
        of its Kinetics-400 / zero-shot recipe): over the batch's B clips, S = logits[:, labels] (B, B) is
        clip i against the class text of clip j; the target row i is softmax_j(10 * [y_i == y_j]); the loss
        is (KL(target || softmax(S)) + KL(target || softmax(S^T))) / 2, each KL summed over j and averaged
        over i (BIKE's KLDivLoss(reduction="mean") x B). A batch-level loss: `nce_loss(logits, labels)`.

`spread` says where eps goes: `others` (default, the paper's formula above) or `all`, eps / K on every
class including the label (1 - eps + eps / K on it), which is timm's `LabelSmoothingCrossEntropy` and the
smoothed one-hot of TC-CLIP's mixup (`REFERENCE_REAL_LOSS`, the reference recipe for real clips).

`soft_targets` returns each clip's target distribution (B, K) and loss weight (B,); `soft_cross_entropy`
scores logits against them. Mixup/CutMix (`lightning_modules.mixup`) blends those per-clip targets and
weights with the same lambda as the frames, so UL's per-clip smoothing survives mixing.

The function is per batch and stateless (so it is the same under DDP, where each rank normalises the UW
weights over its own batch) and computes in float32 whatever the dtype of the logits (mixed precision).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

LossName = Literal["ce", "ls", "ul", "uw", "uf", "nce"]
Spread = Literal["others", "all"]
UNCERTAINTY_LOSSES = ("ul", "uw", "uf")  # need scored synthetic clips (`python -m generation score`)


@dataclass(frozen=True)
class LossConfig:
    """Which loss trains the model, and its constants (paper defaults).

    Args:
        name: ce | ls | ul | uw | uf | nce (see the module docstring for each formula; nce is batch-level and
            trains without mixup, its targets here are plain one-hots for validation losses).
        label_smoothing: the fixed eps of `ls`.
        uncertainty_weight: w of `ul`: eps_i = w * u_i (the paper's value; its one home).
        real_eps: the eps of real clips (u = NaN) under `ul`; 0 trains them with plain cross-entropy.
        spread: `others`: eps / (K - 1) on each other class (the paper's formula); `all`: eps / K on every
            class, the label included (timm / TC-CLIP's label smoothing).
    """

    name: LossName = "ce"
    label_smoothing: float = 0.1
    uncertainty_weight: float = 0.3
    real_eps: float = 0.0
    spread: Spread = "others"

    def __post_init__(self) -> None:
        if self.spread not in ("others", "all"):
            raise ValueError(f"loss.spread must be 'others' or 'all', got {self.spread!r}")
        for field in ("label_smoothing", "uncertainty_weight", "real_eps"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                raise ValueError(f"loss.{field} must be in [0, 1], got {getattr(self, field)}")


# The reference recipe for real clips (TC-CLIP configs/aug/default_aug.yaml: label_smooth 0.1, built into
# the one-hot as timm does) and the paper's loss for generated clips (UL, eps_i = w u_i, w = LossConfig's default).
REFERENCE_REAL_LOSS = LossConfig(name="ls", label_smoothing=0.1, spread="all")
PAPER_SYNTHETIC_LOSS = LossConfig(name="ul")


def soft_targets(
    labels: torch.Tensor,
    uncertainty: torch.Tensor | None,
    config: LossConfig,
    num_classes: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each clip's target distribution, loss weight and smoothing eps under `config`.

    Args:
        labels: (B,) class ids.
        uncertainty: (B,) normalised CLIP uncertainty in [0, 1], NaN for real clips; None = all real.
        config: the loss.
        num_classes: K.

    Returns:
        (targets (B, K) float32 rows summing to 1, weights (B,) float32, eps (B,) float32).
    """
    b, k = len(labels), num_classes
    device = labels.device
    u = torch.full((b,), torch.nan, device=device) if uncertainty is None else uncertainty.float().to(device)
    real = u.isnan()
    if config.name == "ls":
        eps = torch.full((b,), config.label_smoothing, device=device)
    elif config.name == "ul":
        eps = torch.where(real, torch.full_like(u, config.real_eps), config.uncertainty_weight * u)
    else:
        eps = torch.zeros(b, device=device)
    if config.spread == "all":
        off, on = eps / k, 1 - eps + eps / k  # (B,)
    else:
        off, on = eps / max(k - 1, 1), 1 - eps
    targets = off[:, None].expand(b, k).clone()  # (B, K)
    targets.scatter_(1, labels.long()[:, None], on[:, None])

    weights = torch.ones(b, device=device)
    if config.name == "uw":
        raw = torch.where(real, torch.ones_like(u), (1 - u).clamp(min=0.0))  # (B,)
        mean = raw.mean()
        weights = torch.where(mean > 0, raw / mean.clamp(min=torch.finfo(raw.dtype).tiny), torch.ones_like(raw))
    return targets, weights, eps


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, K) logits (any float dtype, computed in float32) and (B, K) targets -> (B,) cross-entropies."""
    return -(targets * logits.float().log_softmax(dim=-1)).sum(dim=-1)


def action_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    uncertainty: torch.Tensor | None,
    config: LossConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss over a batch and the batch's mean smoothing eps (for logging).

    Args:
        logits: (B, K) class logits, any float dtype.
        labels: (B,) class ids.
        uncertainty: (B,) normalised CLIP uncertainty in [0, 1], NaN for real clips; None = all real.
        config: the loss to compute.

    Returns:
        (loss, eps_mean): scalar float32 tensors.
    """
    targets, weights, eps = soft_targets(labels, uncertainty, config, logits.shape[-1])
    return (weights * soft_cross_entropy(logits, targets)).mean(), eps.mean()


def nce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BIKE's in-batch NCE loss (module docstring) from (B, K) class logits and (B,) labels, in float32; the one
    implementation is `lightning_modules.models.bike.bike_nce_loss`."""
    from lightning_modules.models.bike import bike_nce_loss

    return bike_nce_loss(logits.float(), labels)
