"""Pure metric helpers of the task protocols: mean and population std over splits/seeds, the
base-to-novel harmonic mean, per-class accuracy from a confusion matrix, and long-tail group means.

Inputs are plain numbers or tensors; nothing here touches a model, so each helper is checked against
hand-computed values (tests/tasks/test_metrics.py). Accuracies are fractions in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `python -m tasks list` answers without importing torch
    import torch


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation (ddof 0, as the papers report over 3 splits / seeds)."""
    if not values:
        raise ValueError("mean_std needs at least one value")
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def harmonic_mean(base: float, novel: float) -> float:
    """HM = 2 B N / (B + N) of the (seed-averaged) base and novel accuracies; 0 when both are 0."""
    return 0.0 if base + novel == 0 else 2 * base * novel / (base + novel)


def per_class_accuracy(confmat: torch.Tensor) -> list[float | None]:
    """Recall of each class from a (K, K) confusion matrix (rows: true class, columns: prediction).

    A class with no test clip has no accuracy: None (it is left out of every mean below).
    """
    confmat = confmat.double()
    support = confmat.sum(dim=1)
    return [None if n == 0 else float(confmat[i, i] / n) for i, n in enumerate(support.tolist())]


def class_mean(per_class: Sequence[float | None], classes: Sequence[int] | None = None) -> float | None:
    """Mean accuracy over `classes` (default all) that have test clips; None when none has."""
    ids = range(len(per_class)) if classes is None else classes
    values = [per_class[c] for c in ids if per_class[c] is not None]
    return sum(values) / len(values) if values else None


def group_means(per_class: Sequence[float | None], groups: dict[str, Sequence[int]]) -> dict[str, float | None]:
    """Long-tail report: the class-mean accuracy of each group (head / tail / few) and of all classes."""
    out = {name: class_mean(per_class, ids) for name, ids in groups.items()}
    out["all"] = class_mean(per_class)
    return out
