"""The loss family (CE, LS, UL, UW) against closed forms written out here, and the UF data filter."""

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from datamodules.action import ActionDataModule
from datamodules.datasets import Clip, filter_uncertain
from datamodules.manifest import ManifestRow, append_manifest_rows
from lightning_modules.losses import LossConfig, action_loss, nce_loss

NAN = math.nan
LOGITS = [[2.0, 0.0, -1.0], [0.5, 1.5, 0.0], [0.0, 1.0, 3.0]]  # (B=3, K=3)
LABELS = [0, 1, 2]
UNCERTAINTY = [0.0, 0.5, NAN]  # two synthetic clips and one real clip


def log_softmax(row: list[float]) -> list[float]:
    z = math.log(sum(math.exp(x) for x in row))
    return [x - z for x in row]


def smoothed_ce(row: list[float], label: int, eps: float) -> float:
    """-(1 - eps) log p_y - eps / (K - 1) sum_{j != y} log p_j, by hand."""
    lp = log_softmax(row)
    others = [lp[j] for j in range(len(row)) if j != label]
    return -(1 - eps) * lp[label] - eps / (len(row) - 1) * sum(others)


def run(name: str, uncertainty=UNCERTAINTY, logits=LOGITS, **kwargs):
    loss, eps = action_loss(
        torch.tensor(logits), torch.tensor(LABELS), torch.tensor(uncertainty), LossConfig(name=name, **kwargs)
    )
    return loss.item(), eps.item()


def test_ce_is_the_mean_negative_log_likelihood():
    expected = sum(-log_softmax(r)[y] for r, y in zip(LOGITS, LABELS)) / 3
    assert run("ce") == pytest.approx((expected, 0.0), abs=1e-6)
    assert run("ce")[0] == pytest.approx(F.cross_entropy(torch.tensor(LOGITS), torch.tensor(LABELS)).item(), abs=1e-6)


def test_ls_puts_eps_over_k_minus_1_on_the_other_classes():
    expected = sum(smoothed_ce(r, y, 0.1) for r, y in zip(LOGITS, LABELS)) / 3
    assert run("ls", label_smoothing=0.1) == pytest.approx((expected, 0.1), abs=1e-6)
    # Same as PyTorch's eps' / K convention with eps' = eps * K / (K - 1).
    torch_ls = F.cross_entropy(torch.tensor(LOGITS), torch.tensor(LABELS), label_smoothing=0.1 * 3 / 2)
    assert run("ls", label_smoothing=0.1)[0] == pytest.approx(torch_ls.item(), abs=1e-6)


def test_ul_smooths_each_clip_by_w_times_its_uncertainty_and_real_clips_by_real_eps():
    eps = [0.3 * 0.0, 0.3 * 0.5, 0.0]
    expected = sum(smoothed_ce(r, y, e) for r, y, e in zip(LOGITS, LABELS, eps)) / 3
    assert run("ul", uncertainty_weight=0.3) == pytest.approx((expected, 0.05), abs=1e-6)
    eps = [0.0, 0.2 * 0.5, 0.1]
    expected = sum(smoothed_ce(r, y, e) for r, y, e in zip(LOGITS, LABELS, eps)) / 3
    assert run("ul", uncertainty_weight=0.2, real_eps=0.1) == pytest.approx((expected, 0.2 / 3), abs=1e-6)


def test_ul_with_zero_uncertainty_is_ce_and_with_constant_uncertainty_is_ls():
    assert run("ul", uncertainty=[0.0] * 3) == pytest.approx(run("ce"), abs=1e-7)
    ls = run("ls", label_smoothing=0.3 * 0.4)
    assert run("ul", uncertainty=[0.4] * 3, uncertainty_weight=0.3) == pytest.approx(ls, abs=1e-7)


def test_uw_weights_clips_by_one_minus_u_normalised_to_mean_one():
    nll = [-log_softmax(r)[y] for r, y in zip(LOGITS, LABELS)]
    raw = [1 - 0.0, 1 - 0.5, 1.0]  # the real clip weighs 1 before normalising
    weights = [w / (sum(raw) / 3) for w in raw]  # [1.2, 0.6, 1.2]
    assert weights == pytest.approx([1.2, 0.6, 1.2])
    expected = sum(w * n for w, n in zip(weights, nll)) / 3
    assert run("uw") == pytest.approx((expected, 0.0), abs=1e-6)
    assert run("uw", uncertainty=[1.0] * 3) == pytest.approx(run("ce"), abs=1e-7)  # all weights 0: equal weights
    assert run("uw", uncertainty=[0.7] * 3) == pytest.approx(run("ce"), abs=1e-7)  # equal u: equal weights


def test_uf_trains_with_plain_ce():
    assert run("uf") == pytest.approx(run("ce"), abs=1e-7)


