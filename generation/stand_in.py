"""The demo world's stand-in for CLIP: `python -m generation score --arch demo --checkpoint PATH` scores with it.

There is no pretrained CLIP for the procedural demo world, so a `DemoNet` trained through the product
(`python train.py fit --config tasks/demo_scorer.yaml`, on the build's labelled web split) takes its place.
"""

from __future__ import annotations

from pathlib import Path

import torch

from datamodules.transforms import VideoTransform
from datamodules.video import read_clip
from lightning_modules.models.demo_net import DemoNet


class StandInEncoder:
    """The demo world's stand-in for CLIP in `python -m generation score --arch demo --checkpoint PATH`.

    There is no pretrained CLIP for the demo world: a `DemoNet` trained through `train.py fit --config
    tasks/demo_scorer.yaml` on the labelled web split takes its place. Same interface as
    `generation.clip_features.ClipEncoder`, except that a clip is `views` temporal views (every other frame
    each, as in multi-view testing): `encode_frames` gives one feature per view and `generation.score` takes S
    as the mean of the views' softmax, so a clip whose views disagree (incoherent motion) gets a spread S.

    Args:
        checkpoint: the scorer phase's `weights.pt` (its `config.yaml` beside it gives the net's arguments,
            its input spec among them: frame side and normalisation).
        num_frames: frames per view.
        views: temporal views per clip.
        device: torch device; default CPU.
    """

    def __init__(self, checkpoint: str | Path, num_frames: int = 8, views: int = 2, device: str | None = None):
        self.device = torch.device(device or "cpu")
        self.net = DemoNet.from_checkpoint(checkpoint).to(self.device)
        spec = self.net.input_spec
        if num_frames != spec.num_frames:
            raise ValueError(
                f"the stand-in CLIP {checkpoint} was trained on {spec.num_frames} frames per clip; score with "
                f"--num_frames {spec.num_frames} (got {num_frames})"
            )
        self.num_frames, self.views = num_frames, views
        self.transform = VideoTransform(train=False, size=spec.image_size, mean=spec.mean, std=spec.std)  # as in test

    @property
    def logit_scale(self) -> float:
        return float(self.net.logit_scale.detach().exp().clamp(max=100.0))

    @torch.no_grad()
    def encode_texts(self, class_names: list[str]) -> torch.Tensor:
        """(K, D) L2-normalised text features of the class names."""
        return self.net.encode_text(self.net.tokenize(class_names).to(self.device))

    @torch.no_grad()
    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """(B, V, T, C, H, W) views -> (B, V, D) L2-normalised view features."""
        b, v = video.shape[:2]
        return self.net.encode_video(video.to(self.device).flatten(0, 1)).view(b, v, -1)  # (B*V, D) -> (B, V, D)

    def _clip(self, path: Path) -> torch.Tensor:
        frames = read_clip(
            path, self.num_frames, train=False, num_views=self.views, short_side=self.transform.short_side
        )
        return torch.stack([self.transform(torch.from_numpy(view)) for view in frames])  # (V, T, C, H, W)

    def loader(self, paths: list[Path], batch_size: int, num_workers: int = 0):
        """Batches (B, V, T, C, H, W) of the clips' views, in order."""
        for start in range(0, len(paths), batch_size):
            yield torch.stack([self._clip(p) for p in paths[start : start + batch_size]])
