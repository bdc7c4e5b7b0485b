import json

import pytest

from tasks.report import Results, TestResult, load_results, main, protocol_table, summarise


def result(split, group, top1, top5=None, **metrics):
    values = {"test/top1": top1, **({"test/top5": top5} if top5 is not None else {}), **metrics}
    return TestResult(split, test=group, group=group, test_list=f"{split}.txt", label_file="l.csv", metrics=values)


def record(task, protocol, tests, shots=None, manifest="ie/manifest.jsonl", dataset="hmdb51"):
    return Results(task=task, protocol=protocol, dataset=dataset, description="", label_file="labels.csv",
                   test_list="val1.txt", config_hash="abc", tests=tests, summary=summarise(tests), shots=shots,
                   synthetic_manifest=manifest)  # fmt: skip


def test_summary_is_mean_and_population_std_over_splits_and_hm_of_seed_means():
    tests = [result("s1", "base", 0.8), result("s1", "novel", 0.5), result("s2", "base", 0.6),
             result("s2", "novel", 0.7)]  # fmt: skip
    summary = summarise(tests)
    assert summary["base/top1"] == {"mean": pytest.approx(0.7), "std": pytest.approx(0.1), "n": 2}
    assert summary["novel/top1"]["mean"] == pytest.approx(0.6)
    assert summary["hm/top1"]["mean"] == pytest.approx(2 * 0.7 * 0.6 / 1.3)  # of the means, not per seed


def test_results_round_trip_through_json(tmp_path):
    r = record("zero_shot_ucf101", "zero_shot", [result("val1", "test", 0.5, 0.9)])
    (tmp_path / "results.json").write_text(r.to_json())
    back = load_results(tmp_path / "results.json")
    assert back == r and isinstance(back.tests[0], TestResult)
    (tmp_path / "results.json").write_text(json.dumps({"task": "x"}))
    with pytest.raises(ValueError, match="results.json: not a results record"):
        load_results(tmp_path / "results.json")


def test_paper_layouts():
    splits = [result(f"split{i}", "test", v, 0.9) for i, v in ((1, 0.7), (2, 0.8), (3, 0.9))]
    zs = record("zero_shot_k600", "zero_shot", splits, dataset="k600")
    lines = protocol_table("zero_shot", [zs]).splitlines()
    assert lines[0] == "| data | task | synthetic | runs | top-1 | top-5 |"
    assert lines[2] == "| labels.csv | zero_shot_k600 | ie/manifest.jsonl | 1 | 80.0 ± 8.2 | 90.0 ± 0.0 |"
    few = [record(f"few_shot_k{k}", "few_shot", [result("val1", "test", v)], shots=k) for k, v in ((2, .3), (8, .5))]
    lines = protocol_table("few_shot", few).splitlines()
    assert lines[0].endswith("| K=2 | K=8 |")
    assert lines[2].endswith("| few_shot | ie/manifest.jsonl | 2 | 30.0 | 50.0 |")
    b2n = record("base2novel_hmdb51", "base2novel", [result("s1", "base", 0.8), result("s1", "novel", 0.4)])
    assert protocol_table("base2novel", [b2n]).splitlines()[2].endswith("| 80.0 | 40.0 | 53.3 |")
    lt = record("long_tail_ucf101", "long_tail",
                [result("", "test", 0.6, **{"test/head": .9, "test/tail": .5, "test/few": .2, "test/all": .55})])
    assert protocol_table("long_tail", [lt]).splitlines()[2].endswith("| 90.0 | 50.0 | 20.0 | 55.0 |")


def test_report_merges_two_runs_of_a_variant_and_keeps_prompt_sets_apart(tmp_path, capsys):
    for folder, manifest, v in (("a", "ie.jsonl", 0.5), ("b", "ie.jsonl", 0.7), ("c", "basic.jsonl", 0.2)):
        (tmp_path / folder / "few_shot_k4").mkdir(parents=True)
        r = record("few_shot_k4", "few_shot", [result("val1", "test", v)], shots=4, manifest=manifest)
        (tmp_path / folder / "few_shot_k4" / "results.json").write_text(r.to_json())
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| few_shot | ie.jsonl | 2 | 60.0 ± 10.0 |" in out and "| few_shot | basic.jsonl | 1 | 20.0 |" in out
    assert main([str(tmp_path / "missing")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert main([str(tmp_path / "a" / "few_shot_k4" / "nothing_here")]) == 2
