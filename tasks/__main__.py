"""`python -m tasks`: `report RUN_DIR...` (merge results into the paper's tables), `list` (every registered
task), `evaluate-anomaly --annotation FILE --scores SCORES.json [--protocol umil|sultani]` (frame-level AUC of
saved scores). Configured like train.py (jsonargparse from the functions' signatures): every subcommand takes
`--config FILE`, `--print_config` and `--key value`; `report`'s run folders may also be given positionally.
Run a task with `python train.py fit --config tasks/<name>.yaml` (see `python train.py --help`).

Imports stay light (no torch) so `list` and `--help` answer in about a second.
"""

from __future__ import annotations

import json
import os
import sys


def report(runs: list[str]) -> int:
    """Merge the results.json of runs (a run folder, or any folder above several) into tables in the paper's
    layout, and analysis.json reports into Table 8.

    Args:
        runs: run or analysis folders (or folders above them); positional: `python -m tasks report runs/ x/`.
    """
    from tasks.report import main as report_main

    return report_main(list(runs))


def list_tasks() -> int:
    """Every registered task and what it runs."""
    from tasks import get_task, list_tasks

    for name in list_tasks():
        print(f"{name:32s} {get_task(name).description}")
    return 0


def evaluate_anomaly(annotation: str, scores: str, protocol: str = "umil", frame_counts: str | None = None) -> int:
    """Frame-level AUC (all test videos) and AUC_A (abnormal videos only) of saved anomaly scores; prints one
    JSON line {"auc": ..., "auc_a": ...}.

    Args:
        annotation: umil: UCF_test.txt; sultani: Temporal_Anomaly_Annotation.txt or
            Test_Annotation_with_frame_counts.txt.
        scores: SCORES.json: {"<video file name>": [segment or instance scores...]}.
        protocol: umil (UMIL's code path, the paper's) or sultani (1-indexed inclusive, no smoothing).
        frame_counts: sultani with Temporal_Anomaly_Annotation.txt: a list giving each video's frame count
            (UCF_test.txt or Test_Annotation_with_frame_counts.txt).
    """
    from tasks.anomaly import evaluate_anomaly as run

    argv = ["--annotation", annotation, "--scores", scores, "--protocol", protocol]
    return run(argv + (["--frame-counts", frame_counts] if frame_counts else []))


COMMANDS = {"report": report, "list": list_tasks, "evaluate-anomaly": evaluate_anomaly}


def normalise(argv: list[str]) -> list[str]:
    """The documented spellings: `report DIR...` (positional folders) and `--frame-counts`."""
    argv = ["--frame_counts" if a == "--frame-counts" else a for a in argv]
    if argv[:1] == ["report"]:
        folders = [a for a in argv[1:] if not a.startswith("-") and not _is_value(argv, a)]
        if folders:
            rest = [a for a in argv[1:] if a not in folders]
            return ["report", *rest, "--runs", json.dumps(folders)]
    return argv


def _is_value(argv: list[str], arg: str) -> bool:
    i = argv.index(arg)
    return i > 0 and argv[i - 1] in ("--config", "--runs")


def main(argv: list[str] | None = None) -> int:
    from jsonargparse import CLI

    argv = normalise(list(sys.argv[1:] if argv is None else argv))
    if not argv:
        argv = ["--help"]
    try:
        return CLI(COMMANDS, args=argv, as_positional=False, prog="python -m tasks")
    except (FileNotFoundError, ValueError) as error:
        if os.environ.get("SYNTHACT_DEBUG", "") not in ("", "0"):
            raise
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
