"""`VideoCLIPModule`: the LightningModule that trains and evaluates every video-text model.

Classification is by cosine similarity between video features and the text features of the label
space's class names (times the model's logit scale). The module owns the loop: loss, top-1/top-5
metrics per stage, AdamW with warm-up then cosine decay to a floor, and multi-view test aggregation
(softmax scores summed over the temporal views of a clip).

Training defaults are the paper's: real clips (`batch["synthetic"]` False) get TC-CLIP's reference recipe
(label smoothing 0.1 inside the one-hot, Mixup 0.8 / CutMix 1.0 switched with probability 0.5, soft-target
cross-entropy), generated clips get uncertainty label smoothing (UL, eps_i = w u_i). Every clip's soft
target comes from its own source's loss and is then mixed with its partner's (`lightning_modules.mixup`), so
a batch may hold both sources; `train/real/*` and `train/synthetic/*` log each source's loss and top-1.

At test it also keeps the confusion matrix (`test_confusion`, read by the task runner for per-class
accuracy) and shows it, for up to `MAX_CONFUSION_CLASSES` classes, a confusion-matrix figure in TensorBoard.
Networks are plain `nn.Module`s injected by config (`lightning_modules.models`); the class names come from
the datamodule's label file (the text encoder reads its `class_texts` when it has them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial

import lightning as L
import torch
import torchvision
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from lightning_modules.losses import (
    PAPER_SYNTHETIC_LOSS,
    REFERENCE_REAL_LOSS,
    UNCERTAINTY_LOSSES,
    LossConfig,
    nce_loss,
    soft_cross_entropy,
    soft_targets,
)
from lightning_modules.mixup import MixupConfig, mix_batch
from lightning_modules.models.normalisation import CLIP_MEAN, CLIP_STD

MAX_CONFUSION_CLASSES = 60  # larger confusion matrices are unreadable as an image: a text note instead


class VideoCLIPModule(L.LightningModule):
    """Trains a video-text network as a classifier over class-name prompts.

    Args:
        net: the video-text network (e.g. `lightning_modules.models.ViFiCLIP`).
        lr: peak learning rate of AdamW (a task phase may override it).
        weight_decay: AdamW weight decay.
        betas: AdamW betas (TC-CLIP recipe: 0.9, 0.98).
        warmup_epochs: linear warm-up length from lr 0, in (fractional) epochs.
        min_lr_ratio: the cosine's floor as a fraction of `lr` (TC-CLIP: lr_min = lr / 100).
        loss: the loss of real clips, `{name: ce | ls | ul | uw | uf, label_smoothing, spread, ...}`
            (`lightning_modules.losses`); default TC-CLIP's recipe, label smoothing 0.1 spread over all classes.
        synthetic_loss: the loss of generated clips; default UL, eps_i = w u_i (the paper, w in LossConfig). ul/uw/uf need a
            scored manifest (`python -m generation score`).
        mixup: Mixup/CutMix of training batches (`lightning_modules.mixup.MixupConfig`; default TC-CLIP's
            0.8 / 1.0 / switch 0.5); null trains on unmixed clips.
    """

    def __init__(
        self,
        net: nn.Module,
        lr: float = 2e-6,
        weight_decay: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.98),
        warmup_epochs: float = 5.0,
        min_lr_ratio: float = 0.01,
        loss: LossConfig = REFERENCE_REAL_LOSS,
        synthetic_loss: LossConfig = PAPER_SYNTHETIC_LOSS,
        mixup: MixupConfig | None = MixupConfig(),  # noqa: B008 - frozen dataclass
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        self.net = net
        self.lr = lr
        self.warmup_epochs = warmup_epochs
        if not 0.0 <= min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio is a fraction of lr in [0, 1], got {min_lr_ratio}")
        self.min_lr_ratio = min_lr_ratio
        self.loss_config = loss or REFERENCE_REAL_LOSS
        self.synthetic_loss = synthetic_loss or PAPER_SYNTHETIC_LOSS
        self.mixup = mixup
        if "nce" in (self.loss_config.name, self.synthetic_loss.name) and mixup is not None:
            raise ValueError(
                "loss `nce` (BIKE's in-batch loss) trains without mixup: set `--model.init_args.mixup null`"
            )
        self.class_names: list[str] = []
        self._texts: list[str] = []  # what the text encoder reads per class (the names unless label_text)
        self._tokens: torch.Tensor | None = None  # (K, L) class-prompt tokens, built in setup
        # Normalisation of the batches, undone to display clips in TensorBoard (the datamodule's; CLIP's by default).
        self.display_mean, self.display_std = CLIP_MEAN, CLIP_STD
        self._renormalise: tuple[torch.Tensor, torch.Tensor] | None = None  # (scale, shift) per channel

    def setup(self, stage: str) -> None:
        """Read the label space from the datamodule and build one metric set per stage."""
        names = list(self.trainer.datamodule.class_names)
        texts = list(getattr(self.trainer.datamodule, "class_texts", names))  # e.g. TC-CLIP's LLM-rephrased labels
        if names != self.class_names or texts != self._texts:
            self.class_names, self._texts = names, texts
            self._tokens = self.net.tokenize(texts)
        k = len(self.class_names)
        self.metrics = nn.ModuleDict(  # "{stage}_{metric}" (a key "train" would clash with Module.train)
            {
                f"{stage}_{name}": MulticlassAccuracy(num_classes=k, top_k=top_k, average="micro")
                for stage in ("val", "test")  # training steps log their batch's accuracy (`topk_accuracy`)
                for name, top_k in (("top1", 1), ("top5", min(5, k)))
            }
        ).to(self.device)
        self.confusion = MulticlassConfusionMatrix(num_classes=k).to(self.device)  # test only: (true, pred)
        self.test_confusion: torch.Tensor | None = None  # (K, K) of the last test, rows = true class
        self._renormalise = renormalisation(self.trainer.datamodule, self.net)
        datamodule = self.trainer.datamodule
        self.display_mean = tuple(getattr(datamodule, "input_mean", self.display_mean))
        self.display_std = tuple(getattr(datamodule, "input_std", self.display_std))
        if stage == "fit" and self.synthetic_loss.name in UNCERTAINTY_LOSSES:
            check = getattr(datamodule, "check_uncertainty", None)
            if check is not None and getattr(datamodule, "train_source", "real") != "real":
                check(self.synthetic_loss.name)  # the datamodule knows whether its generated clips are scored

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

    def targets(self, batch: dict, num_classes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-clip (targets (B, K), weights (B,), eps (B,)): `loss` for real clips, `synthetic_loss` for
        generated ones (`batch["synthetic"]`; a batch without the key is all real)."""
        labels = batch["label"]
        uncertainty = batch.get("uncertainty")
        if uncertainty is None:
            uncertainty = torch.full(labels.shape, torch.nan, device=labels.device)
        synthetic = batch.get("synthetic")
        synthetic = torch.zeros_like(labels, dtype=torch.bool) if synthetic is None else synthetic.bool()
        targets = torch.empty(len(labels), num_classes, device=labels.device)
        weights, eps = torch.empty(len(labels), device=labels.device), torch.empty(len(labels), device=labels.device)
        for generated, config in ((False, self.loss_config), (True, self.synthetic_loss)):
            mask = synthetic if generated else ~synthetic
            if not mask.any():
                continue
            u = uncertainty[mask].float()
            if not generated:
                u = torch.full_like(u, torch.nan)  # real clips carry no uncertainty
            elif config.name in ("ul", "uw") and u.isnan().any():
                raise ValueError(
                    f"synthetic_loss {config.name!r} needs each generated clip's CLIP uncertainty, but a batch has "
                    "unscored generated clips; run `python -m generation score --manifest ...` first"
                )
            targets[mask], weights[mask], eps[mask] = soft_targets(labels[mask], u, config, num_classes)
        return targets, weights, eps

    def _train_loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixed (if `mixup`) forward and loss of a training batch; logs overall and per-source values on
        the steps whose values are written (`_logs_this_step`)."""
        video, labels = batch["video"], batch["label"]
        n = len(labels)
        tokens = self._tokens
        k = len(tokens["input_ids"] if isinstance(tokens, Mapping) else tokens)  # K classes
        targets, weights, eps = self.targets(batch, k)
        if self._nce(batch):  # BIKE's batch-level loss (lightning_modules.losses.nce_loss)
            preds = self(video)
            loss = nce_loss(preds, labels)
            if self._logs_this_step():
                self.log("train/loss", loss.detach(), prog_bar=True, batch_size=n)
            return preds, loss
        if self.mixup is not None:
            video, targets, weights, _ = mix_batch(video, targets, weights, self.mixup)
        preds = self(video)
        per_clip = weights * soft_cross_entropy(preds, targets)  # (B,)
        loss = per_clip.mean()
        if not self._logs_this_step():
            return preds, loss
        with torch.no_grad():
            self.log("train/loss", loss, prog_bar=True, batch_size=n)
            self.log("train/eps_mean", eps.mean(), batch_size=n)
            for name, value in topk_accuracy(preds, labels, (1, min(5, k))).items():
                self.log(f"train/{name}", value, prog_bar=name == "top1", batch_size=n)
            synthetic = batch.get("synthetic")
            synthetic = torch.zeros_like(labels, dtype=torch.bool) if synthetic is None else synthetic.bool()
            correct = (preds.argmax(dim=-1) == labels).float()
            for source, mask in (("real", ~synthetic), ("synthetic", synthetic)):
                m = int(mask.sum())
                if m:
                    self.log(f"train/{source}/loss", per_clip[mask].mean(), batch_size=m)
                    self.log(f"train/{source}/top1", correct[mask].mean(), batch_size=m)
        return preds, loss

    def _nce(self, batch: dict) -> bool:
        """Whether the batch trains with `nce`: every clip's loss is it (a batch mixing it with another is an error)."""
        synthetic = batch.get("synthetic")
        sources = {"synthetic" if s else "real" for s in (synthetic.tolist() if synthetic is not None else [False])}
        names = {(self.synthetic_loss if s == "synthetic" else self.loss_config).name for s in sources}
        if "nce" in names and len(names) > 1:
            raise ValueError("a batch mixes `nce` with another loss; give `loss` and `synthetic_loss` both `nce`")
        return names == {"nce"}

    def _logs_this_step(self) -> bool:
        """Whether this training step's values reach the logger. Lightning writes a step's values only every
        `log_every_n_steps` steps, so the module logs them only then and on an epoch's last batch (whose
        values the progress bar and `callback_metrics`, e.g. phase.json, keep): each `self.log` costs ~1 ms
        of bookkeeping, as much as a whole step of a small model. Always True without a trainer."""
        trainer = self._trainer
        if trainer is None:
            return True
        return trainer.is_last_batch or trainer._logger_connector.should_update_logs

    def _step(self, batch: dict, stage: str) -> torch.Tensor | None:
        video, labels = batch["video"], batch["label"]
        if video.ndim == 6:  # (B, V, T, C, H, W): evaluation with temporal views
            preds, loss = self.scores(video), None
        elif stage == "train":
            return self._train_loss(batch)[1]
        else:
            preds = self(video)
            targets, weights, _ = self.targets(batch, preds.shape[-1])
            loss = (weights * soft_cross_entropy(preds, targets)).mean()
            self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=len(labels), sync_dist=True)
        for name in ("top1", "top5"):  # accumulated over the epoch, logged (and synced over ranks) at its end
            self.metrics[f"{stage}_{name}"].update(preds, labels)
        if stage == "test":
            self.confusion.update(preds, labels)
        return loss

    def _log_epoch_metrics(self, stage: str) -> None:
        for name in ("top1", "top5"):
            self.log(f"{stage}/{name}", self.metrics[f"{stage}_{name}"], prog_bar=name == "top1")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")

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
        """Log top-1/top-5, keep the test confusion matrix (summed over ranks) and show it in TensorBoard."""
        self._log_epoch_metrics("test")
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
        fig.set_size_inches(max(4, k / 3), max(4, k / 3))  # about a third of an inch a class keeps cells readable
        experiment.add_figure("test/confusion_matrix", fig, self.global_step)  # closes the figure

    def configure_optimizers(self):
        """AdamW over the trainable parameters; TC-CLIP's schedule (`warmup_cosine`): linear warm-up for
        `warmup_epochs`, cosine decay to `lr * min_lr_ratio`.

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
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, partial(warmup_cosine, warmup=warmup, total=total, min_ratio=self.min_lr_ratio)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def topk_accuracy(preds: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """{"top{k}": fraction of rows of (B, K) `preds` whose label is among their k highest} for each k: a
    training batch's accuracy, as torchmetrics' micro MulticlassAccuracy(top_k=k) gives it (ties by index)."""
    ranked = preds.topk(max(ks), dim=-1).indices == labels[:, None]  # (B, max k)
    return {f"top{k}": ranked[:, :k].any(dim=-1).float().mean() for k in ks}


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


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float = 0.0) -> float:
    """LR factor of optimiser step `step` (0-based): timm's `CosineLRScheduler` as TC-CLIP and UMIL build it
    (warmup_lr_init 0, warmup_prefix False, cycle_limit 1, t_in_epochs False): linear warm-up step / warmup
    over the first `warmup` steps (the first step at lr 0, as timm), then
    min_ratio + (1 - min_ratio) * (1 + cos(pi * step / total)) / 2, the cosine counted from step 0 (not from
    the warm-up's end), and min_ratio from step `total` on."""
    if step < warmup:
        return step / warmup
    if step >= total:
        return min_ratio
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * step / total))
