"""BIKE: concept spotting, attribute branch and fusion by value, temporal module, NCE loss, release checkpoints."""

import math

import open_clip
import pytest
import torch
import torch.nn.functional as F

from lightning_modules.models.bike import (
    BIKE,
    SentenceHead,
    TemporalTransformer,
    bike_nce_loss,
    concept_spotting,
    fuse_branches,
)
from lightning_modules.models.bike_checkpoint import load_official_checkpoint, to_official

TINY = dict(arch="synthact-tiny", pretrained=None, temporal_layers=2)
CLASSES = ["ApplyEyeMakeup", "kick ball", "wave", "dog"]


def video(b=2, t=4, seed=1):
    return torch.randn(b, t, 3, 32, 32, generator=torch.Generator().manual_seed(seed))  # (B, T, C, H, W)


@pytest.fixture(scope="module")
def net() -> BIKE:
    torch.manual_seed(0)
    return BIKE(**TINY).eval()


# ------------------------------------------------------------------------- Video Concept Spotting
def test_concept_spotting_by_hand():
    frames = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (B=1, T=2, D=2): frame 0 = e0, frame 1 = e1
    words = torch.tensor(
        [
            [[1.0, 0.0], [0.0, 1.0]],  # class 0: one word on each frame
            [[0.0, 1.0], [0.0, 1.0]],
        ]
    )  # class 1: both words on frame 1  (K=2, L=2, D=2)
    classes = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # temperature 1: word e0 gives saliency softmax([1, 0]) = [a, 1 - a], word e1 gives [1 - a, a]
    a = math.e / (math.e + 1)
    out = concept_spotting(frames, words, classes, temperature=1.0)
    # class 0: mean saliency [0.5, 0.5] -> video (0.5, 0.5) -> dot (1, 0) = 0.5
    # class 1: saliency [1 - a, a] -> video (1 - a, a) -> dot (0.6, 0.8)
    assert out[0].tolist() == pytest.approx([0.5, 0.6 * (1 - a) + 0.8 * a], abs=1e-6)
    # the reference's temperature 0.01 picks the frame each class's words point at (saliency ~ one-hot)
    sharp = concept_spotting(frames, words[[1]], classes[[1]], temperature=0.01)
    assert sharp.item() == pytest.approx(0.8, abs=1e-6)


def test_concept_spotting_is_category_conditioned_not_a_frame_mean():
    """Two classes with the same class feature but words on different frames see different video features."""
    frames = torch.tensor([[[1.0, 0.0], [0.6, 0.8]]])
    words = torch.tensor([[[1.0, 0.0]], [[0.6, 0.8]]])  # (K=2, L=1, D=2)
    classes = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    out = concept_spotting(frames, words, classes)
    assert out[0, 0].item() == pytest.approx(1.0, abs=1e-4)  # spots frame 0
    assert out[0, 1].item() == pytest.approx(0.6, abs=1e-4)  # spots frame 1
    mean = F.normalize(frames.mean(1), dim=-1) @ classes.T
    assert not torch.allclose(out, mean, atol=1e-2)


def test_forward_is_scaled_spotting_over_the_prompt_tokens(net):
    tokens = net.tokenize(CLASSES)
    with torch.no_grad():
        frames = net.encode_frames(video())
        text = net.encode_text_tokens(tokens)
        expected = net.clip.logit_scale.exp() * concept_spotting(frames, text[:, 1:], text[:, 0])
        logits = net(video(), tokens)
        # the class feature is open_clip's own text feature (EOT, ln_final, projection)
        assert torch.allclose(text[:, 0], net.clip.encode_text(tokens), atol=1e-5)
    assert logits.shape == (2, 4) and torch.allclose(logits, expected, atol=1e-5)
    assert tokens.shape[1] == net.clip.positional_embedding.shape[0]  # spotting averages over every position


# ------------------------------------------------------------------------- temporal module
def test_temporal_module_with_silent_blocks_is_twice_the_input_plus_positions():
    torch.manual_seed(0)
    temporal = TemporalTransformer(width=8, heads=2, layers=2)
    with torch.no_grad():
        for block in temporal.transformer.resblocks:
            for layer in (block.attn.out_proj, block.mlp.c_proj):
                layer.weight.zero_(), layer.bias.zero_()
    x = torch.randn(3, 5, 8)  # (B, T, D)
    expected = 2 * x + temporal.frame_position_embeddings.weight[:5]  # blocks add nothing; outer residual adds x
    assert torch.allclose(temporal(x), expected, atol=1e-6)


