import pytest
import torch
import torch.nn.functional as F

from lightning_modules.models import ViFiCLIP, create_clip
from lightning_modules.models.text import split_camel_case


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


def test_grad_checkpointing_switch_checkpoints_blocks_with_same_gradients(net, monkeypatch):
    import open_clip.transformer

    calls = []
    checkpoint = open_clip.transformer.checkpoint
    monkeypatch.setattr(open_clip.transformer, "checkpoint", lambda *a, **k: calls.append(1) or checkpoint(*a, **k))
    ckpt = ViFiCLIP("synthact-tiny", pretrained=None, grad_checkpointing=True)
    ckpt.load_state_dict(net.state_dict())
    video, tokens, labels = torch.randn(2, 2, 3, 32, 32), net.tokenize(["a", "b"]), torch.tensor([0, 1])
    F.cross_entropy(ckpt(video, tokens), labels).backward()
    assert len(calls) == 4  # 2 vision + 2 text blocks of synthact-tiny
    F.cross_entropy(net(video, tokens), labels).backward()
    for (name, a), b in zip(net.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-7, msg=name)
    net.zero_grad()


def test_frozen_text_trains_vision_only_and_caches_class_features(net):
    frozen = ViFiCLIP("synthact-tiny", pretrained=None, freeze_text=True)
    frozen.load_state_dict(net.state_dict())
    assert not frozen.clip.token_embedding.weight.requires_grad and not frozen.clip.text_projection.requires_grad
    assert frozen.clip.visual.conv1.weight.requires_grad and frozen.clip.logit_scale.requires_grad
    video, tokens = torch.randn(2, 2, 3, 32, 32), net.tokenize(["a", "b"])
    logits = frozen(video, tokens)
    with torch.no_grad():
        torch.testing.assert_close(logits, net(video, tokens))
    F.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert frozen.clip.visual.conv1.weight.grad.abs().sum() > 0 and frozen.clip.token_embedding.weight.grad is None
    frozen(video, net.tokenize(["a", "b"]))
    assert frozen.text_cache.misses == 1  # same class list: computed once
    frozen(video, net.tokenize(["a", "b", "c"]))
    assert frozen.text_cache.misses == 2  # new class names: recomputed
    frozen.load_state_dict(net.state_dict())
    frozen(video, net.tokenize(["a", "b", "c"]))
    assert frozen.text_cache.misses == 3  # new weights: recomputed


def test_bf16_autocast_forward_on_cpu(net):
    video, tokens = torch.randn(2, 2, 3, 32, 32), net.tokenize(["a", "b", "c"])
    with torch.no_grad():
        full = net(video, tokens)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = net(video, tokens)
    assert half.dtype == torch.bfloat16 and torch.isfinite(half).all()
    assert (half.float() - full).abs().max() < 0.05 * full.abs().max()


def test_full_size_parameter_counts_match_openai_clip():
    """ViT-B/16: 149,620,737 (image tower 86,192,640) as in open_clip's docs/model_profile.csv (149.62M /
    86.19M); ViT-B/32: 151,277,313, the OpenAI release's count. Built on the meta device, no weights."""
    import open_clip

    counts = {}
    for arch in ("ViT-B-16", "ViT-B-32"):
        with torch.device("meta"):
            model = open_clip.model.CLIP(**open_clip.get_model_config(arch))
        counts[arch] = (sum(p.numel() for p in model.parameters()), sum(p.numel() for p in model.visual.parameters()))
    assert counts == {"ViT-B-16": (149_620_737, 86_192_640), "ViT-B-32": (151_277_313, 87_849_216)}
