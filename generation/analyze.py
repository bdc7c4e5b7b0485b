"""How generated sets compare with real data in CLIP feature space (the paper's Table 8 and Figure 1).

Given two or more datasets, each a manifest (`name=manifest.jsonl`) or an annotation list of
`relative/path label` lines with the folder its paths are relative to (`name=list.txt@video_root`), it
extracts CLIP video features (`generation.clip_features`) and reports:

- Davies-Bouldin score per dataset (scikit-learn; clusters = classes; lower = better separated classes);
- MMD^2 between each dataset X (m clips) and the reference Y (n clips), unbiased (Gretton et al. 2012,
  Lemma 6): mean_{i!=j} k(x_i, x_j) + mean_{i!=j} k(y_i, y_j) - 2 mean_{i,j} k(x_i, y_j); when m = n
  the cross term also leaves out i = j (the U-statistic of eq. 3), so a set against itself gives exactly 0.
  Kernels: linear x.y; RBF exp(-|x - y|^2 / (2 sigma^2)) with sigma the median pairwise distance over the
  pooled features of all datasets (stated in the report); polynomial (gamma x.y + c)^3 with gamma = 1/D
  and c = 1;
- a t-SNE of the pooled features, one panel per dataset, coloured by class (`tsne.png`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.manifest import read_manifest

Kernel = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset to analyse: a manifest, or an annotation list and its video root."""

    name: str
    path: Path
    video_root: Path | None = None  # for annotation lists

    @classmethod
    def parse(cls, text: str) -> DatasetSpec:
        """`name=manifest.jsonl` or `name=list.txt@video_root`."""
        name, sep, rest = text.partition("=")
        if not sep or not name or not rest:
            raise ValueError(f"bad --dataset {text!r}; use name=manifest.jsonl or name=list.txt@video_root")
        path, _, root = rest.partition("@")
        if not path.endswith(".jsonl") and not root:
            raise ValueError(f"--dataset {text!r}: an annotation list needs its video folder: {name}={path}@ROOT")
        return cls(name, Path(path), Path(root) if root else None)

    def clips(self) -> tuple[list[Path], np.ndarray]:
        """Clip paths and their class ids."""
        if self.video_root is None:
            rows = read_manifest(self.path)
            return [self.path.parent / r.video for r in rows], np.array([r.class_id for r in rows])
        if not self.path.is_file():
            raise FileNotFoundError(f"annotation list not found: {self.path} (dataset {self.name!r})")
        paths, labels = [], []
        for lineno, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            rel, _, label = line.rstrip().rpartition(" ")
            if not rel or not label.lstrip("-").isdigit():
                raise ValueError(f"{self.path}:{lineno}: expected `relative/path label`, got {line!r}")
            paths.append(self.video_root / rel)
            labels.append(int(label))
        return paths, np.array(labels)


# ----------------------------------------------------------------------------------------- kernels


