import json

import pytest

from tasks.report import Results, TestResult, analysis_table, load_results, main, protocol_table, summarise, table1


def result(split, group, top1, top5=None, **metrics):
    values = {"test/top1": top1, **({"test/top5": top5} if top5 is not None else {}), **metrics}
    return TestResult(split, test=group, group=group, test_list=f"{split}.txt", label_file="l.csv", metrics=values)


def record(
    task,
    protocol,
    tests,
    shots=None,
    manifest="ie/manifest.jsonl",
    dataset="hmdb51",
    model="lightning_modules.models.TCCLIP",
):
    return Results(
        task=task,
        protocol=protocol,
        dataset=dataset,
        description="",
        label_file="labels.csv",
        test_list="val1.txt",
        config_hash="abc",
        tests=tests,
        summary=summarise(tests),
        shots=shots,
        synthetic_manifest=manifest,
        model=model,
    )


def test_summary_is_mean_and_population_std_over_splits_and_hm_of_seed_means():
    tests = [
        result("s1", "base", 0.8),
        result("s1", "novel", 0.5),
        result("s2", "base", 0.6),
        result("s2", "novel", 0.7),
    ]
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
    assert lines[0] == "| model | data | task | synthetic | runs | top-1 | top-5 |"
    assert lines[2] == (
        "| TC-CLIP+Ours | labels.csv | zero_shot_k600 | ie/manifest.jsonl | 1 | 80.0 ± 8.2 | 90.0 ± 0.0 |"
    )
    few = [record(f"few_shot_k{k}", "few_shot", [result("val1", "test", v)], shots=k) for k, v in ((2, 0.3), (8, 0.5))]
    lines = protocol_table("few_shot", few).splitlines()
    assert lines[0].endswith("| K=2 | K=8 |")
    assert lines[2].endswith("| few_shot | ie/manifest.jsonl | 2 | 30.0 | 50.0 |")
    b2n = record("base2novel_hmdb51", "base2novel", [result("s1", "base", 0.8), result("s1", "novel", 0.4)])
    assert protocol_table("base2novel", [b2n]).splitlines()[2].endswith("| 80.0 | 40.0 | 53.3 |")
    lt = record(
        "long_tail_ucf101",
        "long_tail",
        [result("", "test", 0.6, **{"test/head": 0.9, "test/tail": 0.5, "test/few": 0.2, "test/all": 0.55})],
    )
    lines = protocol_table("long_tail", [lt]).splitlines()  # Table 4: Few / Tail / Head / Acc
    assert lines[0].endswith("| Few | Tail | Head | Acc |") and lines[2].endswith("| 20.0 | 50.0 | 90.0 | 55.0 |")
    auc = {"test/auc": 0.84031, "test/auc_a": 0.6244}  # the keys lightning_modules/umil.py and mil.py log
    mil = record(
        "anomaly_ucf_crime",
        "anomaly",
        [TestResult("", "test", "test", "t.txt", "l.csv", auc)],
        model="lightning_modules.models.xclip_mil.XCLIPMIL",
    )
    lines = protocol_table("anomaly", [mil]).splitlines()  # Table 5: AUC / AUC_A, two decimals
    assert lines[0].endswith("| AUC | AUC_A |") and lines[2].startswith("| MIL+Ours |")
    assert lines[2].endswith("| 84.03 | 62.44 |")


def test_table1_rows_are_nets_with_and_without_synthetic_data_across_datasets():
    def zs(task, dataset, values, manifest, model, top5=None):
        splits = [result(f"val{i}", "test", v, top5) for i, v in enumerate(values, 1)]
        return record(task, "zero_shot", splits, manifest=manifest, dataset=dataset, model=model)

    bike = "lightning_modules.models.BIKE"
    records = [
        zs("zero_shot_hmdb51", "hmdb51", [0.5, 0.6, 0.7], None, bike),
        zs("zero_shot_hmdb51", "hmdb51", [0.6, 0.6, 0.6], "data/hmdb51/ie/manifest.jsonl", bike),
        zs("zero_shot_ucf101", "ucf101", [0.8, 0.9, 0.85], "data/ucf101/ie/manifest.jsonl", bike),
        zs("zero_shot_k600", "k600", [0.7, 0.8, 0.9], "data/k600/ie/manifest.jsonl", bike, top5=0.95),
        zs("zero_shot_hmdb51_ls", "hmdb51", [0.4, 0.4, 0.4], "data/hmdb51/ie/manifest.jsonl", bike),
        zs(
            "zero_shot_hmdb51",
            "hmdb51",
            [0.55, 0.55, 0.55],
            "data/hmdb51/basic/manifest.jsonl",
            "lightning_modules.models.TCCLIP",
        ),
    ]
    lines = table1(records).splitlines()
    assert lines[0] == "| model | HMDB | UCF | K600 top-1 | K600 top-5 | All | synthetic | runs |"
    assert lines[2] == "| BIKE | 60.0 ± 8.2 | - | - | - | - | none | 1 |"
    # one +Ours row from three datasets (same net and prompt set); All = mean of the three top-1 columns
    assert lines[3] == "| BIKE+Ours | 60.0 ± 0.0 | 85.0 ± 4.1 | 80.0 ± 8.2 | 95.0 ± 0.0 | 75.0 | ie | 3 |"
    assert lines[4] == "| BIKE+Ours (ls) | 40.0 ± 0.0 | - | - | - | - | ie | 1 |"  # an ablation variant
    assert lines[5] == "| TC-CLIP+Ours | 55.0 ± 0.0 | - | - | - | - | basic | 1 |"


