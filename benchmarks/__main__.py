"""Run every benchmark, print one table (metric, ours, baseline, ratio, target) and write it as JSON.

    python -m benchmarks                      # all, CPU-sized defaults (under 10 minutes on 2 cores)
    python -m benchmarks --only decode score  # a subset
    python -m benchmarks --full               # the scripts' own (larger) defaults instead of the quick ones

Each benchmark is a script in this folder, run as a subprocess (so one crash or hang cannot take down the
others, and each starts with a clean process) with the arguments below; it reports through
`benchmarks.common.report`, whose `BENCHMARK {json}` lines this runner collects. A benchmark whose inputs are
missing (no ../shared/data, no demo set) is listed as skipped with the reason, never silently dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_CLIPS = ROOT.parent / "shared" / "data" / "real_clips"
SCRIPTS = ROOT / "benchmarks"
SMOKE = ROOT / "data" / "smoke"
DEMO = ROOT / "data" / "demo"
# Scoring has a fixed cost per call (model load, per-class histograms): on the 32-clip smoke set it dominates,
# so the demo set (768 clips, `make demo-data`) is used when it exists.
SCORE_DATA = DEMO if (DEMO / "synthetic/ie/manifest.jsonl").is_file() else SMOKE


@dataclass
class Benchmark:
    """A script in benchmarks/ and how the runner calls it."""

    name: str  # script stem
    quick_args: list[str] = field(default_factory=list)  # CPU-sized arguments (the default run)
    needs: list[Path] = field(default_factory=list)  # inputs that must exist, else the benchmark is skipped
    timeout_s: int = 300


BENCHMARKS = [
    Benchmark("decode", ["--repeats", "1"], needs=[SHARED_CLIPS], timeout_s=180),
    Benchmark(
        "score",
        ["--manifest", str(SCORE_DATA / "synthetic/ie/manifest.jsonl"), "--labels", str(SCORE_DATA / "labels.csv"),
         "--arch", "synthact-small", "--repeats", "1"],
        needs=[SCORE_DATA / "synthetic/ie/manifest.jsonl"],
        timeout_s=180,
    ),
    Benchmark("train_step", [], timeout_s=480),  # the sizes (its targets apply only there): ~4 min
    Benchmark("train_throughput", ["--quick"], needs=[SHARED_CLIPS], timeout_s=300),
    Benchmark("generation", ["--quick"], timeout_s=300),
]


def ensure_smoke_data() -> None:
    """Build the smoke world (seconds) that several benchmarks read, if it is not there yet."""
    if not (SMOKE / "synthetic/ie/manifest.jsonl").is_file():
        print(f"building the smoke data set in {SMOKE} (python -m generation demo --preset smoke)", flush=True)
        subprocess.run([sys.executable, "-m", "generation", "demo", "--out", str(SMOKE), "--preset", "smoke"],
                       cwd=ROOT, check=True)  # fmt: skip


def run(bench: Benchmark, full: bool) -> tuple[list[dict], str]:
    """Run one benchmark script; returns its measurements and a status ("ok", or why it is missing)."""
    script = SCRIPTS / f"{bench.name}.py"
    if not script.is_file():
        return [], f"skipped: {script} does not exist"
    missing = [str(p) for p in bench.needs if not p.exists()]
    if missing:
        return [], f"skipped: missing {', '.join(missing)}"
    cmd = [sys.executable, str(script), *([] if full else bench.quick_args)]
    print(f"\n=== {bench.name}: {' '.join(cmd[1:])}", flush=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    started = time.time()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=bench.timeout_s)
    except subprocess.TimeoutExpired as err:
        print((err.stdout or b"").decode() if isinstance(err.stdout, bytes) else (err.stdout or ""))
        return [], f"failed: timed out after {bench.timeout_s} s"
    measurements = []
    for line in proc.stdout.splitlines():
        if line.startswith("BENCHMARK "):
            measurements.append(json.loads(line[len("BENCHMARK "):]))
        else:
            print(line)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return measurements, f"failed: exit code {proc.returncode} (stderr above)"
    return measurements, f"ok ({time.time() - started:.0f} s)"


def table(rows: list[dict]) -> str:
    """Markdown table of measurements."""
    lines = ["| benchmark | metric | ours | baseline | unit | ratio | target | met |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        lines.append(f"| {r['benchmark']} | {r['metric']} | {r['ours']:.4g} | {r['baseline']:.4g} | {r['unit']} "
                     f"| {r['ratio']:.3f} | {r['target']} | {met} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run synthact's benchmarks and print one table.")
    parser.add_argument("--only", nargs="+", choices=[b.name for b in BENCHMARKS], help="run only these")
    parser.add_argument("--full", action="store_true", help="the scripts' own defaults (slower) instead of quick ones")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "latest.json")
    args = parser.parse_args(argv)

    selected = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    if any(SMOKE in [p, *p.parents] for b in selected for p in b.needs):
        ensure_smoke_data()
    import torch  # only for the machine description

    machine = {
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    rows, status = [], {}
    for bench in selected:
        measured, status[bench.name] = run(bench, args.full)
        rows += measured
    print("\n" + table(rows))
    print("\n" + "\n".join(f"{name}: {s}" for name, s in status.items()))
    print(f"machine: {machine}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "status": status, "measurements": rows}, indent=2) + "\n")
    print(f"written: {args.out}")
    return 1 if any(s.startswith("failed") for s in status.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
