"""`python -m benchmarks`: ratio semantics of `report`, parsing of BENCHMARK lines, skips and failures named."""

import json
import textwrap

import pytest

import benchmarks.__main__ as runner
from benchmarks.common import report


def test_report_ratio_means_ours_better_above_one(capsys):
    faster = report("b", "clips/s", ours=30.0, baseline=10.0, unit="clips/s", min_ratio=2.0)
    assert faster.ratio == pytest.approx(3.0) and faster.met is True
    slower_time = report("b", "seconds", ours=4.0, baseline=2.0, unit="s", higher_is_better=False, min_ratio=1.0)
    assert slower_time.ratio == pytest.approx(0.5) and slower_time.met is False
    untargeted = report("b", "x", ours=1.0, baseline=1.0, unit="s")
    assert untargeted.met is None and untargeted.target == ""
    out = capsys.readouterr().out
    assert "ratio 3.0000" in out and "TARGET MISSED" in out
    lines = [json.loads(line[len("BENCHMARK ") :]) for line in out.splitlines() if line.startswith("BENCHMARK ")]
    assert [m["ratio"] for m in lines] == pytest.approx([3.0, 0.5, 1.0])


def _script(folder, name, body):
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


def test_runner_collects_measurements_and_names_skips_and_failures(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "SCRIPTS", tmp_path)
    _script(
        tmp_path,
        "good",
        """
        from benchmarks.common import report
        print("some human output")
        report("good", "speed", 8.0, 4.0, "clips/s", min_ratio=1.5)
    """,
    )
    _script(
        tmp_path,
        "broken",
        """
        raise SystemExit("input missing")
    """,
    )
    good, status = runner.run(runner.Benchmark("good"), full=False)
    assert status.startswith("ok") and len(good) == 1 and good[0]["ratio"] == pytest.approx(2.0) and good[0]["met"]
    assert runner.run(runner.Benchmark("broken"), full=False)[1] == "failed: exit code 1 (stderr above)"
    assert runner.run(runner.Benchmark("absent"), full=False)[1].startswith("skipped: ")
    needs = runner.Benchmark("good", needs=[tmp_path / "no-such-data"])
    assert runner.run(needs, full=False) == ([], f"skipped: missing {tmp_path / 'no-such-data'}")
    table = runner.table(good)
    assert "| good | speed | 8 | 4 | clips/s | 2.000 | >= 1.5 | yes |" in table


def test_runner_times_out_a_hanging_benchmark(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "SCRIPTS", tmp_path)
    _script(tmp_path, "hang", "import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    assert runner.run(runner.Benchmark("hang", timeout_s=2), full=False) == ([], "failed: timed out after 2 s")


def test_runner_keeps_what_a_timed_out_benchmark_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "SCRIPTS", tmp_path)
    _script(
        tmp_path,
        "partial",
        """
        import time
        from benchmarks.common import report
        report("partial", "first", 2.0, 1.0, "x")
        time.sleep(60)
    """,
    )
    rows, status = runner.run(runner.Benchmark("partial", timeout_s=5), full=False)
    assert status == "failed: timed out after 5 s" and [r["metric"] for r in rows] == ["first"]


def test_gpu_suite_without_cuda_says_so_and_exits_0(monkeypatch, capsys, tmp_path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runner, "run", lambda *a, **k: pytest.fail("nothing may run without CUDA"))
    assert runner.main(["--gpu", "--out", str(tmp_path / "g.json")]) == 0
    assert "no CUDA device here: the GPU suite needs one" in capsys.readouterr().out
    assert not (tmp_path / "g.json").exists()


def test_gpu_suite_dry_run_runs_every_part_at_toy_size(tmp_path, capsys):
    out = tmp_path / "dry.json"
    assert runner.main(["--gpu", "--dry-run", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    have_clips = runner.SHARED_CLIPS.is_dir()
    assert set(result["status"]) == {b.name for b in runner.GPU_BENCHMARKS}
    for name, s in result["status"].items():
        needs_clips = any(p == runner.SHARED_CLIPS for b in runner.GPU_BENCHMARKS if b.name == name for p in b.needs)
        assert s.startswith("ok") or (needs_clips and not have_clips and s.startswith("skipped")), (name, s)
    metrics = [m["metric"] for m in result["measurements"]]
    for variant in ("bare", "pab", "fastercache", "firstblock", "taylorseer", "magcache"):
        assert any(m.startswith(f"{variant} s/clip") for m in metrics), (variant, metrics)
    assert any(m.startswith("train step s") for m in metrics) and any(m.startswith("eval clips/s") for m in metrics)
    assert any(m.startswith("profile") or "ms, batch 1" in m for m in metrics)
    if have_clips:
        assert any(m.startswith("loader clips/s, 1 workers") for m in metrics)
        assert any(m.startswith("train clips/s, 2 processes, thread_type AUTO") for m in metrics)
    text = capsys.readouterr().out
    assert "fp8: skipped (--fp8 needs a CUDA GPU" in text or "cuda" in result["machine"]["cuda"].lower()
    assert "| cogvideox | pab s/clip" in text
    from generation.t2v import GENERATORS

    assert all(any(m.startswith(f"{name} s/clip bare") for m in metrics) for name in GENERATORS), metrics
