"""The `cogvideox` render backend: diffusers' CogVideoXPipeline behind the render loop's batch interface.

Defaults are the paper's CogVideoX-2B settings (DESIGN.md "Video rendering"): fp16, CogVideoXDDIMScheduler
(trailing timesteps, as the model card uses), no dynamic CFG, 50 steps, guidance 6, 49 frames at 720x480,
saved at 8 fps. diffusers ignores `num_videos_per_prompt` for CogVideoX, so a batch is a list of prompts
with one seeded `torch.Generator` per clip: clip i gets the same noise whatever batch it lands in. Weights
come from a hub id or a local folder (`save_pretrained` layout); the switches trade speed for memory
(cpu offload, VAE tiling/slicing), compile the transformer, quantise its linear layers to fp8 (torchao, GPUs of
compute capability >= 8.9) or turn on one of diffusers' step caches (`CACHES`). A cache trades exactness for
speed: `compare_to_uncached` renders the first N clips a second time without it and reports the PSNR of the
cached clip against the uncached one, so the choice can be made per model and setting.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from generation.prompts import PromptRow

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}

# diffusers' step caches that work on CogVideoXTransformer3DModel (diffusers >= 0.36), by option name.
CACHES: tuple[str, ...] = ("none", "pab", "fastercache", "firstblock", "taylorseer", "magcache")
# TaylorSeer hooks modules whose names *fullmatch* its patterns; its defaults ("^transformer_blocks.*attn")
# never match CogVideoX's `transformer_blocks.<i>.attn1`, so without these it silently caches nothing.
COGVIDEOX_TAYLORSEER_MODULES = [r"transformer_blocks\.\d+\.attn1", r"transformer_blocks\.\d+\.ff"]
# Knobs per cache (the config dataclass fields; override any with `cache_args`). PAB and FasterCache: the
# values of diffusers' CogVideoX examples (docs/optimization/cache.md); the others: the configs' defaults.
# `attention_weight` (FasterCache) is the constant of its attention_weight_callback; MagCache's `mag_ratios`
# are checkpoint-dependent: None calibrates them once at load (one uncached render of CALIBRATION_PROMPT).
CACHE_DEFAULTS: dict[str, dict] = {
    "pab": {"spatial_attention_block_skip_range": 2, "spatial_attention_timestep_skip_range": (100, 800)},
    "fastercache": {
        "spatial_attention_block_skip_range": 2,
        "spatial_attention_timestep_skip_range": (-1, 681),
        "attention_weight": 0.3,
        "unconditional_batch_skip_range": 5,
        "unconditional_batch_timestep_skip_range": (-1, 781),
        "tensor_format": "BFCHW",
    },
    "firstblock": {"threshold": 0.05},
    "taylorseer": {
        "cache_interval": 5,
        "disable_cache_before_step": 3,
        "max_order": 1,
        "cache_identifiers": COGVIDEOX_TAYLORSEER_MODULES,
    },
    "magcache": {"threshold": 0.06, "max_skip_steps": 3, "retention_ratio": 0.2, "mag_ratios": None},
}
CALIBRATION_PROMPT = "a person is waving in the park"


@dataclass
class CogVideoXSettings:
    """Pipeline and sampling settings (defaults: CogVideoX-2B as in the paper).

    Args:
        model: hub id or local folder of a CogVideoXPipeline.
        dtype: fp16 | bf16 | fp32 weights and compute (fp16 for 2B; use fp32 on CPU).
        device: torch device; default cuda when available, else cpu.
        steps: denoising steps.
        guidance: classifier-free guidance scale.
        num_frames: frames per clip (4k + 1).
        width: frame width in pixels.
        height: frame height in pixels.
        max_sequence_length: T5 tokens per prompt (226 for CogVideoX).
        batch_size: prompts per pipeline call.
        cpu_offload: `enable_model_cpu_offload` (needs accelerate; less GPU memory, slower).
        vae_tiling: decode the VAE in tiles (less memory at 720x480).
        vae_slicing: decode a batch one clip at a time.
        compile: `torch.compile` the transformer (slow first batch, faster after).
        cache: one of `CACHES`: none (exact), pab (Pyramid Attention Broadcast), fastercache, firstblock
            (First Block Cache), taylorseer, magcache.
        cache_args: knobs of the cache, `{field: value}` over `CACHE_DEFAULTS[cache]` (values may be strings
            as typed on the command line: `"100,800"` for a tuple, `"none"` for None).
        fp8: fp8 weights and dynamic fp8 activations in the transformer's linear layers (torchao; CUDA GPU
            of compute capability >= 8.9, e.g. L4/L40/H100/H200).
        compare_to_uncached: render the first N clips also without the cache and report their PSNR.
        compare_log: JSONL file that gets one line per compared clip (default: none, printed only).
    """

    model: str = "THUDM/CogVideoX-2b"
    dtype: str = "fp16"
    device: str | None = None
    steps: int = 50
    guidance: float = 6.0
    num_frames: int = 49
    width: int = 720
    height: int = 480
    max_sequence_length: int = 226
    batch_size: int = 1
    cpu_offload: bool = False
    vae_tiling: bool = False
    vae_slicing: bool = False
    compile: bool = False
    cache: str = "none"
    cache_args: dict = field(default_factory=dict)
    fp8: bool = False
    compare_to_uncached: int = 0
    compare_log: str | None = None

    def check(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"--dtype {self.dtype!r}: choose one of {', '.join(DTYPES)}")
        if self.num_frames < 1 or (self.num_frames - 1) % 4:
            raise ValueError(f"--frames {self.num_frames}: CogVideoX needs 4k + 1 frames (e.g. 9, 49)")
        if self.width % 16 or self.height % 16:
            raise ValueError(f"--width/--height {self.width}x{self.height}: CogVideoX needs multiples of 16")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("--steps and --batch-size must be >= 1")
        if self.cache not in CACHES:
            raise ValueError(f"--cache {self.cache!r}: choose one of {', '.join(CACHES)}")
        if self.cache == "none" and self.cache_args:
            raise ValueError(f"--cache-arg {', '.join(self.cache_args)} given without --cache")
        if self.compare_to_uncached < 0:
            raise ValueError(f"--compare-to-uncached {self.compare_to_uncached}: must be >= 0")
        if self.compare_to_uncached and self.cache == "none":
            raise ValueError(
                "--compare-to-uncached compares a cached render with the uncached one: "
                "it needs --cache (pab, fastercache, ...)"
            )
        if self.cache != "none":
            cache_kwargs(self)  # unknown or malformed knobs fail here, before a model is loaded


def load_pipeline(settings: CogVideoXSettings):
    """CogVideoXPipeline from a hub id or local folder, with the DDIM scheduler and the chosen switches."""
    from diffusers import CogVideoXDDIMScheduler, CogVideoXPipeline

    settings.check()
    import importlib.util

    # Without accelerate, low-memory loading is unavailable: say so once here instead of a warning per load.
    low_mem = importlib.util.find_spec("accelerate") is not None
    try:
        pipe = CogVideoXPipeline.from_pretrained(
            settings.model, dtype=DTYPES[settings.dtype], low_cpu_mem_usage=low_mem
        )
    except (OSError, ValueError) as e:  # no such folder/repo, no network or cache (HF_HUB_OFFLINE=1), gated
        raise ValueError(
            f"cannot load a CogVideoX pipeline from --model {settings.model!r} ({e}). Give a local "
            "folder saved with save_pretrained, or a hub id with network access "
            "(HF_HUB_OFFLINE unset) or in the local hub cache"
        ) from None
    pipe.scheduler = CogVideoXDDIMScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
    return configure_pipeline(pipe, settings)


def configure_pipeline(pipe, settings: CogVideoXSettings):
    """Apply device placement and the memory/speed switches to a built pipeline, in this order: device,
    VAE switches, fp8, cache (calibrated if needed), compile (so the compiled graph includes the others)."""
    device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if settings.fp8:
        check_fp8(device)  # before moving gigabytes to a device that cannot run it
    if settings.cpu_offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    if settings.vae_tiling:
        pipe.vae.enable_tiling()
    if settings.vae_slicing:
        pipe.vae.enable_slicing()
    pipe.set_progress_bar_config(disable=True)
    if settings.fp8:
        apply_fp8(pipe.transformer, settings.dtype)
    if settings.cache != "none":
        pipe.transformer.enable_cache(cache_config(pipe, settings))
    if settings.compile:
        pipe.transformer = torch.compile(pipe.transformer)
    return pipe


# ------------------------------------------------------------------- caches, fp8


def _parse_value(key: str, text: str, default):
    """A command-line string as the type of the knob's default (tuple from "a,b", None from "none")."""
    text = text.strip()
    if text.lower() == "none":
        return None
    if key.endswith("dtype"):
        if text not in DTYPES:
            raise ValueError(f"choose one of {', '.join(DTYPES)}")
        return DTYPES[text]
    if isinstance(default, bool):
        if text.lower() not in ("true", "false"):
            raise ValueError("expected true or false")
        return text.lower() == "true"
    if key.endswith("identifiers"):  # module-name regexes
        return [part.strip() for part in text.split(",")]
    if isinstance(default, (tuple, list)) or "," in text:
        numbers = [float(part) for part in text.split(",")]
        numbers = [int(n) if n.is_integer() else n for n in numbers]
        return tuple(numbers) if isinstance(default, tuple) else numbers
    if isinstance(default, int) or (default is None and text.lstrip("-").isdigit()):
        return int(text)
    if isinstance(default, float) or default is None:
        return float(text)
    return text


