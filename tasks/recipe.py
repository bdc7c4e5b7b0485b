"""A recipe's layers for one phase, and the total batch it states.

A recipe (`configs/recipes/*.yaml`, the `recipe:` of a task YAML) holds only what differs from the module's
and datamodule's defaults: a `shared` overlay every phase starts from, and per phase an overlay that extends
it plus `total_batch`, the reference's batch over all devices. The optimiser step then sees `total_batch`
clips whatever the hardware: `trainer.accumulate_grad_batches` = total_batch / (data.batch_size x devices x
num_nodes), so `--trainer.devices 8` or `--trainer.num_nodes 2` keeps the recipe. A value the user sets for
`trainer.accumulate_grad_batches` (a flag or a later `--config`) wins over the derived one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml

TOTAL_BATCH = "total_batch"


def merge(base: dict, overlay: dict) -> dict:
    """`overlay` merged into a copy of `base`, nested dicts key by key (the overlay's leaves win)."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def phase_layer(shared: dict, phase: dict) -> tuple[dict, int | None]:
    """(the config overlay of a phase: `shared` extended by the phase's own keys, its total batch or None)."""
    own = dict(phase)
    total = own.pop(TOTAL_BATCH, None)
    if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < 1):
        raise ValueError(f"recipe `{TOTAL_BATCH}` must be a positive integer, got {total!r}")
    return merge(shared, own), total


def world_size(trainer: dict) -> int:
    """Processes a Trainer of these arguments trains on: devices x num_nodes, as Lightning counts them
    (`auto` / -1: every visible GPU, or 1 on the CPU; a list or a "0,1" string: its length)."""
    devices, accelerator = trainer.get("devices", "auto"), str(trainer.get("accelerator") or "auto")
    if isinstance(devices, str) and devices not in ("auto", "-1"):
        devices = [d for d in devices.split(",") if d.strip()] if "," in devices else int(devices)
    if isinstance(devices, (list, tuple)):
        count = len(devices)
    elif devices in ("auto", "-1", -1):
        count = torch.cuda.device_count() if accelerator in ("auto", "gpu", "cuda") else 1
        count = max(1, count)
    else:
        count = int(devices)
    return count * int(trainer.get("num_nodes") or 1)


def accumulation(total: int, batch_size: int, trainer: dict, where: str) -> int:
    """Batches to accumulate so one optimiser step sees `total` clips; an error when that is not whole."""
    world = world_size(trainer)
    per_step = batch_size * world
    if total % per_step:
        raise ValueError(
            f"{where}: total_batch {total} is not a multiple of data.batch_size {batch_size} x {world} "
            f"process(es) = {per_step}; choose a data.batch_size / device count that divides it, or set "
            "--trainer.accumulate_grad_batches yourself"
        )
    return total // per_step


def user_sets(args: list[str], dotted: str) -> bool:
    """Whether the user's arguments set `dotted` (e.g. `trainer.accumulate_grad_batches`): as a flag, inside
    a flag's JSON value, or in a later `--config` (a file or an inline YAML/JSON string)."""
    parts = dotted.split(".")

    def holds(tree: Any, keys: list[str]) -> bool:
        for key in keys:
            if not isinstance(tree, dict) or key not in tree:
                return False
            tree = tree[key]
        return True

    for i, arg in enumerate(args):
        key, value = (arg.split("=", 1) + [None])[:2] if arg.startswith("--") else (None, None)
        if key is None:
            continue
        if value is None and i + 1 < len(args):
            value = args[i + 1]
        name = key[2:]
        if name == dotted:
            return True
        if name == "config" and value is not None:
            path = Path(value)
            try:
                text = path.read_text(encoding="utf-8") if path.is_file() else value
                tree = yaml.safe_load(text)
            except (OSError, yaml.YAMLError):
                continue
            if holds(tree, parts):
                return True
        elif dotted.startswith(name + ".") and value is not None:
            try:
                tree = json.loads(value)
            except ValueError:
                continue
            if holds(tree, parts[len(name.split(".")) :]):
                return True
    return False
