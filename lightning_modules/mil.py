"""`MILAnomalyModule`: weakly-supervised video anomaly detection by multiple-instance ranking (Sultani et al.).

Every video is a bag of S = 32 segment features (cached by `python -m datamodules features`). Training
batches hold abnormal and normal bags in equal numbers (`datamodules.anomaly`); the i-th abnormal bag is
paired with the i-th normal bag and the loss is the MIL ranking loss: the highest-scored abnormal segment
should score at least 1 above the highest-scored normal one, with smoothness (squared differences of
adjacent abnormal scores) and sparsity (sum of abnormal scores) terms weighted 8e-5 each. At test the
segment scores of every video are written to SCORES.json and scored against the datamodule's test
annotations under each protocol (`lightning_modules.anomaly_metrics`; `sultani` by default: every segment
score spread to the frames of its segment, frame-level ROC AUC over all test videos, `test/auc`, and over
the abnormal videos only, `test/auc_a`, the paper's AUC_A). The scoring
head is a plain `nn.Module` (`lightning_modules.models.MILHead`).
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import lightning as L
import torch
from torch import nn

from lightning_modules.anomaly_metrics import evaluate_protocols


def mil_ranking_loss(
    abnormal: torch.Tensor, normal: torch.Tensor, smoothness: float = 8e-5, sparsity: float = 8e-5
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """MIL ranking loss over bag pairs, averaged over the pairs.

    Per pair (a, n): max(0, 1 - max_i a_i + max_i n_i) + smoothness * sum_i (a_i - a_{i+1})^2
    + sparsity * sum_i a_i. (Sultani et al.'s Keras code sums the two regularisers over the batch instead
    of averaging them; here every term is per pair, so the weights do not depend on the batch size.)

    Args:
        abnormal: (P, S) segment scores of the abnormal bags.
        normal: (P, S) segment scores of the normal bags, pair i = (abnormal[i], normal[i]).
        smoothness: weight of the temporal smoothness term.
        sparsity: weight of the sparsity term.

    Returns:
        The loss (a scalar) and its three parts, each averaged over the pairs: hinge, smoothness, sparsity.
    """
    if abnormal.ndim != 2 or abnormal.shape != normal.shape or abnormal.shape[0] == 0:
        raise ValueError(
            f"mil_ranking_loss needs (P, S) abnormal and normal scores of the same shape, P >= 1; "
            f"got {tuple(abnormal.shape)} and {tuple(normal.shape)}"
        )
    hinge = (1.0 - abnormal.max(dim=1).values + normal.max(dim=1).values).clamp(min=0)  # (P,)
    smooth = (abnormal[:, 1:] - abnormal[:, :-1]).pow(2).sum(dim=1)  # (P,)
    sparse = abnormal.sum(dim=1)  # (P,)
    loss = (hinge + smoothness * smooth + sparsity * sparse).mean()
    return loss, {"hinge": hinge.mean(), "smoothness": smooth.mean(), "sparsity": sparse.mean()}


class MILAnomalyModule(L.LightningModule):
    """Trains a segment-scoring head with the MIL ranking loss; tests frame-level AUC and AUC_A.

    Args:
        head: the scoring network, (B, S, D) -> (B, S) scores in [0, 1] (`lightning_modules.models.MILHead`).
        lr: learning rate (a task phase may override it). Sultani et al.: Adagrad, 0.001.
        weight_decay: L2 weight decay (Sultani et al.'s Keras l2(0.001) penalty has gradient 0.002 w).
        optimizer: `adagrad` (the paper) or `adam`.
        warmup_epochs: linear warm-up length, in (fractional) epochs, before a constant learning rate.
        smoothness: weight of the temporal smoothness term (8e-5).
        sparsity: weight of the sparsity term (8e-5).
    """

    def __init__(
        self,
        head: nn.Module,
        lr: float = 1e-3,
        weight_decay: float = 2e-3,
        optimizer: Literal["adagrad", "adam"] = "adagrad",
        warmup_epochs: float = 0.0,
        smoothness: float = 8e-5,
        sparsity: float = 8e-5,
    ):
        super().__init__()
        if optimizer not in ("adagrad", "adam"):
            raise ValueError(f"`--model.optimizer` must be 'adagrad' or 'adam', got {optimizer!r}")
        self.save_hyperparameters(ignore=["head"])
        self.head = head
        self.lr = lr
        self.warmup_epochs = warmup_epochs
        self.test_scores: dict[str, list[float]] = {}

    def setup(self, stage: str) -> None:
        """Check that the head reads the feature size the datamodule serves."""
        datamodule = getattr(self.trainer, "datamodule", None)
        dim, expected = getattr(datamodule, "feature_dim", None), getattr(self.head, "in_dim", None)
        if dim is not None and expected is not None and dim != expected:
            raise ValueError(
                f"the cached features are {dim}-d but the head expects {expected}-d inputs; set "
                f"`--model.init_args.head.init_args.in_dim {dim}` (or re-extract the features)"
            )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, S, D) bags -> (B, S) segment anomaly scores."""
        return self.head(features)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        scores = self(batch["features"])  # (B, S)
        abnormal = batch["abnormal"].bool()
        abn, norm = scores[abnormal], scores[~abnormal]
        pairs = min(len(abn), len(norm))
        if pairs == 0:
            raise ValueError(
                f"a training batch holds {len(abn)} abnormal and {len(norm)} normal bags; the MIL ranking loss "
                "needs both (use the batches of datamodules.anomaly.AnomalyDataModule)"
            )
        loss, parts = mil_ranking_loss(abn[:pairs], norm[:pairs], self.hparams.smoothness, self.hparams.sparsity)
        self.log("train/loss", loss, prog_bar=True, batch_size=pairs)
        for name, value in parts.items():
            self.log(f"train/{name}", value, batch_size=pairs)
        gap = abn[:pairs].max(dim=1).values - norm[:pairs].max(dim=1).values
        self.log("train/max_score_gap", gap.mean(), batch_size=pairs)
        return loss

    def on_test_epoch_start(self) -> None:
        self.test_scores = {}

    def test_step(self, batch: dict, batch_idx: int) -> None:
        scores = self(batch["features"])  # (B, S)
        for name, video_scores in zip(batch["name"], scores.tolist()):
            self.test_scores[name] = video_scores

    def on_test_epoch_end(self) -> None:
        annotations = getattr(self.trainer.datamodule, "test_annotations", None)
        if annotations is None:
            raise TypeError(
                f"{type(self.trainer.datamodule).__name__} has no test_annotations(); use an anomaly datamodule"
            )
        log_dir = self.trainer.log_dir  # a collective call under DDP: every rank makes it
        write = (
            self.trainer.is_global_zero and self.trainer.logger is not None
        )  # no logger: nowhere to write SCORES.json
        videos, default = annotations()
        for key, value in evaluate_protocols(self.test_scores, videos, default, log_dir if write else None).items():
            self.log(key, value)

    def configure_optimizers(self):
        """Adagrad (or Adam) over the head; linear warm-up for `warmup_epochs`, then a constant rate."""
        cls = torch.optim.Adagrad if self.hparams.optimizer == "adagrad" else torch.optim.Adam
        optimizer = cls(self.parameters(), lr=self.lr, weight_decay=self.hparams.weight_decay)
        total = max(1, self.trainer.estimated_stepping_batches)
        warmup = round(total * self.warmup_epochs / max(1, self.trainer.max_epochs))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(_warmup_constant, warmup=warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _warmup_constant(step: int, warmup: int) -> float:
    return min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