def cache_kwargs(settings: CogVideoXSettings) -> dict:
    """The cache's knobs: `CACHE_DEFAULTS[cache]` updated with `cache_args`, each checked and typed."""
    import diffusers

    config_cls = _cache_classes()[settings.cache]
    known = {f.name: f.default for f in dataclasses.fields(config_cls) if not f.name.endswith("callback")}
    defaults = CACHE_DEFAULTS[settings.cache]
    known.update(defaults)
    kwargs = dict(defaults)
    for key, value in settings.cache_args.items():
        if key not in known or key == "num_inference_steps":
            raise ValueError(
                f"--cache-arg {key}: not a knob of --cache {settings.cache} (diffusers "
                f"{diffusers.__version__} {config_cls.__name__}); choose from "
                f"{', '.join(k for k in known if k != 'num_inference_steps')}"
            )
        if isinstance(value, str):
            try:
                value = _parse_value(key, value, known[key])
            except ValueError as e:
                raise ValueError(f"--cache-arg {key}={value}: {e}") from None
        kwargs[key] = value
    return kwargs


def _cache_classes() -> dict:
    from diffusers import (
        FasterCacheConfig,
        FirstBlockCacheConfig,
        MagCacheConfig,
        PyramidAttentionBroadcastConfig,
        TaylorSeerCacheConfig,
    )

    return {
        "pab": PyramidAttentionBroadcastConfig,
        "fastercache": FasterCacheConfig,
        "firstblock": FirstBlockCacheConfig,
        "taylorseer": TaylorSeerCacheConfig,
        "magcache": MagCacheConfig,
    }


