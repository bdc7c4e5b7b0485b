"""Toy-size pipelines of every generator family, random weights, nothing downloaded (tests, benchmarks, dry runs).

Each `tiny_pipeline(family)` is the family's diffusers pipeline class built from its own components at toy size,
as diffusers' own fast tests do, with an in-memory word tokenizer instead of a hub one: CogVideoX (T5 + the
CogVideoX VAE), Wan (T5 + AutoencoderKLWan), LTX (T5 + AutoencoderKLLTX), HunyuanVideo (Llama + CLIP text
encoders + its VAE). Modules are in eval mode, as `from_pretrained` returns them, so renders are deterministic.
`tiny_settings(family)` are the matching `T2VSettings`: fp32 on CPU, 2 steps, 9 frames of 16x16 (32x32 for LTX,
whose VAE needs it), 16 text tokens.
"""

from __future__ import annotations

import torch

TINY_WORDS = (
    "a person is waving jumping clapping in on the park beach gym room man woman girl boy tall short red "
    "blue green shirt jacket arms legs hands slowly camera shot"
).split()

TINY_SIZE = {"cogvideox": 16, "wan": 16, "ltx": 32, "hunyuan": 16}


def tiny_tokenizer():
    """A T5 (Unigram) tokenizer from an in-memory vocabulary: whole words, then single letters as fallback."""
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [("\u2581" + w, -1.0 - 0.01 * i) for i, w in enumerate(TINY_WORDS)]
    vocab += [("\u2581", -4.0)] + [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz.,"]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def _t5(vocab_size: int, d_model: int = 32):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(vocab_size=vocab_size, d_model=d_model, d_kv=8, d_ff=37, num_layers=1, num_heads=4))


def _cogvideox(channels: int, layers: int, tok):
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel

    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4,
        attention_head_dim=8,
        in_channels=4,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,
        num_layers=layers,
        sample_width=2,
        sample_height=2,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=16,
    )
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(channels,) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    return CogVideoXPipeline(
        tokenizer=tok, text_encoder=_t5(len(tok)), vae=vae, transformer=transformer, scheduler=CogVideoXDDIMScheduler()
    )


def _wan(channels: int, layers: int, tok):
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel

    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=32,
        ffn_dim=32,
        num_layers=layers,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    vae = AutoencoderKLWan(
        base_dim=max(3, channels // 2),
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    return WanPipeline(tokenizer=tok, text_encoder=_t5(len(tok)), vae=vae, transformer=transformer, scheduler=scheduler)


def _ltx(channels: int, layers: int, tok):
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=layers,
        caption_channels=32,
    )
    vae = AutoencoderKLLTXVideo(
        latent_channels=8,
        block_out_channels=(channels,) * 4,
        decoder_block_out_channels=(channels,) * 4,
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    vae.use_framewise_encoding = vae.use_framewise_decoding = False
    return LTXPipeline(
        tokenizer=tok,
        text_encoder=_t5(len(tok)),
        vae=vae,
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )


def _hunyuan(channels: int, layers: int, tok):
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoPipeline,
        HunyuanVideoTransformer3DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

    transformer = HunyuanVideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=10,
        num_layers=layers,
        num_single_layers=layers,
        num_refiner_layers=1,
        patch_size=1,
        patch_size_t=1,
        guidance_embeds=True,
        text_embed_dim=16,
        pooled_projection_dim=8,
        rope_axes_dim=(2, 4, 4),
    )
    vae = AutoencoderKLHunyuanVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4,
        up_block_types=("HunyuanVideoUpBlock3D",) * 4,
        block_out_channels=(channels,) * 4,
        layers_per_block=1,
        norm_num_groups=4,
        spatial_compression_ratio=8,
        temporal_compression_ratio=4,
        mid_block_add_attention=True,
    )
    common = dict(bos_token_id=0, eos_token_id=1, pad_token_id=0, vocab_size=len(tok), intermediate_size=37)
    llama = LlamaModel(LlamaConfig(hidden_size=16, num_attention_heads=4, num_hidden_layers=2, **common))
    clip = CLIPTextModel(CLIPTextConfig(hidden_size=8, num_attention_heads=4, num_hidden_layers=1, **common))
    return HunyuanVideoPipeline(
        tokenizer=tok,
        text_encoder=llama,
        tokenizer_2=tiny_tokenizer(),
        text_encoder_2=clip,
        vae=vae,
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
    )


BUILDERS = {"cogvideox": _cogvideox, "wan": _wan, "ltx": _ltx, "hunyuan": _hunyuan}


def tiny_pipeline(family: str = "cogvideox", seed: int = 0, channels: int = 8, layers: int = 1):
    """The `family`'s pipeline at toy size with random weights (seeded), in eval mode. `layers` transformer
    blocks (First Block Cache needs >= 2); `channels` per VAE level."""
    if family not in BUILDERS:
        raise ValueError(f"no tiny pipeline for family {family!r}; have {', '.join(BUILDERS)}")
    torch.manual_seed(seed)
    pipe = BUILDERS[family](channels, layers, tiny_tokenizer())
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            module.eval()
    return pipe


# Hunyuan's default prompt template crops 95 tokens of chat preamble: more than the toy 16-token context.
TINY_CALL_ARGS = {"hunyuan": {"prompt_template": {"template": "{}", "crop_start": 0}}}


def tiny_settings(family: str = "cogvideox", **overrides):
    """`T2VSettings` matching `tiny_pipeline(family)`: the family's registered generator of that family (the
    first), fp32 on CPU, 2 steps, 9 frames, 16 text tokens, toy frame size."""
    from generation.t2v import GENERATORS, T2VSettings

    name = next(n for n, g in GENERATORS.items() if g.family == family)
    size = TINY_SIZE[family]
    base = dict(
        generator=name,
        model="tiny",
        dtype="fp32",
        device="cpu",
        steps=2,
        frames=9,
        width=size,
        height=size,
        max_sequence_length=16,
        call_args=dict(TINY_CALL_ARGS.get(family, {})),
    )
    return T2VSettings(**{**base, **overrides})
