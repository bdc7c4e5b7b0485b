"""CLIP uncertainty of generated clips: how far each clip is from looking like its class, written to the manifest.

For every clip: CLIP video feature v (T uniformly sampled frames, mean-pooled, L2-normalised), text
features t_k of all K class names, S = softmax(logit_scale * v . t_k), entropy H = -sum_k S_k log S_k.
H is then normalised over the whole manifest to the uncertainty u in [0, 1]: `minmax`
(u = (H - min H) / (max H - min H), the paper's) or `max_entropy` (u = H / log K). The manifest gets
`entropy`, `uncertainty`, `clip_pred` (argmax class) and `clip_prob` (its probability); the method and
its constants go to `score.json` beside it.

Resumable: rows that have an entropy keep it and are not re-encoded; the manifest is rewritten
atomically (temp file + rename) after every `save_every_s` seconds of scoring and at the end, and u is
recomputed over all rows each run. Do not score a manifest that `render` is still appending to.
Beside the manifest it also writes `uncertainty_hist.png` (one histogram per class) and
`uncertain_clips.json` (the most uncertain clips of each class, for a person to look at).
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from datamodules.annotations import read_labels
from datamodules.manifest import ManifestError, ManifestRow, read_manifest, write_jsonl, write_text_atomic
from datamodules.progress import Progress

Normalisation = Literal["minmax", "max_entropy"]


def class_probs(video: torch.Tensor, text: torch.Tensor, logit_scale: float) -> torch.Tensor:
    """(B, D) and (K, D) L2-normalised features -> (B, K) S = softmax(logit_scale * cosine)."""
    return (logit_scale * video.float() @ text.float().T).softmax(dim=-1)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """(B, K) probabilities -> (B,) H = -sum_k S_k log S_k in nats (0 log 0 = 0)."""
    return torch.special.entr(probs.double()).sum(dim=-1).float()


def normalise_entropy(h: np.ndarray, method: Normalisation, num_classes: int) -> tuple[np.ndarray, dict]:
    """Entropies of a whole set -> uncertainties in [0, 1] and the constants used (for score.json).

    `minmax`: (H - min) / (max - min), all 0 when every H is equal. `max_entropy`: H / log K.
    """
    h = np.asarray(h, dtype=np.float64)
    if method == "minmax":
        lo, hi = float(h.min()), float(h.max())
        u = (h - lo) / (hi - lo) if hi > lo else np.zeros_like(h)
        return np.clip(u, 0.0, 1.0), {"method": method, "entropy_min": lo, "entropy_max": hi}
    if method == "max_entropy":
        top = math.log(num_classes)
        return np.clip(h / top, 0.0, 1.0), {"method": method, "entropy_max": top}
    raise ValueError(f"unknown normalisation {method!r}; use minmax or max_entropy")


def check_weights_available(arch: str, pretrained: str | None, timeout: float = 3.0) -> None:
    """Fail in seconds, not after open_clip's ~50 s of download retries, when CLIP weights cannot be had:
    `pretrained` names an open_clip tag whose weights are in no local cache, and the hub is unreachable
    (HF_HUB_OFFLINE set, or no connection to it within `timeout` seconds). None, a local file and an unknown
    tag (the loader explains those) pass.

    Raises:
        FileNotFoundError: saying how to give local weights.
    """
    if pretrained is None or Path(pretrained).is_file():
        return
    import open_clip

    cfg = open_clip.get_pretrained_cfg(arch, pretrained)
    if not cfg or "file" in cfg:
        return
    from huggingface_hub import constants, try_to_load_from_cache

    where = []
    if cfg.get("hf_hub"):
        repo, filename = os.path.split(cfg["hf_hub"].rstrip("/") if cfg["hf_hub"].endswith("/") else cfg["hf_hub"])
        if cfg["hf_hub"].endswith("/"):
            repo, filename = cfg["hf_hub"].rstrip("/"), "open_clip_pytorch_model.bin"
        for name in ("open_clip_model.safetensors", filename):
            if isinstance(try_to_load_from_cache(repo, name), str):
                return
        where.append(f"Hugging Face cache {constants.HF_HUB_CACHE} ({repo})")
    if cfg.get("url"):
        cached = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(cfg["url"])
        if cached.is_file():
            return
        where.append(str(cached))
    if constants.HF_HUB_OFFLINE:
        reason = "HF_HUB_OFFLINE is set"
    else:
        host = constants.ENDPOINT.split("://", 1)[-1].split("/", 1)[0]
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            return  # reachable: open_clip downloads them
        except OSError as exc:
            reason = f"{host} cannot be reached ({type(exc).__name__})"
    raise FileNotFoundError(
        f"CLIP weights {arch!r} / {pretrained!r} are not in the local cache ({'; '.join(where)}) and {reason}. "
        f"Give local weights: pass `--pretrained /path/to/weights.bin` (an open_clip or OpenAI CLIP file), or "
        f'download them on a machine with network (`python -c "import open_clip; open_clip.create_model('
        f"'{arch}', pretrained='{pretrained}')\"`) and copy its Hugging Face cache here (set HF_HOME to it); "
        "`--pretrained none` uses random weights (tests only)."
    )


@dataclass
class ScoreSummary:
    """What a scoring run did."""

    rows: int  # rows in the manifest
    scored: int  # rows encoded by this run
    already_scored: int  # rows that kept the entropy of an earlier run
    seconds: float
    clips_per_s: float


def _write_json(path: Path, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def score_manifest(
    manifest: str | Path,
    labels: str | Path,
    *,
    arch: str = "ViT-B-16",
    pretrained: str | None = "openai",
    num_frames: int = 8,
    template: str = "a photo of a {}.",
    batch_size: int = 16,
    num_workers: int = 0,
    normalisation: Normalisation = "minmax",
    device: str | None = None,
    top: int = 10,
    save_every_s: float = 60.0,
    progress: bool = True,
    tensorboard: str | Path | None = None,
    checkpoint: str | Path | None = None,
    views: int = 2,
    rescore: bool = False,
) -> ScoreSummary:
    """Score every unscored clip of `manifest` and re-normalise the uncertainty of all of them.

    Args:
        manifest: manifest.jsonl from `python -m generation render`.
        labels: label CSV `id,name` of the training label space (all K classes are scored against).
        arch: open_clip architecture.
        pretrained: open_clip tag, local weight file, or None (random weights; tests).
        num_frames: frames sampled uniformly per clip.
        template: prompt filled with each class name.
        batch_size: clips per forward pass.
        num_workers: DataLoader processes decoding clips.
        normalisation: `minmax` (paper) or `max_entropy`.
        device: torch device; default CUDA when available.
        top: how many of the most uncertain clips per class to list in uncertain_clips.json.
        save_every_s: rewrite the manifest at least this often while scoring (a crash loses at most this).
        progress: show a progress bar.
        tensorboard: also log the histograms to a TensorBoard folder.
        checkpoint: with `arch="demo"`: the demo world's stand-in CLIP, a DemoNet phase's `weights.pt` from
            `train.py fit --config tasks/demo_scorer.yaml` (`generation.stand_in.StandInEncoder`); `pretrained` is
            then unused.
        views: with `arch="demo"`: temporal views per clip; S is the mean of their softmax.
        rescore: encode every row again (e.g. after changing the scorer), not only the unscored ones.

    Raises:
        FileNotFoundError: missing manifest or label CSV.
        ManifestError: a row's class disagrees with the label CSV, or the manifest is empty.
    """
    manifest = Path(manifest)
    rows = read_manifest(manifest)
    names = read_labels(labels)
    if not rows:
        raise ManifestError(f"{manifest}: the manifest has no rows; render some clips first")
    for row in rows:
        if row.class_id >= len(names) or names[row.class_id] != row.class_name:
            raise ManifestError(
                f"{manifest}: row {row.row_id!r} is class {row.class_id} {row.class_name!r}, "
                f"which is not in {labels}; score with the label CSV the set was made from"
            )

    if arch == "demo" and checkpoint is None:  # checked whether or not clips are left to encode
        raise ValueError(
            "--arch demo needs --checkpoint: the weights.pt of `train.py fit --config tasks/demo_scorer.yaml`"
        )

    # 1. Encode the clips that have no entropy yet; save the manifest as we go.
    todo = [i for i, row in enumerate(rows) if rescore or row.entropy is None]
    seconds = 0.0
    if todo and arch == "demo":  # the demo world's stand-in CLIP (generation/stand_in.py)
        from generation.stand_in import StandInEncoder

        encoder = StandInEncoder(checkpoint, num_frames=num_frames, views=views, device=device)
    elif todo:
        check_weights_available(arch, pretrained)  # seconds, not open_clip's long offline retries
        from generation.clip_features import ClipEncoder  # open_clip only when there is work

        encoder = ClipEncoder(arch, pretrained, num_frames=num_frames, template=template, device=device)
    if todo:
        started = time.perf_counter()
        text = encoder.encode_texts(names)  # (K, D)
        paths = [manifest.parent / rows[i].video for i in todo]
        done, last_save = 0, time.perf_counter()
        with Progress(total=len(todo), desc="score", unit="clip", disable=not progress) as bar:
            for frames in encoder.loader(paths, batch_size, num_workers):  # (B, T, C, H, W)
                probs = class_probs(encoder.encode_frames(frames), text, encoder.logit_scale)  # (B, K) or (B, V, K)
                probs = probs.mean(dim=1) if probs.ndim == 3 else probs  # views: S is the mean of their softmax
                h, (p, pred) = entropy(probs).tolist(), probs.max(dim=-1)
                for j, (hj, pj, cj) in enumerate(zip(h, p.tolist(), pred.tolist())):
                    i = todo[done + j]
                    rows[i] = rows[i].model_copy(update={"entropy": hj, "clip_pred": cj, "clip_prob": pj})
                done += len(h)
                bar.update(len(h))
                if time.perf_counter() - last_save > save_every_s:
                    write_jsonl(manifest, rows)  # entropies so far; uncertainty is set below
                    last_save = time.perf_counter()
        seconds = time.perf_counter() - started

    # 2. Normalise over the whole set and write the manifest + score.json.
    h = np.array([row.entropy for row in rows])
    u, constants = normalise_entropy(h, normalisation, len(names))
    rows = [row.model_copy(update={"uncertainty": float(ui)}) for row, ui in zip(rows, u)]
    write_jsonl(manifest, rows)
    _write_json(
        manifest.parent / "score.json",
        {
            **constants,
            "arch": arch,
            "pretrained": pretrained,
            **({"checkpoint": str(checkpoint), "views": views} if arch == "demo" else {}),
            "num_frames": num_frames,
            "template": template,
            "num_classes": len(names),
            "rows": len(rows),
            "scored_by_last_run": len(todo),
        },
    )

    # 3. What a person should look at: per-class histograms and the most uncertain clips.
    write_reports(manifest.parent, rows, names, top=top, tensorboard=tensorboard)
    return ScoreSummary(
        rows=len(rows),
        scored=len(todo),
        already_scored=len(rows) - len(todo),
        seconds=round(seconds, 2),
        clips_per_s=round(len(todo) / seconds, 2) if todo else 0.0,
    )


def write_reports(out: Path, rows: list[ManifestRow], names: list[str], top: int = 10, tensorboard=None) -> None:
    """`uncertainty_hist.png` (one panel per class) and `uncertain_clips.json` (top clips per class)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_class: dict[int, list[ManifestRow]] = {}
    for row in rows:
        by_class.setdefault(row.class_id, []).append(row)
    worst = {
        names[c]: [
            {
                "row_id": r.row_id,
                "video": r.video,
                "uncertainty": r.uncertainty,
                "entropy": r.entropy,
                "clip_pred": names[r.clip_pred],
                "clip_prob": r.clip_prob,
            }
            for r in sorted(members, key=lambda r: -r.uncertainty)[:top]
        ]
        for c, members in sorted(by_class.items())
    }
    _write_json(out / "uncertain_clips.json", worst)

    cols = min(4, len(by_class))
    nrows = math.ceil(len(by_class) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3 * cols, 2.2 * nrows), squeeze=False, sharex=True)
    for ax in axes.flat[len(by_class) :]:
        ax.axis("off")
    for ax, (c, members) in zip(axes.flat, sorted(by_class.items())):
        ax.hist([r.uncertainty for r in members], bins=20, range=(0, 1), color="tab:blue")
        ax.set_title(f"{names[c]} (n={len(members)})", fontsize=9)
    fig.supxlabel("normalised CLIP uncertainty")
    fig.tight_layout()
    fig.savefig(out / "uncertainty_hist.png", dpi=100)
    if tensorboard is not None:
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(str(tensorboard)) as writer:
            writer.add_figure("score/uncertainty_hist", fig)
    plt.close(fig)
