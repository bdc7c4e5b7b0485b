"""X-CLIP (Ni et al., ECCV 2022) through transformers' `XCLIPModel`, behind the synthact net interface.

`XCLIP` wraps `transformers.XCLIPModel` (not a re-implementation): frames go through the cross-frame
vision tower and the multi-frame integration transformer (`mit`), so, unlike the frame-mean models,
X-CLIP sees frame order. Its prompt generator conditions every class's text feature on the video's patch
features, so the logits are per (video, class) pair. Weights come from a hub id
(`microsoft/xclip-base-patch32`, `microsoft/xclip-base-patch16`) or a local `save_pretrained` directory,
with the tokenizer saved next to them; `pretrained: false` builds random weights from `XCLIPConfig`
defaults (the base-patch32 architecture) updated by `config` overrides (tiny configs for tests and the
demo), tokenised with open_clip's bundled copy of the same CLIP BPE vocabulary. The text model pools the
feature at the arg-max token id (the end-of-text id 49407, the largest in the vocabulary), and attention
is causal, so padding after it never changes a class's logits. `encode_video` (mit-pooled, L2-normalised,
no text needed) is also the anomaly task's feature extractor (B/32).
"""

from __future__ import annotations

from collections.abc import Mapping

import open_clip
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoTokenizer, BatchEncoding, XCLIPConfig, XCLIPModel

from lightning_modules.models.clip import TextFeatureCache, clear_text_cache
from lightning_modules.models.normalisation import IMAGENET_MEAN, IMAGENET_STD
from lightning_modules.models.spec import InputSpec
from lightning_modules.models.text import split_camel_case

# Parameter-name keys of the modules X-CLIP adds to CLIP (cross-frame message tokens, multi-frame
# integration transformer, video-specific prompt generator); X-CLIP trains them at 10x the CLIP lr.
NEW_MODULE_KEYS = ("message_", "mit.", "prompts_")

# A tiny X-CLIP (1.65M parameters, most of them the 49408-id token embedding) for tests and the demo:
# `XCLIP(pretrained=False, config=TINY_CONFIG)` takes (B, 4, 3, 32, 32) clips and runs every code path.
TINY_CONFIG = {
    "projection_dim": 32,
    "prompt_layers": 1,
    "prompt_num_attention_heads": 2,
    "text_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": 16,
    },
    "vision_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 16,
        "num_frames": 4,
        "mit_hidden_size": 32,
        "mit_intermediate_size": 64,
        "mit_num_hidden_layers": 1,
        "mit_num_attention_heads": 2,
    },
}


