"""LightningModules (systems that own the training loop: `video_clip.VideoCLIPModule`), their losses
(`losses`), and under `models/` the plain networks and the CLIP loader.

Kept import-free so `generation` can share the model loader (`lightning_modules.models.clip`) without
loading Lightning; import submodules directly.
"""
