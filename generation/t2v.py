"""Any diffusers text-to-video pipeline as the render backend: one renderer over diffusers' pipeline interface.

What differs per model is data in `generation.generators` (families: frame/size grid, block names, caches, extra
call arguments; generators: checkpoints with their model cards' settings). `T2VSettings` holds what a run
chooses; every sampling field left None takes the generator's value (`resolved()`), so each default has one
home. A batch is a list of prompts with one seeded `torch.Generator` per clip: clip i gets the same noise
whatever batch it lands in. With every switch off the renderer calls the bare pipeline exactly as a
hand-written script following the model card would (bit-identical, tested per family). Switches: cpu offload,
VAE tiling/slicing, fp8 linear layers in the transformer blocks (torchao, compute capability >= 8.9), one of
diffusers' step caches (where diffusers runs it on the family; a clear error elsewhere), torch.compile;
`compare_to_uncached` renders the first N clips a second time without the cache and logs the PSNR.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from generation.generators import (  # noqa: F401 (re-exported: the renderer's registry)
    CACHES,
    DEFAULT_GENERATOR,
    FAMILIES,
    GENERATORS,
    Family,
    Generator,
    get_generator,
)
from generation.prompts import PromptRow

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
DType = Literal["fp16", "bf16", "fp32"]
Cache = Literal["none", "pab", "fastercache", "firstblock", "taylorseer", "magcache"]  # = CACHES
CALIBRATION_PROMPT = "a person is waving in the park"


@dataclass
class T2VSettings:
    """Generator, sampling and speed settings of a text-to-video render; None takes the generator's value.

    Args:
        generator: one of `GENERATORS` (cogvideox-2b is the paper's); its model card settings are the defaults.
        model: hub id or local pipeline folder (`save_pretrained` layout); default the generator's hub id.
        dtype: fp16 | bf16 | fp32 weights and compute (use fp32 on CPU); default the generator's.
        device: torch device; default cuda when available, else cpu.
        steps: denoising steps.
        guidance: classifier-free guidance scale (HunyuanVideo: the embedded guidance).
        frames: frames per clip (the family's grid: 4k + 1, 8k + 1 for LTX, 16k + 1 for CogVideoX1.5).
        width: frame width in pixels.
        height: frame height in pixels.
        fps: frame rate of the written files (and LTX's frame_rate conditioning).
        negative_prompt: negative prompt ("" for none); default the generator's.
        scheduler: diffusers scheduler class; default the generator's (built from the checkpoint's config).
        max_sequence_length: text tokens per prompt.
        call_args: extra keyword arguments of the pipeline call, e.g. {decode_timestep: 0.03} for LTX 0.9.1.
        batch_size: prompts per pipeline call.
        cpu_offload: `enable_model_cpu_offload` (needs accelerate; less GPU memory, slower).
        vae_tiling: decode the VAE in tiles (less memory).
        vae_slicing: decode a batch one clip at a time.
        compile: `torch.compile` the transformer (slow first batch, faster after).
        cache: one of `CACHES` the family supports: none (exact), pab (Pyramid Attention Broadcast),
            fastercache, firstblock (First Block Cache), taylorseer, magcache.
        cache_args: knobs of the cache, `{field: value}` over the family's defaults (values may be strings as
            typed on the command line: `"100,800"` for a tuple, `"none"` for None).
        fp8: fp8 weights and dynamic fp8 activations in the transformer blocks' linear layers (torchao; CUDA
            GPU of compute capability >= 8.9, e.g. L4/L40/H100/H200).
        compare_to_uncached: render the first N clips also without the cache and report their PSNR.
        compare_log: JSONL file that gets one line per compared clip (default: none, printed only).
    """

    generator: str = DEFAULT_GENERATOR
    model: str | None = None
    dtype: DType | None = None
    device: str | None = None
    steps: int | None = None
    guidance: float | None = None
    frames: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    negative_prompt: str | None = None
    scheduler: str | None = None
    max_sequence_length: int | None = None
    call_args: dict = field(default_factory=dict)
    batch_size: int = 1
    cpu_offload: bool = False
    vae_tiling: bool = False
    vae_slicing: bool = False
    compile: bool = False
    cache: Cache = "none"
    cache_args: dict = field(default_factory=dict)
    fp8: bool = False
    compare_to_uncached: int = 0
    compare_log: str | None = None

    @property
    def spec(self) -> Generator:
        return get_generator(self.generator)

    @property
    def family(self) -> Family:
        return FAMILIES[self.spec.family]

    def resolved(self) -> T2VSettings:
        """A copy with every None sampling field set to the generator's recommended value."""
        g = self.spec
        filled = {k: getattr(g, k) for k in ("model", "dtype", "steps", "guidance", "frames", "width", "height", "fps")}
        filled |= {"negative_prompt": g.negative_prompt, "scheduler": g.scheduler}
        filled["max_sequence_length"] = g.max_sequence_length
        return dataclasses.replace(self, **{k: v for k, v in filled.items() if getattr(self, k) is None})

    def record(self) -> dict:
        """What the manifest keeps per clip: generator, checkpoint and every setting that changes the pixels."""
        s = self.resolved()
        keys = ("model", "dtype", "steps", "guidance", "scheduler", "negative_prompt", "max_sequence_length")
        out = {"generator": s.generator, "label": s.spec.label or s.generator, **{k: getattr(s, k) for k in keys}}
        out |= {"cache": s.cache, "cache_args": dict(s.cache_args), "fp8": s.fp8, "compile": s.compile}
        return out | ({"call_args": dict(s.call_args)} if s.call_args else {})

    def check(self) -> None:
        """Raise a one-line ValueError for a setting this generator cannot take, before any model is loaded."""
        s = self.resolved()
        fam = s.family
        if s.dtype not in DTYPES:
            raise ValueError(f"--dtype {s.dtype!r}: choose one of {', '.join(DTYPES)}")
        step = 16 if s.generator == "cogvideox1.5-5b" else fam.frame_step
        if s.frames < 1 or (s.frames - 1) % step:
            raise ValueError(f"--frames {s.frames}: {s.generator} needs {step}k + 1 frames (e.g. {s.spec.frames})")
        if s.width % fam.size_step or s.height % fam.size_step:
            raise ValueError(f"--width/--height {s.width}x{s.height}: {s.generator} needs multiples of {fam.size_step}")
        if s.steps < 1 or s.batch_size < 1:
            raise ValueError("--steps and --batch_size must be >= 1")
        if s.cache not in CACHES:
            raise ValueError(f"--cache {s.cache!r}: choose one of {', '.join(CACHES)}")
        if s.cache != "none" and s.cache not in fam.caches:
            raise ValueError(
                f"--cache {s.cache}: diffusers has no {s.cache} for {fam.pipeline} ({s.generator}); this family "
                f"takes {', '.join(fam.caches)}"
            )
        if s.cache == "none" and s.cache_args:
            raise ValueError(f"--cache_args {', '.join(s.cache_args)} given without --cache")
        if s.compare_to_uncached < 0:
            raise ValueError(f"--compare_to_uncached {s.compare_to_uncached}: must be >= 0")
        if s.compare_to_uncached and s.cache == "none":
            raise ValueError(
                "--compare_to_uncached compares a cached render with the uncached one: it needs --cache (pab, ...)"
            )
        if s.cache != "none":
            cache_kwargs(s)  # unknown or malformed knobs fail here, before a model is loaded


