"""TC-CLIP: batched == reference paths, context token counts, ToMe merging, official checkpoints, groups."""

import argparse

import pytest
import torch
import torch.nn.functional as F

from lightning_modules.models.tc_clip import TCCLIP, bipartite_merge, merge_to
from lightning_modules.models.tc_clip_checkpoint import load_official_checkpoint, to_official

TINY = dict(arch="synthact-tiny", pretrained=None, num_context_tokens=5, merges_per_step=2)  # 16 patches, 4 seeds


@pytest.fixture(scope="module")
def net() -> TCCLIP:
    torch.manual_seed(0)
    return TCCLIP(**TINY).eval()


def video(b=2, t=3, seed=1):
    return torch.randn(b, t, 3, 32, 32, generator=torch.Generator().manual_seed(seed))  # (B, T, C, H, W)


CLASSES = ["ApplyEyeMakeup", "kick ball", "YoYo", "dog"]


def test_batched_prompting_and_sdpa_equal_the_per_video_eager_reference(net):
    tokens = net.tokenize(CLASSES)
    with torch.no_grad():
        fast = net(video(), tokens)
        net.batched_prompting, net.sdpa = False, False
        try:
            ref = net(video(), tokens)
        finally:
            net.batched_prompting, net.sdpa = True, True
    assert fast.shape == (2, 4)
    assert (fast - ref).abs().max() < 1e-5
    assert not torch.allclose(fast[0], fast[1])  # the prompts depend on the video


