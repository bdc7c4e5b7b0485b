import pytest
import torch
import torch.nn.functional as F

from lightning_modules.models import ViFiCLIP, create_clip
from lightning_modules.models.vifi_clip import split_camel_case


@pytest.fixture(scope="module")
def net() -> ViFiCLIP:
    torch.manual_seed(0)
    return ViFiCLIP("synthact-tiny", pretrained=None).eval()


def test_logits_are_scaled_cosine_of_frame_mean_and_prompt_features(net):
    video = torch.randn(2, 4, 3, 32, 32)  # (B, T, C, H, W)
    tokens = net.tokenize(["wave", "ApplyEyeMakeup", "kick ball"])
    with torch.no_grad():
        logits = net(video, tokens)
        frames = net.clip.encode_image(video.flatten(0, 1)).view(2, 4, -1)  # (B, T, D)
        v = F.normalize(frames.mean(1), dim=-1)
        t = F.normalize(net.clip.encode_text(tokens), dim=-1)
        expected = net.clip.logit_scale.exp() * v @ t.T
    assert logits.shape == (2, 3)
    torch.testing.assert_close(logits, expected)


def test_frame_order_does_not_change_vifi_features(net):
    video = torch.randn(1, 4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net.encode_video(video), net.encode_video(video.flip(1)), rtol=1e-5, atol=1e-6)


def test_prompt_uses_template_and_splits_camel_case(net):
    assert split_camel_case("ApplyEyeMakeup") == "Apply Eye Makeup"
    assert split_camel_case("brush_hair") == "brush hair"
    assert torch.equal(net.tokenize(["ApplyEyeMakeup"]), net.tokenizer(["a photo of a Apply Eye Makeup."]))


def test_backward_reaches_both_towers(net):
    net.train()
    logits = net(torch.randn(2, 2, 3, 32, 32), net.tokenize(["a", "b"]))
    F.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert net.clip.visual.conv1.weight.grad.abs().sum() > 0
    assert net.clip.token_embedding.weight.grad.abs().sum() > 0
    net.zero_grad()
    net.eval()


def test_create_clip_errors_are_actionable(tmp_path):
    with pytest.raises(ValueError, match="unknown CLIP architecture 'ViT-Z-99'"):
        create_clip("ViT-Z-99")
    with pytest.raises(ValueError, match="no pretrained tag 'laion9b' for synthact-tiny"):
        create_clip("synthact-tiny", "laion9b")
    with pytest.raises(FileNotFoundError, match="CLIP weight file not found"):
        create_clip("synthact-tiny", str(tmp_path / "weights.pt"))


def test_local_weight_file_loads(tmp_path, net):
    path = tmp_path / "tiny.pt"
    torch.save(net.clip.state_dict(), path)
    loaded, _ = create_clip("synthact-tiny", str(path))
    for (k, a), b in zip(net.clip.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
