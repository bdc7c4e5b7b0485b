"""MIL anomaly module: the ranking loss against hand computation, the head's layout, and frame-level AUC /
AUC_A (the datamodule's default `sultani` protocol) on hand-made scores and intervals (a two-interval
video, 1-indexed inclusive bounds) against sklearn."""

import pytest
import torch
from lightning import Trainer
from sklearn.metrics import roc_auc_score
from torch import nn

from datamodules.anomaly import AnomalyDataModule
from datamodules.features import feature_path, save_features
from lightning_modules.mil import MILAnomalyModule, mil_ranking_loss
from lightning_modules.models.mil_head import MILHead


def test_ranking_loss_matches_hand_computation():
    abnormal = torch.tensor([[0.2, 0.9, 0.1], [1.0, 1.0, 1.0]])
    normal = torch.tensor([[0.3, 0.4, 0.1], [0.0, 0.0, 0.0]])
    loss, parts = mil_ranking_loss(abnormal, normal)
    # pair 1: hinge 1 - 0.9 + 0.4 = 0.5; smoothness 0.7^2 + 0.8^2 = 1.13; sparsity 1.2
    # pair 2: hinge max(0, 1 - 1 + 0) = 0; smoothness 0; sparsity 3
    pair1 = 0.5 + 8e-5 * 1.13 + 8e-5 * 1.2
    pair2 = 0.0 + 8e-5 * 0.0 + 8e-5 * 3.0
    assert loss.item() == pytest.approx((pair1 + pair2) / 2, abs=1e-7)
    assert parts["hinge"].item() == pytest.approx(0.25)
    assert parts["smoothness"].item() == pytest.approx(1.13 / 2)
    assert parts["sparsity"].item() == pytest.approx(4.2 / 2)


def test_ranking_loss_hinge_gradient_reaches_only_the_max_segments():
    abnormal = torch.tensor([[0.2, 0.9, 0.1]], requires_grad=True)
    normal = torch.tensor([[0.3, 0.4, 0.1]], requires_grad=True)
    loss, _ = mil_ranking_loss(abnormal, normal, smoothness=0.0, sparsity=0.0)
    loss.backward()
    assert abnormal.grad.tolist() == [[0.0, -1.0, 0.0]]
    assert normal.grad.tolist() == [[0.0, 1.0, 0.0]]


def test_ranking_loss_rejects_unpaired_bags():
    with pytest.raises(ValueError, match=r"same shape.*\(2, 3\) and \(1, 3\)"):
        mil_ranking_loss(torch.zeros(2, 3), torch.zeros(1, 3))


def test_head_layout_paper_and_configurable():
    head = MILHead(in_dim=4096)  # Sultani et al.'s C3D baseline
    linears = [m for m in head.layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4096, 512), (512, 32), (32, 1)]
    assert [type(m).__name__ for m in head.layers] == ["Linear", "ReLU", "Dropout", "Linear", "Dropout", "Linear"]
    assert all(m.p == 0.6 for m in head.layers if isinstance(m, nn.Dropout))
    head = MILHead(in_dim=512, hidden_dims=(64,), dropout=0.0).eval()
    scores = head(torch.randn(3, 32, 512) * 10)
    assert scores.shape == (3, 32) and bool(((scores >= 0) & (scores <= 1)).all())
    with pytest.raises(ValueError, match="dropout must be in"):
        MILHead(dropout=1.0)


class FirstFeature(nn.Module):
    """Scores = the first feature of each segment, so a test can hand the module its segment scores."""

    in_dim = None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features[..., 0]


def _write_test_set(root, videos):
    """videos: (name, class, num_frames, segment scores, intervals) -> a temporal annotation + features."""
    lines = []
    for name, cls, frames, scores, intervals in videos:
        save_features(feature_path(root / "features", name), torch.tensor(scores).unsqueeze(1), frames, name)
        slots = [x for iv in intervals for x in iv] + [-1, -1, -1, -1]
        lines.append(f"{name}  {cls}  " + "  ".join(map(str, slots[:4])))
    (root / "splits").mkdir()
    (root / "splits" / "Temporal_Anomaly_Annotation.txt").write_text("\n".join(lines) + "\n")


