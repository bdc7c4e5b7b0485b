import json

from tasks.report import main, results_table


def write(run, task, top1, top5, **extra):
    run.mkdir(parents=True)
    record = {"task": task, "dataset": "demo", "metrics": {"test/top1": top1, "test/top5": top5}, **extra}
    (run / "results.json").write_text(json.dumps(record))
    return run / "results.json"


def test_table_has_one_row_per_run_in_percent(tmp_path):
    a = write(tmp_path / "basic" / "few_shot_k4", "few_shot_k4", 0.5, 0.875)
    b = write(tmp_path / "ie" / "few_shot_k4", "few_shot_k4", 0.625, 1.0, label_file="data/demo/labels.csv")
    lines = results_table([a, b]).splitlines()
    assert lines[0] == "| run | task | data | test/top1 | test/top5 |"
    assert lines[2].endswith("| few_shot_k4 | demo | 50.0 | 87.5 |")
    assert lines[3].endswith("| few_shot_k4 | data/demo/labels.csv | 62.5 | 100.0 |")


def test_report_finds_runs_below_a_folder_and_fails_on_none(tmp_path, capsys):
    write(tmp_path / "ie" / "few_shot_k4", "few_shot_k4", 0.625, 1.0)
    assert main([str(tmp_path)]) == 0
    assert "62.5" in capsys.readouterr().out
    assert main([str(tmp_path / "missing")]) == 2
    assert "no such run folder" in capsys.readouterr().err
