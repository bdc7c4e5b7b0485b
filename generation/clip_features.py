"""CLIP video and text features for scoring and analysing generated sets, straight from open_clip.

Models come from the loader shared with training (`lightning_modules.models.clip.create_clip`): any
open_clip architecture (including the tiny `synthact-*` configs), weights from an open_clip tag, a local
file, or None for random weights. A clip's feature is the mean of the CLIP image
features of T frames sampled uniformly (the test-time segment centres of `datamodules.video`),
L2-normalised; a class's feature is the normalised text feature of its prompted name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from datamodules.transforms import VideoTransform
from datamodules.video import read_clip
from lightning_modules.models.clip import create_clip
from lightning_modules.models.text import split_camel_case


def load_clip(arch: str, pretrained: str | None) -> tuple[torch.nn.Module, open_clip.tokenizer.SimpleTokenizer]:
    """An open_clip model in eval mode and its tokenizer (the shared loader, `create_clip`)."""
    model, tokenizer = create_clip(arch, pretrained)
    return model.eval(), tokenizer


class FrameDataset(Dataset):
    """T uniformly sampled, CLIP-preprocessed frames (T, C, H, W) of each clip path."""

    def __init__(self, paths: list[Path], num_frames: int, image_size: int, mean, std):
        self.paths = paths
        self.num_frames = num_frames
        self.image_size = image_size
        # CLIP preprocessing: short side to the model's input size, centre crop, normalise.
        self.transform = VideoTransform(train=False, size=image_size, short_side=image_size, mean=mean, std=std)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        # (1, T, H, W, 3) uint8: the segment centres, decoded at the model's input size
        frames = read_clip(self.paths[index], self.num_frames, train=False, short_side=self.image_size)
        return self.transform(torch.from_numpy(frames[0]))  # (T, C, H, W)


class ClipEncoder:
    """Encodes clips and class names with one open_clip model.

    Args:
        arch: open_clip architecture.
        pretrained: open_clip tag, local weight file, or None (random weights).
        num_frames: frames sampled uniformly per clip (segment centres).
        template: prompt filled with each class name.
        device: torch device; default CUDA when available.
    """

    def __init__(
        self,
        arch: str = "ViT-B-16",
        pretrained: str | None = "openai",
        num_frames: int = 8,
        template: str = "a photo of a {}.",
        device: str | None = None,
    ):
        if "{}" not in template:
            raise ValueError(f"the prompt template must contain '{{}}' for the class name, got {template!r}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model, self.tokenizer = load_clip(arch, pretrained)
        self.model.to(self.device)
        self.num_frames = num_frames
        self.template = template
        size = self.model.visual.image_size
        self.image_size = size[0] if isinstance(size, (tuple, list)) else size
        self.mean = getattr(self.model.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
        self.std = getattr(self.model.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().exp())

    @torch.no_grad()
    def encode_texts(self, class_names: list[str]) -> torch.Tensor:
        """(K, D) L2-normalised text features of the prompted class names."""
        tokens = self.tokenizer([self.template.format(split_camel_case(c)) for c in class_names]).to(self.device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)

    @torch.no_grad()
    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) preprocessed frames -> (B, D) mean-pooled, L2-normalised video features."""
        b, t = video.shape[:2]
        with torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
            frames = self.model.encode_image(video.to(self.device, non_blocking=True).flatten(0, 1))  # (B*T, D)
        return F.normalize(frames.float().view(b, t, -1).mean(dim=1), dim=-1)  # (B, D)

    def loader(self, paths: list[Path], batch_size: int, num_workers: int = 0) -> DataLoader:
        """Batches (B, T, C, H, W) of the clips' preprocessed frames, in order."""
        dataset = FrameDataset(paths, self.num_frames, self.image_size, self.mean, self.std)
        return DataLoader(
            dataset, batch_size=batch_size, num_workers=num_workers, pin_memory=self.device.type == "cuda"
        )

    def encode_paths(self, paths: list[Path], batch_size: int = 16, num_workers: int = 0) -> np.ndarray:
        """(N, D) float32 video features of the clips at `paths`."""
        feats = [self.encode_frames(batch).cpu() for batch in self.loader(paths, batch_size, num_workers)]
        return torch.cat(feats).numpy() if feats else np.zeros((0, 0), np.float32)
