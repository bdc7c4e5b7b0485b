"""CogVideoX render speed: the bare pipeline against each cache, fp8, compile and their best combination.

Run from the repo root: `python benchmarks/cogvideox_speed.py [--tiny] [--variants bare pab ...] [--steps 50]`.
Default: CogVideoX-2B's true shapes (30-layer transformer, the CogVideoX VAE, a T5-XXL encoder) with random
weights built on the GPU (nothing downloaded), bf16, 49 frames at 720x480, guidance 6, one clip per variant,
configured through `generation.t2v.configure_pipeline` (the code `generation render` runs).
`--tiny` is the toy pipeline on CPU (a dry run of every code path in seconds; its timings mean nothing).

Per variant: the denoising loop (latents out) is timed, then the latents are decoded once (timed for `bare`
only: the VAE decode is the same for every variant) and compared with the bare clip: PSNR in dB over all
frames (inf: identical). s/clip = loop + bare VAE decode. Variants that compile are run twice, the first
(compilation) reported as `compile_s`. MagCache's ratios are calibrated from the bare run (same seed and
steps), so its cost is not counted twice. fp8 needs compute capability >= 8.9 (skipped with the reason
otherwise). Random weights make the threshold caches (firstblock, magcache) skip differently from the real
checkpoint: their numbers here bound the mechanism's cost, not the real model's speed-up.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import report  # noqa: E402
from generation import t2v as cog  # noqa: E402
from generation.tiny import tiny_pipeline, tiny_settings, tiny_tokenizer  # noqa: E402

# name -> settings overrides over the base settings
VARIANTS: dict[str, dict] = {
    "bare": {},
    "pab": {"cache": "pab"},
    "fastercache": {"cache": "fastercache"},
    "firstblock": {"cache": "firstblock"},
    "taylorseer": {"cache": "taylorseer"},
    "magcache": {"cache": "magcache"},
    "fp8": {"fp8": True},
    "compile": {"compile": True},
    "pab+fp8+compile": {"cache": "pab", "fp8": True, "compile": True},
}


def full_pipeline(dtype: torch.dtype):
    """CogVideoX-2B's architecture (diffusers' defaults are its config) and a T5-XXL encoder, random weights,
    built directly on the GPU in `dtype`. The toy word tokenizer stands in for T5's (ids only; padded to 226)."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device("cuda"):
            text = T5EncoderModel(
                T5Config(
                    vocab_size=32128,
                    d_model=4096,
                    d_kv=64,
                    d_ff=10240,
                    num_layers=24,
                    num_heads=64,
                    feed_forward_proj="gated-gelu",
                )
            ).eval()
            transformer = CogVideoXTransformer3DModel().eval()  # 2B: 30 layers, 30 heads x 64, sincos positions
            vae = AutoencoderKLCogVideoX().eval()
    finally:
        torch.set_default_dtype(previous)
    scheduler = CogVideoXDDIMScheduler(timestep_spacing="trailing")
    return CogVideoXPipeline(
        tokenizer=tiny_tokenizer(), text_encoder=text, vae=vae, transformer=transformer, scheduler=scheduler
    )


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def loop(pipe, s: cog.T2VSettings, prompt: str) -> tuple[float, torch.Tensor]:
    """Seconds of the denoising loop (text encoding included) and the latents."""
    gen = torch.Generator(device=pipe.device).manual_seed(0)
    sync()
    start = time.perf_counter()
    latents = pipe(**cog.call_kwargs(s, [prompt], [gen], "latent")).frames
    sync()
    return time.perf_counter() - start, latents


