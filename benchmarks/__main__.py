"""Run every benchmark, print one table (metric, ours, baseline, ratio, target) and write it as JSON.

    python -m benchmarks                      # all, CPU-sized defaults (under 10 minutes on 2 cores)
    python -m benchmarks --only decode score  # a subset
    python -m benchmarks --full               # the scripts' own (larger) defaults instead of the quick ones
    python -m benchmarks --gpu                # the GPU suite (one H100/H200, < 8 min; exits 0 at once without CUDA)
    python -m benchmarks --gpu --dry-run      # the GPU suite's tiny variants on CPU (what the tests run)
    python -m benchmarks --only score --print_config > bench.yaml; python -m benchmarks --config bench.yaml

Options come from `run_benchmarks`'s signature (jsonargparse: `--config`, `--print_config`, as train.py); the
older spellings (`--dry-run`, `--only a b`) still work.

Each benchmark is a script in this folder, run as a subprocess (so one crash or hang cannot take down the
others, and each starts with a clean process) with the arguments below; it reports through
`benchmarks.common.report`, whose `BENCHMARK {json}` lines this runner collects. A benchmark whose inputs are
missing (no ../shared/data, no demo set) is listed as skipped with the reason, never silently dropped; one that
times out keeps the measurements it reported before.

The GPU suite (`GPU_BENCHMARKS`) measures every registered generator's s/clip and peak memory at its model card's
settings (random weights of the true shapes, a few steps extrapolated), then, at the issue-17 sizes: CogVideoX-2B shapes with random weights (bare,
each cache, fp8, compile, their combination; PSNR against bare), TC-CLIP at 16 frames bf16 (eval at 400 and 101
classes, batch 16; training at batch 8 and 16, both ways, float64 agreement first, compiled vision tower), the
loader with 1 and N workers. Nothing comes from the network. On a device machine without our packages run
`benchmarks/gpu_run.sh` (after `benchmarks/gpu_prepare.sh` here; see /work/notes or the README).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_CLIPS = Path(os.environ.get("SYNTHACT_CLIPS") or ROOT.parent / "shared" / "data" / "real_clips")
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
    Benchmark("decode", ["--repeats", "1", "--max-width", "400"], needs=[SHARED_CLIPS], timeout_s=300),
    Benchmark(
        "score",
        [
            "--manifest",
            str(SCORE_DATA / "synthetic/ie/manifest.jsonl"),
            "--labels",
            str(SCORE_DATA / "labels.csv"),
            "--arch",
            "synthact-small",
            "--repeats",
            "1",
        ],
        needs=[SCORE_DATA / "synthetic/ie/manifest.jsonl"],
        timeout_s=180,
    ),
    # the sizes (its targets apply only there): ~4 min, plus a float64 agreement check on one clip
    Benchmark("train_step", ["--check-batch", "1"], timeout_s=600),
    Benchmark("train_throughput", ["--quick"], needs=[SHARED_CLIPS], timeout_s=300),
    Benchmark("generation", ["--quick"], timeout_s=300),
    # issue 23: a 4-shot demo phase through train.py fit against the same steps in a bare loop (make demo-data)
    Benchmark("phase_overhead", ["--repeats", "2"], needs=[DEMO / "DONE.json"], timeout_s=480),
]


LOADER_WORKERS = max(1, min(14, (os.cpu_count() or 2) - 2))  # leave cores for the main process and the GPU feed
GPU_BENCHMARKS = [  # in order of value: the suite's whole budget is 8 minutes on one H100/H200
    # cheapest generators first: a timeout keeps the rows already reported (the slow ones: run the script alone)
    Benchmark(
        "generators_speed",
        [
            "--generators",
            "cogvideox-2b",
            "wan2.1-1.3b",
            "ltx-video",
            "cogvideox-5b",
            "wan2.1-14b",
            "hunyuanvideo",
            "cogvideox1.5-5b",
        ],
        timeout_s=150,
    ),
    Benchmark("cogvideox_speed", ["--budget-s", "160"], timeout_s=190),
    Benchmark(
        "train_step",
        [
            "--device",
            "cuda",
            "--dtype",
            "bf16",
            "--frames",
            "16",
            "--eval-batch",
            "16",
            "--eval-classes",
            "400",
            "101",
            "--train-batch",
            "8",
            "16",
            "--train-classes",
            "101",
            "--repeats",
            "3",
            "--compile",
            "--tag",
            "TC-CLIP B/16 ",
        ],
        timeout_s=120,
    ),
    Benchmark(
        "profile_tc_clip",
        ["--device", "cuda", "--dtype", "bf16", "--frames", "16", "--batch", "16", "--classes", "101"],
        timeout_s=25,
    ),
    Benchmark(
        "train_throughput",
        [
            "--model",
            "tc",
            "--frames",
            "16",
            "--batch-size",
            "16",
            "--bf16",
            "--steps",
            "6",
            "--workers",
            str(LOADER_WORKERS),
            "--loader-workers",
            "1",
            "--loader-batches",
            "6",
        ],
        needs=[SHARED_CLIPS],
        timeout_s=60,
    ),
    Benchmark(
        "decode",
        ["--parallel-only", "--repeats", "1", "--max-width", "400", "--processes", str(LOADER_WORKERS)],
        needs=[SHARED_CLIPS],
        timeout_s=25,
    ),
]
# The same scripts at toy sizes on CPU: every code path of the suite in well under a minute (the tests run this).
GPU_DRY_RUN = {
    "generators_speed": ["--tiny"],
    "cogvideox_speed": [
        "--tiny",
        "--steps",
        "4",
        "--variants",
        "bare",
        "pab",
        "fastercache",
        "firstblock",
        "taylorseer",
        "magcache",
        "fp8",
        "pab+fp8+compile",
    ],  # compile on CPU takes minutes: a slow test has it
    "train_step": [
        "--arch",
        "synthact-tiny",
        "--context-tokens",
        "8",
        "--quick",
        "--eval-classes",
        "6",
        "--train-classes",
        "5",
        "--no-check",
    ],
    "profile_tc_clip": [
        "--arch",
        "synthact-tiny",
        "--context-tokens",
        "8",
        "--frames",
        "4",
        "--batch",
        "1",
        "--classes",
        "5",
        "--top",
        "5",
    ],
    "decode": ["--parallel-only", "--max-width", "400", "--max-clips", "2", "--processes", "2"],
    "train_throughput": [
        "--model",
        "tc",
        "--arch",
        "synthact-tiny",
        "--context-tokens",
        "8",
        "--quick",
        "--size",
        "32",
        "--steps",
        "1",
        "--workers",
        "1",
        "--loader-workers",
        "0",
        "--max-clips",
        "3",
    ],
}


def ensure_smoke_data() -> None:
    """Build the smoke world (seconds) that several benchmarks read, if it is not there yet."""
    if not (SMOKE / "synthetic/ie/manifest.jsonl").is_file():
        print(f"building the smoke data set in {SMOKE} (python -m generation demo --preset smoke)", flush=True)
        subprocess.run(
            [sys.executable, "-m", "generation", "demo", "--out", str(SMOKE), "--preset", "smoke"], cwd=ROOT, check=True
        )


def run(bench: Benchmark, full: bool, args: list[str] | None = None) -> tuple[list[dict], str]:
    """Run one benchmark script (with `args` instead of its own when given); returns its measurements and a
    status ("ok", or why it is missing or failed)."""
    script = SCRIPTS / f"{bench.name}.py"
    if not script.is_file():
        return [], f"skipped: {script} does not exist"
    missing = [str(p) for p in bench.needs if not p.exists()]
    if missing:
        return [], f"skipped: missing {', '.join(missing)}"
    cmd = [sys.executable, str(script), *(args if args is not None else [] if full else bench.quick_args)]
    print(f"\n=== {bench.name}: {' '.join(cmd[1:])}", flush=True)
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": path}
    started = time.time()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=bench.timeout_s)
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        return collect(out), f"failed: timed out after {bench.timeout_s} s"
    measurements = collect(proc.stdout)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return measurements, f"failed: exit code {proc.returncode} (stderr above)"
    return measurements, f"ok ({time.time() - started:.0f} s)"


def collect(stdout: str) -> list[dict]:
    """Print a benchmark's human lines; return its `BENCHMARK {json}` measurements."""
    measurements = []
    for line in stdout.splitlines():
        if line.startswith("BENCHMARK "):
            measurements.append(json.loads(line[len("BENCHMARK ") :]))
        else:
            print(line)
    return measurements


