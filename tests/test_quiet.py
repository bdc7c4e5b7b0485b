"""Issue 27 point 4: a normal smoke fit prints progress and results, no tips, deprecations or repeats."""

from __future__ import annotations

import logging
import warnings

from conftest import ROOT, smoke_args

from train import main


def test_a_smoke_fit_prints_no_tip_deprecation_or_repeated_warning(smoke_data, tmp_path, capfd, caplog, monkeypatch):
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero", ""):
        monkeypatch.setattr(logging.getLogger(name), "filters", [])  # a fresh process: nothing seen yet
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(smoke_args(ROOT / "tasks/few_shot_k2.yaml", smoke_data, tmp_path, "--trainer.limit_train_batches", "1"))
    out, err = capfd.readouterr()
    text = out + err + caplog.text
    assert "Tip:" not in text and "litlogger" not in text
    assert "to estimate number of stepping batches" not in text  # Lightning's internals, once per phase
    assert "few_shot_k2 (TC-CLIP+Ours)" in out  # the results still print
    # Python shows a DeprecationWarning only when raised in __main__ (train.py); LeafSpec's is a FutureWarning.
    shown = [
        f"{w.filename}: {w.message}" for w in caught if w.filename.endswith("train.py") or "LeafSpec" in str(w.message)
    ]
    assert not shown, shown
    assert text.count("No pretrained weights loaded") <= 1
    # 3 Trainers (pre-training, fine-tuning, test); the device summary is said once
    assert text.count("GPU available: False, used: False") == 1, text
