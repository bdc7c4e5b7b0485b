"""Results records and tables: `python -m tasks report RUN_DIR [RUN_DIR ...]` merges runs into tables in
the layout of the paper's Tables 1-5 and 8.

A run writes one `Results` record (`results.json`): every test of every split or seed (`TestResult`),
the summary (mean +- population std over the splits of each metric, and base-to-novel's HM of the
seed-averaged accuracies), the config hash, the net and the weights used. Rows are named like the paper's:
the net ("TC-CLIP", "ViFi-CLIP", "BIKE", "X-CLIP", "CLIP", "MIL"), with "+Ours" when the run trained on a
synthetic set (results.json records its manifest, or none). Per protocol the report prints the paper's
table, then the runs behind it; records of the same task variant, net, data and synthetic set (e.g. the
same command run twice with other seeds) are merged into one row, their per-split values pooled:

- Table 1, zero-shot: HMDB / UCF / K600 top-1 / K600 top-5 / All: top-1 mean +- std over val1-3 (HMDB-51,
  UCF-101) or the three K600 splits; All = the mean of the three top-1 columns (shown when all three exist).
  Runs on different datasets share a row when their net, variant and prompt set (the manifest's folder,
  e.g. `ie`) agree.
  A zero-shot record with WiSE-FT tests (group `wise_ft`, `tasks.selection`) gets a second row "<net> WiSE-FT 0.7".
- Table 2, few-shot: one column per K: the best val1 top-1 over the evaluated epochs (the reference's
  `final_test: false` figure), and "K=k last" (the last epoch's) beside it when recorded.
- Table 3, base-to-novel: base / novel / HM, of the best base-val epoch.
- Table 4, long-tail: Few / Tail / Head / Acc (class-mean accuracies of the groups and of all classes).
- Table 5, anomaly: AUC / AUC_A (`test/auc` / `test/auc_a`: all test frames / frames of abnormal videos), in %
  with 2 decimals; the paper's row name "MIL" for UMIL's X-CLIP MIL baseline.
Rows that read LLM-rephrased class names (results.json `class_names`) are marked "(LLM)", as tc-clip's README
rows; each table says the rule that chose the tested weights (results.json `checkpoint`).
- Table 8, from `python -m generation analyze` (`analysis.json` in a given folder): Davies-Bouldin per
  dataset and MMD^2 against the reference set for the linear, RBF and polynomial kernels, x100 (labelled).

A RUN_DIR is a task's run folder (holding `results.json`), an analysis folder (holding `analysis.json`),
or any folder above several of them. Accuracies are shown in %.
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
    # The trained net's class path (e.g. `lightning_modules.models.BIKE`): the runner fills it; records
    # without it are read from the `config.yaml` Lightning saved beside them (`model_from_config`).
    model: str = ""
    # Who wrote the synthetic set's prompts (`datamodules.manifest.prompt_provenance`): `template` (the offline
    # writer), `openai:<model>`, `mixed` or `unknown`; None without a synthetic set. Tables mark template rows.
    prompts: str | None = None
    # Which weights were tested (`tasks.selection`: the protocol's rule, e.g. the best val/top1 epoch) and which
    # class names the networks read (`csv`, or `llm: <files>` for FROSTER's LLM-rephrased names).
    checkpoint: str = ""
    class_names: str = "csv"
    # The video generator of the synthetic set (`prompt_provenance(...)["generator"]`, e.g. `Wan2.1-1.3B`); read
    # from the manifest when the record lacks it. Rows of other generators than the demo world's sit apart.
    generator: str | None = None

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


def _cell(values: list[float], decimals: int = 1) -> str:
    if not values:
        return "-"
    mean, std = mean_std(values)
    return f"{100 * mean:.{decimals}f} ± {100 * std:.{decimals}f}" if len(values) > 1 else f"{100 * mean:.{decimals}f}"


COLUMNS = {  # protocol -> (column title, summary key)
    "zero_shot": [("top-1", "test/top1"), ("top-5", "test/top5")],
    "base2novel": [("base", "base/top1"), ("novel", "novel/top1"), ("HM", "hm/top1")],
    "long_tail": [("Few", "test/few"), ("Tail", "test/tail"), ("Head", "test/head"), ("Acc", "test/all")],
    "anomaly": [("AUC", "test/auc"), ("AUC_A", "test/auc_a")],  # as lightning_modules/mil.py and umil.py log them
}
DECIMALS = {"anomaly": 2}  # the paper prints AUCs with two decimals, accuracies with one
TITLES = {
    "zero_shot": "Table 1",
    "few_shot": "Table 2",
    "base2novel": "Table 3",
    "long_tail": "Table 4",
    "anomaly": "Table 5",
}  # the paper's table of each protocol
MODEL_NAMES = {
    "TCCLIP": "TC-CLIP",
    "ViFiCLIP": "ViFi-CLIP",
    "BIKE": "BIKE",
    "XCLIP": "X-CLIP",
    "CLIPZeroShot": "CLIP",
    "XCLIPMIL": "MIL",  # the paper's anomaly row: UMIL's MIL baseline on X-CLIP B/32
    "MILHead": "MIL (features)",  # the Sultani-style fast extra on frozen features, not the paper's protocol
}  # net class -> the paper's row name
TABLE1 = [
    ("HMDB", "hmdb51", "test/top1"),
    ("UCF", "ucf101", "test/top1"),
    ("K600 top-1", "k600", "test/top1"),
    ("K600 top-5", "k600", "test/top5"),
]
MMD_SCALE = 100  # Table 8 shows MMD^2 x 100 (the header says so)


def model_label(r: Results) -> str:
    """The paper's row name: the net's name, "+Ours" when the run trained on a synthetic set, then its video
    generator unless it is the demo world's procedural renderer or unknown: "TC-CLIP+Ours (Wan2.1-1.3B)"; "(LLM)"
    when it read LLM-rephrased class names (as tc-clip's README rows the paper quotes)."""
    cls = r.model.rsplit(".", 1)[-1]
    name = MODEL_NAMES.get(cls, cls) or "unknown net"
    generator = f" ({r.generator})" if r.generator not in (None, "procedural", "unknown") else ""
    name = f"{name}+Ours{generator}" if r.synthetic_manifest else name
    return f"{name} (LLM)" if r.class_names.startswith("llm") else name


WISE_FT = "WiSE-FT 0.7"  # the label of the zero-shot weight-space-ensembled rows (group `wise_ft`, tasks/selection.py)
PAPER_NOTE = (
    "Checkpoints as the reference: zero-shot tests the best K400-val start (+ the synthetic phase's last weights "
    f"for +Ours) and its {WISE_FT} ensemble with CLIP; the paper's TC-CLIP zero-shot numbers are taken to be the "
    f"{WISE_FT} rows. Few-shot K=k is the best val1 top-1 over evaluated epochs (reference `final_test: false`), "
    "'last' the last epoch's. Base-to-novel tests the best base-val epoch."
)


def synthetic_set(r: Results) -> str:
    """The prompt set a synthetic manifest belongs to (its folder, e.g. `ie`), or `none`; marked
    `(template prompts)` when the offline template wrote them (never the paper's LLM prompts)."""
    if not r.synthetic_manifest:
        return "none"
    parent = Path(r.synthetic_manifest).parent.name or Path(r.synthetic_manifest).stem
    return parent + template_mark(r)


def template_mark(r: Results) -> str:
    return " (template prompts)" if r.prompts == "template" else ""


def protocol_table(protocol: str, records: list[Results]) -> str:
    """One Markdown table of a protocol's records, in its paper layout (rows merge identical variants)."""
    rows: dict[tuple, list[Results]] = defaultdict(list)
    for r in records:
        variant = re.sub(r"_k\d+", "", r.task) if protocol == "few_shot" else r.task
        synthetic = (r.synthetic_manifest + template_mark(r)) if r.synthetic_manifest else "none"
        rows[(model_label(r), r.label_file or r.dataset, variant, synthetic, r.synthetic_classes)].append(r)
    if protocol == "few_shot":
        shots = sorted({r.shots for r in records if r.shots is not None})
        columns = [(f"K={k}", "test/top1", k) for k in shots]  # the reference's figure: best val epoch
        if any("last/top1" in r.summary for r in records):
            columns += [(f"K={k} last", "last/top1", k) for k in shots]  # the last epoch's, beside it
    elif protocol in COLUMNS:
        columns = [(title, key, None) for title, key in COLUMNS[protocol]]
        if protocol == "zero_shot" and not any("test/top5" in r.summary and r.dataset == "k600" for r in records):
            columns = columns[:1]  # top-5 is reported for Kinetics-600 only
        if protocol == "zero_shot" and any("wise_ft/top1" in r.summary for r in records):
            columns += [(f"{WISE_FT} {t}", k.replace("test/", "wise_ft/"), None) for t, k, _ in list(columns)]
    else:
        keys = sorted({k for r in records for k in r.summary})
        columns = [(key, key, None) for key in keys]
    lines = [
        "| model | data | task | synthetic | runs | " + " | ".join(title for title, _, _ in columns) + " |",
        "|" + "---|" * (5 + len(columns)),
    ]
    decimals = DECIMALS.get(protocol, 1)
    for (label, data, variant, synthetic, classes), group in rows.items():
        cells = []
        for _, key, k in columns:
            members = [r for r in group if k is None or r.shots == k]
            if key.startswith("hm/"):  # HM of the (pooled) seed-averaged base and novel accuracies
                base = [v for r in members for v in split_values(r.tests).get(key.replace("hm/", "base/"), [])]
                novel = [v for r in members for v in split_values(r.tests).get(key.replace("hm/", "novel/"), [])]
                ok = base and novel
                cells.append(f"{100 * harmonic_mean(mean_std(base)[0], mean_std(novel)[0]):.1f}" if ok else "-")
            else:
                cells.append(_cell([v for r in members for v in split_values(r.tests).get(key, [])], decimals))
        synthetic = synthetic if classes == "protocol" else f"{synthetic} (all classes)"
        lines.append(f"| {label} | {data} | {variant} | {synthetic} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table1(records: list[Results]) -> str:
    """The paper's Table 1 from zero-shot records: one row per net (+Ours), variant and prompt set; columns
    HMDB / UCF / K600 top-1 / K600 top-5 (mean +- std over splits) and All (mean of the three top-1s)."""
    rows: dict[tuple, list[Results]] = defaultdict(list)
    for r in records:
        variant = re.sub(rf"^zero_shot|{re.escape(r.dataset)}", "", r.task).strip("_")  # "" for the main tasks
        rows[(model_label(r), variant, synthetic_set(r))].append(r)
    lines = [
        "| model | " + " | ".join(title for title, _, _ in TABLE1) + " | All | synthetic | runs |",
        "|" + "---|" * (len(TABLE1) + 4),
    ]
    for (label, variant, synthetic), group in rows.items():
        name = f"{label} ({variant})" if variant else label
        for prefix, row in (("test/", name), ("wise_ft/", f"{name} {WISE_FT}")):  # the tested weights, then WiSE-FT
            cells, top1 = [], []
            for _, dataset, key in TABLE1:
                key = key.replace("test/", prefix)
                values = [v for r in group if r.dataset == dataset for v in split_values(r.tests).get(key, [])]
                cells.append(_cell(values))
                if key.endswith("/top1") and values:
                    top1.append(mean_std(values)[0])
            if prefix != "test/" and not any(c != "-" for c in cells):
                continue  # no WiSE-FT test in these runs
            cells.append(f"{100 * sum(top1) / 3:.1f}" if len(top1) == 3 else "-")
            lines.append(f"| {row} | " + " | ".join(cells) + f" | {synthetic} | {len(group)} |")
    return "\n".join(lines)


def task_table(records: list[Results]) -> str:
    """Tables of every protocol among `records`: the paper's layout under a heading naming the table, and
    (zero-shot) the runs behind Table 1 per task."""
    by_protocol: dict[str, list[Results]] = defaultdict(list)
    for r in records:
        by_protocol[r.protocol].append(r)
    parts = []
    for p, rs in by_protocol.items():
        title = f"{p} ({TITLES[p]})" if p in TITLES else p  # e.g. "zero_shot (Table 1)"
        if p == "zero_shot":
            parts.append(f"### {title}\n\n{table1(rs)}\n\n#### zero-shot runs\n\n{protocol_table(p, rs)}")
        else:
            parts.append(f"### {title}\n\n{protocol_table(p, rs)}")
        rules = sorted({r.checkpoint for r in rs if r.checkpoint})
        parts[-1] += "".join(f"\n\nTested weights: {rule}." for rule in rules)
    if any(r.protocol in ("zero_shot", "few_shot", "base2novel") for r in records):
        parts.append(PAPER_NOTE)
    return "\n\n".join(parts)


def analysis_table(report: dict) -> str:
    """The paper's Table 8 from a `generation analyze` report: per dataset Davies-Bouldin (lower = classes
    better separated) and MMD^2 against the reference set (x100) for each kernel."""
    kernels = ("linear", "rbf", "poly")
    lines = [
        f"| dataset | clips | classes | Davies-Bouldin | MMD² ×{MMD_SCALE} linear | MMD² ×{MMD_SCALE} RBF | "
        f"MMD² ×{MMD_SCALE} poly |",
        "|" + "---|" * 7,
    ]
    for name, d in report["datasets"].items():
        mmd = [f"{MMD_SCALE * d['mmd2'][k]:.2f}" if k in d.get("mmd2", {}) else "-" for k in kernels]
        db = d.get("davies_bouldin")
        db = "-" if db is None or db != db else f"{db:.2f}"  # NaN: fewer than 2 classes
        ref = " (reference)" if name == report.get("reference") else ""
        counts = f"{d.get('clips', '-')} | {d.get('classes', '-')}"
        lines.append(f"| {name}{ref} | {counts} | {db} | " + " | ".join(mmd) + " |")
    note = f"MMD² against `{report.get('reference')}`; RBF sigma = {report.get('rbf_sigma', float('nan')):.4g}"
    return "\n".join(lines) + f"\n\n{note}"


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


def find_analyses(paths: list[str]) -> list[Path]:
    """Every `generation analyze` report (analysis.json) at or below the given folders."""
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / "analysis.json").is_file():
            found.append(path / "analysis.json")
        elif path.is_dir():
            found.extend(sorted(path.rglob("analysis.json")))
    return found


def model_from_config(run_dir: Path) -> str:
    """The net's class path from a `config.yaml` Lightning saved in the run's phase folders ("" if none)."""
    import yaml

    for config in sorted(run_dir.rglob("config.yaml")):
        try:
            model = (yaml.safe_load(config.read_text()) or {}).get("model") or {}
        except yaml.YAMLError:
            continue
        net = (model.get("init_args") or {}).get("net") or {}
        path = net.get("class_path") if isinstance(net, dict) else None
        if path or model.get("class_path"):
            return path or model["class_path"]
    return ""


def load_results(path: Path) -> Results:
    """Read a results.json, naming the file when it is not a results record."""
    try:
        record = Results.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, KeyError) as e:
        raise ValueError(f"{path}: not a results record of `train.py fit` ({e}); re-run the task to rewrite it") from e
    if not record.model:
        record.model = model_from_config(path.parent)
    if record.generator is None and record.synthetic_manifest and Path(record.synthetic_manifest).is_file():
        from datamodules.manifest import prompt_provenance

        record.generator = prompt_provenance(record.synthetic_manifest)["generator"]
    return record


def load_analysis(path: Path) -> dict:
    """Read an analysis.json, naming the file when it is not a `generation analyze` report."""
    try:
        report = json.loads(path.read_text())
        report["datasets"].items()
        return report
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a `python -m generation analyze` report ({e})") from e


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks report", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run or analysis folders (or folders above them)")
    args = parser.parse_args(argv)
    try:
        files, analyses = find_results(args.runs), find_analyses(args.runs)
        if not files and not analyses:
            raise FileNotFoundError(
                f"no results.json or analysis.json under {' '.join(args.runs)}; has the run finished?"
            )
        records = [load_results(f) for f in files]
        reports = [(f, load_analysis(f)) for f in analyses]
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    parts = [task_table(records)] if records else []
    parts += [f"### Table 8: generated vs real data ({f.parent})\n\n{analysis_table(r)}" for f, r in reports]
    print("\n\n".join(parts))
    return 0
