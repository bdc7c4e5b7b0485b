"""`make demo`: the paper's claims on the embedded demo world, checked through the product's own commands.

The driver only runs commands a user could type, `--parallel` (2) at a time, and reads what they wrote:

    python train.py fit --config tasks/demo_scorer.yaml --task.root runs/demo            # the stand-in CLIP
    python -m generation score --manifest data/demo/synthetic/ie_unreliable/manifest.jsonl \\
        --labels data/demo/labels.csv --arch demo --checkpoint runs/demo/demo_scorer/train/weights.pt --rescore true
    python train.py fit --config tasks/demo_<task>.yaml --seed_everything S --task.root runs/demo/seed<S>
                                                     # for every seed S and task none, basic, ie, ie_ce, ie_ul
    python -m tasks report runs/demo                 # every run's own table, mean ± std over the seeds

Every run trains `DemoNet` through the task runner, VideoCLIPModule and a Lightning Trainer (the tasks are in
tasks/demo_protocol.py, the recipe in configs/recipes/demo.yaml). Each row and seed prints a line when it
starts and when it ends (top-1, seconds). The table, `<root>/summary.json` and `<root>/summary.png` are built
from the runs' own `results.json`; after the table come the paper's claims with their per-seed margins and
whether each holds (also in summary.json under `claims`). The stand-in CLIP's quality (how well its
uncertainty flags the failed generations: AUROC, mean u) is read from the scored manifest. Each run is its own
process with OMP_NUM_THREADS fixed (`--threads`, 1): same machine + same command -> same numbers, whatever ran
beside it (`run_all` starts a run when a core is free and what it reads is written).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jsonargparse import ActionConfigFile, ArgumentParser

DATA = Path("data/demo")  # the task YAMLs read the build from here
UNRELIABLE = "ie_unreliable"  # generation.demo.UNRELIABLE
NUM_FRAMES = 6  # DemoNet's frames per clip in configs/models/demo_net.yaml: the stand-in CLIP scores as it was trained


@dataclass(frozen=True)
class Row:
    """One row of the demo table: the test of one split of one task."""

    name: str
    what: str
    task: str
    split: str | None = None  # the split whose test is the row (None: the task's only test)


ROWS = (
    Row("none", "4-shot real fine-tuning only", "demo_none"),
    Row("basic", "Basic pre-training + 4-shot", "demo_basic", "few_shot"),
    Row("ie", "IE pre-training + 4-shot", "demo_ie", "few_shot"),
    Row("zero_shot_basic", "Basic synthetic only (zero-shot)", "demo_basic", "zero_shot"),
    Row("zero_shot_ie", "IE synthetic only (zero-shot)", "demo_ie", "zero_shot"),
    Row("ie_ce", "unreliable IE pre-training, CE + 4-shot", "demo_ie_ce"),
    Row("ie_ul", "unreliable IE pre-training, UL + 4-shot", "demo_ie_ul"),
)
TASKS = tuple(dict.fromkeys(r.task for r in ROWS))  # run order within a seed
SHORT_TASKS = ("demo_none",)  # no pre-training: a fraction of the others' time; run last to even out the cores
SCORED_TASKS = ("demo_ie_ul",)  # tasks whose loss reads the stand-in CLIP's uncertainty: they wait for the scores
PAIRED = (("ie_ce", "ie_ul"),)  # rows that differ only in the loss: the chart joins each seed's two values


@dataclass(frozen=True)
class Claim:
    """A claim of the paper checked on the demo: margin_s = value(a)_s - factor * value(b)_s - offset per seed;
    it holds when the margin is > 0 (`strict`) or >= 0, on every seed (`every_seed`) or on the mean."""

    text: str
    a: str
    b: str | None  # a row, or None for chance
    factor: float = 1.0
    offset: float = 0.0
    strict: bool = False
    every_seed: bool = False


CLAIMS = (
    Claim("IE >= 2x chance", "ie", None, factor=2.0),
    Claim("IE - Basic >= 10 points on every seed", "ie", "basic", offset=10.0, every_seed=True),
    Claim("Basic > none", "basic", "none", strict=True),
    Claim("zero-shot IE >= 2x chance", "zero_shot_ie", None, factor=2.0),
    Claim("UL > CE on every seed (paired)", "ie_ul", "ie_ce", strict=True, every_seed=True),
)


# ------------------------------------------------------------------------------------------ commands


def train_command(task: str, root: Path, seed: int | None = None) -> list[str]:
    seed_args = [] if seed is None else ["--seed_everything", str(seed)]
    return [sys.executable, "train.py", "fit", "--config", f"tasks/{task}.yaml", *seed_args, "--task.root", str(root)]


def score_command(root: Path) -> list[str]:
    return [
        *(sys.executable, "-m", "generation", "score"),
        *("--manifest", str(DATA / "synthetic" / UNRELIABLE / "manifest.jsonl")),
        *("--labels", str(DATA / "labels.csv")),
        *("--arch", "demo", "--checkpoint", str(root / "demo_scorer" / "train" / "weights.pt")),
        *("--num_frames", str(NUM_FRAMES), "--views", "2", "--rescore", "true", "--progress", "false"),
    ]


def report_command(root: Path) -> list[str]:
    """Every run's own table (one row per task, mean ± std over the seeds), as `python -m tasks report` prints it."""
    return [sys.executable, "-m", "tasks", "report", str(root)]


