"""UMIL's MIL-baseline network (Lv et al., CVPR 2023; ktr-hubrt/UMIL `models/xclip.py`): X-CLIP scoring
every instance of a bag against the two classes "normal" and "abnormal".

A video is a bag of K instances (UMIL: K = 16 clips of T = 5 frames). Each instance goes through X-CLIP
(transformers' `XCLIPModel` via `XCLIP`): cross-frame vision tower, multi-frame integration transformer,
and the prompt generator that conditions the two class-name text features on the instance's patches.
As in UMIL, the pooled video feature passes through a linear `video_head` (UMIL's `head_video`) before the
cosine similarity with the conditioned class features, scaled by X-CLIP's logit scale. UMIL's optimiser
freezes (`fix_text`) every parameter outside the vision tower, mit and prompt modules: the text tower and
projection (their features are cached), the logit scale and `head_video` (which therefore stays at its
random initialisation); `train_video_head` changes the last. Output: (B, K, 2) logits; softmax column 1
is an instance's anomaly score.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.models.xclip import XCLIP

CLASS_NAMES = ("normal", "abnormal")  # UMIL labels/ucf_2_labels.csv, ids 0 and 1, prompt "{}"


class XCLIPMIL(nn.Module):
    """X-CLIP instance scorer for multiple-instance anomaly detection.

    Args:
        name_or_path: X-CLIP weights (hub id or local directory); UMIL starts from the Kinetics-400
            release of X-CLIP B/32 (`microsoft/xclip-base-patch32`).
        pretrained: load `name_or_path`; False builds random weights (`config` overrides, e.g. tiny tests).
        config: `XCLIPConfig` overrides for random weights; only with `pretrained: false`.
        num_frames: frames per instance (UMIL: 5); the 8-frame release's mit position embedding is then
            newly initialised, as UMIL does.
        class_names: the two class prompts, normal first (UMIL: "normal", "abnormal").
        prompt: text template for the class names (UMIL: the bare name).
        train_video_head: train the linear video head; UMIL freezes it (False).
        grad_checkpointing: transformers' activation checkpointing in training.
    """

    input_mean, input_std = XCLIP.input_mean, XCLIP.input_std  # ImageNet's (ktr-hubrt/UMIL datasets/build.py)

    def __init__(
        self,
        name_or_path: str = "microsoft/xclip-base-patch32",
        pretrained: bool = True,
        config: dict | None = None,
        num_frames: int = 5,
        class_names: tuple[str, str] = CLASS_NAMES,
        prompt: str = "{}",
        train_video_head: bool = False,
        grad_checkpointing: bool = False,
    ):
        super().__init__()
        if len(class_names) != 2:
            raise ValueError(f"XCLIPMIL scores two classes (normal, abnormal), got class_names={list(class_names)}")
        self.xclip = XCLIP(
            name_or_path,
            pretrained=pretrained,
            config=config,
            prompt=prompt,
            grad_checkpointing=grad_checkpointing,
            freeze_text=True,
            num_frames=num_frames,
        )
        self.num_frames = self.xclip.num_frames
        dim = self.xclip.model.config.projection_dim
        self.video_head = nn.Linear(dim, dim)  # UMIL's head_video (PyTorch's default init)
        self.video_head.requires_grad_(train_video_head)
        self.xclip.model.logit_scale.requires_grad_(False)
        self.class_names = list(class_names)
        self._tokens = None

    def tokens(self, device: torch.device):
        if self._tokens is None or self._tokens["input_ids"].device != device:
            self._tokens = self.xclip.tokenize(self.class_names).to(device)
        return self._tokens

    def forward(self, bags: torch.Tensor) -> torch.Tensor:
        """(B, K, T, C, H, W) bags of K instances -> (B, K, 2) logits (normal, abnormal)."""
        if bags.ndim != 6:
            raise ValueError(f"XCLIPMIL expects bags (B, K, T, C, H, W), got shape {tuple(bags.shape)}")
        b, k = bags.shape[:2]
        video, text = self.xclip.video_text_features(
            bags.flatten(0, 1), self.tokens(bags.device)
        )  # (BK, D), (BK, 2, D)
        video = F.normalize(self.video_head(video), dim=-1)
        text = F.normalize(text, dim=-1)
        logits = self.xclip.model.logit_scale.exp() * torch.einsum("nd,nkd->nk", video, text)  # (BK, 2)
        return logits.view(b, k, 2)

    def param_groups(self) -> list[dict]:
        """UMIL's MIL-baseline optimiser: one lr for every trainable parameter; no weight decay on 1-d
        weights, biases and position embeddings (its `no_weight_decay_keywords`)."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if p.requires_grad:
                skip = p.ndim < 2 or name.endswith(".bias") or "position_embedding" in name
                (no_decay if skip else decay).append(p)
        return [
            {"params": decay, "lr_scale": 1.0, "wd_scale": 1.0},
            {"params": no_decay, "lr_scale": 1.0, "wd_scale": 0.0},
        ]