def test_logits_are_scaled_cosine_with_frame_mean_video_feature(net):
    tokens = net.tokenize(CLASSES)
    with torch.no_grad():
        v, context = net.encode_video_tokens(video())
        text = net.encode_text_reference(tokens, context)  # (B, K, E)
        expected = net.clip.logit_scale.exp() * torch.einsum("be,bke->bk", v, text)
        torch.testing.assert_close(net(video(), tokens), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(v.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(net.encode_video(video()), v)


def test_first_block_has_no_context_and_every_block_outputs_k_context_tokens(net, monkeypatch):
    seen = []
    original = net._vision_block

    def spy(i, x, context, t):
        out = original(i, x, context, t)
        seen.append((i, None if context is None else tuple(context.shape), tuple(out[1].shape)))
        return out

    monkeypatch.setattr(net, "_vision_block", spy)
    with torch.no_grad():
        net.encode_video(video(b=2, t=3))
    width = net.clip.visual.transformer.width
    assert seen[0] == (0, None, (2, 5, width))
    assert [s[2] for s in seen] == [(2, 5, width)] * len(net.clip.visual.transformer.resblocks)
    assert all(s[1] == (2, 5, width) for s in seen[1:])


def test_tome_step_merges_the_most_similar_pair_by_size_weighted_mean():
    # even (sources) t0, t2; odd (destinations) t1, t3. t0 is closest to t1 -> merged there
    x = torch.tensor([[[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [-1.0, 0.0]]])
    size = torch.tensor([[[1.0], [3.0], [1.0], [1.0]]])
    out, new_size = bipartite_merge(x, size, r=1)
    torch.testing.assert_close(out, torch.tensor([[[0.0, 1.0], [1.0, 0.075], [-1.0, 0.0]]]))
    torch.testing.assert_close(new_size, torch.tensor([[[1.0], [4.0], [1.0]]]))


def test_merge_to_reaches_target_and_keeps_the_mean_of_seeds():
    x = torch.randn(2, 58 * 4, 8)
    out = merge_to(x, 96, 100)
    assert out.shape == (2, 96, 8)
    size = torch.ones(2, 12, 1)
    y, s = bipartite_merge(x[:, :12], size, 4)
    torch.testing.assert_close((y * s).sum(1), x[:, :12].sum(1), rtol=1e-5, atol=1e-5)


def test_too_few_seeds_for_the_context_is_a_clear_error(net):
    with pytest.raises(ValueError, match="1 frames x 4 seeds < num_context_tokens 5"):
        net.encode_video(video(t=1))


def test_frames_of_the_wrong_size_are_rejected(net):
    with pytest.raises(ValueError, match=r"expects video \(B, T, C, 32, 32\), got \(2, 3, 3, 64, 64\)"):
        net.encode_video(torch.zeros(2, 3, 3, 64, 64))


def test_tokens_of_wrong_length_are_rejected(net):
    with pytest.raises(ValueError, match="expected context_length 30"):
        net(video(), torch.zeros(2, 77, dtype=torch.long))


def test_tokenize_splits_camel_case_and_keeps_prompt_slots(net):
    tokens = net.tokenize(["ApplyEyeMakeup"])
    expected = net.tokenizer(["a photo of a Apply Eye Makeup."], context_length=30)
    assert torch.equal(tokens, expected) and tokens.shape == (1, 30)
    with torch.no_grad():  # prompt vectors start as the embeddings of "a photo of a"
        torch.testing.assert_close(net.prompt_ctx, net.clip.token_embedding(tokens[0, 1:5]))


def test_forward_backward_trains_prompts_bias_and_both_towers_not_token_embedding():
    torch.manual_seed(0)
    m = TCCLIP(**TINY).train()
    logits = m(video(), m.tokenize(CLASSES))
    F.cross_entropy(logits, torch.tensor([0, 2])).backward()
    for p in (
        m.prompt_ctx,
        m.context_bias[0],
        m.prompt_layer.attn.in_proj_weight,
        m.clip.visual.conv1.weight,
        m.clip.transformer.resblocks[0].mlp.c_fc.weight,
        m.clip.logit_scale,
    ):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert m.clip.token_embedding.weight.grad is None


def test_gradient_checkpointing_gives_the_same_gradients():
    grads = []
    for ckpt in (False, True):
        torch.manual_seed(0)
        m = TCCLIP(**TINY, grad_checkpointing=ckpt).train()
        m(video(), m.tokenize(CLASSES)).sum().backward()
        grads.append(m.clip.visual.conv1.weight.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_param_groups_give_prompt_parameters_ten_times_the_lr(net):
    rest, prompt = net.param_groups()
    assert (rest["lr_scale"], prompt["lr_scale"]) == (1.0, 10.0)
    prompt_ids = {id(p) for p in prompt["params"]}
    assert id(net.prompt_ctx) in prompt_ids
    assert {id(p) for p in net.prompt_layer.parameters()} <= prompt_ids
    assert not prompt_ids & {id(p) for p in rest["params"]}
    trainable = {id(p) for p in net.parameters() if p.requires_grad}
    assert prompt_ids | {id(p) for p in rest["params"]} == trainable
    assert id(net.clip.token_embedding.weight) not in trainable


def _official_file(tmp_path, model):
    path = tmp_path / "tc_clip_release.pth"
    state = to_official(model)
    state["module.prompt_learner.token_prefix"] = torch.zeros(3, 1, 64)  # class-name buffers: ignored
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-5}]}, "epoch": 9}, path)
    return path, state


def test_official_layout_checkpoint_loads_back_to_identical_logits(tmp_path):
    torch.manual_seed(0)
    net = TCCLIP(**{**TINY, "arch": "synthact-tiny-quickgelu"}).eval()  # official releases use QuickGELU
    path, state = _official_file(tmp_path, net)
    assert "module.image_encoder.transformer.resblocks.1.attn.q_proj.weight" in state
    assert "module.image_encoder.transformer.resblocks.1.attn.local_global_bias_table" in state
    assert "module.image_encoder.transformer.resblocks.0.attn.local_global_bias_table" not in state
    assert "module.text_encoder.prompt_generation_layer.0.ln_1_kv.weight" in state
    assert "module.prompt_learner.ctx" in state and "module.text_encoder.text_projection" in state
    # CLIP weights of another random model, sharing only the token embedding (not in TC-CLIP checkpoints)
    torch.manual_seed(5)
    other = TCCLIP(**TINY)
    other.clip.token_embedding.weight.data.copy_(net.clip.token_embedding.weight)
    clip_file = tmp_path / "clip.pt"
    torch.save(other.clip.state_dict(), clip_file)
    loaded = TCCLIP(**{**TINY, "pretrained": str(clip_file)}, checkpoint=str(path)).eval()
    tokens = net.tokenize(CLASSES)
    with torch.no_grad():
        assert torch.equal(loaded(video(), tokens), net(video(), tokens))