def linear_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(m, D), (n, D) -> (m, n) x . y"""
    return x @ y.T


def rbf_kernel(sigma: float) -> Kernel:
    """k(x, y) = exp(-|x - y|^2 / (2 sigma^2))."""

    def k(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T  # (m, n) squared distances
        return np.exp(-np.maximum(d2, 0.0) / (2 * sigma**2))

    return k


def poly_kernel(dim: int, degree: int = 3, c: float = 1.0) -> Kernel:
    """k(x, y) = (x . y / dim + c) ** degree (scikit-learn's polynomial kernel with gamma = 1 / dim)."""
    return lambda x, y: (x @ y.T / dim + c) ** degree


def median_bandwidth(z: np.ndarray) -> float:
    """The median heuristic: median Euclidean distance over all pairs i < j of the rows of z."""
    d2 = (z * z).sum(1)[:, None] + (z * z).sum(1)[None, :] - 2 * z @ z.T
    iu = np.triu_indices(len(z), k=1)
    median = float(np.median(np.sqrt(np.maximum(d2[iu], 0.0))))
    return median if median > 0 else 1.0


def mmd2_unbiased(x: np.ndarray, y: np.ndarray, kernel: Kernel) -> float:
    """Unbiased MMD^2 between samples x (m, D) and y (n, D); see the module docstring."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"MMD needs at least 2 samples per set, got {m} and {n}")
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    xy = (kxy.sum() - np.trace(kxy)) / (m * (m - 1)) if m == n else kxy.mean()
    return float(xx + yy - 2 * xy)


def davies_bouldin(features: np.ndarray, labels: np.ndarray) -> float:
    """scikit-learn's Davies-Bouldin score with the classes as clusters (NaN with fewer than 2 classes)."""
    from sklearn.metrics import davies_bouldin_score

    if len(np.unique(labels)) < 2 or len(np.unique(labels)) >= len(labels):
        return math.nan
    return float(davies_bouldin_score(features, labels))


# ------------------------------------------------------------------------------------------ report


def compare(features: dict[str, tuple[np.ndarray, np.ndarray]], reference: str) -> dict:
    """Davies-Bouldin per dataset and MMD^2 (linear, RBF, polynomial) of each against `reference`.

    Args:
        features: dataset name -> ((N, D) features, (N,) class ids).
        reference: the name of the dataset the others are compared with.
    """
    if reference not in features:
        raise ValueError(f"reference {reference!r} is not one of the datasets: {sorted(features)}")
    pooled = np.concatenate([f for f, _ in features.values()]).astype(np.float64)
    sigma = median_bandwidth(pooled)
    kernels = {"linear": linear_kernel, "rbf": rbf_kernel(sigma), "poly": poly_kernel(pooled.shape[1])}
    y = features[reference][0]
    return {
        "reference": reference,
        "kernels": {
            "linear": "x.y",
            "rbf": f"exp(-|x-y|^2 / (2 sigma^2)), sigma = {sigma:.6g} "
            "(median pairwise distance over the pooled features)",
            "poly": "(x.y / D + 1)^3",
        },
        "rbf_sigma": sigma,
        "datasets": {
            name: {
                "clips": len(f),
                "classes": int(len(np.unique(lab))),
                "davies_bouldin": davies_bouldin(f, lab),
                "mmd2": {k: mmd2_unbiased(f, y, kern) for k, kern in kernels.items()},
            }
            for name, (f, lab) in features.items()
        },
    }


def tsne_figure(
    features: dict[str, tuple[np.ndarray, np.ndarray]], class_names: list[str] | None = None, seed: int = 0
):
    """A matplotlib figure: t-SNE of the pooled features, one panel per dataset, coloured by class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    pooled = np.concatenate([f for f, _ in features.values()])
    perplexity = float(min(30.0, max(1.0, (len(pooled) - 1) / 3)))
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(pooled)
    fig, axes = plt.subplots(1, len(features), figsize=(4 * len(features), 4), squeeze=False, sharex=True, sharey=True)
    cmap = plt.get_cmap("tab20")
    start = 0
    for ax, (name, (f, labels)) in zip(axes[0], features.items()):
        pts = xy[start : start + len(f)]
        start += len(f)
        for c in np.unique(labels):
            label = class_names[c] if class_names and c < len(class_names) else str(c)
            ax.scatter(*pts[labels == c].T, s=8, color=cmap(int(c) % 20), label=label)
        ax.set_title(f"{name} (n={len(f)})")
    axes[0][-1].legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def analyze_datasets(
    datasets: list[DatasetSpec],
    reference: str,
    out: str | Path,
    *,
    labels: str | Path | None = None,
    arch: str = "ViT-B-16",
    pretrained: str | None = "openai",
    num_frames: int = 8,
    template: str = "a photo of a {}.",
    batch_size: int = 16,
    max_clips: int | None = None,
    device: str | None = None,
    tensorboard: str | Path | None = None,
    seed: int = 0,
) -> dict:
    """Extract features of every dataset, write `analysis.json` and `tsne.png` to `out`; returns the report.

    `max_clips` takes a seeded random subset of each dataset (MMD and t-SNE are O(N^2)).
    """
    from datamodules.annotations import read_labels
    from generation.clip_features import ClipEncoder

    if len({d.name for d in datasets}) != len(datasets):
        raise ValueError(f"dataset names must be unique: {[d.name for d in datasets]}")
    if reference not in {d.name for d in datasets}:
        raise ValueError(f"--reference {reference!r} is not one of the datasets: {[d.name for d in datasets]}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    encoder = ClipEncoder(arch, pretrained, num_frames=num_frames, template=template, device=device)
    rng = np.random.default_rng(seed)
    features = {}
    for spec in datasets:
        paths, ids = spec.clips()
        if max_clips is not None and len(paths) > max_clips:
            keep = np.sort(rng.choice(len(paths), max_clips, replace=False))
            paths, ids = [paths[i] for i in keep], ids[keep]
        features[spec.name] = (encoder.encode_paths(paths, batch_size), ids)
    report = compare(features, reference)
    report.update(arch=arch, pretrained=pretrained, num_frames=num_frames)
    (out / "analysis.json").write_text(json.dumps(report, indent=2) + "\n")
    names = read_labels(labels) if labels else None
    fig = tsne_figure(features, names, seed=seed)
    fig.savefig(out / "tsne.png", dpi=100)
    if tensorboard is not None:
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(str(tensorboard)) as writer:
            writer.add_figure("analysis/tsne", fig)
    return report