def cache_config(pipe, settings: CogVideoXSettings):
    """The diffusers cache config for `settings.cache` on this pipeline (MagCache ratios calibrated if absent)."""
    kwargs = cache_kwargs(settings)
    name = settings.cache
    if name in ("pab", "fastercache"):  # both skip by denoising timestep: read the pipeline's current one
        kwargs["current_timestep_callback"] = lambda: pipe.current_timestep
    if name == "fastercache":
        weight = float(kwargs.pop("attention_weight"))
        kwargs["attention_weight_callback"] = lambda _module: weight
    if name == "taylorseer":
        kwargs.setdefault("taylor_factors_dtype", DTYPES[settings.dtype])
    if name == "magcache":
        kwargs["num_inference_steps"] = settings.steps
        if kwargs["mag_ratios"] is None:
            ratios = calibrate_mag_ratios(pipe, settings)
            print(
                f"MagCache ratios calibrated on {CALIBRATION_PROMPT!r} ({settings.steps} steps); reuse them with "
                f"--cache-arg mag_ratios={','.join(f'{r:.4f}' for r in ratios)}"
            )
            kwargs["mag_ratios"] = ratios
    return _cache_classes()[name](**kwargs)


def calibrate_mag_ratios(pipe, settings: CogVideoXSettings, prompt: str = CALIBRATION_PROMPT) -> list[float]:
    """MagCache's magnitude ratios for this checkpoint and step count, from one uncached render: at step t,
    mean over tokens of |r_t| / |r_(t-1)|, r = (last block's video-token output) - (first block's input),
    as diffusers' calibration mode computes them (1.0 at the first step)."""
    blocks = pipe.transformer.transformer_blocks
    inputs, ratios, previous = [], [], []

    def before(_module, args, kwargs):
        inputs.append(kwargs["hidden_states"] if "hidden_states" in kwargs else args[0])

    def after(_module, _args, output):
        residual = (output[0] - inputs.pop()).float()  # (2B, N, D): [uncond, cond] video tokens
        norm = torch.linalg.norm(residual, dim=-1)
        ratios.append(1.0 if not previous else (norm / (previous[0] + 1e-8)).mean().item())
        previous[:] = [norm]

    handles = [blocks[0].register_forward_pre_hook(before, with_kwargs=True), blocks[-1].register_forward_hook(after)]
    try:
        s = settings
        gen_device = "cpu" if s.cpu_offload else pipe.device
        pipe(
            prompt=[prompt],
            generator=[torch.Generator(device=gen_device).manual_seed(0)],
            num_inference_steps=s.steps,
            guidance_scale=s.guidance,
            use_dynamic_cfg=False,
            num_frames=s.num_frames,
            height=s.height,
            width=s.width,
            max_sequence_length=s.max_sequence_length,
            output_type="latent",
        )
    finally:
        for h in handles:
            h.remove()
    return ratios


