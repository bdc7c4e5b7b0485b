"""`python -m datamodules`: dataset tools that need no model.

    python -m datamodules validate --list L --labels C [--root R [--root-layout by-name]] [--frames T] [--json]
    python -m datamodules splits {kshot,base-novel,long-tail} --list L ...
    python -m datamodules features --model-class C --model-args JSON --list L --video-root R --out DIR

`validate` checks a list against its label file and videos (exit code 1 on errors; every listed clip is
decoded with the training decoder's checks, so truncated or corrupt files are listed); `splits` writes
seeded K-shot, base/novel and long-tailed lists in the input list's format; `features` caches the (32, D)
segment features of every video of a UCF-Crime list or manifest for the anomaly task (any net with
`encode_video`, named by class path).

Configured like train.py (jsonargparse from these functions' signatures): every command takes `--config
FILE`, `--print_config` and `--key value`; the documented spellings (`--root-layout`, `--skip-decode`,
repeated `--list`) still work. A bad input is one line, `error: ...` (exit 2).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Literal

FORMAT_HELP = "list format: auto, video, frames, csv, crime-temporal, crime-counts, crime-ucf, crime-paths"


def validate(
    list: str,
    labels: str,
    root: str | None = None,
    frames: int = 8,
    format: str = "auto",
    naming: Literal["auto", "ucf101", "hmdb51", "none"] = "auto",
    root_layout: Literal["as-listed", "by-name"] = "as-listed",
    skip_decode: bool = False,
    json: bool = False,
) -> int:
    """Check an annotation list against its label file and videos.

    Args:
        list: annotation list (video `path label`, frames or csv format).
        labels: label CSV `id,name`.
        root: folder the listed paths are relative to; None checks the list only.
        frames: frames a sample needs.
        format: list format: auto, video, frames, csv.
        naming: check labels against class names in file names (UCF-101 / HMDB-51 naming).
        root_layout: as-listed: root/<listed path>; by-name: find each clip by file name anywhere under root
            (class sub-folders with flat lists).
        skip_decode: with root: check existence only.
        json: print the report as JSON.
    """
    from datamodules import validate as module

    return module.run(argparse.Namespace(**_locals(locals())))


def kshot(list: str, k: int, out: str, seed: int = 0, format: str = "auto") -> int:
    """K clips per class (all of a class with fewer).

    Args:
        list: the list to draw from.
        k: clips per class.
        out: list to write (same format as list).
        seed: seed of the draw.
        format: list format (auto, video, frames, csv, crime-*).
    """
    from datamodules import splits

    return splits._kshot_cmd(argparse.Namespace(**_locals(locals())))


def base_novel(
    labels: str,
    list: list[str],
    out_dir: str,
    num_base: int | None = None,
    order: Literal["random", "id"] = "random",
    seed: int = 0,
    format: str = "auto",
) -> int:
    """Split the classes in two; write both label CSVs and remapped lists.

    Args:
        labels: label CSV `id,name` of the full label space.
        list: lists to remap (`--list A --list B`).
        out_dir: writes base_labels.csv, novel_labels.csv, base_<list>, novel_<list>.
        num_base: classes in the base half (None: half, rounded up).
        order: random (seeded) or first ids.
        seed: seed of the random order.
        format: list format (auto, video, frames, csv, crime-*).
    """
    from datamodules import splits

    return splits._base_novel_cmd(argparse.Namespace(**_locals(locals())))


def long_tail(
    list: str,
    out: str,
    n_max: int | None = None,
    n_min: int = 5,
    seed: int = 0,
    labels: str | None = None,
    format: str = "auto",
) -> int:
    """Pareto long-tailed subset plus its Head/Tail/Few groups (JSON beside it).

    Args:
        list: the (balanced) list to draw from.
        out: list to write; <out stem>_groups.json is written beside it.
        n_max: clips of the largest class (None: the smallest class size).
        n_min: clips of the smallest class (5, as UCF-101-LT).
        seed: seed of the draw.
        labels: label CSV, to put class names in the JSON.
        format: list format (auto, video, frames, csv, crime-*).
    """
    from datamodules import splits

    return splits._long_tail_cmd(argparse.Namespace(**_locals(locals())))


def features(
    model_class: str,
    list: str,
    out: str,
    model_args: str = "{}",
    video_root: str | None = None,
    segments: int = 32,
    frames_per_snippet: int = 8,
    image_size: int = 224,
    batch_size: int = 16,
    device: str = "auto",
    seed: int = 0,
    on_error: Literal["raise", "skip"] = "raise",
) -> int:
    """Cache the (segments, D) features of every video of a UCF-Crime list or manifest.

    Args:
        model_class: dotted class path of a net with encode_video.
        list: UCF-Crime list (any format) or a synthetic manifest.jsonl.
        out: feature folder (one <video stem>.pt per video).
        model_args: JSON object of the net's init args.
        video_root: folder the list's paths are relative to (not needed for a manifest).
        segments: segments per video.
        frames_per_snippet: frames per encoded snippet.
        image_size: crop size fed to the net.
        batch_size: snippets per forward pass.
        device: cuda, cpu, or auto (cuda when available).
        seed: torch seed before building the net (random-weight nets).
        on_error: a video that does not decode: raise, or skip it (counted).
    """
    import torch

    from datamodules import features as module

    values = _locals(locals())
    if values["device"] == "auto":
        values["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    return module.run(argparse.Namespace(**values))


def _locals(values: dict) -> dict:
    return {k: v for k, v in values.items() if not k.startswith("_") and k not in ("module", "splits", "torch")}


COMMANDS = {
    "validate": validate,
    "splits": {"kshot": kshot, "base-novel": base_novel, "long-tail": long_tail},
    "features": features,
}
FLAGS = ("--json", "--skip_decode")  # switches that were written without a value


def normalise(argv: list[str]) -> list[str]:
    """The documented spellings as jsonargparse options: `--a-b` -> `--a_b`, a bare switch -> `--json true`,
    repeated `--list` (base-novel) -> one JSON list."""
    out = []
    for i, arg in enumerate(argv):
        if arg.startswith("--") and not arg.startswith("--print_config"):
            name, eq, value = arg.partition("=")
            arg = name.replace("-", "_").replace("__", "--", 1) + eq + value
            if arg in FLAGS and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
                out += [arg, "true"]
                continue
        out.append(arg)
    if out[:2] == ["splits", "base-novel"] and out.count("--list") > 1:
        lists = [out[i + 1] for i, a in enumerate(out[:-1]) if a == "--list"]
        rest, skip = [], False
        for a in out:
            if skip:
                skip = False
            elif a == "--list":
                skip = True
            else:
                rest.append(a)
        out = [*rest, "--list", json.dumps(lists)]
    elif out[:2] == ["splits", "base-novel"] and "--list" in out:
        i = out.index("--list")
        if i + 1 < len(out) and not out[i + 1].startswith("["):
            out[i + 1] = json.dumps([out[i + 1]])
    return out


def main(argv: list[str] | None = None) -> int:
    """Run a command; a user error raises (`cli` prints it as one line)."""
    from jsonargparse import CLI

    argv = normalise(list(sys.argv[1:] if argv is None else argv)) or ["--help"]
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return CLI(COMMANDS, args=argv, as_positional=False, prog="python -m datamodules")


def cli(argv: list[str] | None = None) -> int:
    """`python -m datamodules ...`: a missing file or bad input is one line on stderr (exit 2);
    SYNTHACT_DEBUG=1 shows the traceback."""
    from datamodules.annotations import AnnotationError

    try:
        return main(argv)
    except (FileNotFoundError, ValueError, AnnotationError) as error:
        if os.environ.get("SYNTHACT_DEBUG", "") not in ("", "0"):
            raise
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(cli())