def test_auc_and_auc_abnormal_on_hand_made_frames(tmp_path):
    videos = [
        # 40 frames, 4 segments of 10; anomalous frames 11-20 and 31-35 (1-indexed, inclusive)
        ("Arrest001_x264.mp4", "Arrest", 40, [0.1, 0.8, 0.3, 0.6], [(11, 20), (31, 35)]),
        # 20 frames, segments of 5
        ("Normal_Videos_001_x264.mp4", "Normal", 20, [0.2, 0.7, 0.05, 0.4], []),
        # 30 frames: bounds 0, 8, 15, 22, 30 (7.5 and 22.5 round to even); anomalous frames 1-7
        ("Fighting002_x264.mp4", "Fighting", 30, [0.9, 0.5, 0.2, 0.65], [(1, 7)]),
    ]
    _write_test_set(tmp_path, videos)
    # the same frames by hand (0-based): score per frame and label per frame
    s1 = [0.1] * 10 + [0.8] * 10 + [0.3] * 10 + [0.6] * 10
    y1 = [0] * 10 + [1] * 10 + [0] * 10 + [1] * 5 + [0] * 5
    s2, y2 = [0.2] * 5 + [0.7] * 5 + [0.05] * 5 + [0.4] * 5, [0] * 20
    s3 = [0.9] * 8 + [0.5] * 7 + [0.2] * 7 + [0.65] * 8
    y3 = [1] * 7 + [0] * 23
    expected_auc = roc_auc_score(y1 + y2 + y3, s1 + s2 + s3)
    expected_auc_a = roc_auc_score(y1 + y3, s1 + s3)

    dm = AnomalyDataModule(str(tmp_path / "features"), str(tmp_path / "splits"), test_batch_size=2)
    trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    metrics = trainer.test(MILAnomalyModule(FirstFeature()), datamodule=dm, verbose=False)[0]
    assert metrics["test/auc"] == pytest.approx(expected_auc, abs=1e-6)
    assert metrics["test/auc_a"] == pytest.approx(expected_auc_a, abs=1e-6)
    assert expected_auc != pytest.approx(expected_auc_a)  # the two metrics really differ here


def test_auc_hand_value_with_one_interval_each_side(tmp_path):
    # one abnormal video, 4 frames, 2 segments: frames 1-2 anomalous (score 0.9), 3-4 normal (score 0.1)
    # plus a normal video scored 0.95 everywhere: AUC over all frames = (2 * 2 + 0) / (2 * 6) = 1/3,
    # AUC_A over the abnormal video only = 1.
    _write_test_set(
        tmp_path,
        [
            ("Abuse001_x264.mp4", "Abuse", 4, [0.9, 0.1], [(1, 2)]),
            ("Normal_Videos_002_x264.mp4", "Normal", 4, [0.95, 0.95], []),
        ],
    )
    dm = AnomalyDataModule(str(tmp_path / "features"), str(tmp_path / "splits"))
    trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    metrics = trainer.test(MILAnomalyModule(FirstFeature()), datamodule=dm, verbose=False)[0]
    assert metrics["test/auc"] == pytest.approx(1 / 3, abs=1e-6)
    assert metrics["test/auc_a"] == pytest.approx(1.0)


def test_head_input_size_must_match_the_features(tmp_path):
    _write_test_set(tmp_path, [("Abuse001_x264.mp4", "Abuse", 4, [0.9, 0.1], [(1, 2)])])
    dm = AnomalyDataModule(str(tmp_path / "features"), str(tmp_path / "splits"))
    trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(ValueError, match=r"features are 1-d but the head expects 512-d.*in_dim 1"):
        trainer.test(MILAnomalyModule(MILHead(in_dim=512)), datamodule=dm, verbose=False)


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="'adagrad' or 'adam'"):
        MILAnomalyModule(MILHead(), optimizer="sgd")
