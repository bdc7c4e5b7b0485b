"""`make demo`: the paper's claims, checked on the embedded demo world on a laptop CPU.

Reads a demo build (`python -m generation demo --preset demo`) and trains, for each seed, in-process, a
small `DemoNet` on clips served by `ActionDataModule` (manifests, annotation lists, uncertainties) with the
loss of `lightning_modules.losses` (CE / UL):

    none             fine-tune on the 4-shot real list only (no synthetic pre-training)
    basic / ie       pre-train on the Basic / IE synthetic set, then fine-tune 4-shot, test on real val1
    zero_shot_basic  the Basic / IE pre-trained model tested on real val1 before fine-tuning: trained only on
    zero_shot_ie     synthetic clips of the classes it is tested on (the paper's zero-shot protocol)
    ie_ce / ie_ul    pre-train on the unreliable IE set (a fraction of the "generations" failed: incoherent
                     motion under the label) with cross-entropy / with uncertainty label smoothing (UL,
                     w = 0.3), then fine-tune 4-shot

The uncertainties UL needs come from the demo's stand-in for CLIP: a DemoNet trained on the build's
labelled "web" split (its own clips, both styles), which scores every clip of the unreliable set through
the scoring path of `python -m generation score` (S = softmax of its logits, here the mean over
`scorer_views` temporal views as in multi-view testing; entropy, min-max normalisation over the set,
written to the manifest, histograms beside it). How well its uncertainty flags the failed clips is printed
(mean u of failed vs good clips, AUROC).

It prints the table (mean, std and per-seed top-1 on the held-out real style), writes
`<out>/summary.json` (`{"chance", "rows": [{"name", "top1_mean", "top1_std", "top1_per_seed"}], ...}`) and
`<out>/summary.png`. Same machine + same command -> same numbers (fixed seeds, fixed thread count,
deterministic algorithms, clips decoded once and held in memory with a deterministic centre sampling).
Runs are driven here, not through task YAMLs or a Lightning Trainer: the demo is 28 short phases (a 4-shot
phase is 120 steps of a few ms) on one decode of the data; the Trainer's per-fit and per-epoch overhead
(measured under load on the 2-core VM: 16 s for the 4-shot phase that this loop runs in 1.3 s) would
dominate the budget. The loop is VideoCLIPModule's recipe (see `fit`); measured on one seed, it gives the
same top-1 values to the last digit as VideoCLIPModule under a Trainer did.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import torch
import yaml
from sklearn.metrics import roc_auc_score

from datamodules.action import ActionDataModule
from datamodules.annotations import read_labels
from datamodules.datasets import Clip, VideoDataset, clips_from_manifest
from datamodules.manifest import read_manifest, write_jsonl, write_text_atomic
from datamodules.transforms import VideoTransform
from lightning_modules.losses import UNCERTAINTY_LOSSES, LossConfig, action_loss
from lightning_modules.models.demo_net import DemoNet
from lightning_modules.video_clip import warmup_cosine

UNRELIABLE = "ie_unreliable"  # generation.demo.UNRELIABLE (the folder of the unreliable IE set)
ROWS = (  # (name, what it is) in table order
    ("none", "4-shot real fine-tuning only"),
    ("basic", "Basic pre-training + 4-shot"),
    ("ie", "IE pre-training + 4-shot"),
    ("zero_shot_basic", "Basic synthetic only (zero-shot)"),
    ("zero_shot_ie", "IE synthetic only (zero-shot)"),
    ("ie_ce", "unreliable IE pre-training, CE + 4-shot"),
    ("ie_ul", "unreliable IE pre-training, UL + 4-shot"),
)


PAIRED = (("ie_ce", "ie_ul"),)  # rows that differ only in the loss: the chart joins each seed's two values


@dataclass
class Phase:
    """One training phase's schedule."""

    epochs: int
    lr: float
    batch_size: int = 32


