"""Plain `nn.Module` video-text models: video (B, T, C, H, W) + class tokens (K, L) -> logits (B, K)."""

from lightning_modules.models.clip import create_clip
from lightning_modules.models.vifi_clip import ViFiCLIP

__all__ = ["ViFiCLIP", "create_clip"]