def decode(pipe, latents: torch.Tensor) -> tuple[float, np.ndarray]:
    """Seconds of the VAE decode and the uint8 clip (T, H, W, 3)."""
    sync()
    start = time.perf_counter()
    with torch.no_grad():
        video = pipe.decode_latents(latents)  # (B, C, T, H, W) in [-1, 1]
    sync()
    seconds = time.perf_counter() - start
    clip = ((video[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 3, 0).cpu().numpy()
    return seconds, clip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="toy pipeline on CPU: a dry run of every code path")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default 50; 6 with --tiny)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="skip (and list) the variants that would end after this many seconds, by the bare "
        "run's time (compile counted as 2 renders + 60 s)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    prompt = "a man in a red jacket is waving in the park, camera shot"
    if args.tiny:
        torch.set_num_threads(1)
        base = tiny_settings("cogvideox", steps=args.steps or 6)
        build = lambda: tiny_pipeline("cogvideox", layers=2)  # noqa: E731
    else:
        if not torch.cuda.is_available():
            print("no CUDA device: run with --tiny for a CPU dry run")
            return 0
        base = cog.T2VSettings(model="random-2b", dtype="bf16", device="cuda", steps=args.steps or 50).resolved()
        build = lambda: full_pipeline(torch.bfloat16)  # noqa: E731
    import diffusers

    diffusers.utils.logging.set_verbosity_error()
    t0 = time.perf_counter()
    raw = build()
    print(
        f"pipeline built in {time.perf_counter() - t0:.1f} s; {base.steps} steps, {base.frames} frames "
        f"{base.width}x{base.height}, {base.dtype}, {'cpu (tiny)' if args.tiny else torch.cuda.get_device_name()}"
    )
    rows, ref_clip, bare_loop, vae_s, ratios = [], None, None, None, None
    state = {k: v.clone() for k, v in raw.transformer.state_dict().items()}  # fp8 quantises in place: restore

    def fresh_transformer():
        """The same transformer weights, unquantised (after an fp8 variant), built on their device and dtype."""
        first = next(iter(state.values()))
        previous = torch.get_default_dtype()
        torch.set_default_dtype(first.dtype)
        try:
            with first.device:
                t = type(raw.transformer).from_config(raw.transformer.config)
        finally:
            torch.set_default_dtype(previous)
        t.load_state_dict(state)
        return t.eval()

    for name in ["bare"] + [v for v in args.variants if v != "bare"]:
        over = dict(VARIANTS[name])
        if name == "magcache" and ratios is not None:
            over["cache_args"] = {"mag_ratios": ",".join(f"{r:.6f}" for r in ratios)}
        s = dataclasses.replace(base, **over)
        if args.budget_s and bare_loop is not None:
            cost = (bare_loop + vae_s) * (2 if s.compile else 1) + (60 if s.compile else 0)
            if time.perf_counter() - t0 + cost > args.budget_s:
                print(f"{name}: skipped (budget: {args.budget_s:.0f} s would be exceeded; run it with --variants)")
                rows.append({"variant": name, "skipped": "time budget"})
                continue
        if s.fp8:
            try:
                cog.check_fp8(s.device)
                import torchao  # noqa: F401
            except (ValueError, ImportError) as e:
                print(f"{name}: skipped ({e})")
                rows.append({"variant": name, "skipped": str(e)})
                continue
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        try:
            pipe = cog.configure_pipeline(raw, s)
            compile_s = None
            if name == "bare":  # warm-up (kernels, allocator, cuDNN autotuning) on a 2-step clip, decoded
                decode(pipe, loop(pipe, dataclasses.replace(s, steps=2), prompt)[1])
                ratios = cog.calibrate_mag_ratios(pipe, s, prompt) if "magcache" in args.variants else None
            if s.compile:
                compile_s, _ = loop(pipe, s, prompt)
            seconds, latents = loop(pipe, s, prompt)
            decode_s, clip = decode(pipe, latents)
            if name == "bare":
                bare_loop, vae_s, ref_clip = seconds, decode_s, clip
            peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
            psnr = cog.psnr(clip, ref_clip)
            row = {
                "variant": name,
                "loop_s": seconds,
                "vae_decode_s": decode_s,
                "s_per_clip": seconds + vae_s,
                "speedup": (bare_loop + vae_s) / (seconds + vae_s),
                "psnr_db_vs_bare": psnr,
                "finite": bool(np.isfinite(latents.float().cpu().numpy()).all()),
                "compile_s": compile_s,
                "peak_gib": peak,
            }
            rows.append(row)
            print(
                f"{name:18s} loop {seconds:7.2f} s, {row['s_per_clip']:7.2f} s/clip, x{row['speedup']:.2f}, "
                f"PSNR {psnr:6.2f} dB vs bare, peak {peak:.1f} GiB"
                + (f", compile {compile_s:.0f} s" if compile_s else ""),
                flush=True,
            )
            report(
                "cogvideox",
                f"{name} s/clip ({s.steps} steps, {s.frames}x{s.width}x{s.height}, {s.dtype}"
                f"{', tiny CPU' if args.tiny else ''})",
                row["s_per_clip"],
                bare_loop + vae_s,
                "s",
                higher_is_better=False,
                note=f"PSNR {psnr:.2f} dB vs bare; peak {peak:.1f} GiB",
            )
        except Exception as e:  # one variant failing (e.g. a cache that this diffusers cannot apply) is reported
            print(f"{name}: FAILED {type(e).__name__}: {e}")
            rows.append({"variant": name, "failed": f"{type(e).__name__}: {e}"[:300]})
        finally:
            if hasattr(raw.transformer, "_orig_mod"):  # undo compile for the next variant
                raw.transformer = raw.transformer._orig_mod
            if getattr(raw.transformer, "is_cache_enabled", False):
                raw.transformer.disable_cache()
            if s.fp8:  # quantised in place: the next variant gets the original weights back
                raw.transformer = fresh_transformer()
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str) + "\n")
    failed = [r["variant"] for r in rows if "failed" in r]
    if failed:
        print(f"failed variants: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
