"""`python -m tasks report RUN_DIR...` (merge results into a table), `python -m tasks list`, and
`python -m tasks evaluate-anomaly --annotation FILE --scores SCORES.json --protocol umil|sultani`."""

import sys

from tasks import get_task, list_tasks
from tasks.anomaly import evaluate_anomaly
from tasks.report import main as report

USAGE = """usage: python -m tasks {report RUN_DIR... | list | evaluate-anomaly ... | --help}

  report RUN_DIR...   merge the results.json of runs (a run folder, or any folder above several) into tables
                      in the paper's layout; see `python -m tasks report --help`
  list                every registered task and what it runs
  evaluate-anomaly --annotation FILE --scores SCORES.json [--protocol umil|sultani]
                      frame-level AUC / AUC_A of saved anomaly scores

Run a task with `python train.py fit --config tasks/<name>.yaml` (see `python train.py --help`)."""


def main(argv: list[str]) -> int:
    if argv[:1] == ["report"]:
        return report(argv[1:])
    if argv[:1] == ["evaluate-anomaly"]:
        return evaluate_anomaly(argv[1:])
    if argv[:1] == ["list"]:
        for name in list_tasks():
            print(f"{name:32s} {get_task(name).description}")
        return 0
    if argv[:1] in (["--help"], ["-h"], ["help"]):
        print(USAGE)
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
