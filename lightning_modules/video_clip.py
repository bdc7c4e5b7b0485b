"""`VideoCLIPModule`: the LightningModule that trains and evaluates every video-text model.

Classification is by cosine similarity between video features and the text features of the label
space's class names (times the model's logit scale). The module owns the loop: loss, top-1/top-5
metrics per stage, AdamW with cosine-after-warmup, and multi-view test aggregation (softmax scores summed
over the temporal views of a clip). At test it also keeps the confusion matrix (`test_confusion`,
read by the task runner for per-class accuracy) and shows it, for up to `MAX_CONFUSION_CLASSES` classes, a
confusion-matrix figure in TensorBoard. Networks are plain `nn.Module`s injected by config
(`lightning_modules.models`); the class names come from the datamodule's label file.
"""

from __future__ import annotations

import math
from functools import partial

import lightning as L
import torch
import torchvision
from open_clip import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from lightning_modules.losses import UNCERTAINTY_LOSSES, LossConfig, action_loss

MAX_CONFUSION_CLASSES = 60  # larger confusion matrices are unreadable as an image: a text note instead


class VideoCLIPModule(L.LightningModule):
    """Trains a video-text network as a classifier over class-name prompts.

    Args:
        net: the video-text network (e.g. `lightning_modules.models.ViFiCLIP`).
        lr: peak learning rate of AdamW (a task phase may override it).
        weight_decay: AdamW weight decay.
        betas: AdamW betas (TC-CLIP recipe: 0.9, 0.98).
        warmup_epochs: linear warm-up length before the cosine decay, in (fractional) epochs.
        loss: the training loss, `{name: ce | ls | ul | uw | uf, ...}` (`lightning_modules.losses`);
            default plain cross-entropy. ul/uw/uf need a scored manifest (`python -m generation score`).
    """

    def __init__(
        self,
        net: nn.Module,
        lr: float = 2e-6,
        weight_decay: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.98),
        warmup_epochs: float = 5.0,
        loss: LossConfig | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        self.net = net
        self.lr = lr
        self.warmup_epochs = warmup_epochs
        self.loss_config = loss or LossConfig()
        self.class_names: list[str] = []
        self._tokens: torch.Tensor | None = None  # (K, L) class-prompt tokens, built in setup
        # Normalisation of the batches, undone to display clips in TensorBoard (the datamodule's; CLIP's by default).
        self.display_mean, self.display_std = OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
        self._renormalise: tuple[torch.Tensor, torch.Tensor] | None = None  # (scale, shift) per channel

    def setup(self, stage: str) -> None:
        """Read the label space from the datamodule and build one metric set per stage."""
        names = list(self.trainer.datamodule.class_names)
        if names != self.class_names:
            self.class_names = names
            self._tokens = self.net.tokenize(names)
        k = len(self.class_names)
        self.metrics = nn.ModuleDict(  # "{stage}_{metric}" (a key "train" would clash with Module.train)
            {
                f"{stage}_{name}": MulticlassAccuracy(num_classes=k, top_k=top_k, average="micro")
                for stage in ("train", "val", "test")
                for name, top_k in (("top1", 1), ("top5", min(5, k)))
            }
        ).to(self.device)
        self.confusion = MulticlassConfusionMatrix(num_classes=k).to(self.device)  # test only: (true, pred)
        self.test_confusion: torch.Tensor | None = None  # (K, K) of the last test, rows = true class
        self._renormalise = renormalisation(self.trainer.datamodule, self.net)
        datamodule = self.trainer.datamodule
        self.display_mean = tuple(getattr(datamodule, "input_mean", self.display_mean))
        self.display_std = tuple(getattr(datamodule, "input_std", self.display_std))
        if stage == "fit" and self.loss_config.name in UNCERTAINTY_LOSSES:
            check = getattr(self.trainer.datamodule, "check_uncertainty", None)
            if check is not None:  # the datamodule knows whether its training clips are scored / filtered
                check(self.loss_config.name)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) -> (B, K) logits over the current class names."""
        if self._renormalise is not None:  # datamodule statistics -> the net's (e.g. X-CLIP's ImageNet ones)
            scale, shift = (t.to(video) for t in self._renormalise)
            video = video * scale + shift  # (..., C, H, W): channel dim is -3
        return self.net(video, self._tokens.to(self.device))

    def scores(self, video: torch.Tensor) -> torch.Tensor:
        """(B, V, T, C, H, W) multi-view clips -> (B, K) class scores, softmax summed over the V views."""
        b, v = video.shape[:2]
        probs = self(video.flatten(0, 1)).softmax(dim=-1)  # (B*V, K)
        return probs.view(b, v, -1).sum(dim=1)  # (B, K)

    def _step(self, batch: dict, stage: str) -> torch.Tensor | None:
        video, labels = batch["video"], batch["label"]
        if video.ndim == 6:  # (B, V, T, C, H, W): evaluation with temporal views
            preds, loss = self.scores(video), None
        else:
            preds = self(video)
            loss, eps_mean = action_loss(preds, labels, batch.get("uncertainty"), self.loss_config)
            self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=len(labels), sync_dist=stage != "train")
            if stage == "train":
                self.log("train/eps_mean", eps_mean, batch_size=len(labels))
        for name in ("top1", "top5"):
            metric = self.metrics[f"{stage}_{name}"]
            metric(preds, labels)
            self.log(f"{stage}/{name}", metric, prog_bar=name == "top1", batch_size=len(labels))
        if stage == "test":
            self.confusion.update(preds, labels)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if batch_idx == 0 and self.current_epoch == 0:
            self._log_clips(batch)
        return self._step(batch, "train")

    def _log_clips(self, batch: dict, max_clips: int = 8) -> None:
        """Show the first training clips (rows) and their frames (columns) in TensorBoard, labelled."""
        experiment = getattr(self.logger, "experiment", None)
        if not self.trainer.is_global_zero or not hasattr(experiment, "add_image"):
            return
        video = batch["video"][:max_clips].detach().float().cpu()  # (N, T, C, H, W), normalised
        mean = video.new_tensor(self.display_mean).view(1, 1, 3, 1, 1)
        std = video.new_tensor(self.display_std).view(1, 1, 3, 1, 1)
        frames = (video * std + mean).clamp(0, 1).flatten(0, 1)  # (N*T, C, H, W)
        grid = torchvision.utils.make_grid(frames, nrow=video.shape[1], padding=1)
        names = ", ".join(self.class_names[i] for i in batch["label"][:max_clips].tolist())
        experiment.add_image("train/clips", grid, self.global_step)
        experiment.add_text("train/clip_labels", names, self.global_step)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "test")

    def on_test_epoch_end(self) -> None:
        """Keep the test confusion matrix (summed over ranks) and show it in TensorBoard."""
        self.test_confusion = self.confusion.compute().cpu()  # (K, K)
        self.confusion.reset()
        experiment = getattr(self.logger, "experiment", None)
        if not self.trainer.is_global_zero or not hasattr(experiment, "add_figure"):
            return
        k = len(self.class_names)
        if k > MAX_CONFUSION_CLASSES:
            experiment.add_text("test/confusion_matrix", f"{k} classes: figure skipped (> {MAX_CONFUSION_CLASSES})")
            return
        fig, _ = self.confusion.plot(val=self.test_confusion, labels=self.class_names if k <= 30 else None)
        fig.set_size_inches(max(4, 0.3 * k), max(4, 0.3 * k))  # about 0.3 inch a class keeps cells readable
        experiment.add_figure("test/confusion_matrix", fig, self.global_step)  # closes the figure

    def configure_optimizers(self):
        """AdamW over the trainable parameters; linear warm-up for `warmup_epochs`, then cosine decay to 0.

        A net may define `param_groups()` returning `[{"params": [...], "lr_scale": float, "wd_scale": float},
        ...]` (`wd_scale` optional, default 1): each group gets lr `self.lr * lr_scale` and weight decay
        `weight_decay * wd_scale`; trainable parameters no group lists get both scales 1. Without it every
        parameter shares one lr and one weight decay, biases and norms included, as the TC-CLIP and ViFi-CLIP
        reference optimisers do (X-CLIP's exempts 1-d weights and biases: its net says so via `wd_scale`).
        Frozen parameters are left out; fused AdamW is used when every parameter is on CUDA.
        """
        wd = self.hparams.weight_decay
        trainable = [p for p in self.parameters() if p.requires_grad]
        if not trainable:
            raise ValueError(
                f"{type(self.net).__name__} has no trainable parameters (requires_grad is False everywhere), so "
                "`fit` has nothing to train. It is an evaluation-only model: run `python train.py test --config "
                "...` (or `validate`) instead, or use a trainable net."
            )
        groups_fn = getattr(self.net, "param_groups", None)
        spec = (groups_fn() if callable(groups_fn) else groups_fn) or []
        groups, seen = [], set()
        for i, group in enumerate(spec):
            params = [p for p in group["params"] if p.requires_grad]
            if any(id(p) in seen for p in params):
                raise ValueError(f"{type(self.net).__name__}.param_groups(): group {i} repeats a parameter")
            seen |= {id(p) for p in params}
            lr_scale, wd_scale = float(group["lr_scale"]), float(group.get("wd_scale", 1.0))
            groups.append({"params": params, "lr": self.lr * lr_scale, "weight_decay": wd * wd_scale})
        rest = [p for p in trainable if id(p) not in seen]
        groups = [g for g in [{"params": rest, "lr": self.lr, "weight_decay": wd}, *groups] if g["params"]]
        fused = all(p.is_cuda for p in trainable)
        optimizer = torch.optim.AdamW(groups, lr=self.lr, betas=self.hparams.betas, weight_decay=wd, fused=fused)
        total = max(1, self.trainer.estimated_stepping_batches)
        warmup = round(total * self.warmup_epochs / max(1, self.trainer.max_epochs))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(warmup_cosine, warmup=warmup, total=total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def renormalisation(datamodule, net: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Per-channel (scale, shift), shaped (3, 1, 1), mapping frames normalised with the datamodule's
    `input_mean`/`input_std` to the net's; None when they agree (or either side does not say)."""
    source = [getattr(datamodule, f"input_{k}", None) for k in ("mean", "std")]
    target = [getattr(net, f"input_{k}", None) for k in ("mean", "std")]
    if None in source or None in target:
        return None
    (m_d, s_d), (m_n, s_n) = ([torch.tensor(v, dtype=torch.float32) for v in pair] for pair in (source, target))
    if torch.allclose(m_d, m_n) and torch.allclose(s_d, s_n):
        return None
    # x_net = (x_d * s_d + m_d - m_n) / s_n
    return (s_d / s_n).view(3, 1, 1), ((m_d - m_n) / s_n).view(3, 1, 1)


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """LR factor: linear warm-up over `warmup` steps to 1, then cosine decay to 0 at step `total`."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