# ------------------------------------------------------------------- loading


def load_pipeline(settings: T2VSettings):
    """The generator's diffusers pipeline from a hub id or local folder, its scheduler, and the chosen switches."""
    import importlib.util

    import diffusers

    s = settings.resolved()
    s.check()
    fam = s.family
    check_weights(s)
    # Without accelerate, low-memory loading is unavailable: say so once here instead of a warning per load.
    low_mem = importlib.util.find_spec("accelerate") is not None
    try:
        pipe = getattr(diffusers, fam.pipeline).from_pretrained(
            s.model, dtype=DTYPES[s.dtype], low_cpu_mem_usage=low_mem
        )
    except (OSError, ValueError) as e:  # no such folder/repo, no network or cache (HF_HUB_OFFLINE=1), gated
        raise ValueError(
            f"cannot load {fam.pipeline} weights for --generator {s.generator} from --model {s.model!r} "
            f"({str(e).splitlines()[0][:200]}). Download them first (huggingface-cli download {s.spec.model}) "
            "or give a local folder saved with save_pretrained; a hub id needs network access (HF_HUB_OFFLINE "
            "unset) or the local hub cache"
        ) from None
    set_scheduler(pipe, s)
    return configure_pipeline(pipe, s)


def check_weights(settings: T2VSettings) -> None:
    """Stop at once, naming what to download, when the weights are neither a local folder nor in the hub cache
    and the hub is off (HF_HUB_OFFLINE=1): diffusers would otherwise retry and warn before failing."""
    import os

    model = settings.model
    if Path(model).is_dir() or os.environ.get("HF_HUB_OFFLINE", "").lower() not in ("1", "true", "yes", "on"):
        return
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(model, "model_index.json")
    except ValueError:  # not a valid repo id either (e.g. a path that does not exist)
        cached = None
    if not isinstance(cached, str):
        raise ValueError(
            f"--generator {settings.generator}: no weights for --model {model!r} here (not a local folder, not in "
            f"the hub cache, HF_HUB_OFFLINE set). Download them (huggingface-cli download {settings.spec.model}) "
            "or pass --model /path/to/a/save_pretrained/folder"
        )