def table(rows: list[dict]) -> str:
    """Markdown table of measurements."""
    lines = [
        "| benchmark | metric | ours | baseline | unit | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        lines.append(
            f"| {r['benchmark']} | {r['metric']} | {r['ours']:.4g} | {r['baseline']:.4g} | {r['unit']} "
            f"| {r['ratio']:.3f} | {r['target']} | {met} |"
        )
    return "\n".join(lines)


def run_benchmarks(
    only: list[str] | None = None, full: bool = False, gpu: bool = False, dry_run: bool = False, out: str | None = None
) -> int:
    """Run synthact's benchmarks, each against its baseline in the same run, and print one table.

    Args:
        only: run only these benchmarks (script stems).
        full: the scripts' own defaults (slower) instead of the quick ones.
        gpu: the GPU suite instead (needs CUDA; else exits 0 at once).
        dry_run: with gpu: its tiny variants on CPU.
        out: JSON to write (default benchmarks/results/latest.json, or gpu.json / gpu-dry-run.json).
    """
    names = sorted({b.name for b in BENCHMARKS + GPU_BENCHMARKS})
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise ValueError(f"--only {' '.join(unknown)}: no such benchmark; choose from {', '.join(names)}")
    if gpu:
        return gpu_suite(only, dry_run, out)
    out_path = Path(out) if out else ROOT / "benchmarks" / "results" / "latest.json"
    selected = [b for b in BENCHMARKS if not only or b.name in only]
    if any(SMOKE in [p, *p.parents] for b in selected for p in b.needs):
        ensure_smoke_data()
    rows, status = [], {}
    for bench in selected:
        measured, status[bench.name] = run(bench, full)
        rows += measured
    return finish(rows, status, out_path)