def test_no_uncertainty_means_real_clips():
    loss, eps = action_loss(torch.tensor(LOGITS), torch.tensor(LABELS), None, LossConfig("ul", real_eps=0.2))
    expected = sum(smoothed_ce(r, y, 0.2) for r, y in zip(LOGITS, LABELS)) / 3
    assert (loss.item(), eps.item()) == pytest.approx((expected, 0.2), abs=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_logits_are_computed_in_float32(dtype):
    logits = torch.tensor(LOGITS, dtype=dtype, requires_grad=True)
    loss, eps = action_loss(logits, torch.tensor(LABELS), torch.tensor(UNCERTAINTY, dtype=dtype), LossConfig("ul"))
    assert loss.dtype == torch.float32 and eps.dtype == torch.float32
    exact, _ = action_loss(logits.detach().float(), torch.tensor(LABELS), torch.tensor(UNCERTAINTY), LossConfig("ul"))
    assert loss.item() == pytest.approx(exact.item(), abs=1e-3)
    loss.backward()
    assert logits.grad.dtype == dtype and torch.isfinite(logits.grad.float()).all()


def test_config_rejects_eps_outside_0_1():
    with pytest.raises(ValueError, match=r"loss.uncertainty_weight must be in \[0, 1\], got 1.5"):
        LossConfig("ul", uncertainty_weight=1.5)


# ------------------------------------------------------------------------------------------- UF


def clips(us) -> list[Clip]:
    return [Clip(Path(f"c{i}.mp4"), label=0, uncertainty=u) for i, u in enumerate(us)]


def test_uf_keeps_clips_at_or_below_the_quantile():
    us = [0.1, 0.9, 0.5, 0.3, 0.7]
    kept, threshold = filter_uncertain(clips(us), 0.5, "m.jsonl")
    assert threshold == 0.5 and [c.path.name for c in kept] == ["c0.mp4", "c2.mp4", "c3.mp4"]
    kept, threshold = filter_uncertain(clips(us), 0.8, "m.jsonl")
    assert threshold == pytest.approx(0.7 + 0.2 * (0.9 - 0.7))  # linear interpolation at rank 0.8 * 4 = 3.2
    assert [c.path.name for c in kept] == ["c0.mp4", "c2.mp4", "c3.mp4", "c4.mp4"]
    assert len(filter_uncertain(clips(us), 1.0, "m.jsonl")[0]) == 5


def test_uf_on_an_unscored_manifest_says_to_score_it():
    with pytest.raises(ValueError, match=r"m.jsonl: 1 of 2 clips .* `python -m generation score --manifest m.jsonl"):
        filter_uncertain(clips([0.2, None]), 0.5, "m.jsonl")


def test_datamodule_drops_and_logs_the_uncertain_synthetic_clips(tmp_path, caplog):
    (tmp_path / "labels.csv").write_text("id,name\n0,waving\n1,jumping\n")
    us = [0.0, 0.25, 1.0, 0.5, 0.75, 0.6]
    rows = [
        ManifestRow(
            row_id=f"r{i}",
            class_id=i % 2,
            class_name=("waving", "jumping")[i % 2],
            strategy="ie",
            prompt="p",
            seed=i,
            video=f"v{i}.mp4",
            num_frames=8,
            fps=8,
            width=32,
            height=32,
            backend="procedural",
            entropy=u,
            uncertainty=u,
        )
        for i, u in enumerate(us)
    ]
    append_manifest_rows(tmp_path / "m.jsonl", rows)
    dm = ActionDataModule(
        str(tmp_path / "labels.csv"),
        synthetic_manifest=str(tmp_path / "m.jsonl"),
        train_source="synthetic",
        uncertainty_filter_quantile=0.6,
    )
    with caplog.at_level(logging.INFO):
        kept = dm._train_clips()
    threshold = float(np.quantile(us, 0.6))  # 0.6: rank 0.6 * 5 = 3 of [0, .25, .5, .6, .75, 1]
    assert threshold == pytest.approx(0.6)
    assert [c.path.name for c in kept] == ["v0.mp4", "v1.mp4", "v3.mp4", "v5.mp4"]
    assert "dropped 2 of 6 synthetic clips with uncertainty > 0.6000" in caplog.text
    dm.check_uncertainty("ul")  # scored: fine
    with pytest.raises(ValueError, match="set `--data.uncertainty_filter_quantile`"):
        ActionDataModule(str(tmp_path / "labels.csv")).check_uncertainty("uf")


def test_nce_is_bikes_in_batch_loss_on_hand_computed_values():
    """S = logits[:, labels]; target rows softmax(10 [y_i == y_j]); mean of the row and column KLs, worked out by
    hand (math, not torch) for a batch of distinct labels and one with a repeated label."""
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    assert nce_loss(logits, torch.tensor([0, 1])).item() == pytest.approx(0.21966356849741056, rel=1e-5)
    logits = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 2.0]])  # S = [[1, 1, 0], [.5, .5, .5], [0, 0, 2]]
    assert nce_loss(logits, torch.tensor([0, 0, 1])).item() == pytest.approx(0.2653098678004253, rel=1e-5)


def test_nce_equals_bikes_kl_div_formulation_and_refuses_mixup():
    from lightning_modules.models import DemoNet
    from lightning_modules.video_clip import VideoCLIPModule

    logits, labels = torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 1, 2, 3, 0])
    sim = logits[:, labels]
    gt = (labels[:, None] == labels[None, :]).float()
    bike = lambda s: torch.nn.KLDivLoss(reduction="mean")(s.log_softmax(1), (gt * 10).softmax(1)) * len(s)  # noqa: E731
    assert nce_loss(logits, labels).item() == pytest.approx(((bike(sim) + bike(sim.T)) / 2).item(), rel=1e-6)
    with pytest.raises(ValueError, match="without mixup"):
        VideoCLIPModule(DemoNet(), loss=LossConfig(name="nce"))
