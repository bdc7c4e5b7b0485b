"""Official TC-CLIP release checkpoints <-> `TCCLIP` state dicts.

The release files are `{"model": state_dict, "optimizer": ..., "lr_scheduler": ..., "epoch": ...}`; only
`model` is read. Its keys carry the `module.` prefix of DistributedDataParallel and follow the official
module names: `image_encoder.*` (the CLIP ViT, whose blocks store `attn.q_proj/k_proj/v_proj` separately
where CLIP has one `in_proj_weight`/`in_proj_bias`, plus `attn.local_global_bias_table` in every block but
the first), `text_encoder.*` (CLIP text transformer, positional embedding, `ln_final`, `text_projection`
and `prompt_generation_layer.0.*`), `prompt_learner.ctx` (the prompt vectors), `logit_scale`. The
class-name buffers `prompt_learner.token_prefix/token_suffix` are rebuilt from the class names and ignored;
the token embedding is not stored and comes from the CLIP weights the model was built with.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
from torch import nn

from lightning_modules.models.clip import uses_quick_gelu

_IGNORED = re.compile(r"prompt_learner\.token_(prefix|suffix)$")
_QKV = re.compile(r"image_encoder\.transformer\.resblocks\.(\d+)\.attn\.([qkv])_proj\.(weight|bias)$")
_BIAS = re.compile(r"image_encoder\.transformer\.resblocks\.(\d+)\.attn\.local_global_bias_table$")
_NOT_STORED = ("clip.token_embedding.weight",)  # ours, absent from official checkpoints


def _rename(key: str) -> str | None:
    """Official key (no `module.`) -> our key, for everything but q/k/v and the bias tables."""
    prefixes = (
        ("image_encoder.", "clip.visual."),
        ("text_encoder.prompt_generation_layer.0.", "prompt_layer."),
        ("text_encoder.", "clip."),
    )
    for official, ours in prefixes:
        if key.startswith(official):
            return ours + key[len(official) :]
    return {"prompt_learner.ctx": "prompt_ctx", "logit_scale": "clip.logit_scale"}.get(key)


def from_official(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str], dict[str, str]]:
    """Convert an official `model` state dict; returns (our state dict, official keys with no counterpart,
    our key -> the official key it came from)."""
    out, unknown, qkv, origin = {}, [], {}, {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if _IGNORED.search(key):
            continue
        if m := _QKV.match(key):
            qkv.setdefault((int(m[1]), m[3]), {})[m[2]] = value
        elif m := _BIAS.match(key):
            out[f"context_bias.{int(m[1]) - 1}"] = value
            origin[f"context_bias.{int(m[1]) - 1}"] = key
        elif (ours := _rename(key)) is not None:
            out[ours], origin[ours] = value, key
        else:
            unknown.append(key)
    for (block, kind), parts in sorted(qkv.items()):
        if set(parts) != {"q", "k", "v"}:
            unknown += [
                f"image_encoder.transformer.resblocks.{block}.attn.{p}_proj.{kind} (q/k/v incomplete)" for p in parts
            ]
            continue
        out[f"clip.visual.transformer.resblocks.{block}.attn.in_proj_{kind}"] = torch.cat(
            [parts["q"], parts["k"], parts["v"]]
        )
    return out, unknown, origin


def to_official(model: nn.Module) -> dict[str, torch.Tensor]:
    """Our model's weights in the official layout (with `module.` prefixes), e.g. to test the loader."""
    inverse = {"prompt_ctx": "prompt_learner.ctx", "clip.logit_scale": "logit_scale"}
    out = {}
    for key, value in model.state_dict().items():
        if key in _NOT_STORED:
            continue
        if m := re.match(r"clip\.visual\.transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)$", key):
            for name, part in zip("qkv", value.chunk(3)):
                out[f"image_encoder.transformer.resblocks.{m[1]}.attn.{name}_proj.{m[2]}"] = part.clone()
            continue
        if m := re.match(r"context_bias\.(\d+)$", key):
            new = f"image_encoder.transformer.resblocks.{int(m[1]) + 1}.attn.local_global_bias_table"
        elif key in inverse:
            new = inverse[key]
        elif key.startswith("clip.visual."):
            new = "image_encoder." + key.removeprefix("clip.visual.")
        elif key.startswith("prompt_layer."):
            new = "text_encoder.prompt_generation_layer.0." + key.removeprefix("prompt_layer.")
        else:
            new = "text_encoder." + key.removeprefix("clip.")
        out[new] = value.clone()
    return {"module." + k: v for k, v in out.items()}


def load_official_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str = "state dict") -> None:
    """Load an official `model` state dict into `model`, strictly.

    Raises:
        ValueError: keys the model lacks (unexpected), model keys the file lacks (missing; the token
            embedding excepted) or shape mismatches, all listed with `source`.
    """
    converted, unknown, origin = from_official(state)
    own = model.state_dict()
    unexpected = sorted(unknown + [origin.get(k, k) for k in converted if k not in own])
    missing = sorted(k for k in own if k not in converted and k not in _NOT_STORED)
    shapes = sorted(
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in converted.items()
        if k in own and v.shape != own[k].shape
    )
    if unexpected or missing or shapes:
        lines = [f"TC-CLIP checkpoint {source} does not match the model (was it trained with another arch?):"]
        for title, items in (("unexpected keys", unexpected), ("missing keys", missing), ("shape mismatches", shapes)):
            if items:
                more = " ..." if len(items) > 20 else ""
                lines.append(f"  {title} ({len(items)}): " + ", ".join(items[:20]) + more)
        raise ValueError("\n".join(lines))
    if not uses_quick_gelu(model):
        raise ValueError(
            f"TC-CLIP checkpoint {source} was trained with QuickGELU (OpenAI CLIP) but the model's CLIP "
            "uses GELU; build it with `TCCLIP(checkpoint=...)` (QuickGELU follows) or a `-quickgelu` arch"
        )
    model.load_state_dict(converted, strict=False)  # strictness checked above; token embedding kept


def load_official_checkpoint(model: nn.Module, path: str | Path, weights_only: bool = True) -> None:
    """Read an official release file (`{"model": ...}`) and load it with `load_official_state_dict`.

    Uses `torch.load(weights_only=True)` unless `weights_only=False` is asked for (files that also pickle
    optimizer or scheduler objects need it; only for trusted files).
    """
    blob = read_release_dict(
        path,
        "TC-CLIP",
        ("model",),
        weights_only,
        file_hint="pass the release .pth file",
        keys_text="a 'model' entry",
        trust_hint=", or re-save only its 'model' entry",
    )
    load_official_state_dict(model, blob["model"], source=str(path))


def read_release_dict(
    path: str | Path,
    name: str,
    keys: tuple[str, ...],
    weights_only: bool,
    *,
    file_hint: str,
    keys_text: str,
    trust_hint: str = "",
) -> dict:
    """`torch.load` a release file of model `name` (TC-CLIP, BIKE) that must be a dict holding one of `keys`.

    Raises:
        FileNotFoundError: no such file (`file_hint` says what to pass).
        ValueError: it needs full unpickling and `weights_only` is set, or it is not such a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name} checkpoint not found: {path}; {file_hint}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as e:
        raise ValueError(
            f"{path}: cannot be read with weights_only=True ({e}); if you trust the file set "
            f"trust_checkpoint: true{trust_hint}"
        ) from e
    if not isinstance(blob, dict) or not any(k in blob for k in keys):
        found = list(blob)[:10] if isinstance(blob, dict) else type(blob).__name__
        raise ValueError(f"{path}: expected a {name} release dict with {keys_text}, found {found}")
    return blob