def set_scheduler(pipe, settings: T2VSettings) -> None:
    """Replace the checkpoint's scheduler by the generator's (its config + the generator's scheduler_args)."""
    import diffusers

    s = settings.resolved()
    cls = getattr(diffusers, s.scheduler, None)
    if cls is None:
        raise ValueError(f"--scheduler {s.scheduler!r}: no such diffusers scheduler")
    args = s.spec.scheduler_args if s.scheduler == s.spec.scheduler else {}
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **args)


def configure_pipeline(pipe, settings: T2VSettings):
    """Apply device placement and the memory/speed switches to a built pipeline, in this order: device,
    VAE switches, fp8, cache (calibrated if needed), compile (so the compiled graph includes the others)."""
    s = settings.resolved()
    device = s.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if s.fp8:
        check_fp8(device)  # before moving gigabytes to a device that cannot run it
    if s.cpu_offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    if s.family.vae_fp32:
        pipe.vae.to(torch.float32)
    if s.vae_tiling:
        pipe.vae.enable_tiling()
    if s.vae_slicing:
        pipe.vae.enable_slicing()
    pipe.set_progress_bar_config(disable=True)
    if s.fp8:
        apply_fp8(pipe.transformer, s.dtype, s.family.blocks)
    if s.cache != "none":
        pipe.transformer.enable_cache(cache_config(pipe, s))
    if s.compile:
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


def cache_kwargs(settings: T2VSettings) -> dict:
    """The cache's knobs: the family's defaults for it updated with `cache_args`, each checked and typed."""
    import diffusers

    s = settings
    config_cls = _cache_classes()[s.cache]
    known = {f.name: f.default for f in dataclasses.fields(config_cls) if not f.name.endswith("callback")}
    defaults = s.family.cache_defaults.get(s.cache, {})
    known.update(defaults)
    kwargs = dict(defaults)
    for key, value in s.cache_args.items():
        if key not in known or key in ("num_inference_steps", "calibrate"):
            raise ValueError(
                f"--cache_args {key}: not a knob of --cache {s.cache} (diffusers {diffusers.__version__} "
                f"{config_cls.__name__}); choose from "
                f"{', '.join(k for k in known if k not in ('num_inference_steps', 'calibrate'))}"
            )
        if isinstance(value, str):
            try:
                value = _parse_value(key, value, known[key])
            except ValueError as e:
                raise ValueError(f"--cache_args {key}={value}: {e}") from None
        elif isinstance(value, list) and isinstance(known[key], tuple):  # a YAML list for a (low, high) range
            value = tuple(value)
        kwargs[key] = value
    return kwargs


def cache_config(pipe, settings: T2VSettings):
    """The diffusers cache config for `settings.cache` on this pipeline (MagCache ratios calibrated if absent)."""
    s = settings.resolved()
    kwargs = cache_kwargs(s)
    name = s.cache
    if name in ("pab", "fastercache"):  # both skip by denoising timestep: read the pipeline's current one
        kwargs["current_timestep_callback"] = lambda: pipe.current_timestep
    if name == "fastercache":
        weight = float(kwargs.pop("attention_weight"))
        kwargs["attention_weight_callback"] = lambda _module: weight
    if name == "taylorseer":
        kwargs.setdefault("taylor_factors_dtype", DTYPES[s.dtype])
    if name == "magcache":
        kwargs["num_inference_steps"] = s.steps
        if kwargs["mag_ratios"] is None:
            ratios = calibrate_mag_ratios(pipe, s)
            print(
                f"MagCache ratios calibrated on {CALIBRATION_PROMPT!r} ({s.steps} steps); reuse them with "
                f"--cache_args '{{mag_ratios: \"{','.join(f'{r:.4f}' for r in ratios)}\"}}'"
            )
            kwargs["mag_ratios"] = ratios
    return _cache_classes()[name](**kwargs)


