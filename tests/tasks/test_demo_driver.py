"""`make demo` (tasks/demo.py): the reduced demo keeps IE > Basic, runs are deterministic, the summary files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from generation.demo import build_demo
from tasks import demo
from tasks.demo import DemoConfig, Phase

IE_MARGIN = 8.0  # top-1 points IE must lead Basic by on the reduced demo (measured 13.6: see the test)
SCORER_EPOCHS = 80  # the demo scorer's schedule (configs/demo.yaml)
SCORER_AUROC = 0.7  # the reduced scorer test measured 0.78 (the full demo: 0.93); 0.5 = no better than chance


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "mini"
    build_demo(out, "mini", progress=False)
    return out


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _mini_config(mini) -> DemoConfig:
    return DemoConfig(data=str(mini), pretrain=Phase(epochs=15, lr=3e-3), finetune=Phase(20, 3e-4, 8))


def test_ie_beats_basic_on_the_held_out_real_style(mini, two_threads):
    """The mechanism: pre-training on IE's varied scenes and people transfers to the real style, Basic's does not.

    Reduced demo (`mini` preset: 32 synthetic clips per class, 12 real test clips per class), pre-train then
    4-shot fine-tune, mean top-1 of seeds 2 and 3. Measured (2-core VM, 2026-11-28): IE 34.4 / 25.0, Basic
    16.7 / 15.6. Seed 1 separates too (IE 30.2, Basic 17.7), but it did not before the loader's decode-time
    resize changed (IE 16.7, Basic 19.8): one seed of 4-shot fine-tuning on 32 clips is noisy, so the check
    takes two.
    """
    cfg = _mini_config(mini)
    top1 = {"basic": [], "ie": []}
    for seed in (2, 3):
        for strategy in ("basic", "ie"):
            dm = demo.datamodule(cfg, manifest=strategy)
            net = demo.fit(cfg, demo.new_net(cfg, seed), dm, cfg.pretrain, seed)
            net = demo.fit(cfg, net, dm, cfg.finetune, seed, source="real", train_list="train1_few_shot_4.txt")
            top1[strategy].append(demo.test(net, dm))
    assert np.mean(top1["ie"]) >= np.mean(top1["basic"]) + IE_MARGIN, top1


def test_a_phase_is_deterministic(mini, two_threads):
    cfg = _mini_config(mini)
    weights = []
    for _ in range(2):
        dm = demo.datamodule(cfg, manifest="ie")
        net = demo.fit(cfg, demo.new_net(cfg, 5), dm, Phase(epochs=1, lr=3e-3), 5)
        weights.append(torch.cat([p.detach().flatten() for p in net.state_dict().values() if p.is_floating_point()]))
    assert torch.equal(weights[0], weights[1])


def test_summary_table_and_chart(tmp_path):
    per_seed = [{name: 10.0 * i + k for k, (name, _) in enumerate(demo.ROWS)} for i in (1, 2, 3)]
    summary = demo.summarise(per_seed, [1, 2, 3], chance=12.5)
    assert summary["chance"] == 12.5 and [r["name"] for r in summary["rows"]][:3] == ["none", "basic", "ie"]
    ie = summary["rows"][2]
    assert ie["top1_per_seed"] == [12.0, 22.0, 32.0] and ie["top1_mean"] == 22.0
    assert ie["top1_std"] == pytest.approx(float(np.std([12, 22, 32])), abs=0.01)
    text = demo.table(summary)
    assert "| ie | IE pre-training + 4-shot | 22.0 ± 8.2 | 12.0, 22.0, 32.0 |" in text and "1 / 8 classes" in text
    demo.bar_chart(summary, tmp_path / "summary.png")
    assert (tmp_path / "summary.png").read_bytes()[:4] == b"\x89PNG"
    json.dumps(summary)


def test_auroc():
    assert demo.auroc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([True, True, False, False])) == 1.0
    assert demo.auroc(np.array([0.5, 0.5]), np.array([True, False])) == 0.5


def test_missing_build_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        demo.main(["--data", str(tmp_path / "nothing")])
    assert exc.value.code == 2
    assert "python -m generation demo --out" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 3\n")
    with pytest.raises(SystemExit):
        demo.main(["--config", str(bad)])
    assert "unknown key(s) ['epochs']" in capsys.readouterr().err


def test_predict_averages_the_views_probabilities():
    """A clip's S is the mean over its temporal views of each view's softmax (multi-view testing), not the
    softmax of mean logits; one view gives that view's softmax."""
    torch.manual_seed(0)
    net = demo.DemoNet(width=2, embed_dim=8, logit_scale=100.0).eval()  # peaked: softmax far from linear
    names = ["waving", "clapping", "jumping"]
    clips = torch.randn(3, 2, 4, 3, 16, 16)  # (N, V, T, C, H, W)
    dataset = [{"video": c} for c in clips]
    got = demo.predict(net, dataset, names)
    with torch.no_grad():
        tokens = net.tokenize(names)
        views = [net(clips[:, v], tokens).softmax(-1) for v in range(2)]  # each (N, K)
        logits_mean = ((net(clips[:, 0], tokens) + net(clips[:, 1], tokens)) / 2).softmax(-1)
    assert torch.allclose(got, (views[0] + views[1]) / 2, atol=1e-6)
    assert not torch.allclose(got, logits_mean, atol=1e-4)
    assert torch.allclose(demo.predict(net, [{"video": c[:1]} for c in clips], names), views[0], atol=1e-6)


def test_the_stand_in_clip_flags_the_failed_generations(tmp_path, monkeypatch, two_threads):
    """UL's premise on the demo world: the scorer's uncertainty (entropy of S averaged over 2 temporal views,
    min-max over the set) is high on the failed clips of the unreliable set and low on the good ones, and it is
    written to the manifest that UL training reads. Reduced build: 32 web clips per class, 16 synthetic.
    Measured (2-core VM): AUROC 0.78, mean u 0.48 on the failed clips vs 0.24 on the good ones."""
    from datamodules.manifest import read_manifest
    from generation.demo import PRESETS, UNRELIABLE, DemoPreset

    preset = DemoPreset(
        synthetic_per_class=16,
        real_train_per_class=16,
        real_val_per_class=1,
        num_frames=16,
        size=64,
        strategies=(),
        unreliable_rate=0.4,
        web_per_class=32,
    )
    monkeypatch.setitem(PRESETS, "scorer", preset)
    build_demo(tmp_path, "scorer", progress=False)
    cfg = DemoConfig(data=str(tmp_path), scorer=Phase(epochs=SCORER_EPOCHS, lr=3e-3))
    stats = demo.score_unreliable(cfg, log=lambda line: None)
    assert stats["auroc"] >= SCORER_AUROC, stats
    assert stats["u_mean_unreliable"] >= stats["u_mean_reliable"] + 0.15, stats
    rows = read_manifest(tmp_path / "synthetic" / UNRELIABLE / "manifest.jsonl")
    u = [r.uncertainty for r in rows]
    assert all(0.0 <= x <= 1.0 for x in u) and (min(u), max(u)) == (0.0, 1.0)