def run(command: list[str], log: Path, threads: int) -> float:
    """Run one command (output to `log`); raise with the log's tail when it fails. Returns its seconds."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    if code:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise RuntimeError(f"`{' '.join(command[1:])}` failed (exit {code}); last lines of {log}:\n{tail}")
    return time.perf_counter() - start


@dataclass(frozen=True)
class Job:
    """One command of the demo: it starts once the jobs named in `after` have finished."""

    name: str
    command: list[str]
    log: Path
    after: tuple[str, ...] = ()
    task: str | None = None  # a demo task's run: its results.json is <root>/<task>/results.json
    root: Path | None = None


def jobs(root: Path, seeds: list[int]) -> list[Job]:
    """Every command of a demo run, in start order: the stand-in CLIP and its scoring first (the UL rows read the
    scores), then each seed's pre-training tasks, then the short fine-tuning-only runs, which fill the second core
    while the last long run finishes. A task reading uncertainty waits for the scores."""
    logs = root / "logs"
    out = [
        Job("stand-in CLIP", train_command("demo_scorer", root), logs / "demo_scorer.log"),
        Job("score", score_command(root), logs / "score.log", after=("stand-in CLIP",)),
    ]
    long = [(seed, task) for seed in seeds for task in TASKS if task not in SHORT_TASKS]
    short = [(seed, task) for seed in seeds for task in TASKS if task in SHORT_TASKS]
    for seed, task in long + short:
        after = ("score",) if task in SCORED_TASKS else ()
        names = ", ".join(r.name for r in ROWS if r.task == task)
        seed_root = root / f"seed{seed}"
        command = train_command(task, seed_root, seed)
        out.append(Job(f"seed {seed} {names}", command, logs / f"seed{seed}_{task}.log", after, task, seed_root))
    return out


def run_all(
    todo: list[Job], parallel: int, threads: int, started: Callable[[Job], None], finished: Callable[[Job, float], None]
) -> dict[str, float]:
    """Run the jobs, `parallel` at a time (each with `threads` torch threads), each as soon as its `after` jobs
    are done, in list order otherwise. A failure stops new starts; the running ones finish, then it is raised.
    Returns each job's seconds. The numbers do not depend on `parallel`: every run is its own process."""
    pending, seconds = list(todo), {}
    running: dict[Future, Job] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        while pending or running:
            ready = [j for j in pending if all(a in seconds for a in j.after)]
            while failure is None and ready and len(running) < parallel:
                job = ready.pop(0)
                pending.remove(job)
                started(job)
                running[pool.submit(run, job.command, job.log, threads)] = job
            if not running:
                if failure is None and pending:
                    raise RuntimeError(f"jobs wait on jobs that never run: {[j.name for j in pending]}")
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                if future.exception() is not None:
                    failure = failure or future.exception()
                    continue
                seconds[job.name] = future.result()
                finished(job, seconds[job.name])
    if failure is not None:
        raise failure
    return seconds


def check_build() -> None:
    """Raise with what to run when the demo build is missing or incomplete."""
    need = [
        DATA / "DONE.json",
        DATA / "real" / "splits" / "train1_few_shot_4.txt",
        DATA / "web" / "train.txt",
        *(DATA / "synthetic" / s / "manifest.jsonl" for s in ("basic", "ie", UNRELIABLE)),
    ]
    missing = [p for p in need if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"the demo build in {DATA} is missing {', '.join(map(str, missing[:3]))}; build it with "
            f"`python -m generation demo --out {DATA} --preset demo` (or `make demo-data`)"
        )


# ------------------------------------------------------------------------------------------ results


