"""One way for every benchmark to report what it measured, so `python -m benchmarks` can collect it.

A benchmark calls `report(...)` once per metric. It prints a human line, the plain `ratio <value>` line
the issues ask for, and one machine-readable `BENCHMARK {json}` line that the runner parses.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass
class Measurement:
    """One measured metric, ours against a baseline measured in the same run."""

    benchmark: str  # script stem, e.g. "train_step"
    metric: str  # what was measured, e.g. "eval clips/s, 160 classes"
    ours: float
    baseline: float
    unit: str  # of ours/baseline, e.g. "clips/s" or "s"
    ratio: float  # >1 means ours is better (speed-up); for overhead targets see `target`
    target: str  # e.g. ">= 2.0" (ratio) or "<= 5% overhead"
    met: bool | None  # whether the target is met; None when no target applies
    note: str = ""


def report(
    benchmark: str,
    metric: str,
    ours: float,
    baseline: float,
    unit: str,
    higher_is_better: bool = True,
    min_ratio: float | None = None,
    note: str = "",
) -> Measurement:
    """Print and return a measurement. ratio = ours / baseline (or baseline / ours when lower is better),
    so a ratio above 1 always means ours is better; `min_ratio` is the target on that ratio."""
    ratio = ours / baseline if higher_is_better else baseline / ours
    met = None if min_ratio is None else ratio >= min_ratio
    target = "" if min_ratio is None else f">= {min_ratio:.3g}"
    m = Measurement(benchmark, metric, ours, baseline, unit, ratio, target, met, note)
    status = "" if met is None else ("  (target met)" if met else "  (TARGET MISSED)")
    print(
        f"{metric}: ours {ours:.4g} {unit}, baseline {baseline:.4g} {unit}, ratio {ratio:.3f}"
        f"{'  target ' + target if target else ''}{status}"
    )
    print(f"ratio {ratio:.4f}")
    print("BENCHMARK " + json.dumps(asdict(m)), flush=True)
    return m
