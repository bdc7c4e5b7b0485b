"""`UMILBaselineModule`: UMIL's MIL baseline (Lv et al., CVPR 2023), an instance scorer fine-tuned end to end.

Every training video is a bag of K instances (UMIL: 16 clips of 5 frames) with a video-level label. The
net (`lightning_modules.models.xclip_mil.XCLIPMIL`) gives each instance two logits (normal, abnormal);
the loss is UMIL's `main.py: train_one_epoch`: the instance with the highest anomaly probability stands
for the bag, its cross-entropy against the video label is weighted by its confidence (the larger of its
two probabilities, not detached), plus w_smooth x the summed squared differences of adjacent instances'
anomaly probabilities and w_sparse x their sum, each averaged over the bags of the batch (normal bags
included). Optimiser and schedule are UMIL's (`utils/optimizer.py`): AdamW (0.9, 0.98), eps 1e-8, one lr
for every trainable parameter, linear warm-up from 0, then timm's cosine towards lr / 100 over the whole
run. At test every item is one instance of a test video (its name and position); the instance anomaly
probabilities are gathered per video, written to SCORES.json and scored against the datamodule's test
annotations under each protocol (`lightning_modules.anomaly_metrics`).
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.anomaly_metrics import evaluate_protocols
from lightning_modules.video_clip import warmup_cosine  # the one schedule: timm cosine as UMIL and TC-CLIP build it


def umil_mil_loss(
    logits: torch.Tensor, abnormal: torch.Tensor, smoothness: float = 0.01, sparsity: float = 0.001
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """UMIL's MIL objective.

    Args:
        logits: (B, K, 2) instance logits (normal, abnormal).
        abnormal: (B,) video labels (True: an anomaly video).
        smoothness: w_smooth (UMIL `--w-smooth` default 0.01).
        sparsity: w_sparse (UMIL `--w-sparse` default 0.001).

    Returns:
        The loss and its parts (before weighting): mil, smoothness, sparsity.
    """
    if logits.ndim != 3 or logits.shape[-1] != 2 or abnormal.shape != logits.shape[:1]:
        raise ValueError(
            f"umil_mil_loss needs (B, K, 2) logits and (B,) labels, got {tuple(logits.shape)} and {tuple(abnormal.shape)}"
        )
    probs = logits.softmax(dim=-1)  # (B, K, 2)
    rows = torch.arange(len(logits), device=logits.device)
    top = probs[..., 1].argmax(dim=1)  # (B,) the most anomalous instance of each bag
    confidence = probs[rows, top].max(dim=-1).values  # (B,)
    mil = (F.cross_entropy(logits[rows, top], abnormal.long(), reduction="none") * confidence).mean()
    smooth = (probs[:, 1:, 1] - probs[:, :-1, 1]).pow(2).sum(dim=1).mean()
    sparse = probs[..., 1].sum(dim=1).mean()
    loss = mil + smoothness * smooth + sparsity * sparse
    return loss, {"mil": mil, "smoothness": smooth, "sparsity": sparse}


class UMILBaselineModule(L.LightningModule):
    """Fine-tunes an instance scorer with UMIL's MIL objective; tests through the datamodule's protocols.

    Args:
        net: bags (B, K, T, C, H, W) -> (B, K, 2) logits (`lightning_modules.models.xclip_mil.XCLIPMIL`).
        lr: peak learning rate (UMIL: 8e-6; a task phase may override it).
        weight_decay: AdamW weight decay (UMIL: 0.001; none on biases, 1-d weights, position embeddings).
        warmup_epochs: linear warm-up from 0, in epochs (UMIL: 5).
        min_lr_ratio: the cosine's floor as a fraction of lr (UMIL: lr / 100).
        smoothness: w_smooth (UMIL: 0.01).
        sparsity: w_sparse (UMIL: 0.001).
    """

    def __init__(
        self,
        net: nn.Module,
        lr: float = 8e-6,
        weight_decay: float = 1e-3,
        warmup_epochs: float = 5.0,
        min_lr_ratio: float = 0.01,
        smoothness: float = 0.01,
        sparsity: float = 0.001,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        self.net = net
        self.lr = lr
        self.warmup_epochs = warmup_epochs
        self.test_scores: dict[str, dict[int, float]] = defaultdict(dict)

    def forward(self, bags: torch.Tensor) -> torch.Tensor:
        """(B, K, T, C, H, W) bags -> (B, K) instance anomaly probabilities."""
        return self.net(bags).softmax(dim=-1)[..., 1]

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self.net(batch["video"])  # (B, K, 2)
        loss, parts = umil_mil_loss(logits, batch["abnormal"], self.hparams.smoothness, self.hparams.sparsity)
        b = len(logits)
        self.log("train/loss", loss, prog_bar=True, batch_size=b)
        for name, value in parts.items():
            self.log(f"train/{name}", value, batch_size=b)
        return loss

    def on_test_epoch_start(self) -> None:
        self.test_scores = defaultdict(dict)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        scores = self(batch["video"].unsqueeze(1)).squeeze(1)  # (B, T, C, H, W) instances -> (B,)
        for name, index, score in zip(batch["name"], batch["instance"].tolist(), scores.tolist()):
            self.test_scores[name][index] = score

    def on_test_epoch_end(self) -> None:
        annotations = getattr(self.trainer.datamodule, "test_annotations", None)
        if annotations is None:
            raise TypeError(
                f"{type(self.trainer.datamodule).__name__} has no test_annotations(); use an anomaly datamodule"
            )
        by_video = self.test_scores
        if self.trainer.world_size > 1:  # each rank scored a shard of the segments: every rank gets them all
            shards = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(shards, dict(self.test_scores))
            by_video = defaultdict(dict)
            for shard in shards:
                for name, by_index in shard.items():
                    by_video[name].update(by_index)
        scores = {name: [by_index[i] for i in sorted(by_index)] for name, by_index in by_video.items()}
        log_dir = self.trainer.log_dir  # a collective call under DDP: every rank makes it
        write = (
            self.trainer.is_global_zero and self.trainer.logger is not None
        )  # no logger: nowhere to write SCORES.json
        videos, default = annotations()
        for key, value in evaluate_protocols(scores, videos, default, log_dir if write else None).items():
            self.log(key, value)

    def configure_optimizers(self):
        """UMIL: AdamW (0.9, 0.98), eps 1e-8; warm-up then cosine to lr * min_lr_ratio, stepped per optimiser step."""
        groups = []
        for group in self.net.param_groups():
            if group["params"]:
                groups.append(
                    {
                        "params": group["params"],
                        "lr": self.lr * group["lr_scale"],
                        "weight_decay": self.hparams.weight_decay * group.get("wd_scale", 1.0),
                    }
                )
        optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.98), eps=1e-8)
        total = max(1, self.trainer.estimated_stepping_batches)
        warmup = round(total * self.warmup_epochs / max(1, self.trainer.max_epochs))
        schedule = partial(warmup_cosine, warmup=warmup, total=total, min_ratio=self.hparams.min_lr_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