def test_temporal_module_sees_frame_order(net):
    v = video(b=1)
    with torch.no_grad():
        forward, backward = net.encode_frames(v), net.encode_frames(v.flip(1)).flip(1)
    assert not torch.allclose(forward, backward, atol=1e-4)
    with pytest.raises(ValueError, match="exceed the temporal module's 77 frame positions"):
        net.temporal(torch.zeros(1, 78, 64))


# ------------------------------------------------------------------------- attribute branch
def test_sentence_head_is_cosine_of_mapped_features_by_hand():
    head = SentenceHead(2)
    with torch.no_grad():
        for mlp in (head.query_fc, head.sentence_fc):
            for i in (0, 2):
                mlp[i].weight.copy_(torch.eye(2)), mlp[i].bias.zero_()
    out = head(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.6, 0.8], [3.0, 4.0]]))
    assert out[0].tolist() == pytest.approx([1.0, 0.6, 0.6], abs=1e-6)


def test_fusion_is_the_references_probability_mix():
    video_logits = torch.tensor([[0.0, 0.0]])
    attribute_logits = torch.tensor([[math.log(3.0), 0.0]])  # softmax [0.75, 0.25]
    fused = fuse_branches(video_logits, attribute_logits, 0.3)
    assert fused[0].exp().tolist() == pytest.approx([0.7 * 0.5 + 0.3 * 0.75, 0.7 * 0.5 + 0.3 * 0.25], abs=1e-6)
    assert torch.allclose(fused.softmax(-1), fused.exp(), atol=1e-6)  # the module's softmax sees the mix


def test_attribute_sentence_holds_the_top_k_lexicon_entries(tmp_path):
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("# attributes\nrunning\n\nball\nwater\n")
    torch.manual_seed(0)
    model = BIKE(**TINY, attribute_weight=0.3, attribute_lexicon=str(lexicon), attribute_top_k=2)
    feats = torch.zeros(3, 1 + model.context_length, 64)  # lexicon features: entry i points along axis i
    feats[0, 0, 0], feats[1, 0, 1], feats[2, 0, 2] = 1.0, 1.0, 1.0
    model._text = lambda tokens, cache: feats
    frames = torch.zeros(2, 3, 64)
    frames[0, :, 2], frames[0, :, 0] = 1.0, 0.5  # water first, then running
    frames[1, :, 1], frames[1, :, 2] = 1.0, 0.2  # ball, then water
    got = model.attribute_tokens(frames)
    want = model.tokenizer(
        ["This is a video about water,running", "This is a video about ball,water"], context_length=model.context_length
    )
    assert torch.equal(got, want)


def test_attribute_branch_forward_fuses_the_two_scaled_branches():
    torch.manual_seed(0)
    model = BIKE(**TINY, attribute_weight=0.3, attribute_top_k=2).eval()
    tokens = model.tokenize(CLASSES)  # lexicon defaults to these class names
    with torch.no_grad():
        frames = model.encode_frames(video())
        text = model.encode_text_tokens(tokens)
        scale = model.clip.logit_scale.exp()
        v = scale * concept_spotting(frames, text[:, 1:], text[:, 0])
        sentence = model.encode_text_tokens(model.attribute_tokens(frames))[:, 0]
        a = scale * model.sentence_head(F.normalize(sentence, dim=-1), F.normalize(text[:, 0], dim=-1))
        assert torch.allclose(model(video(), tokens), fuse_branches(v, a, 0.3), atol=1e-5)
    with pytest.raises(ValueError, match=r"attribute_weight 1.0 must be in \[0, 1\)"):
        BIKE(**TINY, attribute_weight=1.0)


