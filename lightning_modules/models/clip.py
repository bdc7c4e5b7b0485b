"""The CLIP backbone every synthact model builds on: one factory over open_clip.

`create_clip(arch, pretrained)` takes any open_clip architecture name (`ViT-B-16`, `ViT-B-32`, or one of
the tiny `synthact-*` configs in `configs/`, registered here for tests and the demo) and weights from an
open_clip pretrained tag (`openai`), a local checkpoint file, or None for random initialisation.
"""

from __future__ import annotations

from pathlib import Path

import open_clip
from torch import nn

CONFIG_DIR = Path(__file__).with_name("configs")
open_clip.add_model_config(CONFIG_DIR)  # registers synthact-tiny / synthact-small next to open_clip's own


def create_clip(arch: str, pretrained: str | None = None) -> tuple[nn.Module, open_clip.tokenizer.SimpleTokenizer]:
    """Build an open_clip CLIP model and its tokenizer.

    Args:
        arch: open_clip architecture name (see `open_clip.list_models()`).
        pretrained: an open_clip pretrained tag for `arch` (e.g. `openai`), a path to a local weight file,
            or None for random weights.

    Raises:
        ValueError: unknown architecture or pretrained tag (the valid ones are listed).
        FileNotFoundError: `pretrained` looks like a path but does not exist.
    """
    if arch not in open_clip.list_models():
        raise ValueError(f"unknown CLIP architecture {arch!r}; choose one of {sorted(open_clip.list_models())}")
    if pretrained is not None and ("/" in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))):
        if not Path(pretrained).is_file():
            raise FileNotFoundError(f"CLIP weight file not found: {pretrained}; pass an existing file or a tag")
    elif pretrained is not None:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        if pretrained not in tags:
            raise ValueError(f"no pretrained tag {pretrained!r} for {arch}; available: {tags or 'none'}")
    model = open_clip.create_model(arch, pretrained=pretrained)
    return model, open_clip.get_tokenizer(arch)
