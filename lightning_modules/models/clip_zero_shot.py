"""Vanilla CLIP zero-shot baseline: frame-mean CLIP image features against class-name text features.

No training: every parameter is frozen (`requires_grad` False) and the network stays in eval mode even
inside a training loop (so batch-norm statistics of ResNet towers never move). It is evaluated with
`python train.py test|validate ...`; `fit` refuses it with a clear error (`VideoCLIPModule.configure_optimizers`
finds no trainable parameter). The class-name features are computed once per class list and cached.
"""

from __future__ import annotations

from lightning_modules.models.normalisation import CLIP_MEAN, CLIP_STD
from lightning_modules.models.vifi_clip import ViFiCLIP


class CLIPZeroShot(ViFiCLIP):
    """Frozen open_clip CLIP scoring each video's mean frame feature against prompted class names.

    Args:
        arch: open_clip architecture (`ViT-B-16`, `ViT-B-32`, or a `synthact-*` config).
        pretrained: open_clip pretrained tag (`openai`), local weight file, or None for random weights
            (only meaningful in tests).
        prompt: text template filled with each class name.
        num_frames: frames per clip whose features are averaged; the datamodule takes it.
    """

    input_mean, input_std = CLIP_MEAN, CLIP_STD  # OpenAI CLIP's own preprocessing (not ViFi-CLIP's ImageNet's)

    def __init__(
        self,
        arch: str = "ViT-B-16",
        pretrained: str | None = "openai",
        prompt: str = "a photo of a {}.",
        num_frames: int = 16,
    ):
        super().__init__(arch, pretrained, prompt, grad_checkpointing=False, freeze_text=True, num_frames=num_frames)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> CLIPZeroShot:
        """Stay in eval mode whatever the caller asks: the baseline is never trained."""
        return super().train(False)