def test_checkpoint_key_mismatches_are_listed(net, tmp_path):
    path, state = _official_file(tmp_path, net)
    del state["module.text_encoder.ln_final.weight"]
    state["module.image_encoder.extra_head.weight"] = torch.zeros(1)
    del state["module.image_encoder.transformer.resblocks.1.attn.v_proj.bias"]
    torch.save({"model": state}, path)
    m = TCCLIP(**TINY)
    with pytest.raises(ValueError) as err:
        load_official_checkpoint(m, path)
    msg = str(err.value)
    assert str(path) in msg
    assert "missing keys (2): clip.ln_final.weight, clip.visual.transformer.resblocks.1.attn.in_proj_bias" in msg
    assert "image_encoder.extra_head.weight" in msg and "(q/k/v incomplete)" in msg


def test_checkpoint_of_another_size_reports_shapes_and_bad_files_are_rejected(net, tmp_path):
    path, state = _official_file(tmp_path, net)
    state["module.prompt_learner.ctx"] = torch.zeros(6, 64)
    torch.save({"model": state}, path)
    with pytest.raises(ValueError, match=r"prompt_ctx: file \(6, 64\) vs model \(4, 64\)"):
        load_official_checkpoint(TCCLIP(**TINY), path)
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="expected a TC-CLIP release dict with a 'model' entry"):
        load_official_checkpoint(TCCLIP(**TINY), path)
    with pytest.raises(FileNotFoundError, match="TC-CLIP checkpoint not found"):
        load_official_checkpoint(TCCLIP(**TINY), tmp_path / "nope.pth")
    torch.save({"model": state, "args": argparse.Namespace(lr=1e-3)}, path)  # pickles a non-tensor object
    with pytest.raises(ValueError, match="trust_checkpoint: true, or re-save only its 'model' entry"):
        load_official_checkpoint(TCCLIP(**TINY), path)


def test_full_size_vit_b16_image_tower_has_86m_parameters():
    m = TCCLIP(arch="ViT-B-16", pretrained=None)  # random weights, a few seconds
    image = sum(p.numel() for p in m.clip.visual.parameters()) + sum(p.numel() for p in m.context_bias.parameters())
    assert 85.5e6 < image < 86.5e6
    assert sum(p.numel() for p in m.context_bias.parameters()) == 11 * 12 * 2
    assert (m.num_patches, m.num_seeds, m.num_context_tokens) == (196, 58, 96)
    assert m.prompt_layer.attn.embed_dim == 512 and m.prompt_layer.attn.num_heads == 8


def test_checkpoint_builds_quickgelu_and_refuses_a_gelu_model(net, tmp_path):
    from lightning_modules.models.clip import uses_quick_gelu

    path, _ = _official_file(tmp_path, net)
    assert not uses_quick_gelu(net.clip)
    loaded = TCCLIP(**TINY, checkpoint=str(path))  # plain arch: the activation follows the checkpoint
    assert uses_quick_gelu(loaded.clip)
    with pytest.raises(ValueError, match="QuickGELU .* GELU"):
        load_official_checkpoint(TCCLIP(**TINY), path)  # a GELU model built without the checkpoint


def test_llm_rephrased_class_text_needs_a_longer_context_and_is_never_cut(net):
    text = "Brush hair: A person is using a brush to style their hair, stroke after stroke, slowly and carefully"
    text += " in front of a large bathroom mirror"  # 37 tokens with the prompt
    with pytest.raises(ValueError, match=r"exceed TCCLIP.s context_length 30 tokens.*\(77 for LLM-rephrased labels\)"):
        net.tokenize([text])
    tokens = TCCLIP(**{**TINY, "context_length": 32}).tokenize(["brush hair"])  # synthact-tiny's text context: 32
    assert tokens.shape == (1, 32)