def row_top1(results: dict, row: Row) -> float:
    """Top-1 (%) of a row from its task's results.json content."""
    tests = [t for t in results["tests"] if row.split is None or t["split"] == row.split]
    if len(tests) != 1:
        raise ValueError(f"{results['task']}: expected one test for row {row.name!r}, found {len(tests)}")
    return 100.0 * tests[0]["metrics"]["test/top1"]


def read_results(root: Path, seeds: list[int]) -> dict[str, list[float]]:
    """{row: [top-1 % per seed]} from `<root>/seed<S>/<task>/results.json`."""
    out: dict[str, list[float]] = {r.name: [] for r in ROWS}
    for seed in seeds:
        for row in ROWS:
            path = root / f"seed{seed}" / row.task / "results.json"
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} not found: run `{' '.join(train_command(row.task, path.parents[1], seed)[1:])}`"
                )
            out[row.name].append(row_top1(json.loads(path.read_text()), row))
    return out


def summarise(top1: dict[str, list[float]], seeds: list[int], chance: float) -> dict:
    rows = [
        {
            "name": r.name,
            "what": r.what,
            "task": r.task,
            "split": r.split,
            "top1_mean": round(float(np.mean(top1[r.name])), 2),
            "top1_std": round(float(np.std(top1[r.name])), 2),
            "top1_per_seed": [round(v, 2) for v in top1[r.name]],
        }
        for r in ROWS
    ]
    return {"chance": round(chance, 2), "seeds": list(seeds), "rows": rows}


def check_claims(summary: dict) -> list[dict]:
    """Each claim's per-seed margins and whether it holds (see `Claim`)."""
    values = {r["name"]: np.array(r["top1_per_seed"]) for r in summary["rows"]}
    out = []
    for c in CLAIMS:
        b = summary["chance"] if c.b is None else values[c.b]
        margins = values[c.a] - c.factor * b - c.offset  # (seeds,)
        judged = margins if c.every_seed else np.array([margins.mean()])
        holds = bool((judged > 0).all() if c.strict else (judged >= 0).all())
        out.append(
            {
                "claim": c.text,
                "rule": "every seed" if c.every_seed else "mean over seeds",
                "margins_per_seed": [round(float(m), 2) for m in margins],
                "mean_margin": round(float(margins.mean()), 2),
                "holds": holds,
            }
        )
    return out


def table(summary: dict) -> str:
    lines = [f"| row | what | top-1 % (mean ± std) | per seed {summary['seeds']} |", "|---|---|---|---|"]
    for r in summary["rows"]:
        seeds = ", ".join(f"{v:.1f}" for v in r["top1_per_seed"])
        lines.append(f"| {r['name']} | {r['what']} | {r['top1_mean']:.1f} ± {r['top1_std']:.1f} | {seeds} |")
    lines.append(f"| chance | 1 / {round(100 / summary['chance'])} classes | {summary['chance']:.1f} | |")
    return "\n".join(lines)


def claims_text(claims: list[dict]) -> str:
    lines = []
    for c in claims:
        margins = ", ".join(f"{m:+.1f}" for m in c["margins_per_seed"])
        verdict = "holds" if c["holds"] else "FAILS"
        lines.append(
            f"{verdict:5s}  {c['claim']} ({c['rule']}): margins per seed {margins}; mean {c['mean_margin']:+.1f}"
        )
    return "\n".join(lines)


def scorer_stats(data: Path = DATA) -> dict:
    """How well the stand-in CLIP's uncertainty flags the failed generations, read from the scored manifest."""
    from sklearn.metrics import roc_auc_score

    folder = data / "synthetic" / UNRELIABLE
    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines() if line.strip()]
    failed = set(json.loads((folder / "unreliable.json").read_text())["rows"])
    bad = np.array([r["row_id"] in failed for r in rows])
    u = np.array([r["uncertainty"] for r in rows], dtype=float)
    correct = np.array([r["clip_pred"] == r["class_id"] for r in rows])
    return {
        "unreliable_clips": int(bad.sum()),
        "clips": len(rows),
        "u_mean_unreliable": round(float(u[bad].mean()), 3),
        "u_mean_reliable": round(float(u[~bad].mean()), 3),
        "auroc": round(float(roc_auc_score(bad, u)), 3) if 0 < bad.sum() < len(rows) else None,
        "scorer_top1_reliable": round(float(100 * correct[~bad].mean()), 2),
    }