def test_table8_from_an_analysis_report(tmp_path, capsys):
    report = {
        "reference": "real",
        "rbf_sigma": 0.8123,
        "datasets": {
            "real": {
                "clips": 10,
                "classes": 2,
                "davies_bouldin": 1.234,
                "mmd2": {"linear": 0.0, "rbf": 0.0, "poly": 0.0},
            },
            "ie": {
                "clips": 8,
                "classes": 2,
                "davies_bouldin": float("nan"),
                "mmd2": {"linear": 0.01234, "rbf": 0.2, "poly": 0.056},
            },
        },
    }
    lines = analysis_table(report).splitlines()
    assert lines[0] == (
        "| dataset | clips | classes | Davies-Bouldin | MMD² ×100 linear | MMD² ×100 RBF | MMD² ×100 poly |"
    )
    assert lines[2] == "| real (reference) | 10 | 2 | 1.23 | 0.00 | 0.00 | 0.00 |"
    assert lines[3] == "| ie | 8 | 2 | - | 1.23 | 20.00 | 5.60 |"
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "analysis.json").write_text(json.dumps(report))
    assert main([str(tmp_path)]) == 0
    assert "### Table 8: generated vs real data" in capsys.readouterr().out
    (tmp_path / "analysis" / "analysis.json").write_text(json.dumps({"reference": "real"}))
    assert main([str(tmp_path)]) == 2
    assert "not a `python -m generation analyze` report" in capsys.readouterr().err


def test_model_is_read_from_the_saved_config_when_results_lack_it(tmp_path, capsys):
    r = record("zero_shot_ucf101", "zero_shot", [result("val1", "test", 0.5)], dataset="ucf101", model="")
    (tmp_path / "run" / "train").mkdir(parents=True)
    (tmp_path / "run" / "results.json").write_text(r.to_json())
    (tmp_path / "run" / "train" / "config.yaml").write_text(
        "model:\n  class_path: lightning_modules.video_clip.VideoCLIPModule\n  init_args:\n    net:\n"
        "      class_path: lightning_modules.models.BIKE\n"
    )
    assert load_results(tmp_path / "run" / "results.json").model == "lightning_modules.models.BIKE"
    assert main([str(tmp_path / "run")]) == 0
    assert "| BIKE+Ours | - | 50.0 | - | - | - | ie | 1 |" in capsys.readouterr().out


def test_report_merges_two_runs_of_a_variant_and_keeps_prompt_sets_apart(tmp_path, capsys):
    for folder, manifest, v in (("a", "ie.jsonl", 0.5), ("b", "ie.jsonl", 0.7), ("c", "basic.jsonl", 0.2)):
        (tmp_path / folder / "few_shot_k4").mkdir(parents=True)
        r = record("few_shot_k4", "few_shot", [result("val1", "test", v)], shots=4, manifest=manifest)
        (tmp_path / folder / "few_shot_k4" / "results.json").write_text(r.to_json())
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| TC-CLIP+Ours | labels.csv | few_shot | ie.jsonl | 2 | 60.0 ± 10.0 |" in out
    assert "| few_shot | basic.jsonl | 1 | 20.0 |" in out and "### few_shot (Table 2)" in out
    assert main([str(tmp_path / "missing")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert main([str(tmp_path / "a" / "few_shot_k4" / "nothing_here")]) == 2


def test_template_prompt_runs_are_marked_and_never_merged_with_llm_prompt_runs():
    """A Table 6 row built from the offline template's prompts can never pass as one from the paper's LLM."""
    tests = [result(f"val{i}", "test", 0.5) for i in (1, 2, 3)]
    llm = record("zero_shot_hmdb51_prompts_basic", "zero_shot", tests, manifest="basic/manifest.jsonl")
    llm.prompts = "openai:gpt-4o"
    template = record("zero_shot_hmdb51_prompts_basic", "zero_shot", tests, manifest="basic/manifest.jsonl")
    template.prompts = "template"
    table = table1([llm, template])
    rows = [line for line in table.splitlines() if line.startswith("| TC-CLIP+Ours")]
    assert len(rows) == 2 and sum("basic (template prompts)" in row for row in rows) == 1
    detail = protocol_table("zero_shot", [llm, template]).splitlines()[2:]
    assert len(detail) == 2 and sum("(template prompts)" in row for row in detail) == 1