@dataclass
class DemoConfig:
    """What `make demo` runs (configs/demo.yaml). Defaults: the `demo` preset on 2 CPU cores.

    Args:
        data: the demo build (`python -m generation demo --out DATA`).
        out: where summary.json / summary.png go.
        seeds: one full set of rows per seed.
        shots: real clips per class for fine-tuning (a `train1_few_shot_{shots}.txt` list).
        num_frames: frames per clip the nets see (sampled from the rendered 16).
        image_size: frame side the nets see (the rendered 64 px are resized).
        threads: torch CPU threads (fixed: the numbers may change with the thread count).
        net: DemoNet arguments.
        pretrain: synthetic pre-training schedule (also the zero-shot rows').
        finetune: 4-shot real fine-tuning schedule.
        scorer: the stand-in CLIP's training on the web split.
        scorer_seed: seed of the stand-in CLIP's training.
        scorer_views: temporal views per clip when scoring; S is their mean (multi-view testing).
        uncertainty_weight: w of UL (eps = w * u); the paper's 0.3.
        weight_decay: AdamW weight decay.
        warmup_epochs: linear warm-up before the cosine decay.
    """

    data: str = "data/demo"
    out: str = "runs/demo"
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    shots: int = 4
    num_frames: int = 8
    image_size: int = 32
    threads: int = 2
    net: dict = field(default_factory=lambda: {"width": 8, "embed_dim": 64})
    pretrain: Phase = field(default_factory=lambda: Phase(epochs=30, lr=3e-3))
    finetune: Phase = field(default_factory=lambda: Phase(epochs=30, lr=3e-4, batch_size=8))
    scorer: Phase = field(default_factory=lambda: Phase(epochs=80, lr=3e-3))
    scorer_seed: int = 0
    scorer_views: int = 2
    uncertainty_weight: float = 0.3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> DemoConfig:
        """Read a config file; `overrides` (non-None values) replace its keys."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"demo config not found: {path}; pass --config configs/demo.yaml")
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        data.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("pretrain", "finetune", "scorer"):
            if isinstance(data.get(key), dict):
                data[key] = Phase(**data[key])
        return cls(**data)


# ------------------------------------------------------------------------------------------ data


_DECODED: dict[tuple, dict] = {}  # (path, frames, size) -> first decoded sample; shared by every run


class MemoryDataset(torch.utils.data.Dataset):
    """A `VideoDataset` decoded once (centre sampling, no crop), then served from memory.

    Training samples get a random horizontal flip (the demo's actions are left/right symmetric as
    classes); label and uncertainty always come from the current clip list, so a re-scored manifest is
    seen without decoding again.
    """

    def __init__(self, base: VideoDataset, train: bool):
        self.base, self.train = base, train

    def __len__(self) -> int:
        return len(self.base)

    @property
    def clips(self) -> list[Clip]:
        return self.base.clips

    @clips.setter
    def clips(self, clips: list[Clip]) -> None:  # test_on_error=exclude drops undecodable clips
        self.base.clips = clips

    @property
    def num_frames(self) -> int:  # read by the evaluation lists' decode check (datamodules.datasets.scan_clips)
        return self.base.num_frames

    @property
    def num_views(self) -> int:
        return self.base.num_views

    def __getitem__(self, index: int) -> dict:
        clip: Clip = self.base.clips[index]
        key = (clip.path, self.base.num_frames, self.base.transform.size, self.base.num_views)
        if key not in _DECODED:
            _DECODED[key] = self.base[index]
        item = dict(
            _DECODED[key], label=clip.label, uncertainty=math.nan if clip.uncertainty is None else clip.uncertainty
        )
        if self.train:
            video = item["video"][0]  # (1, T, C, H, W) -> (T, C, H, W)
            item["video"] = video.flip(-1) if torch.rand(()) < 0.5 else video
        return item


class DemoDataModule(ActionDataModule):
    """`ActionDataModule` with every clip decoded once per process (see `MemoryDataset`)."""

    def _dataset(self, clips: list[Clip], train: bool) -> MemoryDataset:
        transform = VideoTransform(
            train=False, size=self.image_size, short_side=self.image_size, mean=self.input_mean, std=self.input_std
        )
        views = 1 if train else self.test_views
        base = VideoDataset(clips, self.num_frames, transform, num_views=views, on_error=self.on_error)
        return MemoryDataset(base, train)


def datamodule(
    cfg: DemoConfig, *, manifest: str | None = None, web: bool = False, batch_size: int = 32, test_views: int = 1
) -> DemoDataModule:
    root = Path(cfg.data)
    real = root / ("web" if web else "real")
    return DemoDataModule(
        label_file=str(root / "labels.csv"),
        video_root=str(real / "videos"),
        split_dir=str(real if web else real / "splits"),
        test_list="val1.txt",
        synthetic_manifest=None if manifest is None else str(root / "synthetic" / manifest / "manifest.jsonl"),
        num_frames=cfg.num_frames,
        image_size=cfg.image_size,
        test_views=test_views,
        batch_size=batch_size,
        num_workers=0,
        pin_memory=False,
    )


def check_build(cfg: DemoConfig) -> None:
    """Raise with what to run when the demo build is missing or incomplete."""
    root = Path(cfg.data)
    need = [
        root / "DONE.json",
        root / "real" / "splits" / f"train1_few_shot_{cfg.shots}.txt",
        root / "web" / "list.txt",
        *(root / "synthetic" / s / "manifest.jsonl" for s in ("basic", "ie", UNRELIABLE)),
    ]
    missing = [p for p in need if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"the demo build in {root} is missing {', '.join(map(str, missing[:3]))}; build it with "
            f"`python -m generation demo --out {root} --preset demo` (or `make demo-data`)"
        )


# ------------------------------------------------------------------------------------------ runs


def new_net(cfg: DemoConfig, seed: int) -> DemoNet:
    L.seed_everything(seed, verbose=False)
    return DemoNet(**cfg.net)


def fit(
    cfg: DemoConfig,
    net: DemoNet,
    dm: DemoDataModule,
    phase: Phase,
    seed: int,
    *,
    source: str = "synthetic",
    train_list: str | None = None,
    loss: str = "ce",
) -> DemoNet:
    """Train `net` for one phase on the datamodule's synthetic manifest or a real list; returns it.

    The loop is VideoCLIPModule's recipe written out (AdamW with betas (0.9, 0.98), linear warm-up then
    cosine decay per step, `lightning_modules.losses.action_loss` with the clips' uncertainty), without a
    Lightning Trainer: the demo runs 28 short phases, and under load the Trainer's per-fit and per-epoch
    overhead was 10x the 4-shot phases' compute (see the module docstring).
    """
    dm.set_phase(source, train_list)
    dm.batch_size = phase.batch_size
    dm.setup("fit")
    config = LossConfig(name=loss, uncertainty_weight=cfg.uncertainty_weight)
    if loss in UNCERTAINTY_LOSSES:
        dm.check_uncertainty(loss)
    L.seed_everything(seed, verbose=False)
    loader = dm.train_dataloader()
    tokens = net.tokenize(dm.class_names)
    optimizer = torch.optim.AdamW(net.parameters(), lr=phase.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay)
    total = phase.epochs * len(loader)
    warmup = round(total * cfg.warmup_epochs / max(1, phase.epochs))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(warmup_cosine, warmup=warmup, total=total))
    net.train()
    for _ in range(phase.epochs):
        for batch in loader:
            logits = net(batch["video"], tokens)  # (B, K)
            value, _ = action_loss(logits, batch["label"], batch["uncertainty"], config)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
            scheduler.step()
    return net


@torch.no_grad()
def predict(net: DemoNet, dataset, class_names: list[str]) -> torch.Tensor:
    """(N, K) class probabilities of every clip of a test dataset: the mean over its V temporal views."""
    net.eval()
    tokens = net.tokenize(class_names)
    probs = []
    for start in range(0, len(dataset), 64):
        batch = range(start, min(start + 64, len(dataset)))
        video = torch.stack([dataset[i]["video"] for i in batch])  # (B, V, T, C, H, W)
        b, v = video.shape[:2]
        probs.append(net(video.flatten(0, 1), tokens).softmax(dim=-1).view(b, v, -1).mean(1))  # (B, K)
    return torch.cat(probs)


def test(net: DemoNet, dm: DemoDataModule) -> float:
    """Top-1 (%) on the held-out real list val1."""
    dm.setup("test")
    dataset = dm.datasets["test"]
    labels = torch.tensor([clip.label for clip in dataset.clips])
    return 100.0 * (predict(net, dataset, dm.class_names).argmax(-1) == labels).float().mean().item()


def run_seed(cfg: DemoConfig, seed: int, log=print) -> dict[str, float]:
    """All rows of one seed: {row name: top-1 %}."""
    few_shot = f"train1_few_shot_{cfg.shots}.txt"
    top1: dict[str, float] = {}
    dm = datamodule(cfg)
    top1["none"] = test(fit(cfg, new_net(cfg, seed), dm, cfg.finetune, seed, source="real", train_list=few_shot), dm)
    for strategy in ("basic", "ie"):
        dm = datamodule(cfg, manifest=strategy)
        net = fit(cfg, new_net(cfg, seed), dm, cfg.pretrain, seed)
        top1[f"zero_shot_{strategy}"] = test(net, dm)
        top1[strategy] = test(fit(cfg, net, dm, cfg.finetune, seed, source="real", train_list=few_shot), dm)
    dm = datamodule(cfg, manifest=UNRELIABLE)
    for loss in ("ce", "ul"):
        net = fit(cfg, new_net(cfg, seed), dm, cfg.pretrain, seed, loss=loss)
        top1[f"ie_{loss}"] = test(fit(cfg, net, dm, cfg.finetune, seed, source="real", train_list=few_shot), dm)
    log(f"seed {seed}: " + ", ".join(f"{k} {v:.1f}" for k, v in top1.items()))
    return top1


# ------------------------------------------------------------------------------------------ scorer


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `scores` separating `positive` (bool) from the rest (sklearn; NaN when
    one side is empty)."""
    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, scores))


