"""OpenAI CLIP weights are built with QuickGELU at every CLIP entry point (issue 12, item 1), offline.

open_clip's download of the `openai` tag is redirected to a local random state dict of ViT-B/16's true shape
(saved in float16 to halve the file), so the documented route `arch: ViT-B-16, pretrained: openai` runs as a
user would run it. Each entry point must build `QuickGELU` and give the same logits as the same net built with
the `-quickgelu` arch from the same weights; the GELU build of those weights gives other logits (so the
comparison can fail).
"""

from pathlib import Path

import open_clip
import pytest
import torch
import yaml
from jsonargparse import ArgumentParser

from lightning_modules.models import CLIPZeroShot, ViFiCLIP, create_clip
from lightning_modules.models.clip import openai_layout_file, uses_quick_gelu
from lightning_modules.models.tc_clip import TCCLIP

ROOT = Path(__file__).resolve().parents[2]
TC_CLIP_YAML = ROOT / "configs" / "models" / "tc_clip_b16.yaml"
CLASSES = ["brush hair", "cartwheel", "ApplyEyeMakeup"]


@pytest.fixture(scope="module")
def openai_file(tmp_path_factory) -> Path:
    """A random ViT-B/16 CLIP state dict (QuickGELU layout == GELU layout), standing in for OpenAI's weights."""
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16-quickgelu")
    path = tmp_path_factory.mktemp("weights") / "random_vit_b16.pt"  # a name that says nothing about its source
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, path)
    return path


@pytest.fixture
def offline_openai(openai_file, monkeypatch) -> Path:
    """open_clip's `openai` download returns the local file (no network)."""
    monkeypatch.setattr(open_clip.factory, "download_pretrained", lambda cfg, **kwargs: str(openai_file))
    return openai_file


def frames(b: int = 1, t: int = 2) -> torch.Tensor:
    return torch.randn(b, t, 3, 224, 224, generator=torch.Generator().manual_seed(3))  # (B, T, C, H, W)


