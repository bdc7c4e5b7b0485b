"""The CLIP backbone every synthact model builds on: one factory over open_clip.

`create_clip(arch, pretrained)` takes any open_clip architecture name (`ViT-B-16`, `ViT-B-32`, or one of
the tiny `synthact-*` configs in `configs/`, registered here for tests and the demo) and weights from an
open_clip pretrained tag (`openai`), a local checkpoint file, or None for random initialisation. It also
holds what the CLIP-based nets share: `TextFeatureCache` (class-name features of a frozen text tower,
computed once per class list) and `text_tower_parameters` (what freezing the text tower freezes).

Activation rule (QuickGELU). OpenAI's CLIP weights, and every TC-CLIP / ViFi-CLIP / X-CLIP release trained
from them, use QuickGELU (x * sigmoid(1.702 x)); open_clip's plain `ViT-B-16` config builds `nn.GELU` and
only warns when given the `openai` tag, which shifts every feature (TC-CLIP logits move by ~7e-2). So the
activation follows the weights: `create_clip` builds QuickGELU whenever they were trained with it (an open_clip
tag whose pretrained config says `quick_gelu`, e.g. `openai`; an OpenAI-layout file; or a caller that knows,
e.g. TC-CLIP given an official release checkpoint), whatever the arch name says. An arch that names an
activation (`ViT-B-16-quickgelu`) the weights were not trained with is an error naming both.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import open_clip
import torch
from torch import nn

CONFIG_DIR = Path(__file__).with_name("configs")
open_clip.add_model_config(CONFIG_DIR)  # registers synthact-tiny / synthact-small next to open_clip's own
QUICKGELU_SUFFIX = "-quickgelu"
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def _activation(quick_gelu: bool) -> str:
    return "QuickGELU" if quick_gelu else "GELU"


def _is_file_argument(pretrained: str) -> bool:
    return "/" in pretrained or pretrained.endswith(WEIGHT_SUFFIXES)


def openai_release_names() -> set[str]:
    """File names of OpenAI's CLIP releases as open_clip knows them (`ViT-B-16.pt`, `RN50.pt`, ...)."""
    names = set()
    for arch, tag in open_clip.list_pretrained():
        if tag == "openai":
            url = open_clip.get_pretrained_cfg(arch, tag).get("url", "")
            if url:
                names.add(url.rsplit("/", 1)[-1])
    return names


def openai_layout_file(path: str | Path) -> bool:
    """Whether a local weight file holds OpenAI's CLIP weights: a TorchScript archive (the format OpenAI
    publishes), a file named as an OpenAI release (`ViT-B-16.pt`, as OpenAI's and open_clip's downloads
    name it), or a file in open_clip's Hugging Face cache of an `openai` tag (repo `timm/*.openai`). A plain
    state dict under another name says nothing about its activation and is built as its arch says: name
    the `-quickgelu` arch for OpenAI weights saved that way."""
    path = Path(path)
    if ".openai" in path.as_posix() or path.name in openai_release_names():
        return True
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("constants.pkl") for name in archive.namelist())  # TorchScript only
    return False


def weights_quick_gelu(arch: str, pretrained: str | None) -> bool | None:
    """Whether `pretrained` was trained with QuickGELU (True), GELU (False), or unknown (None: random
    weights or a plain open_clip state dict)."""
    if pretrained is None:
        return None
    if _is_file_argument(pretrained):
        return True if openai_layout_file(pretrained) else None
    base = arch.removesuffix(QUICKGELU_SUFFIX)
    cfg = open_clip.get_pretrained_cfg(arch, pretrained) or open_clip.get_pretrained_cfg(base, pretrained)
    return bool(cfg.get("quick_gelu", False))


def create_clip(
    arch: str,
    pretrained: str | None = None,
    quick_gelu: bool | None = None,
    quick_gelu_source: str = "the caller",
) -> tuple[nn.Module, open_clip.tokenizer.SimpleTokenizer]:
    """Build an open_clip CLIP model and its tokenizer, with the activation its weights were trained with.

    Args:
        arch: open_clip architecture name (see `open_clip.list_models()`); `<arch>-quickgelu` asks for
            QuickGELU explicitly.
        pretrained: an open_clip pretrained tag for `arch` (e.g. `openai`), a path to a local weight file,
            or None for random weights.
        quick_gelu: what other weights loaded on top need (e.g. True for an official TC-CLIP checkpoint);
            None: no requirement.
        quick_gelu_source: names those weights in errors.

    Raises:
        ValueError: unknown architecture or pretrained tag (the valid ones are listed), or sources that
            disagree on the activation (an explicit `-quickgelu` arch with GELU weights, or QuickGELU
            weights with a caller that needs GELU): the message names both.
        FileNotFoundError: `pretrained` looks like a path but does not exist.
    """
    if arch not in open_clip.list_models():
        raise ValueError(f"unknown CLIP architecture {arch!r}; choose one of {sorted(open_clip.list_models())}")
    base = arch.removesuffix(QUICKGELU_SUFFIX)
    name = arch
    if pretrained is not None and _is_file_argument(pretrained):
        if not Path(pretrained).is_file():
            raise FileNotFoundError(f"CLIP weight file not found: {pretrained}; pass an existing file or a tag")
    elif pretrained is not None:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        if pretrained not in tags:
            base_tags = open_clip.list_pretrained_tags_by_model(base) if base in open_clip.list_models() else []
            if pretrained not in base_tags:
                raise ValueError(f"no pretrained tag {pretrained!r} for {arch}; available: {tags or 'none'}")
            name = base  # e.g. ViT-B-16-quickgelu + laion2b_*: the tag lives on ViT-B-16; activation checked below

    # The activation: every source that has a say must agree; QuickGELU if any asks for it.
    explicit = bool(open_clip.get_model_config(arch).get("quick_gelu", False))  # `-quickgelu` archs
    claims = [(True, f"arch {arch!r}")] if explicit else []
    weights = weights_quick_gelu(arch, pretrained)
    if weights is not None:
        kind = "weight file" if _is_file_argument(pretrained) else "pretrained tag"
        claims.append((weights, f"{kind} {pretrained!r} (trained with {_activation(weights)})"))
    if quick_gelu is not None:
        claims.append((quick_gelu, f"{quick_gelu_source} (trained with {_activation(quick_gelu)})"))
    wanted = {value for value, _ in claims}
    if len(wanted) > 1:
        quick = next(who for value, who in claims if value)
        plain = next(who for value, who in claims if not value)
        raise ValueError(
            f"CLIP activation conflict: {quick} needs QuickGELU but {plain} uses GELU. Weights only work with the "
            f"activation they were trained with: use the plain arch name {base!r} (the activation then follows "
            "the weights) or weights trained with the activation you name."
        )
    model = open_clip.create_model(name, pretrained=pretrained, force_quick_gelu=True in wanted)
    return model, open_clip.get_tokenizer(arch)


def uses_quick_gelu(model: nn.Module) -> bool:
    """Whether an open_clip model's transformer MLPs use QuickGELU."""
    return any(type(m).__name__ == "QuickGELU" for m in model.modules())


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
