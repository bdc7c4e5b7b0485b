"""`python -m tasks report RUN_DIR...` (merge results into a table), `python -m tasks list`, and
`python -m tasks evaluate-anomaly --annotation FILE --scores SCORES.json --protocol umil|sultani`."""

import sys

from tasks import get_task, list_tasks
from tasks.anomaly import evaluate_anomaly
from tasks.report import main as report


def main(argv: list[str]) -> int:
    if argv[:1] == ["report"]:
        return report(argv[1:])
    if argv[:1] == ["evaluate-anomaly"]:
        return evaluate_anomaly(argv[1:])
    if argv[:1] == ["list"]:
        for name in list_tasks():
            print(f"{name:24s} {get_task(name).description}")
        return 0
    print("usage: python -m tasks {report RUN_DIR... | list | evaluate-anomaly --annotation FILE --scores SCORES.json}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