def calibrate_mag_ratios(pipe, settings: T2VSettings, prompt: str = CALIBRATION_PROMPT) -> list[float]:
    """MagCache's magnitude ratios for this checkpoint and step count, from one uncached render: at step t, mean
    over tokens of |r_t| / |r_(t-1)|, r = (last block's hidden-state output) - (first block's input), as diffusers'
    calibration mode computes them (1.0 at the first step). Families that run the transformer once per guidance
    branch (Wan: cond, then uncond) keep one MagCache state per branch: the cond branch's ratios are used."""
    blocks = [b for attr in settings.family.blocks for b in getattr(pipe.transformer, attr)]
    inputs, norms = [], []

    def before(_module, args, kwargs):
        inputs.append(kwargs["hidden_states"] if "hidden_states" in kwargs else args[0])

    def after(_module, _args, output):
        out = output[0] if isinstance(output, tuple) else output
        norms.append(torch.linalg.norm((out - inputs.pop()).float(), dim=-1))  # (B, N): per video token

    handles = [blocks[0].register_forward_pre_hook(before, with_kwargs=True), blocks[-1].register_forward_hook(after)]
    try:
        gen_device = "cpu" if settings.cpu_offload else pipe.device
        pipe(**call_kwargs(settings, [prompt], [torch.Generator(device=gen_device).manual_seed(0)], "latent"))
    finally:
        for h in handles:
            h.remove()
    steps = settings.resolved().steps
    per_step = max(1, len(norms) // steps)  # transformer calls per denoising step
    cond = norms[::per_step][:steps]
    return [1.0] + [(b / (a + 1e-8)).mean().item() for a, b in zip(cond, cond[1:])]


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


def apply_fp8(transformer: torch.nn.Module, dtype: str, blocks: tuple[str, ...] = ("transformer_blocks",)) -> None:
    """fp8 (e4m3) weights and per-token dynamic fp8 activations for the transformer blocks' linear layers
    (torchao). Row-wise scales need bf16 activations; fp16/fp32 pipelines get one scale per tensor."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, PerTensor, quantize_

    granularity = PerRow() if dtype == "bf16" else PerTensor()
    prefixes = tuple(f"{b}." for b in blocks)  # patch embedding, text projections and output layer stay in dtype
    quantize_(
        transformer,
        Float8DynamicActivationFloat8WeightConfig(granularity=granularity),
        filter_fn=lambda m, name: isinstance(m, torch.nn.Linear) and name.startswith(prefixes),
    )


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 clips (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


# ------------------------------------------------------------------- rendering


def call_kwargs(settings: T2VSettings, prompts: list[str], generators: list, output_type: str = "np") -> dict:
    """The pipeline call for these prompts: what a hand-written script passes, per family."""
    s = settings.resolved()
    fam = s.family
    kw = dict(
        prompt=prompts,
        generator=generators,
        num_videos_per_prompt=1,
        num_inference_steps=s.steps,
        guidance_scale=s.guidance,
        num_frames=s.frames,
        height=s.height,
        width=s.width,
        max_sequence_length=s.max_sequence_length,
        output_type=output_type,
    )
    if fam.dynamic_cfg:
        kw["use_dynamic_cfg"] = s.spec.dynamic_cfg
    if fam.frame_rate:
        kw["frame_rate"] = int(round(s.fps))
    if s.negative_prompt:
        kw["negative_prompt"] = [s.negative_prompt] * len(prompts)
    return kw | dict(s.call_args)


class T2VRenderer:
    """Renders batches of prompt rows: `render_batch(rows) -> [uint8 (T, H, W, 3)]`.

    Args:
        settings: generator, sampling and speed settings.
        pipe: an already built pipeline (tests, benchmarks); default: `load_pipeline(settings)`.
    """

    def __init__(self, settings: T2VSettings | None = None, pipe=None):
        self.settings = (settings or T2VSettings()).resolved()
        self.settings.check()
        self.pipe = pipe if pipe is not None else load_pipeline(self.settings)
        self.batch_size = self.settings.batch_size
        self.name = self.settings.family.name  # the manifest's `backend`
        self.generator = self.settings.generator
        self.record = self.settings.record()  # the manifest's `generation` settings, per clip
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
        out = self.pipe(**call_kwargs(s, [row.prompt for row in rows], generators))
        frames = np.asarray(out.frames)  # (B, T, H, W, 3) floats in [0, 1]
        if not np.isfinite(frames).all():  # fp16 overflow, a diverging cache: fail the rows, never write black clips
            raise ValueError(
                f"the pipeline returned non-finite frames ({s.generator}, dtype {s.dtype}, cache {s.cache}, fp8 "
                f"{s.fp8}); try --dtype bf16 or a milder cache"
            )
        return [np.clip(np.rint(f * 255), 0, 255).astype(np.uint8) for f in frames]

    def __call__(self, row: PromptRow) -> np.ndarray:
        return self.render_batch([row])[0]
