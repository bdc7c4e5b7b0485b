"""LightningModules (systems that own the training loop) and, under `models/`, the plain networks."""

from lightning_modules.video_clip import VideoCLIPModule

__all__ = ["VideoCLIPModule"]