def bar_chart(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["rows"]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    x = np.arange(len(rows))
    ax.bar(
        x, [r["top1_mean"] for r in rows], yerr=[r["top1_std"] for r in rows], capsize=3, color="tab:blue", alpha=0.8
    )
    for i, r in enumerate(rows):
        ax.plot([i] * len(r["top1_per_seed"]), r["top1_per_seed"], "k.", ms=4)
    index = {r["name"]: i for i, r in enumerate(rows)}
    for a, b in PAIRED:  # the same seed under CE and UL: a line per seed shows the paired difference
        if a in index and b in index:
            for ya, yb in zip(rows[index[a]]["top1_per_seed"], rows[index[b]]["top1_per_seed"]):
                ax.plot([index[a], index[b]], [ya, yb], "-", color="0.35", lw=0.8)
    ax.axhline(summary["chance"], color="tab:red", ls="--", lw=1, label="chance")
    ax.set_xticks(x, [r["name"] for r in rows], rotation=20)
    ax.set_ylabel("top-1 % on held-out real style")
    ax.set_title("synthact demo world: mean ± std over seeds (dots: seeds; lines: one seed, CE to UL)", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_summary(root: Path, seeds: list[int], extra: dict | None = None) -> dict:
    """Build the summary from the runs' results.json; write summary.json and summary.png. Returns it."""
    from datamodules.annotations import read_labels

    chance = 100.0 / len(read_labels(DATA / "labels.csv"))
    summary = summarise(read_results(root, seeds), seeds, chance)
    summary["claims"] = check_claims(summary)
    summary.update(extra or {})
    root.mkdir(parents=True, exist_ok=True)
    (root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    bar_chart(summary, root / "summary.png")
    return summary


# ------------------------------------------------------------------------------------------ driver


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m tasks.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML file of these options (--print_config)")
    parser.add_argument("--root", default="runs/demo", help="run folder (default runs/demo)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="seeds (default 1 2 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every run (default 1)")
    parser.add_argument(
        "--parallel", type=int, default=2, help="runs at a time (default 2: one per core); numbers do not change"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="delete the run folder first (else finished runs are kept)"
    )
    args = parser.parse_args(argv)
    try:
        check_build()
    except FileNotFoundError as e:
        parser.error(str(e))
    root = Path(args.root)
    if args.fresh and root.exists():
        shutil.rmtree(root)
    start = time.perf_counter()
    scorer: dict = {}

    def started(job: Job) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s] start {job.name}: {' '.join(job.command[1:])}", flush=True)

    def finished(job: Job, seconds: float) -> None:
        stamp = f"[{time.perf_counter() - start:6.0f} s] done  {job.name}"
        if job.name == "score":
            scorer.update(scorer_stats())
            print(
                f"{stamp}: stand-in CLIP {scorer['scorer_top1_reliable']:.1f}% top-1 on the reliable clips; "
                f"uncertainty u of failed clips {scorer['u_mean_unreliable']:.2f} vs reliable "
                f"{scorer['u_mean_reliable']:.2f} (AUROC {scorer['auroc']:.2f}, {scorer['unreliable_clips']}/"
                f"{scorer['clips']} failed) ({seconds:.0f} s)",
                flush=True,
            )
        elif job.task is not None:
            results = json.loads((job.root / job.task / "results.json").read_text())
            top1 = ", ".join(f"{r.name} {row_top1(results, r):.1f}" for r in ROWS if r.task == job.task)
            print(f"{stamp}: {top1} top-1 % ({seconds:.0f} s)", flush=True)
        else:
            print(f"{stamp} ({seconds:.0f} s)", flush=True)

    try:
        timings = run_all(jobs(root, args.seeds), args.parallel, args.threads, started, finished)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    total = round(time.perf_counter() - start, 1)
    print(f"\n$ python {' '.join(report_command(root)[1:])}", flush=True)
    if subprocess.call(report_command(root)):
        print("error: the per-run report failed (see above)", file=sys.stderr)
        return 1
    summary = write_summary(
        root,
        args.seeds,
        {
            "scorer": scorer,
            "seconds": total,
            "step_seconds": {k: round(v, 1) for k, v in timings.items()},
            "threads": args.threads,
            "parallel": args.parallel,
        },
    )
    print()
    print(table(summary))
    print()
    print(claims_text(summary["claims"]))
    print(
        f"\nwall time {total:.0f} s ({args.parallel} runs at a time, {args.threads} thread(s) each); "
        f"{root / 'summary.json'}, {root / 'summary.png'}"
    )
    return 0 if all(c["holds"] for c in summary["claims"]) else 3


if __name__ == "__main__":
    sys.exit(main())