# ------------------------------------------------------------------------- loss, training setup
def test_nce_loss_by_hand():
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.5, 1.0, 0.0]])  # (B=2, K=3)
    labels = torch.tensor([0, 2])
    batch = [[2.0, 1.0], [0.5, 0.0]]  # logits[:, labels]
    t = [1 / (1 + math.exp(-10)), math.exp(-10) / (1 + math.exp(-10))]  # softmax(10 * [1, 0])
    target = [t, t[::-1]]

    def kl(rows):
        total = 0.0
        for i, row in enumerate(rows):
            z = math.log(sum(math.exp(x) for x in row))
            total += sum(target[i][j] * (math.log(target[i][j]) - (row[j] - z)) for j in range(2))
        return total / len(rows)

    expected = (kl(batch) + kl([list(c) for c in zip(*batch)])) / 2
    assert bike_nce_loss(logits, labels).item() == pytest.approx(expected, rel=1e-5)
    # two clips of one class: both columns are the same prompt, so videos -> texts is uniform against uniform
    # (0) and texts -> videos is KL(uniform || softmax([1, 2])) for both rows
    p = [1 / (1 + math.e), math.e / (1 + math.e)]
    texts_to_videos = sum(0.5 * math.log(0.5 / q) for q in p)
    same = bike_nce_loss(torch.tensor([[3.0, 1.0], [0.0, 2.0]]), torch.tensor([1, 1])).item()
    assert same == pytest.approx(texts_to_videos / 2, rel=1e-5)


def test_frozen_text_cached_and_clip_at_a_tenth_of_the_head_lr(net):
    text = {id(p) for p in net.clip.transformer.parameters()} | {id(net.clip.token_embedding.weight)}
    assert not any(p.requires_grad for p in net.parameters() if id(p) in text)
    assert net.clip.logit_scale.requires_grad  # the reference trains it with fix_text on
    clip_group, head_group = net.param_groups()
    assert clip_group["lr_scale"] == 0.1 and head_group["lr_scale"] == 1.0
    assert {id(p) for p in head_group["params"]} == {id(p) for p in net.temporal.parameters()}
    tokens = net.tokenize(CLASSES)
    misses = net.text_cache.misses
    with torch.no_grad():
        net(video(), tokens), net(video(seed=2), tokens)
    assert net.text_cache.misses == misses + (0 if misses and torch.equal(net.text_cache._key, tokens) else 1)


def test_one_training_step_changes_clip_and_temporal_weights_not_the_text_tower():
    torch.manual_seed(0)
    model = BIKE(**TINY).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.AdamW([{"params": g["params"], "lr": 1e-3 * g["lr_scale"]} for g in model.param_groups()])
    logits = model(video(), model.tokenize(CLASSES))
    F.cross_entropy(logits, torch.tensor([0, 2])).backward()
    opt.step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}
    assert any(k.startswith("clip.visual.") for k in changed) and any(k.startswith("temporal.") for k in changed)
    assert not any(k.startswith(("clip.transformer.", "clip.token_embedding", "clip.ln_final")) for k in changed)


# ------------------------------------------------------------------------- release checkpoints
def release_blob(arch: str, embed: int, width: int, layers: int = 6, seed: int = 0) -> dict:
    """A BIKE release file built from the reference's layout, random weights: OpenAI CLIP keys (open_clip's
    OpenAI-layout model) in `model_state_dict`, the video header's keys written out in `fusion_model_state_dict`
    with DDP's `module.` prefix, plus the optimizer state and epoch the release carries."""
    g = torch.Generator().manual_seed(seed)
    meta = open_clip.create_model(arch, device="meta")  # only the key names and shapes of OpenAI's layout
    shapes = {k: v.shape for k, v in meta.state_dict().items()}
    clip = {k: torch.randn(shape, generator=g) * 0.02 for k, shape in shapes.items()}
    fusion = {"frame_position_embeddings.weight": (77, embed)}
    for i in range(layers):
        b = f"transformer.resblocks.{i}."
        fusion |= {
            b + "attn.in_proj_weight": (3 * embed, embed),
            b + "attn.in_proj_bias": (3 * embed,),
            b + "attn.out_proj.weight": (embed, embed),
            b + "attn.out_proj.bias": (embed,),
            b + "ln_1.weight": (embed,),
            b + "ln_1.bias": (embed,),
            b + "mlp.c_fc.weight": (4 * embed, embed),
            b + "mlp.c_fc.bias": (4 * embed,),
            b + "mlp.c_proj.weight": (embed, 4 * embed),
            b + "mlp.c_proj.bias": (embed,),
            b + "ln_2.weight": (embed,),
            b + "ln_2.bias": (embed,),
        }
    fusion = {"module." + k: torch.randn(s, generator=g) * 0.02 for k, s in fusion.items()}
    return {
        "epoch": 29,
        "model_state_dict": clip,
        "fusion_model_state_dict": fusion,
        "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 5e-5, "params": [0, 1]}]},
    }


