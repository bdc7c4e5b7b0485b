"""benchmarks/phase_overhead.py --dry: the task runner and the bare loop run the same steps, both timed."""

import json

import benchmarks.__main__ as runner
from benchmarks import phase_overhead


def test_dry_run_times_both_paths_and_they_end_with_the_same_weights(smoke_data, capsys):
    assert phase_overhead.main(["--dry", "--data", str(smoke_data), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    repeat = next(line for line in out.splitlines() if line.startswith("repeat 1:"))
    assert repeat.endswith("max |weight difference| 0")
    assert "DIFFER" not in out
    rows = [json.loads(line[len("BENCHMARK ") :]) for line in out.splitlines() if line.startswith("BENCHMARK ")]
    assert [r["metric"].split(",")[0] for r in rows] == ["phase s", "fit+test s"]
    assert all(r["ours"] > 0 and r["baseline"] > 0 and r["unit"] == "s" for r in rows)
    assert "| phase |" in out and "|   Trainer.fit |" in out  # the stage table


def test_is_registered_with_the_benchmarks_runner():
    (bench,) = [b for b in runner.BENCHMARKS if b.name == "phase_overhead"]
    assert runner.DEMO / "DONE.json" in bench.needs


def test_the_benchmarked_task_trains_and_tests_as_the_bare_loop_does():
    """The bare loop trains one phase and tests its last weights. The benchmarked task must do no more: a protocol
    that validates to pick an epoch (few_shot_k4 validates every 10th) does extra work and draws from the random
    stream, so the weights part after the first validation, beyond what the 2-epoch --dry run covers."""
    from tasks import get_task
    from tasks.selection import selection_for

    spec = get_task(phase_overhead.TASK)
    assert selection_for(spec.protocol).rule == "last"
    assert [p.name for p in spec.phases if p.source != "synthetic"] == ["finetune"]
