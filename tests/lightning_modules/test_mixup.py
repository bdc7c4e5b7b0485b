"""Mixup / CutMix of video batches with per-clip soft targets: values against hand computations."""

import pytest
import torch

from lightning_modules.losses import LossConfig, soft_targets
from lightning_modules.mixup import MixupConfig, blend, cutmix_box, mix_batch

REAL = [0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3]  # label 0, LS 0.1 spread over all K = 3 classes (reference one-hot)
GENERATED = [0.075, 0.075, 0.85]  # label 2, UL eps = 0.3 * 0.5, eps / (K - 1) on the other classes


def targets() -> torch.Tensor:
    real, _, _ = soft_targets(torch.tensor([0]), None, LossConfig("ls", 0.1, spread="all"), 3)
    generated, _, _ = soft_targets(torch.tensor([2]), torch.tensor([0.5]), LossConfig("ul"), 3)
    return torch.cat([real, generated])  # (2, 3)


def test_soft_targets_of_the_two_sources():
    torch.testing.assert_close(targets(), torch.tensor([REAL, GENERATED]))


def test_mixup_blends_frames_targets_and_weights_with_one_lambda():
    video = torch.stack([torch.full((2, 3, 4, 4), 1.0), torch.full((2, 3, 4, 4), 3.0)])  # (B, T, C, H, W)
    weights = torch.tensor([1.0, 0.5])
    mixed, t, w, lam = blend(video, targets(), weights, 0.7, torch.tensor([1, 0]))
    assert lam == 0.7
    assert torch.allclose(mixed[0], torch.full((2, 3, 4, 4), 0.7 * 1 + 0.3 * 3))
    assert torch.allclose(mixed[1], torch.full((2, 3, 4, 4), 0.7 * 3 + 0.3 * 1))
    expected0 = [0.7 * a + 0.3 * b for a, b in zip(REAL, GENERATED)]  # [0.675833, 0.045833, 0.278333]
    expected1 = [0.7 * b + 0.3 * a for a, b in zip(REAL, GENERATED)]
    torch.testing.assert_close(t, torch.tensor([expected0, expected1]))
    torch.testing.assert_close(w, torch.tensor([0.7 + 0.15, 0.35 + 0.3]))
    assert torch.allclose(t.sum(-1), torch.ones(2))


def test_cutmix_box_is_the_references():
    assert cutmix_box(10, 10, 0.64, cy=5, cx=5) == (2, 8, 2, 8)  # sides int(10 * 0.6) = 6
    assert cutmix_box(10, 10, 0.64, cy=1, cx=9) == (0, 4, 6, 10)  # clipped at the frame's edge


def test_cutmix_pastes_one_box_into_every_frame_and_uses_its_area_as_lambda():
    video = torch.stack([torch.zeros(2, 3, 10, 10), torch.ones(2, 3, 10, 10)])  # (B, T, C, H, W)
    mixed, t, _, lam = blend(video, targets(), torch.ones(2), 0.64, torch.tensor([1, 0]), box=(0, 4, 6, 10))
    assert lam == pytest.approx(1 - 16 / 100)  # the clipped box covers 16 of 100 pixels
    inside = torch.zeros(10, 10, dtype=torch.bool)
    inside[0:4, 6:10] = True
    assert torch.equal(mixed[0], inside.float().expand(2, 3, 10, 10))  # every frame, every channel
    assert torch.equal(mixed[1], (~inside).float().expand(2, 3, 10, 10))
    assert torch.equal(video[0], torch.zeros(2, 3, 10, 10))  # the input is not modified
    expected0 = [0.84 * a + 0.16 * b for a, b in zip(REAL, GENERATED)]
    torch.testing.assert_close(t[0], torch.tensor(expected0))


def test_mix_batch_switches_between_cutmix_and_mixup():
    video = torch.stack([torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)])  # (B, T, C, H, W)

    def kinds(config: MixupConfig) -> set[str]:
        found = set()
        for _ in range(40):
            _, t, _, lam = mix_batch(video, targets(), torch.ones(2), config)
            assert 0.0 <= lam <= 1.0 and torch.allclose(t.sum(-1), torch.ones(2))
            found.add("cutmix" if float(lam * 64).is_integer() else "mixup")  # a box's area is k / 64 pixels
        return found

    torch.manual_seed(0)
    assert kinds(MixupConfig()) == {"cutmix", "mixup"}
    assert kinds(MixupConfig(cutmix_alpha=0.0)) == {"mixup"}
    assert kinds(MixupConfig(mixup_alpha=0.0)) == {"cutmix"}


def test_config_errors():
    with pytest.raises(ValueError, match="mixup: null"):
        MixupConfig(mixup_alpha=0.0, cutmix_alpha=0.0)
    with pytest.raises(ValueError, match="switch_prob"):
        MixupConfig(switch_prob=1.5)