def test_release_checkpoint_of_the_true_b16_shapes_loads_every_key(tmp_path):
    blob = release_blob("ViT-B-16-quickgelu", embed=512, width=512)
    torch.save(blob, tmp_path / "k400-vit-b-16-f8.pt")
    model = BIKE("ViT-B-16-quickgelu", pretrained=None, checkpoint=str(tmp_path / "k400-vit-b-16-f8.pt"))
    state = model.state_dict()
    for key, value in blob["model_state_dict"].items():
        assert torch.equal(state["clip." + key], value), key
    for key, value in blob["fusion_model_state_dict"].items():
        assert torch.equal(state["temporal." + key.removeprefix("module.")], value), key
    assert model.temporal.transformer.resblocks[0].attn.num_heads == 8  # text width 512 // 64


@pytest.fixture(scope="module")
def tiny_release():
    torch.manual_seed(0)
    model = BIKE(**TINY)
    return model, to_official(model)


def test_every_missing_unexpected_and_misshapen_key_is_listed(tmp_path, tiny_release):
    model, blob = tiny_release
    bad = {
        **blob,
        "model_state_dict": dict(blob["model_state_dict"]),
        "fusion_model_state_dict": dict(blob["fusion_model_state_dict"]),
    }
    del bad["model_state_dict"]["visual.proj"], bad["fusion_model_state_dict"]["transformer.resblocks.1.ln_2.bias"]
    bad["fusion_model_state_dict"]["module.time_embedding"] = torch.zeros(3)
    bad["model_state_dict"]["ln_final.weight"] = torch.zeros(7)
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(ValueError) as err:
        load_official_checkpoint(BIKE(**TINY), tmp_path / "bad.pt")
    message = str(err.value)
    assert "bad.pt does not match" in message
    assert "unexpected keys (1): fusion_model_state_dict.module.time_embedding" in message
    assert "missing keys (2): clip.visual.proj, temporal.transformer.resblocks.1.ln_2.bias" in message
    assert "shape mismatches (1): model_state_dict.ln_final.weight: file (7,) vs model (64,)" in message
    with pytest.raises(FileNotFoundError, match="BIKE checkpoint not found"):
        BIKE(**TINY, checkpoint=str(tmp_path / "absent.pt"))
    torch.save({"model": {}}, tmp_path / "tc_clip.pt")
    with pytest.raises(ValueError, match="expected a BIKE release dict"):
        load_official_checkpoint(BIKE(**TINY), tmp_path / "tc_clip.pt")


def test_video_and_attribute_releases_load_together_with_the_video_branchs_clip(tmp_path, tiny_release):
    model, video_blob = tiny_release
    torch.manual_seed(1)
    attr_model = BIKE(**{**TINY, "temporal_layers": 0}, attribute_weight=0.3)
    attr_blob = to_official(attr_model)  # CLIP + sentence head, as train_attributes.py saves it
    torch.save(video_blob, tmp_path / "video.pt"), torch.save(attr_blob, tmp_path / "attr.pt")
    both = BIKE(**TINY, attribute_weight=0.3, checkpoint=[str(tmp_path / "video.pt"), str(tmp_path / "attr.pt")])
    state = both.state_dict()
    assert torch.equal(state["clip.visual.proj"], model.state_dict()["clip.visual.proj"])
    head = "sentence_head.query_fc.0.weight"
    assert torch.equal(state[head], attr_model.state_dict()[head])
    with torch.no_grad():  # the loaded video branch gives the original model's logits
        tokens = model.tokenize(CLASSES)
        both.attribute_weight = 0.0
        both.sentence_head = None
        assert torch.allclose(both.eval()(video(), tokens), model.eval()(video(), tokens), atol=1e-6)
    with pytest.raises(ValueError, match=r"missing keys \(8\): sentence_head.query_fc.0.bias"):
        BIKE(**TINY, attribute_weight=0.3, checkpoint=str(tmp_path / "video.pt"))


def test_concept_spotting_runs_in_float32_under_bf16_autocast():
    g = torch.Generator().manual_seed(0)
    frames, words, classes = (torch.randn(*shape, generator=g) for shape in ((2, 4, 16), (3, 5, 16), (3, 16)))
    exact = concept_spotting(frames, words, classes)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = concept_spotting(frames.bfloat16(), words.bfloat16(), classes.bfloat16())
    assert mixed.dtype == torch.float32
    bf16_inputs = concept_spotting(frames.bfloat16().float(), words.bfloat16().float(), classes.bfloat16().float())
    assert torch.allclose(mixed, bf16_inputs, atol=1e-6) and (mixed - exact).abs().max() < 0.05