def score_unreliable(cfg: DemoConfig, log=print) -> dict:
    """Train the stand-in CLIP on the web split, score the unreliable IE set, write its uncertainties.

    The manifest gets `entropy`, `uncertainty` (min-max over the set), `clip_pred`, `clip_prob`, as from
    `python -m generation score`; score.json, uncertainty_hist.png and uncertain_clips.json go beside it.
    """
    from generation.score import entropy, normalise_entropy, write_reports  # the scoring path of `generation score`

    web = datamodule(cfg, web=True)
    scorer = fit(
        cfg, new_net(cfg, cfg.scorer_seed), web, cfg.scorer, cfg.scorer_seed, source="real", train_list="list.txt"
    )
    folder = Path(cfg.data) / "synthetic" / UNRELIABLE
    manifest = folder / "manifest.jsonl"
    names = read_labels(Path(cfg.data) / "labels.csv")
    clips = clips_from_manifest(manifest, names)
    dataset = datamodule(cfg, test_views=cfg.scorer_views)._dataset(clips, train=False)
    probs = predict(scorer, dataset, names)  # S = softmax(logit_scale * cos), mean over the views
    h = entropy(probs).numpy()
    u, constants = normalise_entropy(h, "minmax", len(names))
    rows = read_manifest(manifest)
    p, pred = probs.max(dim=-1)
    rows = [
        r.model_copy(
            update={"entropy": float(hi), "uncertainty": float(ui), "clip_pred": int(ci), "clip_prob": float(pi)}
        )
        for r, hi, ui, ci, pi in zip(rows, h, u, pred.tolist(), p.tolist())
    ]
    write_jsonl(manifest, rows)
    write_text_atomic(
        folder / "score.json",
        json.dumps(
            {**constants, "scorer": "DemoNet trained on web/list.txt", "num_classes": len(names), "rows": len(rows)},
            indent=2,
        )
        + "\n",
    )
    write_reports(folder, rows, names)
    failed = set(json.loads((folder / "unreliable.json").read_text(encoding="utf-8"))["rows"])
    bad = np.array([r.row_id in failed for r in rows])
    labels = np.array([r.class_id for r in rows])
    stats = {
        "unreliable_clips": int(bad.sum()),
        "clips": len(rows),
        "u_mean_unreliable": float(u[bad].mean()),
        "u_mean_reliable": float(u[~bad].mean()),
        "auroc": auroc(u, bad),
        "scorer_top1_reliable": float(100 * (pred.numpy()[~bad] == labels[~bad]).mean()),
    }
    log(
        f"stand-in CLIP (DemoNet on web/list.txt): {stats['scorer_top1_reliable']:.1f}% top-1 on the reliable clips; "
        f"uncertainty u: failed clips {stats['u_mean_unreliable']:.2f} vs reliable {stats['u_mean_reliable']:.2f} "
        f"(AUROC {stats['auroc']:.2f}, {stats['unreliable_clips']}/{stats['clips']} failed)"
    )
    return stats


