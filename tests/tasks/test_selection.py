"""Model selection as the reference does it (tasks/selection.py): the zero-shot K400 start keeps its best K400-val
epoch, zero-shot tasks start from it and add the WiSE-FT row, few-shot reports the best val1 epoch beside the
last one, base-to-novel tests the best base-val epoch; results.json and the report say which."""

import json

import pytest
import torch
from conftest import ROOT, smoke_args
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tasks.report import main as report
from tasks.selection import SELECTIONS, WISE_FT_RATIO, selection_for, wise_ft


def test_the_rules_are_the_references():
    start, zs, few, b2n = (SELECTIONS[p] for p in ("zero_shot_start", "zero_shot", "few_shot", "base2novel"))
    assert (start.rule, start.phase, start.val_list, start.every_n_epochs) == ("best_val", "train", "k400/val.txt", 1)
    assert (zs.rule, zs.wise_ft, WISE_FT_RATIO) == ("last", 0.7, 0.7)  # tc-clip main.py: wise_ft = 0.7
    assert (few.val_list, few.every_n_epochs, few.also_last) == ("val1.txt", 10, True)  # save_freq 10
    assert (b2n.phase, b2n.val_list, b2n.every_n_epochs) == ("finetune", "base2novel/base_val.txt", 1)
    assert selection_for("long_tail").rule == "last" and "last weights" in selection_for("anomaly").describe()


def test_wise_ft_is_three_tenths_clip_and_keeps_what_clip_lacks():
    tested = {
        "net.clip.visual.proj": torch.tensor([1.0, 3.0]),
        "net.context_bias.0": torch.tensor([5.0]),  # TC-CLIP's local/global bias: tc-clip keeps it
        "net.prompt_ctx": torch.tensor([7.0]),
        "net.prompt_layer.ln_1.weight": torch.tensor([9.0]),
        "net.steps": torch.tensor([4]),  # not floating point
    }
    clip = {k: torch.zeros_like(v) for k, v in tested.items()} | {"net.clip.visual.proj": torch.tensor([11.0, -1.0])}
    fused = wise_ft(tested, clip)
    assert fused["net.clip.visual.proj"].tolist() == pytest.approx([0.3 * 11 + 0.7 * 1, 0.3 * -1 + 0.7 * 3])
    for key in ("net.context_bias.0", "net.prompt_ctx", "net.prompt_layer.ln_1.weight", "net.steps"):
        assert torch.equal(fused[key], tested[key])


@pytest.mark.slow  # two trainings of its own (about 80 s on the 2-core VM)
def test_zero_shot_k400_keeps_its_best_epoch_and_zero_shot_tasks_start_from_it(smoke_data, tmp_path, capsys):
    from train import main

    main(smoke_args(ROOT / "tasks/zero_shot_k400.yaml", smoke_data, tmp_path, "--trainer.max_epochs", "2"))
    run = tmp_path / "zero_shot_k400"
    record = json.loads((run / "train/phase.json").read_text())
    logged = [e.value for e in EventAccumulator(str(run / "train")).Reload().Scalars("val/top1")]
    assert len(logged) == 2 and record["best"]["score"] == pytest.approx(max(logged))  # validated every epoch
    best = torch.load(run / "train/best.pt", weights_only=True)
    ckpt = torch.load(run / "train/checkpoints" / record["best"]["checkpoint"], weights_only=False)
    assert all(torch.equal(best[k], ckpt["state_dict"][k]) for k in best)
    results = json.loads((run / "results.json").read_text())
    assert results["checkpoint"].startswith("best val/top1 of phase train on k400/val.txt")
    assert results["tests"][0]["weights"] == str(run / "train/best.pt") and results["class_names"] == "csv"

    args = ["--task.from_clip", "false", "--task.init_weights", str(run / "train/best.pt")]
    main(smoke_args(ROOT / "tasks/zero_shot_hmdb51.yaml", smoke_data, tmp_path, *args, "--task.synthetic", "false"))
    zs = json.loads((tmp_path / "zero_shot_hmdb51/results.json").read_text())
    assert zs["start"] == str(run / "train/best.pt") and "WiSE-FT 0.7" in zs["checkpoint"]
    groups = [t["group"] for t in zs["tests"]]
    assert groups == ["test"] * 3 + ["wise_ft"] * 3 and zs["summary"]["wise_ft/top1"]["n"] == 3
    assert zs["tests"][3]["weights"].startswith("WiSE-FT 0.7")
    capsys.readouterr()
    assert report([str(tmp_path / "zero_shot_hmdb51")]) == 0
    out = capsys.readouterr().out
    assert "| TC-CLIP WiSE-FT 0.7 |" in out and "Tested weights: last weights; also WiSE-FT 0.7" in out


def test_zero_shot_runs_test_the_wise_ft_ensemble_and_the_report_has_its_row(task_run, capsys):
    run = task_run("zero_shot_hmdb51")
    results = json.loads((run / "results.json").read_text())
    assert [t["group"] for t in results["tests"]] == ["test"] * 3 + ["wise_ft"] * 3
    assert [t["test"] for t in results["tests"]] == ["val1", "val2", "val3"] * 2
    assert (run / "test_wise_ft/val1/test.json").is_file() and results["summary"]["wise_ft/top1"]["n"] == 3
    capsys.readouterr()
    assert report([str(run)]) == 0
    out = capsys.readouterr().out
    assert "| TC-CLIP+Ours WiSE-FT 0.7 |" in out and "| WiSE-FT 0.7 top-1 |" in out
    assert "taken to be the WiSE-FT 0.7 rows" in out


def test_zero_shot_tasks_print_the_k400_start(capsys):
    from train import main

    with pytest.raises(SystemExit):
        main(["fit", "--config", str(ROOT / "tasks/zero_shot_ucf101.yaml"), "--task.print_phase", "train"])
    assert "init_weights: runs/zero_shot_k400/train/best.pt" in capsys.readouterr().out


def test_few_shot_reports_the_best_val_epoch_and_the_last_one(task_run, capsys):
    run = task_run("few_shot_k4")
    record = json.loads((run / "finetune/phase.json").read_text())
    results = json.loads((run / "results.json").read_text())
    best, last = results["tests"]
    assert (best["group"], last["group"]) == ("test", "last") and best["weights"].endswith("finetune/best.pt")
    assert best["metrics"]["test/top1"] == pytest.approx(record["best"]["score"], abs=1e-6)  # = best val1 top-1
    capsys.readouterr()
    assert report([str(run)]) == 0
    out = capsys.readouterr().out
    assert "| K=4 | K=4 last |" in out and "best val/top1 of phase finetune on val1.txt" in out


def test_base_to_novel_tests_the_best_base_val_epoch(task_run):
    run = task_run("base2novel_hmdb51")
    results = json.loads((run / "results.json").read_text())
    assert [t["weights"] for t in results["tests"]] == [str(run / f"s{s}/finetune/best.pt") for s in (1, 1, 2, 2, 3, 3)]
    for seed in (1, 2, 3):
        record = json.loads((run / f"s{seed}/finetune/phase.json").read_text())
        base = next(t for t in results["tests"] if t["split"] == f"s{seed}" and t["group"] == "base")
        assert base["metrics"]["test/top1"] == pytest.approx(record["best"]["score"], abs=1e-6)
