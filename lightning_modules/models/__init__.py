"""Plain `nn.Module` video-text models: video (B, T, C, H, W) + class tokens (K, L) -> logits (B, K)."""

from lightning_modules.models.bike import BIKE
from lightning_modules.models.clip import create_clip
from lightning_modules.models.clip_zero_shot import CLIPZeroShot
from lightning_modules.models.demo_net import DemoNet
from lightning_modules.models.tc_clip import TCCLIP as TCCLIP
from lightning_modules.models.vifi_clip import ViFiCLIP
from lightning_modules.models.xclip import XCLIP

__all__ = ["BIKE", "CLIPZeroShot", "DemoNet", "ViFiCLIP", "XCLIP", "create_clip"]
