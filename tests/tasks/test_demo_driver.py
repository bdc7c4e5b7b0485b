"""`make demo` (tasks/demo.py, tasks/demo_protocol.py): a reduced demo row learns through `train.py fit`; the
claim checker, the table and the summary are built from the runs' results.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datamodules.annotations import write_labels
from generation.demo import build_demo
from tasks import demo, get_task

ROOT = Path(__file__).resolve().parents[2]
CHANCE = 12.5  # 8 demo classes
# 1.6x chance. This reduced row through the product (2-core CPU VM, 2026-12-07, ~40 s) fine-tunes to 33.3 / 25.0 /
# 35.4 / 39.6 with seeds 0 / 1 / 2 / 3 (1 thread; configs/models/demo_net.yaml, time in the top 3 blocks), and seed 0
# to 34.4 with the test's 2 threads (zero-shot 24.0). The mini build has 4 real clips per class and 12 test clips, so
# seeds spread widely (with time in 2 blocks seed 2 fell to 15.6); a product that does not learn sits at chance
# (12.5) on every seed. Before the batch-32 / 6-frame recipe: 14.6.
FEW_SHOT_FLOOR = 20.0


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "mini"
    build_demo(out, "mini", progress=False)
    return out


def test_a_reduced_demo_row_learns_through_train_py(mini, tmp_path):
    """The product learns: `python train.py fit --config tasks/demo_ie.yaml` (runner, VideoCLIPModule, Trainer, the
    demo recipe) on the reduced build (`mini` preset: 32 IE clips per class, 12 test clips per class) pre-trains
    DemoNet on IE clips and fine-tunes it on 4 real clips per class; it recognises the held-out real style
    clearly above chance."""
    command = [
        *(sys.executable, "train.py", "fit", "--config", "tasks/demo_ie.yaml", "--seed_everything", "0"),
        *("--task.root", str(tmp_path / "runs")),
        *("--data.label_file", str(mini / "labels.csv"), "--data.video_root", str(mini / "real/videos")),
        *("--data.split_dir", str(mini / "real/splits")),
        *("--data.synthetic_manifest", str(mini / "synthetic/ie/manifest.jsonl")),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "runs/demo_ie/results.json").read_text())
    few_shot = demo.row_top1(results, demo.Row("ie", "", "demo_ie", "few_shot"))
    assert few_shot >= FEW_SHOT_FLOOR, results["tests"]
    assert results["model"] == "lightning_modules.models.DemoNet"
    assert results["synthetic_manifest"] == str(mini / "synthetic/ie/manifest.jsonl")


def test_every_row_is_the_test_of_a_registered_demo_task():
    for row in demo.ROWS:
        spec = get_task(row.task)
        splits = [s.name for s in spec.plan()]
        assert (ROOT / f"tasks/{row.task}.yaml").is_file()
        assert row.split in splits if row.split else len(splits) == 1
    assert demo.TASKS == ("demo_none", "demo_basic", "demo_ie", "demo_ie_ce", "demo_ie_ul")


def _summary(per_seed: dict[str, list[float]]) -> dict:
    return demo.summarise(per_seed, [1, 2, 3], chance=CHANCE)


GOOD = {
    "none": [13.0, 14.0, 13.0],
    "basic": [21.0, 20.0, 22.0],
    "ie": [47.0, 44.0, 50.0],
    "zero_shot_basic": [19.0, 14.0, 12.0],
    "zero_shot_ie": [31.0, 32.0, 33.0],
    "ie_ce": [17.5, 32.8, 33.8],
    "ie_ul": [20.0, 39.1, 40.0],
}


def test_claims_hold_with_their_per_seed_margins():
    claims = {c["claim"]: c for c in demo.check_claims(_summary(GOOD))}
    assert all(c["holds"] for c in claims.values())
    assert claims["IE >= 2x chance"]["margins_per_seed"] == [22.0, 19.0, 25.0]
    assert claims["IE - Basic >= 10 points on every seed"]["margins_per_seed"] == [16.0, 14.0, 18.0]
    ul = claims["UL > CE on every seed (paired)"]
    assert ul["margins_per_seed"] == [2.5, 6.3, 6.2] and ul["rule"] == "every seed"
    assert claims["zero-shot IE >= 2x chance"]["mean_margin"] == 7.0


def test_a_claim_fails_on_one_seed_or_on_the_mean():
    one_seed = {**GOOD, "ie_ul": [17.0, 39.1, 40.0]}  # UL below CE on seed 1 only: the mean still favours UL
    claims = {c["claim"]: c for c in demo.check_claims(_summary(one_seed))}
    assert not claims["UL > CE on every seed (paired)"]["holds"]
    assert claims["UL > CE on every seed (paired)"]["mean_margin"] > 0
    tie = {**GOOD, "basic": [13.0, 14.0, 13.0], "ie": [22.0, 24.0, 26.0]}  # Basic == none; IE 9 ahead on seed 1
    claims = {c["claim"]: c for c in demo.check_claims(_summary(tie))}
    assert not claims["Basic > none"]["holds"]  # strict
    assert not claims["IE - Basic >= 10 points on every seed"]["holds"]
    assert not claims["IE >= 2x chance"]["holds"]  # mean 24 < 25
    text = demo.claims_text(demo.check_claims(_summary(tie)))
    assert "FAILS  Basic > none (mean over seeds): margins per seed +0.0, +0.0, +0.0; mean +0.0" in text


def _results(task: str, tests: dict[str, float]) -> dict:
    """A results.json of the runner's shape: one test per split (split "" -> the test's name)."""
    return {
        "task": task,
        "tests": [
            {"split": split, "test": "val1", "group": "test", "metrics": {"test/top1": top1 / 100}}
            for split, top1 in tests.items()
        ],
    }


def test_summary_files_are_built_from_the_runs_results(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    write_labels(data / "labels.csv", [f"action{i}" for i in range(8)])
    monkeypatch.setattr(demo, "DATA", data)
    root = tmp_path / "runs"
    for s, seed in enumerate((1, 2, 3)):
        runs = {
            "demo_none": {"val1": GOOD["none"][s]},
            "demo_basic": {"zero_shot": GOOD["zero_shot_basic"][s], "few_shot": GOOD["basic"][s]},
            "demo_ie": {"zero_shot": GOOD["zero_shot_ie"][s], "few_shot": GOOD["ie"][s]},
            "demo_ie_ce": {"val1": GOOD["ie_ce"][s]},
            "demo_ie_ul": {"val1": GOOD["ie_ul"][s]},
        }
        for task, tests in runs.items():
            (root / f"seed{seed}" / task).mkdir(parents=True)
            (root / f"seed{seed}" / task / "results.json").write_text(json.dumps(_results(task, tests)))
    summary = demo.write_summary(root, [1, 2, 3], {"seconds": 1.0})
    rows = {r["name"]: r for r in summary["rows"]}
    assert rows["zero_shot_ie"]["top1_per_seed"] == [31.0, 32.0, 33.0] and rows["ie"]["top1_mean"] == 47.0
    assert summary["chance"] == CHANCE and len(summary["claims"]) == len(demo.CLAIMS)
    assert json.loads((root / "summary.json").read_text())["claims"] == summary["claims"]
    assert (root / "summary.png").read_bytes()[:4] == b"\x89PNG"
    text = demo.table(summary)
    assert rows["ie"]["top1_std"] == pytest.approx(2.45)  # population std of 47, 44, 50
    assert f"| ie | IE pre-training + 4-shot | 47.0 ± {rows['ie']['top1_std']:.1f} | 47.0, 44.0, 50.0 |" in text
    assert "| chance | 1 / 8 classes | 12.5 | |" in text
    (root / "seed2" / "demo_ie_ul" / "results.json").unlink()
    with pytest.raises(FileNotFoundError, match="tasks/demo_ie_ul.yaml --seed_everything 2"):
        demo.read_results(root, [1, 2, 3])


@pytest.mark.parametrize("ul, code", [(GOOD["ie_ul"], 0), ([17.0, 39.1, 40.0], 3)], ids=["claims hold", "UL < CE"])
def test_after_the_runs_the_driver_prints_the_runs_report_then_the_table_and_the_claims(ul, code, monkeypatch, capsys):
    """`python -m tasks report <root>` (every run's own table) runs as a command after the training runs; the demo's
    table and the claims come last, and a failing claim is exit code 3."""
    calls = []
    monkeypatch.setattr(demo, "check_build", lambda: None)
    monkeypatch.setattr(demo, "run_all", lambda *a, **k: {})
    monkeypatch.setattr(demo.subprocess, "call", lambda command: calls.append(command) or print("REPORT") or 0)

    def summary(root, seeds, extra):
        out = _summary({**GOOD, "ie_ul": ul})
        out["claims"] = demo.check_claims(out)
        return out

    monkeypatch.setattr(demo, "write_summary", summary)
    assert demo.main(["--root", "runs/x"]) == code
    out = capsys.readouterr().out
    assert calls == [demo.report_command(Path("runs/x"))]
    assert out.index("$ python -m tasks report runs/x") < out.index("REPORT") < out.index("| row |")
    assert out.index("| row |") < out.index("IE >= 2x chance")


def test_missing_build_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "DATA", tmp_path / "nothing")
    with pytest.raises(SystemExit) as exc:
        demo.main([])
    assert exc.value.code == 2
    assert f"python -m generation demo --out {tmp_path / 'nothing'} --preset demo" in capsys.readouterr().err


def test_the_driver_runs_only_user_commands():
    """No second training loop: the driver has no optimiser, loss or backward of its own and runs train.py and
    the generation CLI as a user would (subprocesses), never importing train.py."""
    source = (ROOT / "tasks/demo.py").read_text()
    for banned in ("backward(", "torch.optim", "action_loss", "import train", "from train"):
        assert banned not in source, banned
    assert demo.train_command("demo_ie", Path("runs/demo/seed1"), 1)[1:] == [
        *("train.py", "fit", "--config", "tasks/demo_ie.yaml", "--seed_everything", "1"),
        *("--task.root", "runs/demo/seed1"),
    ]
    score = demo.score_command(Path("runs/demo"))
    assert score[1:4] == ["-m", "generation", "score"]
    assert score[score.index("--checkpoint") + 1] == "runs/demo/demo_scorer/train/weights.pt"
    assert demo.report_command(Path("runs/demo"))[1:] == ["-m", "tasks", "report", "runs/demo"]


def _job(name: str, tmp_path: Path, code: str = "pass", after: tuple[str, ...] = ()) -> demo.Job:
    return demo.Job(name, [sys.executable, "-c", code], tmp_path / f"{name}.log", after)


def test_jobs_run_in_parallel_and_wait_for_what_they_read(tmp_path):
    """`--parallel 2`: two runs at a time; a run that reads the scores starts only after the scoring finished;
    the demo's plan puts every UL run behind the scoring and nothing else."""
    events: list[tuple[str, str]] = []
    slow = "import time; time.sleep(0.5)"
    todo = [_job("a", tmp_path, slow), _job("b", tmp_path, slow, after=("a",)), _job("c", tmp_path, slow)]
    seconds = demo.run_all(
        todo, 2, 1, lambda j: events.append(("start", j.name)), lambda j, s: events.append(("done", j.name))
    )
    assert set(seconds) == {"a", "b", "c"}
    assert events[:2] == [("start", "a"), ("start", "c")]  # b waits for a; c fills the second slot at once
    assert events.index(("start", "b")) > events.index(("done", "a"))
    plan = demo.jobs(Path("runs/demo"), [1, 2])
    assert len(plan) == 2 + 2 * len(demo.TASKS)
    waiting = {j.task for j in plan if "score" in j.after}
    assert waiting == {"demo_ie_ul"} and plan[1].after == ("stand-in CLIP",)


def test_a_failed_run_stops_new_starts_and_names_its_log(tmp_path):
    events: list[tuple[str, str]] = []
    todo = [
        _job("bad", tmp_path, "import sys; print('boom'); sys.exit(4)"),
        _job("after_bad", tmp_path, after=("bad",)),
        _job("other", tmp_path, "import time; time.sleep(0.5)"),
        _job("late", tmp_path),
    ]
    with pytest.raises(RuntimeError, match=r"failed \(exit 4\); last lines of .*bad.log:\nboom"):
        demo.run_all(todo, 2, 1, lambda j: events.append(("start", j.name)), lambda j, s: None)
    started = [name for kind, name in events if kind == "start"]
    assert started == ["bad", "other"]  # the running one finishes; nothing new starts after the failure


def test_the_short_runs_come_last_to_even_out_the_cores():
    plan = demo.jobs(Path("runs/demo"), [1, 2, 3])
    tasks = [j.task for j in plan[2:]]
    assert tasks[-3:] == ["demo_none"] * 3 and "demo_none" not in tasks[:-3]
    assert [j.name for j in plan[:2]] == ["stand-in CLIP", "score"]
