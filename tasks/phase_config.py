"""What a phase's (or a test's) weights depend on, hashed, so finished work is reused only when it is the same.

A phase's identity is its effective configuration (the parsed config of the phase: model, data, trainer
schedule, recipe overlay, loss/prompts fragments, task switches, seed) flattened to dotted keys, minus the
keys that only say where the run lives or what it prints (`IGNORED`), plus the content of the synthetic set
it trains on (the manifest file's sha256) and of its starting weights (sha256 of the state dict: the previous
phase's weights, `--task.init_weights`, or the net's own). `record` writes it beside the phase as
`identity.json` before training; `check` compares a rerun's identity with it and raises one line naming the
keys that differ and the two ways out: a new `--task.root`, or `--task.overwrite true` (which retrains the
phase, and so every phase and test after it). Trainer callbacks are not part of the identity (a rerun after a
crash drops the callback that crashed it); one that changes the weights needs a new `--task.root`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch
from jsonargparse import Namespace

IDENTITY = "identity.json"
# Keys that do not change what a phase trains: where the run lives, what it prints or logs, how it resumes.
IGNORED = (
    "config",
    "ckpt_path",
    "task.root",
    "task.print_phase",
    "task.checkpoint_every_n_steps",
    "task.overwrite",
    "trainer.logger",
    "trainer.callbacks",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "trainer.default_root_dir",
    "data.init_args.num_workers",
    "data.init_args.pin_memory",
)


def flatten(value, prefix: str = "") -> dict[str, object]:
    """A config (Namespace / dict / scalars) as {dotted key: JSON-able value}."""
    if isinstance(value, Namespace):
        value = value.as_dict()
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, (list, tuple)):
        return {prefix: json.loads(json.dumps([_plain(v) for v in value], default=str))}
    return {prefix: _plain(value)}


def _plain(value):
    if isinstance(value, Namespace):
        return value.as_dict()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def effective_keys(cfg: Namespace) -> dict[str, object]:
    """The keys of a phase config that change its weights."""
    flat = flatten(cfg)
    return {k: v for k, v in sorted(flat.items()) if not any(k == i or k.startswith(i + ".") for i in IGNORED)}


def weights_hash(state: dict | None) -> str:
    """sha256 (16 hex digits) of a state dict's names, dtypes, shapes and bytes; `none` for None."""
    if state is None:
        return "none"
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(memoryview(tensor.view(torch.uint8).numpy()) if tensor.numel() else b"")
    return digest.hexdigest()[:16]


def file_hash(path: str | None) -> str | None:
    """sha256 (16 hex digits) of a file's content (the synthetic manifest: scores and clips), None if absent."""
    if not path or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def identity(cfg: Namespace, start: dict | None, synthetic_manifest: str | None = None) -> dict:
    """The identity of a phase (or a test): its effective keys, starting weights, synthetic set and hash."""
    keys = effective_keys(cfg)
    record = {"keys": keys, "start_weights": weights_hash(start), "synthetic_set": file_hash(synthetic_manifest)}
    text = json.dumps(record, sort_keys=True, default=str)
    return {"hash": hashlib.sha256(text.encode()).hexdigest()[:12], **record}


def record(folder: Path, ident: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{IDENTITY}.tmp"
    tmp.write_text(json.dumps(ident, indent=1, sort_keys=True, default=str) + "\n")
    tmp.replace(folder / IDENTITY)


def recorded(folder: Path) -> dict | None:
    path = folder / IDENTITY
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:
        return None


def differences(old: dict, new: dict, limit: int = 6) -> list[str]:
    """`key old -> new` for every key that differs (starting weights and synthetic set included)."""
    out = []
    for key in sorted(set(old["keys"]) | set(new["keys"])):
        a, b = old["keys"].get(key, "<unset>"), new["keys"].get(key, "<unset>")
        if a != b:
            out.append(f"{key} {json.dumps(a, default=str)} -> {json.dumps(b, default=str)}")
    if old.get("start_weights") != new.get("start_weights"):
        out.append("starting weights (an earlier phase, --task.synthetic or --task.init_weights changed)")
    if old.get("synthetic_set") != new.get("synthetic_set"):
        out.append("the synthetic set's manifest content")
    return out[:limit] + ([f"and {len(out) - limit} more"] if len(out) > limit else [])


def check(folder: Path, ident: dict, where: str, overwrite: bool, delete: bool = True) -> bool:
    """Whether the work in `folder` (a finished or interrupted phase) may be reused by a run of `ident`.

    True: same identity (reuse or resume). False: nothing there, or `overwrite` (the folder is deleted when
    `delete`: rank 0 of a DDP run).
    Raises ValueError naming the differing keys when the identity differs (or was never recorded).
    """
    if not folder.exists() or not any(folder.iterdir()):
        return False
    old = recorded(folder)
    if old is not None and old.get("hash") == ident["hash"]:
        return True
    if overwrite:
        if delete:
            shutil.rmtree(folder)
        return False
    what = "; ".join(differences(old, ident)) if old else f"it has no {IDENTITY} (written by an older synthact)"
    raise ValueError(
        f"phase {where!r} in {folder} was trained with another configuration ({what}). Use a new --task.root, "
        "or pass --task.overwrite true to retrain it and everything after it"
    )
