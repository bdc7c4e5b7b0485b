"""s/clip and peak memory of every registered generator at its model card's settings, bare, one row each.

Run from the repo root: `python benchmarks/generators_speed.py [--tiny] [--generators cogvideox-2b wan2.1-1.3b ...]`.
Default (a CUDA GPU): each generator's true shapes (its transformer, VAE and text encoders) with random weights,
built on the GPU (nothing downloaded), at the generator's resolution, frames, dtype and guidance
(`generation.t2v.GENERATORS`), through `generation.t2v.configure_pipeline` and `call_kwargs` (what `generation
render` runs). A whole clip of the slow generators takes up to ~30 min, so the denoising loop is timed at 1 and
at 2 steps (after a 1-step warm-up) and extrapolated: s/clip = fixed (text encoding, set-up) + steps x s/step +
one VAE decode (timed). Peak memory is torch's max allocated over the whole run. Rows go out as each generator
finishes (a timeout keeps the finished ones); ratio = the documented or measured s/clip in the registry over ours
(another device for some: see `seconds_source`). Random weights: the timing is the real model's, the pixels are
noise. `--tiny`: each family's toy pipeline on CPU (a dry run of every code path in seconds; timings mean nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import report  # noqa: E402
from generation import t2v  # noqa: E402
from generation.tiny import tiny_pipeline, tiny_settings, tiny_tokenizer  # noqa: E402

PROMPT = "a man in a red jacket is waving in the park, camera shot"
# Transformer shapes that differ from diffusers' constructor defaults (the defaults are CogVideoX-2B, Wan-14B,
# LTX-Video and HunyuanVideo); from the checkpoints' transformer/config.json.
TRANSFORMER = {
    "cogvideox-5b": dict(num_attention_heads=48, num_layers=42, use_rotary_positional_embeddings=True),
    "cogvideox1.5-5b": dict(
        num_attention_heads=48,
        num_layers=42,
        use_rotary_positional_embeddings=True,
        patch_size_t=2,
        sample_height=300,
        sample_width=300,
        sample_frames=81,
        ofs_embed_dim=512,
        use_learned_positional_embeddings=False,
    ),
    "wan2.1-1.3b": dict(num_attention_heads=12, ffn_dim=8960, num_layers=30),
    "wan2.1-14b": {},
    "cogvideox-2b": {},
    "ltx-video": {},
    "hunyuanvideo": {},
}
T5_XXL = dict(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def full_pipeline(name: str, dtype: torch.dtype):
    """The generator's pipeline at its true shapes with random weights, built on the GPU in `dtype`."""
    import diffusers
    from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel, T5Config, T5EncoderModel

    g = t2v.GENERATORS[name]
    cls = {
        "cogvideox": ("CogVideoXTransformer3DModel", "AutoencoderKLCogVideoX"),
        "wan": ("WanTransformer3DModel", "AutoencoderKLWan"),
        "ltx": ("LTXVideoTransformer3DModel", "AutoencoderKLLTXVideo"),
        "hunyuan": ("HunyuanVideoTransformer3DModel", "AutoencoderKLHunyuanVideo"),
    }[g.family]
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device("cuda"):
            transformer = getattr(diffusers, cls[0])(**TRANSFORMER[name]).eval()
            vae = getattr(diffusers, cls[1])().eval()
            if g.family == "hunyuan":
                text = LlamaModel(
                    LlamaConfig(
                        hidden_size=4096,
                        intermediate_size=14336,
                        num_hidden_layers=32,
                        num_attention_heads=32,
                        num_key_value_heads=8,
                        vocab_size=128256,
                    )
                ).eval()
                text_2 = CLIPTextModel(
                    CLIPTextConfig(hidden_size=768, intermediate_size=3072, projection_dim=768)
                ).eval()
            else:
                vocab = 256384 if g.family == "wan" else 32128  # Wan: UMT5-XXL's vocabulary
                ff = "gelu" if g.family == "wan" else "gated-gelu"
                text = T5EncoderModel(T5Config(**{**T5_XXL, "vocab_size": vocab}, feed_forward_proj=ff)).eval()
    finally:
        torch.set_default_dtype(previous)
    scheduler = getattr(diffusers, g.scheduler)(**g.scheduler_args)
    parts = dict(tokenizer=tiny_tokenizer(), text_encoder=text, vae=vae, transformer=transformer, scheduler=scheduler)
    if g.family == "hunyuan":
        parts |= dict(tokenizer_2=tiny_tokenizer(), text_encoder_2=text_2)
    return getattr(diffusers, t2v.FAMILIES[g.family].pipeline)(**parts)


