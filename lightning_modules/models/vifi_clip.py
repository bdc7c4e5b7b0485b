"""ViFi-CLIP: CLIP fine-tuned end to end on video by temporal mean pooling of frame features.

Both towers are trained by default; the text side encodes every class name with the fixed prompt
"a photo of a {}.". A video's feature is the mean of its frames' CLIP image features, so frame order
is not seen (an action and its time-reversal look alike to this model). Switches shared with the other
nets: `grad_checkpointing` (open_clip's per-block activation checkpointing, less memory for more compute)
and `freeze_text` (text tower frozen; class features computed once per class list and cached).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.models.clip import TextFeatureCache, clear_text_cache, create_clip, text_tower_parameters
from lightning_modules.models.normalisation import IMAGENET_MEAN, IMAGENET_STD
from lightning_modules.models.spec import InputSpec, image_side
from lightning_modules.models.text import split_camel_case


class ViFiCLIP(nn.Module):
    """Video-text model with temporally mean-pooled CLIP image features.

    Args:
        arch: open_clip architecture (`ViT-B-16` for the paper; `synthact-tiny` for tests and the demo).
        pretrained: open_clip pretrained tag (`openai`), local weight file, or None for random weights.
        prompt: text template filled with each class name.
        grad_checkpointing: recompute each transformer block's activations in the backward pass
            (open_clip `set_grad_checkpointing`): less activation memory, about a third more compute.
        freeze_text: freeze the text tower (no gradients, no optimiser state) and cache the class-name
            features, computed once per class list under `no_grad`.
        num_frames: frames per clip (frame features are mean-pooled, so any count runs); the datamodule takes it.
    """

    # ImageNet statistics, as ViFi-CLIP trained (muzairkhattak/ViFi-CLIP datasets/build.py `img_norm_cfg`)
    input_mean, input_std = IMAGENET_MEAN, IMAGENET_STD

    def __init__(
        self,
        arch: str = "ViT-B-16",
        pretrained: str | None = "openai",
        prompt: str = "a photo of a {}.",
        grad_checkpointing: bool = False,
        freeze_text: bool = False,
        num_frames: int = 16,
    ):
        super().__init__()
        self.clip, self.tokenizer = create_clip(arch, pretrained)
        self.prompt = prompt
        self.num_frames = num_frames
        self.clip.set_grad_checkpointing(grad_checkpointing)
        self.freeze_text = freeze_text
        for p in text_tower_parameters(self.clip):
            p.requires_grad_(not freeze_text)
        self.text_cache = TextFeatureCache()
        self.register_load_state_dict_post_hook(clear_text_cache)

    @property
    def input_spec(self) -> InputSpec:
        """Frames, frame side, normalisation and text length this net takes (linked to the datamodule)."""
        return InputSpec(
            num_frames=self.num_frames,
            image_size=image_side(self.clip.visual),
            mean=tuple(self.input_mean),
            std=tuple(self.input_std),
            context_length=int(self.clip.positional_embedding.shape[0]),
        )

    def tokenize(self, class_names: list[str]) -> torch.Tensor:
        """Token ids (K, context_length) of the prompted class names."""
        return self.tokenizer([self.prompt.format(split_camel_case(c)) for c in class_names])

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) frames -> (B, D) L2-normalised video features."""
        b, t = video.shape[:2]
        frames = self.clip.encode_image(video.flatten(0, 1))  # (B*T, D)
        return F.normalize(frames.view(b, t, -1).mean(dim=1), dim=-1)  # (B, D)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(K, L) token ids -> (K, D) L2-normalised class features (cached when the text tower is frozen)."""
        if self.freeze_text:
            return self.text_cache.get(tokens, lambda t: F.normalize(self.clip.encode_text(t), dim=-1))
        return F.normalize(self.clip.encode_text(tokens), dim=-1)

    def forward(self, video: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) video and (K, L) class tokens -> (B, K) logits."""
        scale = self.clip.logit_scale.exp()
        video_features = self.encode_video(video)
        text_features = self.encode_text(tokens).to(video_features.dtype)
        return scale * video_features @ text_features.T