# ------------------------------------------------------------------------------------------ report


def summarise(per_seed: list[dict[str, float]], seeds: list[int], chance: float) -> dict:
    rows = []
    for name, what in ROWS:
        values = [run[name] for run in per_seed]
        rows.append(
            {
                "name": name,
                "what": what,
                "top1_mean": round(float(np.mean(values)), 2),
                "top1_std": round(float(np.std(values)), 2),
                "top1_per_seed": [round(v, 2) for v in values],
            }
        )
    return {"chance": round(chance, 2), "seeds": seeds, "rows": rows}


def table(summary: dict) -> str:
    lines = [f"| row | what | top-1 % (mean ± std) | per seed {summary['seeds']} |", "|---|---|---|---|"]
    for r in summary["rows"]:
        seeds = ", ".join(f"{v:.1f}" for v in r["top1_per_seed"])
        lines.append(f"| {r['name']} | {r['what']} | {r['top1_mean']:.1f} ± {r['top1_std']:.1f} | {seeds} |")
    lines.append(f"| chance | 1 / {round(100 / summary['chance'])} classes | {summary['chance']:.1f} | |")
    return "\n".join(lines)


def bar_chart(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["rows"]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    x = np.arange(len(rows))
    ax.bar(
        x, [r["top1_mean"] for r in rows], yerr=[r["top1_std"] for r in rows], capsize=3, color="tab:blue", alpha=0.8
    )
    for i, r in enumerate(rows):
        ax.plot([i] * len(r["top1_per_seed"]), r["top1_per_seed"], "k.", ms=4)
    index = {r["name"]: i for i, r in enumerate(rows)}
    for a, b in PAIRED:  # the same seed under CE and UL: a line per seed shows the paired difference
        if a in index and b in index:
            for ya, yb in zip(rows[index[a]]["top1_per_seed"], rows[index[b]]["top1_per_seed"]):
                ax.plot([index[a], index[b]], [ya, yb], "-", color="0.35", lw=0.8)
    ax.axhline(summary["chance"], color="tab:red", ls="--", lw=1, label="chance")
    ax.set_xticks(x, [r["name"] for r in rows], rotation=20)
    ax.set_ylabel("top-1 % on held-out real style")
    ax.set_title("synthact demo world: mean ± std over seeds (dots: seeds; lines: one seed, CE to UL)", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(cfg: DemoConfig, log=print) -> dict:
    """The whole demo: score, all seeds, summary files. Returns the summary."""
    check_build(cfg)
    torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    scorer = score_unreliable(cfg, log)
    per_seed = [run_seed(cfg, seed, log) for seed in cfg.seeds]
    chance = 100.0 / len(read_labels(Path(cfg.data) / "labels.csv"))
    summary = summarise(per_seed, list(cfg.seeds), chance)
    summary.update(
        scorer=scorer,
        seconds=round(time.perf_counter() - start, 1),
        config={**asdict(cfg), "torch_threads": torch.get_num_threads()},
    )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    bar_chart(summary, out / "summary.png")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/demo.yaml", help="demo config (default configs/demo.yaml)")
    parser.add_argument("--data", help="demo build folder (overrides the config's `data`)")
    parser.add_argument("--out", help="output folder (overrides the config's `out`)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (override the config's `seeds`)")
    args = parser.parse_args(argv)
    try:
        cfg = DemoConfig.from_yaml(args.config, data=args.data, out=args.out, seeds=args.seeds)
        check_build(cfg)
    except (FileNotFoundError, ValueError, TypeError) as e:
        parser.error(str(e))
    summary = run(cfg, log=lambda line: print(line, flush=True))
    print(table(summary))
    print(
        f"wall time {summary['seconds']:.0f} s on {cfg.threads} torch threads; "
        f"{Path(cfg.out) / 'summary.json'}, {Path(cfg.out) / 'summary.png'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
