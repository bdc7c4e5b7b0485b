"""X-CLIP wrapper: same logits as transformers' XCLIPModel, padding-independent text, frames in order,
the frozen-text cache, switches, errors, the local-directory load path and the full-size parameter count."""

import copy
import json

import open_clip
import pytest
import torch
import torch.nn.functional as F
from transformers import CLIPTokenizer, XCLIPConfig, XCLIPModel

from lightning_modules.models import XCLIP
from lightning_modules.models.xclip import NEW_MODULE_KEYS, TINY_CONFIG, enable_checkpointing

T = TINY_CONFIG["vision_config"]["num_frames"]
SOT, EOT = 49406, 49407


@pytest.fixture(scope="module")
def net() -> XCLIP:
    torch.manual_seed(0)
    return XCLIP(pretrained=False, config=TINY_CONFIG).eval()


def video(b: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, T, 3, 32, 32, generator=torch.Generator().manual_seed(seed))  # (B, T, C, H, W)


def test_logits_equal_xclipmodel_logits_per_video(net):
    tokens = net.tokenize(["wave", "ApplyEyeMakeup", "kick a ball hard"])
    v = video()
    with torch.no_grad():
        logits = net(v, tokens)
        expected = net.model(pixel_values=v, **tokens).logits_per_video
    assert logits.shape == (2, 3)
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    assert logits.std() > 0  # a real comparison, not two constant tensors
    assert net.model.config._attn_implementation == "sdpa"  # PyTorch scaled-dot-product attention


def test_tokens_follow_clip_conventions_and_pooling_hits_end_of_text(net):
    tokens = net.tokenize(["wave", "ApplyEyeMakeup"])
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    assert ids[:, 0].tolist() == [SOT, SOT]
    eot_at = (ids == EOT).int().argmax(dim=1)
    assert eot_at.tolist() == [2, 4]  # "wave" is one BPE token, "apply eye makeup" three
    assert torch.equal(ids.argmax(dim=1), eot_at)  # XCLIPTextModel pools at the arg-max id: the end of text
    assert mask.sum(1).tolist() == (eot_at + 1).tolist() and ids[0, 3:].eq(0).all()
    assert ids.shape[1] == 5  # trimmed to the longest prompt, not the full context length


