"""Merge finished runs into one Markdown table: `python -m tasks report RUN_DIR [RUN_DIR ...]`.

A RUN_DIR is a task's run folder (holding `results.json`) or any folder above several of them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


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


def results_table(files: list[Path]) -> str:
    """Markdown table with one row per run and one column per metric (accuracies in %).

    The data column is the run's label file (e.g. the demo world's, standing in for HMDB-51), or the
    protocol's dataset when a results file does not name one.
    """
    records = [(f.parent, json.loads(f.read_text())) for f in files]
    metrics = sorted({m for _, r in records for m in r["metrics"]})
    header = "| run | task | data | " + " | ".join(metrics) + " |"
    lines = [header, "|" + "---|" * (3 + len(metrics))]
    for folder, r in records:
        cells = [f"{100 * r['metrics'][m]:.1f}" if m in r["metrics"] else "-" for m in metrics]
        data = r.get("label_file") or r["dataset"]  # the label file says which data stood in for the protocol's
        lines.append(f"| {folder} | {r['task']} | {data} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks report", description=__doc__)
    parser.add_argument("runs", nargs="+", help="run folders (or folders above them)")
    args = parser.parse_args(argv)
    try:
        files = find_results(args.runs)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not files:
        print(f"error: no results.json under {' '.join(args.runs)}; has the run finished?", file=sys.stderr)
        return 2
    print(results_table(files))
    return 0