def check_fp8(device: str) -> None:
    """Raise a ValueError unless fp8 can run here: torchao installed, a CUDA device of capability >= 8.9."""
    dev = torch.device(device)
    if dev.type != "cuda" or not torch.cuda.is_available():
        raise ValueError(
            f"--fp8 needs a CUDA GPU of compute capability >= 8.9 (L4, L40, H100, H200); the device "
            f"here is {dev}. Drop --fp8 on this machine"
        )
    capability = torch.cuda.get_device_capability(dev)
    if capability < (8, 9):
        raise ValueError(
            f"--fp8 needs compute capability >= 8.9; {torch.cuda.get_device_name(dev)} has "
            f"{capability[0]}.{capability[1]}. Drop --fp8 (use --dtype bf16/fp16)"
        )
    try:
        import torchao  # noqa: F401
    except ImportError:
        raise ValueError("--fp8 needs torchao: pip install 'synthact[fp8]' (or pip install torchao)") from None


def apply_fp8(transformer: torch.nn.Module, dtype: str) -> None:
    """fp8 (e4m3) weights and per-token dynamic fp8 activations for the transformer's linear layers (torchao).
    Row-wise scales need bf16 activations; fp16/fp32 pipelines get one scale per tensor."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, PerTensor, quantize_

    granularity = PerRow() if dtype == "bf16" else PerTensor()
    # Only the transformer blocks' projections: the patch embedding and the output layer stay in `dtype`.
    quantize_(
        transformer,
        Float8DynamicActivationFloat8WeightConfig(granularity=granularity),
        filter_fn=lambda m, name: isinstance(m, torch.nn.Linear) and name.startswith("transformer_blocks."),
    )


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 clips (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


class CogVideoXRenderer:
    """Renders batches of prompt rows: `render_batch(rows) -> [uint8 (T, H, W, 3)]`.

    Args:
        settings: pipeline and sampling settings.
        pipe: an already built pipeline (tests, benchmarks); default: `load_pipeline(settings)`.
    """

    name = "cogvideox"

    def __init__(self, settings: CogVideoXSettings | None = None, pipe=None):
        self.settings = settings or CogVideoXSettings()
        self.settings.check()
        self.pipe = pipe if pipe is not None else load_pipeline(self.settings)
        self.batch_size = self.settings.batch_size
        self.deviations: list[dict] = []  # one per clip compared with its uncached render

    def render_batch(self, rows: list[PromptRow]) -> list[np.ndarray]:
        if len(self.deviations) >= self.settings.compare_to_uncached:
            return self._render(rows)
        start = time.perf_counter()
        cached = self._render(rows)
        seconds = time.perf_counter() - start
        transformer = self.pipe.transformer
        config = transformer._cache_config  # diffusers CacheMixin: the config enable_cache was given
        transformer.disable_cache()
        try:
            start = time.perf_counter()
            exact = self._render(rows)
            seconds_exact = time.perf_counter() - start
        finally:
            transformer.enable_cache(config)
        for row, a, b in zip(rows, cached, exact):
            d = {
                "row_id": row.row_id,
                "cache": self.settings.cache,
                "psnr_db": psnr(a, b),
                "batch_s": round(seconds, 3),
                "batch_s_uncached": round(seconds_exact, 3),
            }
            self.deviations.append(d)
            print(
                f"{row.row_id}: {d['cache']} vs uncached PSNR {d['psnr_db']:.2f} dB, batch {seconds:.1f} s vs "
                f"{seconds_exact:.1f} s uncached",
                flush=True,
            )
            if self.settings.compare_log:
                with Path(self.settings.compare_log).open("a", encoding="utf-8") as f:
                    f.write(json.dumps({**d, "psnr_db": None if math.isinf(d["psnr_db"]) else d["psnr_db"]}) + "\n")
        return cached

    def _render(self, rows: list[PromptRow]) -> list[np.ndarray]:
        s = self.settings
        # One generator per clip, seeded by the row: the clip does not depend on its batch-mates.
        gen_device = "cpu" if s.cpu_offload else self.pipe.device
        generators = [torch.Generator(device=gen_device).manual_seed(row.seed) for row in rows]
        out = self.pipe(
            prompt=[row.prompt for row in rows],
            generator=generators,
            num_videos_per_prompt=1,
            num_inference_steps=s.steps,
            guidance_scale=s.guidance,
            use_dynamic_cfg=False,
            num_frames=s.num_frames,
            height=s.height,
            width=s.width,
            max_sequence_length=s.max_sequence_length,
            output_type="np",
        )
        frames = np.asarray(out.frames)  # (B, T, H, W, 3) floats in [0, 1]
        if not np.isfinite(frames).all():  # fp16 overflow, a diverging cache: fail the rows, never write black clips
            raise ValueError(
                f"the pipeline returned non-finite frames (dtype {s.dtype}, cache {s.cache}, fp8 "
                f"{s.fp8}); try --dtype bf16 or a milder cache"
            )
        return [np.clip(np.rint(f * 255), 0, 255).astype(np.uint8) for f in frames]

    def __call__(self, row: PromptRow) -> np.ndarray:
        return self.render_batch([row])[0]


# ------------------------------------------------------------------- toy-size pipeline (tests, benchmarks)

TINY_WORDS = (
    "a person is waving jumping clapping in on the park beach gym room man woman girl boy tall short red "
    "blue green shirt jacket arms legs hands slowly camera shot"
).split()


def tiny_tokenizer():
    """A T5 (Unigram) tokenizer from an in-memory vocabulary: whole words, then single letters as fallback."""
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [("\u2581" + w, -1.0 - 0.01 * i) for i, w in enumerate(TINY_WORDS)]
    vocab += [("\u2581", -4.0)] + [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz.,"]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def tiny_pipeline(seed: int = 0, channels: int = 8, layers: int = 1):
    """CogVideoX-2B's architecture at toy size, random weights, no download: a `layers`-layer transformer
    (First Block Cache needs >= 2), a 4-level VAE of `channels` channels, a 1-layer T5 encoder and
    `tiny_tokenizer`, in eval mode (as from_pretrained returns it: T5 dropout off, so renders are
    deterministic). Use with `tiny_pipeline_settings()` (9 frames, 16 tokens; any 16-multiple frame size)."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    tok = tiny_tokenizer()
    text = T5EncoderModel(T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=37, num_layers=1, num_heads=4))
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
    for module in (text, transformer, vae):
        module.eval()
    return CogVideoXPipeline(
        tokenizer=tok, text_encoder=text, vae=vae, transformer=transformer, scheduler=CogVideoXDDIMScheduler()
    )


def tiny_pipeline_settings(**overrides) -> CogVideoXSettings:
    """Settings matching `tiny_pipeline`: fp32 on CPU, 2 steps, 9 frames of 16x16, 16 text tokens."""
    base = dict(
        model="tiny", dtype="fp32", device="cpu", steps=2, num_frames=9, width=16, height=16, max_sequence_length=16
    )
    return CogVideoXSettings(**{**base, **overrides})