class XCLIP(nn.Module):
    """transformers' X-CLIP as a video-text classifier over prompted class names.

    Args:
        name_or_path: hub id (`microsoft/xclip-base-patch32`, `microsoft/xclip-base-patch16`) or a local
            directory written by `save_pretrained`, holding weights, config and tokenizer files. The frame
            count is the weights' `vision_config.num_frames` (8; `...-patch32-16-frames` for 16).
        pretrained: load `name_or_path`; False builds random weights from `XCLIPConfig` (base-patch32
            architecture by default) with `config` applied, and ignores `name_or_path`.
        config: `XCLIPConfig` overrides for a random-weight model, e.g. `{"vision_config":
            {"patch_size": 16}}` or a tiny test config; only with `pretrained: false`.
        prompt: text template filled with each class name (X-CLIP's own recipe uses the bare name).
        grad_checkpointing: recompute transformer-layer activations in the backward pass (transformers'
            activation checkpointing; active in training mode only).
        freeze_text: freeze the text model and text projection and cache the class features (computed once
            per class list under `no_grad`); the prompt generator still conditions them on each video.
        num_frames: frames per clip when they differ from the weights' (UMIL's anomaly instances: 5);
            the multi-frame integration transformer's position embedding is then newly initialised, as
            UMIL does when it loads the 8-frame release. None: the weights' (or config's) count.
    """

    # ImageNet statistics, as X-CLIP trained (microsoft/VideoX X-CLIP/datasets/build.py `img_norm_cfg`; the hub's
    # preprocessor_config agrees), not CLIP's.
    input_mean, input_std = IMAGENET_MEAN, IMAGENET_STD

    def __init__(
        self,
        name_or_path: str = "microsoft/xclip-base-patch32",
        pretrained: bool = True,
        config: dict | None = None,
        prompt: str = "{}",
        grad_checkpointing: bool = False,
        freeze_text: bool = False,
        num_frames: int | None = None,
    ):
        super().__init__()
        if pretrained and config is not None:
            raise ValueError(
                "XCLIP: `config` overrides build a random-weight model; set `pretrained: false` to use them, "
                f"or drop `config` to load {name_or_path!r} as saved"
            )
        if pretrained:
            self.model, self.hf_tokenizer = _load_pretrained(name_or_path, num_frames)
            self.bpe = None
        else:
            model_config = XCLIPConfig(**(config or {}))
            if num_frames is not None:
                model_config.vision_config.num_frames = num_frames
            self.model = XCLIPModel(model_config)
            self.hf_tokenizer, self.bpe = None, open_clip.tokenizer.SimpleTokenizer()
            vocab = self.model.config.text_config.vocab_size
            if vocab < len(self.bpe.encoder):
                raise ValueError(
                    f"XCLIP config: text_config.vocab_size={vocab} is smaller than the CLIP BPE vocabulary "
                    f"({len(self.bpe.encoder)} ids); keep the default 49408"
                )
        self.prompt = prompt
        self.num_frames = self.model.config.vision_config.num_frames
        if grad_checkpointing:
            enable_checkpointing(self.model)
        self.freeze_text = freeze_text
        for module in (self.model.text_model, self.model.text_projection):
            module.requires_grad_(not freeze_text)
        self.text_cache = TextFeatureCache()
        self.register_load_state_dict_post_hook(clear_text_cache)

    @property
    def input_spec(self) -> InputSpec:
        """Frames, frame side, normalisation and text length this net takes (linked to the datamodule)."""
        return InputSpec(
            num_frames=self.num_frames,
            image_size=int(self.model.config.vision_config.image_size),
            mean=tuple(self.input_mean),
            std=tuple(self.input_std),
            context_length=None,
        )

    def tokenize(self, class_names: list[str]) -> BatchEncoding:
        """Prompted class names -> `input_ids` and `attention_mask` (K, L), L the longest prompt."""
        texts = [self.prompt.format(split_camel_case(c)) for c in class_names]
        max_length = self.model.config.text_config.max_position_embeddings
        if self.hf_tokenizer is not None:
            return self.hf_tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        ids = self.bpe(texts, context_length=max_length)  # (K, max_length), zero-padded after end-of-text
        lengths = (ids != 0).sum(dim=1)
        ids = ids[:, : int(lengths.max())]  # (K, L)
        mask = (torch.arange(ids.shape[1]) < lengths[:, None]).long()
        return BatchEncoding({"input_ids": ids, "attention_mask": mask})

    def encode_text(self, tokens: Mapping | torch.Tensor) -> torch.Tensor:
        """Class tokens -> (K, D) projected text features before video conditioning (not normalised)."""
        if self.freeze_text:
            return self.text_cache.get(tokens, self._encode_text)
        return self._encode_text(tokens)

    def _encode_text(self, tokens: Mapping | torch.Tensor) -> torch.Tensor:
        if isinstance(tokens, torch.Tensor):
            ids, mask = tokens, None
        else:
            ids, mask = tokens["input_ids"], tokens.get("attention_mask")
        pooled = self.model.text_model(input_ids=ids, attention_mask=mask).pooler_output  # (K, D_text)
        return self.model.text_projection(pooled)  # (K, D)

    def _check_frames(self, video: torch.Tensor) -> None:
        if video.ndim != 5 or video.shape[1] != self.num_frames:
            raise ValueError(
                f"XCLIP expects video (B, T={self.num_frames}, C, H, W), got shape {tuple(video.shape)}; set the "
                f"datamodule's num_frames to {self.num_frames} (vision_config.num_frames of the X-CLIP weights)"
            )

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) frames -> (B, D) L2-normalised video features (mit-pooled; no text involved)."""
        self._check_frames(video)
        return F.normalize(self.model.get_video_features(pixel_values=video).pooler_output, dim=-1)

    def forward(self, video: torch.Tensor, tokens: Mapping | torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) video and K class tokens -> (B, K) logits (`XCLIPModel`'s logits_per_video).

        The steps are `XCLIPModel.forward`'s, split so that the text features can come from the cache.
        """
        video_features, text = self.video_text_features(video, tokens)
        video_features, text = F.normalize(video_features, dim=-1), F.normalize(text, dim=-1)
        return self.model.logit_scale.exp() * torch.einsum("bd,bkd->bk", video_features, text)

    def video_text_features(
        self, video: torch.Tensor, tokens: Mapping | torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C, H, W) video, K class tokens -> (B, D) video features and (B, K, D) video-conditioned class
        features, neither normalised (`forward` normalises and scales them; the anomaly net heads the video's)."""
        self._check_frames(video)
        m = self.model
        b, t = video.shape[:2]
        vision = m.vision_model(pixel_values=video.flatten(0, 1))  # (B*T, 1+N, D_vis) tokens, (B*T, D_vis) CLS
        frames = m.visual_projection(vision.pooler_output).view(b, t, -1)  # (B, T, D)
        video_features = m.mit(frames).pooler_output  # (B, D)
        patches = m.prompts_visual_layernorm(vision.last_hidden_state[:, 1:]) @ m.prompts_visual_projection
        patches = patches.view(b, t, -1, video_features.shape[-1]).mean(dim=1)  # (B, N, D): frame-mean patches
        text = self.encode_text(tokens).to(patches.dtype)
        text = text.unsqueeze(0).expand(b, -1, -1)  # (B, K, D)
        text = text + m.prompts_generator(text, patches)  # (B, K, D): class features conditioned on each video
        return video_features, text

    def param_groups(self) -> list[dict]:
        """X-CLIP's recipe: its new modules at 10x lr; biases and 1-d weights (norms, scales) without decay."""
        groups: dict[tuple[float, float], list[nn.Parameter]] = {}
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            lr_scale = 10.0 if any(key in name for key in NEW_MODULE_KEYS) else 1.0
            wd_scale = 0.0 if p.ndim < 2 or name.endswith(".bias") else 1.0
            groups.setdefault((lr_scale, wd_scale), []).append(p)
        return [{"params": ps, "lr_scale": lr, "wd_scale": wd} for (lr, wd), ps in sorted(groups.items())]


def enable_checkpointing(model: XCLIPModel) -> None:
    """transformers' activation checkpointing (renamed from `gradient_checkpointing_enable` in v5)."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def _load_pretrained(name_or_path: str, num_frames: int | None = None) -> tuple[XCLIPModel, object]:
    """Weights and tokenizer from a hub id or local directory, with an error that says what to do.
    With another `num_frames`, the (1, T, D) mit position embedding is the one mismatched, re-initialised tensor."""
    try:
        if num_frames is None:
            model = XCLIPModel.from_pretrained(name_or_path)
        else:
            config = XCLIPConfig.from_pretrained(name_or_path)
            config.vision_config.num_frames = num_frames
            model = XCLIPModel.from_pretrained(name_or_path, config=config, ignore_mismatched_sizes=True)
        return model, AutoTokenizer.from_pretrained(name_or_path)
    except OSError as err:
        raise OSError(
            f"XCLIP: cannot load weights/tokenizer from {name_or_path!r} ({err}). Pass a local directory written "
            "by XCLIPModel.save_pretrained + tokenizer.save_pretrained, download the hub id once with network "
            "access (HF_HUB_OFFLINE=0), or set `pretrained: false` for random weights."
        ) from err