def legacy_argv(argv: list[str]) -> list[str]:
    """The older argparse spellings as jsonargparse's: `--dry-run` -> `--dry_run=true`, `--only a b` -> a list."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        name, eq, value = token.partition("=")
        if not name.startswith("--"):
            out.append(token)
            continue
        name = "--" + name[2:].replace("-", "_")
        if name == "--only" and not eq:
            items = []
            while i < len(argv) and not argv[i].startswith("--"):
                items.append(argv[i])
                i += 1
            out.append(
                f"--only={json.dumps(items)}" if items and not items[0].startswith("[") else f"--only={items[0]}"
            )
        elif name in ("--full", "--gpu", "--dry_run") and not eq and (i >= len(argv) or argv[i].startswith("--")):
            out.append(f"{name}=true")
        else:
            out.append(f"{name}{eq}{value}" if eq else name)
    return out


def main(argv: list[str] | None = None) -> int:
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(prog="python -m benchmarks", description=run_benchmarks.__doc__.split("\n")[0])
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML file of these options")
    parser.add_function_arguments(run_benchmarks, as_group=False)
    cfg = parser.parse_args(legacy_argv(list(sys.argv[1:] if argv is None else argv)))
    options = {k: v for k, v in cfg.as_dict().items() if k not in ("config", "__path__")}
    try:
        return run_benchmarks(**options)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def machine_info() -> dict:
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def gpu_suite(only: list[str] | None, dry_run: bool, out: str | None) -> int:
    """Run GPU_BENCHMARKS (or their CPU dry run), one table and one JSON file."""
    import torch

    if not dry_run and not torch.cuda.is_available():
        print(
            "no CUDA device here: the GPU suite needs one (nothing run). `python -m benchmarks --gpu --dry-run` "
            "runs its tiny variants on CPU; benchmarks/gpu_run.sh runs it on a device machine."
        )
        return 0
    out_path = Path(out) if out else ROOT / "benchmarks" / "results" / ("gpu-dry-run.json" if dry_run else "gpu.json")
    started = time.time()
    rows, status = [], {}
    for bench in GPU_BENCHMARKS:
        if only and bench.name not in only:
            continue
        if dry_run:
            bench = Benchmark(bench.name, needs=bench.needs, timeout_s=180)
        measured, status[bench.name] = run(bench, False, GPU_DRY_RUN[bench.name] if dry_run else bench.quick_args)
        rows += measured
    print(
        f"\nGPU suite{' (dry run on CPU, toy sizes: timings mean nothing)' if dry_run else ''}: "
        f"{time.time() - started:.0f} s"
    )
    return finish(rows, status, out_path)


def finish(rows: list[dict], status: dict, out: Path) -> int:
    machine = machine_info()
    print("\n" + table(rows))
    print("\n" + "\n".join(f"{name}: {s}" for name, s in status.items()))
    print(f"machine: {machine}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "status": status, "measurements": rows}, indent=2) + "\n")
    print(f"written: {out}")
    return 1 if any(s.startswith("failed") for s in status.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
