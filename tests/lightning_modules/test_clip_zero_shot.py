"""Vanilla CLIP zero-shot baseline: frozen, frame-mean logits, cached text, `test` works and `fit` refuses."""

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from lightning_modules.models import CLIPZeroShot, ViFiCLIP
from lightning_modules.video_clip import VideoCLIPModule

NAMES = ["wave", "jump", "spin"]


@pytest.fixture(scope="module")
def net() -> CLIPZeroShot:
    torch.manual_seed(0)
    return CLIPZeroShot("synthact-tiny", pretrained=None)


def test_every_parameter_is_frozen_and_eval_mode_sticks(net):
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training and not any(m.training for m in net.modules())


def test_batch_norm_statistics_do_not_move_in_a_training_loop():
    rn = CLIPZeroShot("synthact-small-rn", pretrained=None).train()
    before = {k: v.clone() for k, v in rn.state_dict().items() if "running_mean" in k}
    assert before  # the ResNet tower has batch norms
    rn(torch.randn(2, 2, 3, 48, 48), rn.tokenize(NAMES))
    assert all(torch.equal(before[k], rn.state_dict()[k]) for k in before)


def test_logits_are_scaled_cosine_of_frame_mean_and_class_prompts(net):
    video = torch.randn(2, 3, 3, 32, 32)  # (B, T, C, H, W)
    tokens = net.tokenize(["ApplyEyeMakeup", "jump"])
    assert torch.equal(tokens, net.tokenizer(["a photo of a Apply Eye Makeup.", "a photo of a jump."]))
    with torch.no_grad():
        frames = net.clip.encode_image(video.flatten(0, 1)).view(2, 3, -1)  # (B, T, D)
        text = F.normalize(net.clip.encode_text(tokens), dim=-1)
        expected = net.clip.logit_scale.exp() * F.normalize(frames.mean(1), dim=-1) @ text.T
    torch.testing.assert_close(net(video, tokens), expected)


def test_class_features_are_computed_once_per_class_list():
    model = CLIPZeroShot("synthact-tiny", pretrained=None)
    video = torch.randn(1, 2, 3, 32, 32)
    for _ in range(3):
        model(video, model.tokenize(NAMES))
    assert model.text_cache.misses == 1
    model(video, model.tokenize(NAMES[:2]))
    assert model.text_cache.misses == 2


class ClipsDataModule(L.LightningDataModule):
    """Six random clips and the label space NAMES, the datamodule interface VideoCLIPModule reads."""

    class_names = NAMES

    def __init__(self, videos: torch.Tensor, labels: torch.Tensor):
        super().__init__()
        self.items = [{"video": v, "label": y} for v, y in zip(videos, labels)]

    def train_dataloader(self):
        return DataLoader(self.items, batch_size=3)

    test_dataloader = train_dataloader


def trainer() -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def test_test_stage_scores_the_frozen_model(net):
    videos = torch.randn(6, 2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        predicted = net(videos, net.tokenize(NAMES)).argmax(dim=1)
    labels = torch.cat([predicted[:4], (predicted[4:] + 1) % 3])  # 4 of 6 right by construction
    before = {k: v.clone() for k, v in net.state_dict().items()}
    (metrics,) = trainer().test(VideoCLIPModule(net=net), datamodule=ClipsDataModule(videos, labels), verbose=False)
    assert metrics["test/top1"] == pytest.approx(4 / 6)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_fit_refuses_with_a_clear_error(net):
    data = ClipsDataModule(torch.randn(3, 2, 3, 32, 32), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"CLIPZeroShot has no trainable parameters.*train\.py test"):
        trainer().fit(VideoCLIPModule(net=net), datamodule=data)


def test_same_weights_as_vifi_clip_give_the_same_logits(net):
    vifi = ViFiCLIP("synthact-tiny", pretrained=None)
    vifi.load_state_dict(net.state_dict())
    video = torch.randn(2, 2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(vifi(video, vifi.tokenize(NAMES)), net(video, net.tokenize(NAMES)))
