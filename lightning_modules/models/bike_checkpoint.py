"""Official BIKE release checkpoints (whwu95/BIKE) <-> `BIKE` state dicts.

A release file (`epoch_saving` / `best_saving` of the reference) is `{"epoch", "model_state_dict",
"fusion_model_state_dict", "optimizer_state_dict"}`; only the two state dicts are read, with any
DistributedDataParallel `module.` prefix removed:

- `model_state_dict`: the CLIP model in OpenAI's layout (`visual.*`, `transformer.*`, `token_embedding.weight`,
  `positional_embedding`, `ln_final.*`, `text_projection`, `logit_scale`), which is open_clip's layout too:
  ours is the same key under `clip.`. OpenAI's config entries `input_resolution` / `context_length` /
  `vocab_size`, if present, are not weights and are skipped.
- `fusion_model_state_dict`: the video branch's temporal module (`frame_position_embeddings.weight`,
  `transformer.resblocks.N.*`, ours under `temporal.`) or, in a file of the attribute branch
  (`train_attributes.py`), its sentence head (`query_fc.*`, `sentence_fc.*`, ours under `sentence_head.`).

The reference keeps the video and attribute branches in separate files; `load_official_checkpoint` takes
several files and loads their union, strictly. Given a video-branch file too, an attribute file's CLIP weights
are not read: the reference trains the attribute head with the text tower frozen and never runs the image
tower, so that CLIP is the initial one, and the video branch's fine-tuned CLIP is kept.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lightning_modules.models.tc_clip_checkpoint import read_release_dict

_CONFIG_ENTRIES = ("input_resolution", "context_length", "vocab_size")  # OpenAI CLIP files: not weights


def is_attribute_release(blob: dict) -> bool:
    """A file of the attribute branch: its fusion dict is a sentence head, not a temporal module."""
    names = [k.removeprefix("module.") for k in blob.get("fusion_model_state_dict", {})]
    return any(n.startswith(("query_fc.", "sentence_fc.")) for n in names) and not any(
        n.startswith(("frame_position_embeddings.", "transformer.")) for n in names
    )


def from_official(blob: dict, with_clip: bool = True) -> tuple[dict[str, torch.Tensor], list[str], dict[str, str]]:
    """Convert one release dict; returns (our state dict, release keys with no counterpart, our key -> the
    release key it came from). `with_clip=False` skips its CLIP weights."""
    out, unknown, origin = {}, [], {}
    for section in ("model_state_dict", "fusion_model_state_dict")[0 if with_clip else 1 :]:
        for key, value in blob.get(section, {}).items():
            name = key.removeprefix("module.")
            if section == "model_state_dict":
                if name in _CONFIG_ENTRIES:
                    continue
                ours = "clip." + name
            elif name.startswith(("frame_position_embeddings.", "transformer.")):
                ours = "temporal." + name
            elif name.startswith(("query_fc.", "sentence_fc.")):
                ours = "sentence_head." + name
            else:
                unknown.append(f"{section}.{key}")
                continue
            out[ours], origin[ours] = value, f"{section}.{key}"
    return out, unknown, origin


def to_official(model: nn.Module) -> dict:
    """Our model's weights in the release layout (video branch, or sentence head when the model has one and
    no temporal module), e.g. to test the loader or to hand a model to the reference code."""
    state = model.state_dict()
    blob = {"epoch": 0, "model_state_dict": {}, "fusion_model_state_dict": {}}
    for key, value in state.items():
        for prefix, section in (
            ("clip.", "model_state_dict"),
            ("temporal.", "fusion_model_state_dict"),
            ("sentence_head.", "fusion_model_state_dict"),
        ):
            if key.startswith(prefix):
                blob[section][key.removeprefix(prefix)] = value.clone()
    return blob


def load_official_state_dict(model: nn.Module, blobs: list[dict], source: str = "state dict") -> None:
    """Load the union of release dicts into `model`, strictly.

    Raises:
        ValueError: release keys the model lacks (unexpected), model keys no file has (missing) and shape
            mismatches, each listed, with `source`.
    """
    converted, unknown, origin = {}, [], {}
    for blob in blobs:  # with a video-branch file, an attribute file's CLIP (its initial weights) is not read
        with_clip = len(blobs) == 1 or not is_attribute_release(blob)
        c, u, o = from_official(blob, with_clip)
        converted.update(c), unknown.extend(u), origin.update(o)
    own = model.state_dict()
    unexpected = sorted(unknown + [origin[k] for k in converted if k not in own])
    missing = sorted(k for k in own if k not in converted)
    shapes = sorted(
        f"{origin[k]}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in converted.items()
        if k in own and v.shape != own[k].shape
    )
    if unexpected or missing or shapes:
        lines = [
            f"BIKE checkpoint {source} does not match the model (another arch, temporal_layers, or "
            "attribute branch setting?):"
        ]
        for title, items in (("unexpected keys", unexpected), ("missing keys", missing), ("shape mismatches", shapes)):
            if items:
                lines.append(f"  {title} ({len(items)}): " + ", ".join(items))
        raise ValueError("\n".join(lines))
    model.load_state_dict(converted, strict=True)


def read_release(path: str | Path, weights_only: bool = True) -> dict:
    """Read one release file, checking it holds BIKE's state dicts."""
    return read_release_dict(
        path,
        "BIKE",
        ("model_state_dict", "fusion_model_state_dict"),
        weights_only,
        file_hint="pass a release .pt file (whwu95/BIKE)",
        keys_text="'model_state_dict' / 'fusion_model_state_dict'",
    )


def load_official_checkpoint(model: nn.Module, paths: str | Path | list, weights_only: bool = True) -> None:
    """Load one or several release files (e.g. the video branch and the attribute branch) into `model`."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    blobs = [read_release(p, weights_only) for p in paths]
    load_official_state_dict(model, blobs, source=", ".join(map(str, paths)))