def timed_loop(pipe, s: t2v.T2VSettings, steps: int) -> tuple[float, torch.Tensor]:
    """Seconds of the pipeline call up to the latents (text encoding included) at `steps` steps."""
    gen = torch.Generator(device="cpu" if s.cpu_offload else pipe.device).manual_seed(0)
    _sync()
    start = time.perf_counter()
    latents = pipe(**t2v.call_kwargs(dataclasses.replace(s, steps=steps), [PROMPT], [gen], "latent")).frames
    _sync()
    return time.perf_counter() - start, latents


def timed_decode(pipe, s: t2v.T2VSettings, latents: torch.Tensor) -> float:
    """Seconds of one clip's VAE decode: the pipeline's own latents -> frames path, 0 steps of denoising."""
    _sync()
    start = time.perf_counter()
    with torch.no_grad():
        if s.family.name == "cogvideox":
            pipe.decode_latents(latents)
        else:  # Wan / LTX / Hunyuan: the latents are in the VAE's normalised space; decode as is (timing only)
            pipe.vae.decode(latents.to(pipe.vae.dtype) if latents.dim() == 5 else latents, return_dict=False)
    _sync()
    return time.perf_counter() - start


def measure(name: str, tiny: bool) -> dict:
    if tiny:
        family = t2v.GENERATORS[name].family
        s = tiny_settings(family, generator=name, steps=t2v.GENERATORS[name].steps).resolved()
        pipe = t2v.configure_pipeline(tiny_pipeline(family, layers=2), s)
    else:
        s = t2v.T2VSettings(generator=name, model=f"random-{name}", device="cuda").resolved()
        pipe = t2v.configure_pipeline(full_pipeline(name, t2v.DTYPES[s.dtype]), s)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    timed_loop(pipe, s, 1)  # warm-up: kernels, allocator, autotuning
    one, _ = timed_loop(pipe, s, 1)
    two, latents = timed_loop(pipe, s, 2)
    per_step = max(two - one, 0.0)
    if s.family.name == "ltx":  # packed (B, N, C) latents: the pipeline unpacks them before the VAE
        decode_s = 0.0
    else:
        decode_s = timed_decode(pipe, s, latents)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
    del pipe
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    fixed = max(one - per_step, 0.0)
    return {
        "generator": name,
        "s_per_step": per_step,
        "fixed_s": fixed,
        "decode_s": decode_s,
        "s_per_clip": fixed + s.steps * per_step + decode_s,
        "peak_gib": peak,
        "settings": f"{s.width}x{s.height}x{s.frames}, {s.steps} steps, {s.dtype}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="toy pipelines on CPU: a dry run of every code path")
    parser.add_argument("--generators", nargs="+", default=list(t2v.GENERATORS), choices=list(t2v.GENERATORS))
    args = parser.parse_args(argv)
    if args.tiny:
        torch.set_num_threads(1)
    elif not torch.cuda.is_available():
        print("no CUDA device: run with --tiny for a CPU dry run")
        return 0
    import diffusers

    diffusers.utils.logging.set_verbosity_error()
    failed = []
    for name in args.generators:
        try:
            row = measure(name, args.tiny)
        except Exception as e:  # one generator failing (e.g. out of memory) is reported, the others still run
            print(f"{name}: FAILED {type(e).__name__}: {str(e)[:300]}", flush=True)
            failed.append(name)
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        g = t2v.GENERATORS[name]
        report(
            "generators",
            f"{name} s/clip bare ({row['settings']}{', tiny CPU' if args.tiny else ''})",
            row["s_per_clip"],
            g.seconds_per_clip or row["s_per_clip"],
            "s",
            higher_is_better=False,
            note=f"{row['s_per_step']:.2f} s/step + {row['fixed_s']:.1f} s fixed + {row['decode_s']:.1f} s decode; "
            f"peak {row['peak_gib']:.1f} GiB; baseline: {g.seconds_source}",
        )
    if failed:
        print(f"failed generators: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
