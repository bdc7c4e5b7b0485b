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

The function is per batch and stateless (so it is the same under DDP, where each rank normalises the UW
weights over its own batch) and computes in float32 whatever the dtype of the logits (mixed precision).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

LossName = Literal["ce", "ls", "ul", "uw", "uf"]
UNCERTAINTY_LOSSES = ("ul", "uw", "uf")  # need scored synthetic clips (`python -m generation score`)


@dataclass(frozen=True)
class LossConfig:
    """Which loss trains the model, and its constants (paper defaults).

    Args:
        name: ce | ls | ul | uw | uf (see the module docstring for each formula).
        label_smoothing: the fixed eps of `ls`.
        uncertainty_weight: w of `ul`: eps_i = w * u_i (paper: 0.3).
        real_eps: the eps of real clips (u = NaN) under `ul`; 0 trains them with plain cross-entropy.
    """

    name: LossName = "ce"
    label_smoothing: float = 0.1
    uncertainty_weight: float = 0.3
    real_eps: float = 0.0

    def __post_init__(self) -> None:
        for field in ("label_smoothing", "uncertainty_weight", "real_eps"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                raise ValueError(f"loss.{field} must be in [0, 1], got {getattr(self, field)}")


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
    logits = logits.float()
    b, k = logits.shape  # (B, K)
    u = torch.full((b,), torch.nan, device=logits.device) if uncertainty is None else uncertainty.float()
    real = u.isnan()
    logp = logits.log_softmax(dim=-1)  # (B, K)
    nll = -logp.gather(1, labels.long()[:, None]).squeeze(1)  # (B,) -log p(label)
    off_label = (-logp.sum(dim=-1) - nll) / max(k - 1, 1)  # (B,) mean -log p over the other classes

    if config.name == "ls":
        eps = torch.full_like(nll, config.label_smoothing)
    elif config.name == "ul":
        eps = torch.where(real, torch.full_like(u, config.real_eps), config.uncertainty_weight * u)
    else:
        eps = torch.zeros_like(nll)
    per_clip = (1 - eps) * nll + eps * off_label  # (B,) cross-entropy to the smoothed target

    if config.name == "uw":
        raw = torch.where(real, torch.ones_like(u), (1 - u).clamp(min=0.0))  # (B,)
        mean = raw.mean()
        weights = torch.where(mean > 0, raw / mean.clamp(min=torch.finfo(raw.dtype).tiny), torch.ones_like(raw))
        per_clip = weights * per_clip
    return per_clip.mean(), eps.mean()
