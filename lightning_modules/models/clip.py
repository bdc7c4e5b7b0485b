"""The CLIP backbone every synthact model builds on: one factory over open_clip.

`create_clip(arch, pretrained)` takes any open_clip architecture name (`ViT-B-16`, `ViT-B-32`, or one of
the tiny `synthact-*` configs in `configs/`, registered here for tests and the demo) and weights from an
open_clip pretrained tag (`openai`), a local checkpoint file, or None for random initialisation. It also
holds what the CLIP-based nets share: `TextFeatureCache` (class-name features of a frozen text tower,
computed once per class list) and `text_tower_parameters` (what freezing the text tower freezes).
"""

from __future__ import annotations

from pathlib import Path

import open_clip
import torch
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


class TextFeatureCache:
    """Class-name text features computed once and reused while the class list stays the same.

    Used by nets whose text tower is frozen: features are computed under `no_grad` the first time a token
    batch is seen and reused for every later batch with equal tokens on the same device; new tokens (a new
    label space) recompute them. Nets call `clear()` when their weights change (e.g. after
    `load_state_dict`), so stale features are never served.
    """

    def __init__(self) -> None:
        self._key: torch.Tensor | None = None  # the token ids the cached features belong to
        self._features: torch.Tensor | None = None
        self.misses = 0  # how many times the features were (re)computed

    def get(self, tokens, compute) -> torch.Tensor:
        """Features for `tokens` (a tensor, or a mapping with `input_ids`), from `compute(tokens)` on a miss."""
        ids = tokens if isinstance(tokens, torch.Tensor) else tokens["input_ids"]
        key = self._key
        if key is None or key.device != ids.device or key.shape != ids.shape or not torch.equal(key, ids):
            with torch.no_grad():
                self._features = compute(tokens).detach()
            self._key = ids.detach().clone()
            self.misses += 1
        return self._features

    def clear(self) -> None:
        self._key = self._features = None


def clear_text_cache(module: nn.Module, incompatible_keys) -> None:
    """`load_state_dict` post-hook: new weights make a net's cached text features stale."""
    module.text_cache.clear()


def text_tower_parameters(clip: nn.Module) -> list[nn.Parameter]:
    """The parameters `encode_text` uses: everything except the image tower and the logit scale/bias."""
    skip = {id(p) for p in clip.visual.parameters()}
    scales = (getattr(clip, name, None) for name in ("logit_scale", "logit_bias"))
    skip |= {id(p) for p in scales if isinstance(p, nn.Parameter)}
    return [p for p in clip.parameters() if id(p) not in skip]