def test_openai_tag_builds_quickgelu_with_the_quickgelu_arch_logits(offline_openai):
    model, tokenizer = create_clip("ViT-B-16", "openai")
    reference, _ = create_clip("ViT-B-16-quickgelu", str(offline_openai))
    assert uses_quick_gelu(model) and uses_quick_gelu(reference)
    assert type(model.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    image, text = frames(t=1)[0], tokenizer(CLASSES)  # one 224 px image

    def logits(m):
        image_features, text_features, _ = m.eval()(image, text)
        return image_features @ text_features.T

    with torch.no_grad():
        quick = logits(model)
        assert torch.equal(quick, logits(reference))
        for block in [*model.visual.transformer.resblocks, *model.transformer.resblocks]:
            block.mlp.gelu = torch.nn.GELU()  # what open_clip's plain ViT-B-16 builds
        assert (quick - logits(model)).abs().max() > 1e-3  # GELU on these weights is measurably off


def test_openai_release_file_builds_quickgelu(openai_file, tmp_path):
    release = tmp_path / "ViT-B-16.pt"  # the name of OpenAI's (and open_clip's) download
    release.symlink_to(openai_file)
    assert openai_layout_file(release) and not openai_layout_file(openai_file)
    model, _ = create_clip("ViT-B-16", str(release))
    assert uses_quick_gelu(model)


def test_torchscript_archive_is_recognised_as_openai(tmp_path):
    path = tmp_path / "clip_jit.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)  # OpenAI publishes TorchScript archives
    plain = tmp_path / "plain.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), plain)
    assert openai_layout_file(path) and not openai_layout_file(plain)


def test_an_explicit_activation_the_weights_lack_is_an_error_naming_both():
    with pytest.raises(ValueError, match=r"arch 'ViT-B-16-quickgelu' needs QuickGELU .*'laion2b_s34b_b88k'.* GELU"):
        create_clip("ViT-B-16-quickgelu", "laion2b_s34b_b88k")
    with pytest.raises(ValueError, match=r"pretrained tag 'openai' .* TC-CLIP checkpoint .* GELU"):
        create_clip("ViT-B-16", "openai", quick_gelu=False, quick_gelu_source="TC-CLIP checkpoint 'x.pth'")
    model, _ = create_clip("synthact-tiny", None, quick_gelu=True)  # random weights: the caller decides
    assert uses_quick_gelu(model)


def test_documented_tc_clip_config_builds_quickgelu_with_reference_logits(offline_openai):
    config = yaml.safe_load(TC_CLIP_YAML.read_text())
    net_args = config["init_args"]["net"]["init_args"]
    assert (net_args["arch"], net_args["pretrained"]) == ("ViT-B-16", "openai")  # the documented route
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--net", type=TCCLIP)
    torch.manual_seed(1)
    net = parser.instantiate_classes(parser.parse_object({"net": config["init_args"]["net"]})).net.eval()
    torch.manual_seed(1)
    reference = TCCLIP(**{**net_args, "arch": "ViT-B-16-quickgelu", "pretrained": str(offline_openai)}).eval()
    assert uses_quick_gelu(net.clip)
    tokens = net.tokenize(CLASSES)
    with torch.no_grad():
        assert torch.equal(net(frames(), tokens), reference(frames(), tokens))  # T=2: 96 context tokens


@pytest.mark.parametrize("cls", [ViFiCLIP, CLIPZeroShot], ids=lambda c: c.__name__)
def test_vifi_and_zero_shot_clip_build_quickgelu_with_reference_logits(cls, offline_openai):
    net = cls(arch="ViT-B-16", pretrained="openai").eval()
    reference = cls(arch="ViT-B-16-quickgelu", pretrained=str(offline_openai)).eval()
    assert uses_quick_gelu(net.clip)
    tokens = net.tokenize(CLASSES)
    with torch.no_grad():
        assert torch.equal(net(frames(t=1), tokens), reference(frames(t=1), tokens))


def test_generation_encoder_builds_quickgelu_for_score_analyze_and_features(offline_openai):
    from generation.clip_features import ClipEncoder  # what `generation score` and `generation analyze` build

    encoder = ClipEncoder("ViT-B-16", "openai", num_frames=2)
    reference = ClipEncoder("ViT-B-16-quickgelu", str(offline_openai), num_frames=2)
    assert uses_quick_gelu(encoder.model)
    with torch.no_grad():
        assert torch.equal(encoder.encode_texts(CLASSES), reference.encode_texts(CLASSES))
        assert torch.equal(encoder.encode_frames(frames(t=1)), reference.encode_frames(frames(t=1)))


def test_every_entry_point_asks_open_clip_for_quickgelu_with_openai_weights(monkeypatch):
    """Fast routing check (the tests above compare full ViT-B/16 logits): each entry point's `openai`
    build reaches open_clip with QuickGELU forced, here answered by a tiny model."""
    from generation.clip_features import ClipEncoder
    from lightning_modules.models import clip

    calls, create_model = [], open_clip.create_model

    def tiny(name, pretrained=None, force_quick_gelu=False):
        calls.append((name, pretrained, force_quick_gelu))
        return create_model("synthact-tiny", force_quick_gelu=force_quick_gelu)

    monkeypatch.setattr(clip.open_clip, "create_model", tiny)
    builds = {
        "ViFiCLIP": lambda: ViFiCLIP("ViT-B-16", "openai").clip,
        "CLIPZeroShot": lambda: CLIPZeroShot("ViT-B-16", "openai").clip,
        "ClipEncoder (generation score / analyze / features)": lambda: ClipEncoder("ViT-B-16", "openai").model,
    }
    for name, build in builds.items():
        assert uses_quick_gelu(build()), name
    assert calls == [("ViT-B-16", "openai", True)] * len(builds)