def test_logits_do_not_depend_on_padding(net):
    v = video()
    with torch.no_grad():
        batched = net(v, net.tokenize(["wave", "kick a ball very hard today"]))  # "wave" padded by 5
        alone = net(v, net.tokenize(["wave"]))
        tokens = net.tokenize(["wave", "kick a ball very hard today"])
        extra = {k: F.pad(x, (0, 7)) for k, x in tokens.items()}  # 7 more padding columns (id 0, mask 0)
        padded = net(v, extra)
    torch.testing.assert_close(batched[:, :1], alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(padded, batched, rtol=1e-5, atol=1e-5)


def test_prompt_generator_makes_class_features_video_specific(net):
    tokens = net.tokenize(["wave", "jump"])
    v = video(2)
    with torch.no_grad():
        per_video = net(v, tokens)
        text = net.encode_text(tokens)
        plain = net.model.logit_scale.exp() * net.encode_video(v) @ F.normalize(text, dim=-1).T
    assert (per_video - plain).abs().max() > 1e-4  # without the prompt generator the logits differ


def test_encode_video_is_normalised_mit_feature_and_sees_frame_order(net):
    v = video(3)
    with torch.no_grad():
        feats = net.encode_video(v)
        expected = F.normalize(net.model.get_video_features(pixel_values=v).pooler_output, dim=-1)
        reversed_ = net.encode_video(v.flip(1))
    assert feats.shape == (3, TINY_CONFIG["projection_dim"])
    torch.testing.assert_close(feats.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(feats, expected)
    assert (feats - reversed_).abs().max() > 1e-3  # temporal position embeddings: order matters, unlike ViFi-CLIP


def test_wrong_frame_count_is_a_clear_error(net):
    expected = r"expects video \(B, T=4, C, H, W\), got shape \(1, 8, 3, 32, 32\).*num_frames"
    with pytest.raises(ValueError, match=expected):
        net.encode_video(torch.zeros(1, 8, 3, 32, 32))


def test_constructor_errors_are_actionable(tmp_path):
    with pytest.raises(ValueError, match="set `pretrained: false`"):
        XCLIP("microsoft/xclip-base-patch32", pretrained=True, config=TINY_CONFIG)
    small_vocab = copy.deepcopy(TINY_CONFIG)
    small_vocab["text_config"]["vocab_size"] = 1000
    with pytest.raises(ValueError, match="vocab_size=1000 is smaller than the CLIP BPE vocabulary"):
        XCLIP(pretrained=False, config=small_vocab)
    with pytest.raises(OSError, match="cannot load weights/tokenizer from .*set `pretrained: false`"):
        XCLIP(str(tmp_path / "missing"), pretrained=True)


def save_clip_tokenizer(directory) -> CLIPTokenizer:
    """transformers' CLIPTokenizer from open_clip's bundled BPE files (no download): same vocabulary."""
    bpe = open_clip.tokenizer.SimpleTokenizer()
    names = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    (directory / "vocab.json").write_text(json.dumps({names.get(k, k): i for k, i in bpe.encoder.items()}))
    merges = sorted(bpe.bpe_ranks, key=bpe.bpe_ranks.get)
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    tokenizer = CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"), pad_token="<|endoftext|>")
    tokenizer.save_pretrained(directory)
    return tokenizer


def test_local_directory_loads_weights_and_saved_tokenizer(tmp_path, net):
    net.model.save_pretrained(tmp_path)
    save_clip_tokenizer(tmp_path)
    loaded = XCLIP(str(tmp_path)).eval()
    names = ["wave", "ApplyEyeMakeup", "it's 3 o'clock"]
    hf_tokens, bpe_tokens = loaded.tokenize(names), net.tokenize(names)
    assert hf_tokens["input_ids"][:, 0].eq(SOT).all()
    assert hf_tokens["input_ids"][0, 2:].eq(EOT).all()  # the saved tokenizer pads with end-of-text, ours with 0
    assert torch.equal(hf_tokens["attention_mask"], bpe_tokens["attention_mask"])
    assert torch.equal(hf_tokens["input_ids"] * hf_tokens["attention_mask"], bpe_tokens["input_ids"])
    v = video()
    with torch.no_grad():
        torch.testing.assert_close(loaded(v, hf_tokens), net(v, bpe_tokens), rtol=1e-5, atol=1e-5)


def test_frozen_text_caches_features_once_per_class_list(net):
    torch.manual_seed(0)
    frozen = XCLIP(pretrained=False, config=TINY_CONFIG, freeze_text=True).eval()
    frozen.load_state_dict(net.state_dict())
    assert not any(p.requires_grad for p in frozen.model.text_model.parameters())
    assert not frozen.model.text_projection.weight.requires_grad
    assert frozen.model.prompts_generator.alpha.requires_grad and frozen.model.visual_projection.weight.requires_grad
    tokens = frozen.tokenize(["wave", "jump"])
    v = video()
    with torch.no_grad():
        first, second = frozen(v, tokens), frozen(v, frozen.tokenize(["wave", "jump"]))
        torch.testing.assert_close(first, net(v, tokens))  # the cache serves the same features
    torch.testing.assert_close(second, first)
    assert frozen.text_cache.misses == 1
    frozen(v, frozen.tokenize(["wave", "jump", "spin"]))  # new label space: recomputed
    assert frozen.text_cache.misses == 2
    frozen.load_state_dict(net.state_dict())  # new weights: the cache is dropped
    frozen(v, frozen.tokenize(["wave", "jump", "spin"]))
    assert frozen.text_cache.misses == 3


def test_param_groups_follow_xclip_recipe(net):
    groups = net.param_groups()
    listed = [p for g in groups for p in g["params"]]
    assert len(listed) == len({id(p) for p in listed}) == len(list(net.parameters()))
    scales = {
        name: (g["lr_scale"], g["wd_scale"])
        for name, p in net.model.named_parameters()
        for g in groups
        if any(p is q for q in g["params"])
    }
    assert scales["mit.position_embedding"] == (10.0, 1.0)
    assert scales["prompts_generator.alpha"] == (10.0, 0.0)
    assert scales["vision_model.encoder.layers.0.message_fc.weight"] == (10.0, 1.0)
    assert scales["text_model.encoder.layers.0.mlp.fc1.bias"] == (1.0, 0.0)
    assert scales["visual_projection.weight"] == (1.0, 1.0)
    assert all((s[0] == 10.0) == any(k in n for k in NEW_MODULE_KEYS) for n, s in scales.items())
    frozen = XCLIP(pretrained=False, config=TINY_CONFIG, freeze_text=True)
    n_text = sum(1 for n, _ in frozen.model.named_parameters() if n.startswith(("text_model.", "text_projection")))
    assert sum(len(g["params"]) for g in frozen.param_groups()) == len(listed) - n_text


def test_gradient_checkpointing_gives_the_same_gradients(net):
    plain = copy.deepcopy(net).train()
    ckpt = copy.deepcopy(net).train()
    enable_checkpointing(ckpt.model)
    calls = []
    for layer in ckpt.model.modules():
        if getattr(layer, "gradient_checkpointing", False) and hasattr(layer, "_gradient_checkpointing_func"):
            inner = layer._gradient_checkpointing_func
            layer._gradient_checkpointing_func = lambda *a, _f=inner, **k: calls.append(1) or _f(*a, **k)
    tokens, v, labels = net.tokenize(["wave", "jump"]), video(), torch.tensor([0, 1])
    for model in (plain, ckpt):
        F.cross_entropy(model(v, tokens), labels).backward()
    assert len(calls) >= 3  # vision, text and mit layers were checkpointed
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=name)
    switched = XCLIP(pretrained=False, config=TINY_CONFIG, grad_checkpointing=True).model
    assert all(layer.gradient_checkpointing for layer in switched.text_model.encoder.layers)


def test_bf16_autocast_forward_on_cpu(net):
    tokens, v = net.tokenize(["wave", "jump", "spin"]), video()
    with torch.no_grad():
        full = net(v, tokens)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = net(v, tokens)
    assert half.dtype == torch.bfloat16 and torch.isfinite(half).all()
    assert (half.float() - full).abs().max() < 0.05 * full.abs().max()


def test_full_size_config_matches_xclip_base_patch32_parameter_count():
    """196,585,729 parameters, the "197M params" of the microsoft/xclip-base-patch32 hub model card
    (patch16: 194,929,153 vs the card's "195M"); built on the meta device, no weights."""
    with torch.device("meta"):
        b32 = XCLIPModel(XCLIPConfig())
        b16 = XCLIPModel(XCLIPConfig(vision_config={"patch_size": 16}))
    assert sum(p.numel() for p in b32.parameters()) == 196_585_729
    assert sum(p.numel() for p in b16.parameters()) == 194_929_153
    assert b32.config.vision_config.num_frames == 8 and b32.config.vision_config.patch_size == 32
