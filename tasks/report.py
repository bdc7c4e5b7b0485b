"""Results records and tables: `python -m tasks report RUN_DIR [RUN_DIR ...]` merges runs into tables in
the layout of the paper's Tables 1-5.

A run writes one `Results` record (`results.json`): every test of every split or seed (`TestResult`),
the summary (mean +- population std over the splits of each metric, and base-to-novel's HM of the
seed-averaged accuracies), the config hash and the weights used. The report groups records by protocol
and prints one table per protocol; records of the same task variant on the same data and synthetic set
(e.g. the same command run twice with other seeds) are merged into one row, their per-split values pooled:

- zero_shot: top-1 (mean +- std over val1-3 or the K600 splits); K600 also top-5 (Table 1)
- few_shot: one column per K (Table 2)
- base2novel: base / novel / HM (Table 3)
- long_tail: head / tail / few / all (class-mean accuracies; Table 4)
- any other protocol (anomaly, Table 5): one column per summary metric

A RUN_DIR is a task's run folder (holding `results.json`) or any folder above several of them.
Accuracies are shown in %.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tasks.metrics import harmonic_mean, mean_std


@dataclass
class TestResult:
    """One test: a real list of one split or seed, in one label space."""

    __test__ = False  # not a pytest test class
    split: str  # the split / seed it belongs to (mean +- std is over these), e.g. "val2", "s1", "split3"
    test: str  # test name within the split, e.g. "base", "novel", "test"
    group: str  # metric prefix in the summary: test, base, novel
    test_list: str
    label_file: str
    metrics: dict[str, float]  # as logged: test/top1, test/top5, test/class_mean, test/head, ...
    per_class: list[float | None] | None = None  # accuracy per class id (None: no test clip of the class)
    weights: str = ""  # the weights tested


@dataclass
class Results:
    """A run's record (`results.json`)."""

    task: str
    protocol: str
    dataset: str
    description: str
    label_file: str  # the main label file (says which data stood in for the protocol's dataset)
    test_list: str  # the first test's list
    config_hash: str  # sha256 of the merged config, without task.root
    tests: list[TestResult]
    summary: dict[str, dict[str, float]]  # "base/top1" -> {mean, std, n}; "hm/top1" -> {mean}
    shots: int | None = None
    synthetic_manifest: str | None = None
    synthetic_classes: str = "protocol"
    init_weights: str | None = None
    phases: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)  # summary means, e.g. metrics["test/top1"]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> Results:
        data = dict(data)
        data["tests"] = [TestResult(**t) for t in data.get("tests", [])]
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def summary_key(group: str, metric: str) -> str:
    """`test/top1` of a test in group `base` -> `base/top1`."""
    return f"{group}/{metric.split('/', 1)[-1]}"


def split_values(tests: list[TestResult]) -> dict[str, list[float]]:
    """summary key -> its value in each test, in order."""
    values: dict[str, list[float]] = defaultdict(list)
    for t in tests:
        for metric, value in t.metrics.items():
            values[summary_key(t.group, metric)].append(value)
    return dict(values)


def summarise(tests: list[TestResult]) -> dict[str, dict[str, float]]:
    """Mean +- population std over splits of every metric; HM of the base/novel means when both exist."""
    summary = {}
    for key, values in split_values(tests).items():
        mean, std = mean_std(values)
        summary[key] = {"mean": mean, "std": std, "n": len(values)}
    for metric in ("top1", "top5"):
        if f"base/{metric}" in summary and f"novel/{metric}" in summary:
            hm = harmonic_mean(summary[f"base/{metric}"]["mean"], summary[f"novel/{metric}"]["mean"])
            summary[f"hm/{metric}"] = {"mean": hm, "n": 1}
    return summary


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    mean, std = mean_std(values)
    return f"{100 * mean:.1f} ± {100 * std:.1f}" if len(values) > 1 else f"{100 * mean:.1f}"


COLUMNS = {  # protocol -> (column title, summary key)
    "zero_shot": [("top-1", "test/top1"), ("top-5", "test/top5")],
    "base2novel": [("base", "base/top1"), ("novel", "novel/top1"), ("HM", "hm/top1")],
    "long_tail": [("head", "test/head"), ("tail", "test/tail"), ("few", "test/few"), ("all", "test/all")],
}


def protocol_table(protocol: str, records: list[Results]) -> str:
    """One Markdown table of a protocol's records, in its paper layout (rows merge identical variants)."""
    rows: dict[tuple, list[Results]] = defaultdict(list)
    for r in records:
        variant = re.sub(r"_k\d+", "", r.task) if protocol == "few_shot" else r.task
        rows[(r.label_file or r.dataset, variant, r.synthetic_manifest or "none", r.synthetic_classes)].append(r)
    if protocol == "few_shot":
        shots = sorted({r.shots for r in records if r.shots is not None})
        columns = [(f"K={k}", "test/top1", k) for k in shots]
    elif protocol in COLUMNS:
        columns = [(title, key, None) for title, key in COLUMNS[protocol]]
        if protocol == "zero_shot" and not any("test/top5" in r.summary and r.dataset == "k600" for r in records):
            columns = columns[:1]  # top-5 is reported for Kinetics-600 only
    else:
        keys = sorted({k for r in records for k in r.summary})
        columns = [(key, key, None) for key in keys]
    lines = [
        "| data | task | synthetic | runs | " + " | ".join(title for title, _, _ in columns) + " |",
        "|" + "---|" * (4 + len(columns)),
    ]
    for (data, variant, synthetic, classes), group in rows.items():
        cells = []
        for _, key, k in columns:
            members = [r for r in group if k is None or r.shots == k]
            if key.startswith("hm/"):  # HM of the (pooled) seed-averaged base and novel accuracies
                base = [v for r in members for v in split_values(r.tests).get(key.replace("hm/", "base/"), [])]
                novel = [v for r in members for v in split_values(r.tests).get(key.replace("hm/", "novel/"), [])]
                ok = base and novel
                cells.append(f"{100 * harmonic_mean(mean_std(base)[0], mean_std(novel)[0]):.1f}" if ok else "-")
            else:
                cells.append(_cell([v for r in members for v in split_values(r.tests).get(key, [])]))
        synthetic = synthetic if classes == "protocol" else f"{synthetic} (all classes)"
        lines.append(f"| {data} | {variant} | {synthetic} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def task_table(records: list[Results]) -> str:
    """Tables of every protocol among `records`, each under a heading naming the protocol."""
    by_protocol: dict[str, list[Results]] = defaultdict(list)
    for r in records:
        by_protocol[r.protocol].append(r)
    return "\n\n".join(f"### {p}\n\n{protocol_table(p, rs)}" for p, rs in by_protocol.items())


def find_results(paths: list[str]) -> list[Path]:
    """Every results.json at or below the given folders, in the order given."""
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / "results.json").is_file():
            found.append(path / "results.json")
        elif path.is_dir():
            found.extend(sorted(path.rglob("results.json")))
        else:
            raise FileNotFoundError(f"{path}: no such run folder")
    return found


def load_results(path: Path) -> Results:
    """Read a results.json, naming the file when it is not a results record."""
    try:
        return Results.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, KeyError) as e:
        raise ValueError(f"{path}: not a results record of `train.py fit` ({e}); re-run the task to rewrite it") from e


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks report", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders (or folders above them)")
    args = parser.parse_args(argv)
    try:
        files = find_results(args.runs)
        if not files:
            raise FileNotFoundError(f"no results.json under {' '.join(args.runs)}; has the run finished?")
        records = [load_results(f) for f in files]
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(task_table(records))
    return 0
