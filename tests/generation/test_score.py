"""CLIP uncertainty scoring: the formulas on fixed vectors, and a resumable run on the smoke demo set."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from datamodules.manifest import ManifestError, read_manifest
from datamodules.transforms import VideoTransform
from datamodules.video import read_clip
from generation.__main__ import main
from generation.clip_features import load_clip
from generation.demo import build_demo
from generation.score import class_probs, entropy, normalise_entropy, score_manifest

TINY = {"arch": "synthact-tiny", "pretrained": None, "num_frames": 4, "progress": False}


def test_probs_and_entropy_of_fixed_similarities():
    video = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # (B=2, D=2), unit norm
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # (K=3, D)
    probs = class_probs(video, text, logit_scale=2.0)
    # clip 0: cosines (1, 0, -1) -> softmax(2, 0, -2); clip 1: cosines (0, 1, 0) -> softmax(0, 2, 0)
    z0, z1 = math.e**2 + 1 + math.e**-2, 2 + math.e**2
    s0, s1 = [math.e**2 / z0, 1 / z0, math.e**-2 / z0], [1 / z1, math.e**2 / z1, 1 / z1]
    torch.testing.assert_close(probs, torch.tensor([s0, s1]))
    h = [-sum(p * math.log(p) for p in s) for s in (s0, s1)]
    torch.testing.assert_close(entropy(probs), torch.tensor(h))
    assert entropy(torch.tensor([[1 / 4] * 4, [1.0, 0.0, 0.0, 0.0]])).tolist() == pytest.approx([math.log(4), 0.0])


def test_normalisation_methods():
    u, info = normalise_entropy(np.array([1.0, 2.0, 3.0, 1.5]), "minmax", num_classes=8)
    assert u.tolist() == pytest.approx([0.0, 0.5, 1.0, 0.25])
    assert info == {"method": "minmax", "entropy_min": 1.0, "entropy_max": 3.0}
    assert normalise_entropy(np.array([0.7, 0.7]), "minmax", 8)[0].tolist() == [0.0, 0.0]  # all equal
    u, info = normalise_entropy(np.array([0.0, math.log(4) / 2, math.log(4)]), "max_entropy", num_classes=4)
    assert u.tolist() == pytest.approx([0.0, 0.5, 1.0]) and info["entropy_max"] == pytest.approx(math.log(4))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("score") / "smoke"
    build_demo(out, "smoke", progress=False)
    return out


def test_scoring_a_demo_manifest_is_exact_and_resumable(demo, capsys):
    manifest, labels = demo / "synthetic/ie/manifest.jsonl", demo / "labels.csv"
    torch.manual_seed(0)
    first = score_manifest(manifest, labels, **TINY)
    rows = read_manifest(manifest)
    k = len(labels.read_text().splitlines()) - 1
    assert (first.rows, first.scored, first.already_scored) == (len(rows), len(rows), 0)
    h = np.array([r.entropy for r in rows])
    assert all(0 < x <= math.log(k) + 1e-6 for x in h)
    assert [r.uncertainty for r in rows] == pytest.approx(((h - h.min()) / (h.max() - h.min())).tolist(), abs=1e-6)
    assert all(0 <= r.clip_pred < k and 1 / k <= r.clip_prob <= 1 for r in rows)

    # One clip recomputed by hand with the same (seeded) random weights.
    torch.manual_seed(0)
    model, tokenizer = load_clip("synthact-tiny", None)
    frames = read_clip(manifest.parent / rows[0].video, 4, train=False, short_side=32)[0]  # (T, H, W, 3)
    x = VideoTransform(train=False, size=32, short_side=32)(torch.from_numpy(frames))  # (T, C, H, W)
    with torch.no_grad():
        v = F.normalize(model.encode_image(x).mean(0, keepdim=True), dim=-1)  # (1, D)
        names = [line.split(",", 1)[1] for line in labels.read_text().splitlines()[1:]]
        t = F.normalize(model.encode_text(tokenizer([f"a photo of a {n}." for n in names])), dim=-1)  # (K, D)
        s = (model.logit_scale.exp() * v @ t.T).softmax(-1)[0]
    assert rows[0].entropy == pytest.approx(float(-(s * s.log()).sum()), abs=1e-5)
    assert (rows[0].clip_pred, rows[0].clip_prob) == (int(s.argmax()), pytest.approx(float(s.max()), abs=1e-5))

    record = json.loads((manifest.parent / "score.json").read_text())
    assert (record["method"], record["entropy_min"], record["entropy_max"]) == ("minmax", h.min(), h.max())
    worst = json.loads((manifest.parent / "uncertain_clips.json").read_text())
    for clips in worst.values():
        assert [c["uncertainty"] for c in clips] == sorted((c["uncertainty"] for c in clips), reverse=True)
    assert (manifest.parent / "uncertainty_hist.png").stat().st_size > 1000
    assert not list(manifest.parent.glob(".*"))  # no temp files left behind

    # A second run (through the CLI) scores nothing new and keeps every entropy.
    assert (
        main(
            [
                "score",
                "--manifest",
                str(manifest),
                "--labels",
                str(labels),
                "--arch",
                "synthact-tiny",
                "--pretrained",
                "none",
                "--frames",
                "4",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "0 scored now" in capsys.readouterr().out
    assert read_manifest(manifest) == rows

    # An interrupted run: rows without entropy are scored, the others keep theirs; u is re-normalised.
    partial = [r.model_copy(update={"entropy": None, "uncertainty": None}) if i < 3 else r for i, r in enumerate(rows)]
    manifest.write_text("".join(r.model_dump_json() + "\n" for r in partial))
    torch.manual_seed(0)
    again = score_manifest(manifest, labels, **TINY)
    assert (again.scored, again.already_scored) == (3, len(rows) - 3)
    assert [r.entropy for r in read_manifest(manifest)] == pytest.approx(h.tolist(), abs=1e-6)


def test_a_label_file_that_does_not_match_is_an_error(demo, tmp_path):
    bad = tmp_path / "labels.csv"
    bad.write_text("id,name\n0,swimming\n")
    with pytest.raises(ManifestError, match="not in .*labels.csv; score with the label CSV the set was made from"):
        score_manifest(demo / "synthetic/basic/manifest.jsonl", bad, **TINY)


def test_missing_weights_fail_in_seconds_saying_how_to_give_local_ones(demo, tmp_path, monkeypatch, capsys):
    import time

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty_cache"))  # nothing cached
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/.cache/clip is empty too
    started = time.perf_counter()
    code = main(
        [
            "score",
            "--manifest",
            str(demo / "synthetic/basic/manifest.jsonl"),
            "--labels",
            str(demo / "labels.csv"),
            "--arch",
            "ViT-B-16",
            "--pretrained",
            "openai",
            "--no-progress",
        ]
    )
    assert time.perf_counter() - started < 10
    err = capsys.readouterr().err
    assert code == 2 and "'ViT-B-16' / 'openai' are not in the local cache" in err and "HF_HUB_OFFLINE" in err
    assert "--pretrained /path/to/weights.bin" in err and "HF_HOME" in err


def _demo_scorer(folder: Path) -> Path:
    """A DemoNet scorer as `train.py fit` leaves it: <phase>/weights.pt (VideoCLIPModule keys) + config.yaml."""
    from lightning_modules.models.demo_net import DemoNet

    torch.manual_seed(0)
    net = DemoNet(width=2, embed_dim=8, logit_scale=100.0, num_frames=4)  # peaked: mean of softmaxes != softmax of mean
    folder.mkdir(parents=True)
    torch.save({f"net.{k}": v for k, v in net.state_dict().items()}, folder / "weights.pt")
    config = {"model": {"init_args": {"net": {"init_args": {"width": 2, "embed_dim": 8, "num_frames": 4}}}}}
    (folder / "config.yaml").write_text(json.dumps({**config, "data": {"init_args": {"image_size": 32}}}))
    return folder / "weights.pt"


def test_the_demo_stand_in_scores_with_the_mean_of_its_views_softmax(demo, tmp_path):
    """`--arch demo --checkpoint weights.pt`: S of a clip is the mean over its temporal views of each view's
    softmax (multi-view testing), not the softmax of the mean feature; `--rescore` encodes every row again."""
    from lightning_modules.models.demo_net import DemoNet

    folder = tmp_path / "ie"
    shutil.copytree(demo / "synthetic/ie", folder)
    manifest, labels = folder / "manifest.jsonl", demo / "labels.csv"
    weights = _demo_scorer(tmp_path / "scorer/train")
    with pytest.raises(ValueError, match="trained on 4 frames per clip; score with --num_frames 4"):
        score_manifest(manifest, labels, arch="demo", checkpoint=weights, num_frames=8, rescore=True, progress=False)
    with pytest.raises(ValueError, match="--arch demo needs --checkpoint"):
        score_manifest(manifest, labels, arch="demo", num_frames=4, progress=False)
    # rescore: the shared fixture's manifest may already hold another scorer's entropies
    score_manifest(
        manifest, labels, arch="demo", checkpoint=weights, num_frames=4, views=2, rescore=True, progress=False
    )
    rows = read_manifest(manifest)
    net = DemoNet.from_checkpoint(weights)
    transform = VideoTransform(train=False, size=32)
    names = [line.split(",", 1)[1] for line in labels.read_text().splitlines()[1:]]
    with torch.no_grad():
        tokens = net.tokenize(names)
        for row in rows[:4]:
            views = read_clip(folder / row.video, 4, train=False, num_views=2, short_side=transform.short_side)
            probs = [net(transform(torch.from_numpy(v))[None], tokens).softmax(-1)[0] for v in views]  # each (K,)
            s = (probs[0] + probs[1]) / 2
            assert row.entropy == pytest.approx(float(entropy(s[None])[0]), abs=1e-5)
            assert row.clip_pred == int(s.argmax())
    info = json.loads((folder / "score.json").read_text())
    assert (info["arch"], info["checkpoint"], info["views"]) == ("demo", str(weights), 2)
    again = score_manifest(
        manifest, labels, arch="demo", checkpoint=weights, num_frames=4, rescore=True, progress=False
    )
    assert again.scored == len(rows) and [r.entropy for r in read_manifest(manifest)] == [r.entropy for r in rows]
