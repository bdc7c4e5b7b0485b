"""The generators `generation render` knows: diffusers pipeline families and named checkpoints with their model
cards' recommended settings, each with its source (data, not code: the renderer is `generation.t2v`).

A *family* is what the renderer needs to know about a diffusers pipeline class (CogVideoX, Wan, LTX, HunyuanVideo):
its frame and size grid, where its transformer blocks live (fp8, TaylorSeer, MagCache calibration), which of
diffusers' step caches run on it (diffusers 0.42.1, checked on the tiny pipelines) and which extra call arguments
it takes. A *generator* is a checkpoint: hub id, resolution, frames, fps, steps, guidance, scheduler, negative
prompt, dtype, and the s/clip we measured or its card documents (`python -m generation plan`). Add one: a
`Generator(...)` entry here (and its configs/generation/render_<name>.yaml, which a test keeps equal).
"""

from __future__ import annotations

from dataclasses import dataclass, field

CACHES: tuple[str, ...] = ("none", "pab", "fastercache", "firstblock", "taylorseer", "magcache")


@dataclass(frozen=True)
class Family:
    """What the renderer needs to know about one diffusers pipeline class."""

    name: str
    pipeline: str  # diffusers pipeline class
    frame_step: int  # frames must be frame_step * k + 1
    size_step: int  # width and height must be multiples of this
    blocks: tuple[str, ...]  # transformer attributes holding the block lists (fp8, TaylorSeer, MagCache)
    caches: tuple[str, ...]  # diffusers step caches that run on this family (diffusers 0.42.1, tiny pipelines:
    # FasterCache fails inside diffusers on Wan and LTX, so those two do not list it)
    cache_defaults: dict  # per-cache knobs over diffusers' config defaults
    dynamic_cfg: bool = False  # takes `use_dynamic_cfg` (CogVideoX)
    frame_rate: bool = False  # takes `frame_rate` (LTX: micro-conditioning on fps)
    vae_fp32: bool = False  # the card decodes with an fp32 VAE (Wan)


def _taylorseer(blocks: str, attn: str, ff: str) -> dict:
    # TaylorSeer hooks modules whose names *fullmatch* its patterns; diffusers' defaults ("^transformer_blocks.*attn")
    # miss e.g. CogVideoX's `transformer_blocks.<i>.attn1`, and then it silently caches nothing.
    return {
        "cache_interval": 5,
        "disable_cache_before_step": 3,
        "max_order": 1,
        "cache_identifiers": [rf"{blocks}\.\d+\.{attn}", rf"{blocks}\.\d+\.{ff}"],
    }


_PAB = {"spatial_attention_block_skip_range": 2, "spatial_attention_timestep_skip_range": (100, 800)}
_MAG = {"threshold": 0.06, "max_skip_steps": 3, "retention_ratio": 0.2, "mag_ratios": None}

# Cache knobs: PAB and FasterCache for CogVideoX are diffusers' CogVideoX examples (docs/optimization/cache.md);
# `attention_weight` is FasterCache's attention_weight_callback constant; MagCache's `mag_ratios` are
# checkpoint-dependent: None calibrates them once at load (one uncached render of CALIBRATION_PROMPT).
FAMILIES: dict[str, Family] = {
    "cogvideox": Family(
        "cogvideox",
        "CogVideoXPipeline",
        frame_step=4,
        size_step=16,
        blocks=("transformer_blocks",),
        caches=CACHES[1:],
        dynamic_cfg=True,
        cache_defaults={
            "pab": _PAB,
            "fastercache": {
                "spatial_attention_block_skip_range": 2,
                "spatial_attention_timestep_skip_range": (-1, 681),
                "attention_weight": 0.3,
                "unconditional_batch_skip_range": 5,
                "unconditional_batch_timestep_skip_range": (-1, 781),
                "tensor_format": "BFCHW",
            },
            "firstblock": {"threshold": 0.05},
            "taylorseer": _taylorseer("transformer_blocks", "attn1", "ff"),
            "magcache": _MAG,
        },
    ),
    "wan": Family(
        "wan",
        "WanPipeline",
        frame_step=4,
        size_step=16,
        blocks=("blocks",),
        caches=("pab", "firstblock", "taylorseer", "magcache"),
        vae_fp32=True,
        cache_defaults={
            "pab": _PAB,
            "firstblock": {"threshold": 0.05},
            "taylorseer": _taylorseer("blocks", "attn1", "ffn"),
            "magcache": _MAG,
        },
    ),
    "ltx": Family(
        "ltx",
        "LTXPipeline",
        frame_step=8,
        size_step=32,
        blocks=("transformer_blocks",),
        caches=("pab", "firstblock", "taylorseer", "magcache"),
        frame_rate=True,
        cache_defaults={
            "pab": _PAB,
            "firstblock": {"threshold": 0.05},
            "taylorseer": _taylorseer("transformer_blocks", "attn1", "ff"),
            "magcache": _MAG,
        },
    ),
    "hunyuan": Family(
        "hunyuan",
        "HunyuanVideoPipeline",
        frame_step=4,
        size_step=16,
        blocks=("transformer_blocks", "single_transformer_blocks"),
        caches=CACHES[1:],
        cache_defaults={
            "pab": _PAB,
            # diffusers' HunyuanVideo cache tests: guidance-distilled (one forward per step, no uncond batch)
            "fastercache": {
                "spatial_attention_block_skip_range": 2,
                "spatial_attention_timestep_skip_range": (-1, 901),
                "unconditional_batch_skip_range": 2,
                "attention_weight": 0.5,
                "is_guidance_distilled": True,
            },
            "firstblock": {"threshold": 0.05},
            "taylorseer": _taylorseer("transformer_blocks", "attn", "ff"),
            "magcache": _MAG,
        },
    ),
}


@dataclass(frozen=True)
class Generator:
    """A checkpoint and its model card's recommended sampling settings."""

    name: str
    family: str
    model: str  # hub id (diffusers layout)
    width: int
    height: int
    frames: int
    fps: float
    steps: int
    guidance: float
    dtype: str
    scheduler: str  # diffusers scheduler class, built from the checkpoint's scheduler config + scheduler_args
    source: str  # where these settings come from
    scheduler_args: dict = field(default_factory=dict)
    negative_prompt: str | None = None
    max_sequence_length: int = 226
    dynamic_cfg: bool = False
    seconds_per_clip: float | None = None  # at these settings, bare; None: not measured, none documented
    seconds_source: str = "not measured"  # what measured/documented it: device, date, who
    label: str = ""  # display name in reports, e.g. "Wan2.1-1.3B" (default: name)


WAN_NEGATIVE = (  # the Wan2.1 model card's negative prompt (Chinese, as published)
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，"
    "残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，"
    "三条腿，背景人很多，倒着走"
)
_WAN_UNIPC = {"prediction_type": "flow_prediction", "use_flow_sigmas": True, "num_train_timesteps": 1000}

GENERATORS: dict[str, Generator] = {
    g.name: g
    for g in (
        Generator(
            "cogvideox-2b",
            "cogvideox",
            "THUDM/CogVideoX-2b",
            720,
            480,
            49,
            8,
            50,
            6.0,
            "fp16",
            "CogVideoXDDIMScheduler",
            label="CogVideoX-2B",
            source="paper (Li et al.) and huggingface.co/THUDM/CogVideoX-2b: fp16, DDIM trailing, 49 frames 720x480 8 fps",
            scheduler_args={"timestep_spacing": "trailing"},
            seconds_per_clip=38.6,
            seconds_source="measured: H200, bf16 random weights of the true shapes, bare (issue 17, code 7aedcb2)",
        ),
        Generator(
            "cogvideox-5b",
            "cogvideox",
            "THUDM/CogVideoX-5b",
            720,
            480,
            49,
            8,
            50,
            6.0,
            "bf16",
            "CogVideoXDPMScheduler",
            label="CogVideoX-5B",
            source="huggingface.co/THUDM/CogVideoX-5b: bf16, 49 frames 720x480 8 fps, 50 steps, guidance 6; "
            "DPM + dynamic CFG per diffusers' CogVideoX docs",
            scheduler_args={"timestep_spacing": "trailing"},
            dynamic_cfg=True,
            seconds_per_clip=90.0,
            seconds_source="documented: model card, single H100, 50 steps BF16 (~90 s)",
        ),
        Generator(
            "cogvideox1.5-5b",
            "cogvideox",
            "THUDM/CogVideoX1.5-5B",
            1360,
            768,
            81,
            16,
            50,
            6.0,
            "bf16",
            "CogVideoXDPMScheduler",
            label="CogVideoX1.5-5B",
            source="huggingface.co/THUDM/CogVideoX1.5-5B: 1360x768, 16N+1 frames (default 81), 16 fps, bf16, "
            "224-token prompts",
            scheduler_args={"timestep_spacing": "trailing"},
            max_sequence_length=224,
            dynamic_cfg=True,
            seconds_per_clip=550.0,
            seconds_source="documented: model card, single H100, 50 steps BF16, 5-s video (~550 s)",
        ),
        Generator(
            "wan2.1-1.3b",
            "wan",
            "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
            832,
            480,
            81,
            16,
            50,
            5.0,
            "bf16",
            "UniPCMultistepScheduler",
            label="Wan2.1-1.3B",
            source="huggingface.co/Wan-AI/Wan2.1-T2V-1.3B-Diffusers and diffusers' Wan docs: 480P 832x480, 81 frames "
            "16 fps, guidance 5, UniPC flow_shift 3.0 (480P), fp32 VAE, the card's negative prompt",
            scheduler_args={**_WAN_UNIPC, "flow_shift": 3.0},
            negative_prompt=WAN_NEGATIVE,
            max_sequence_length=512,
            seconds_per_clip=240.0,
            seconds_source="documented: Wan2.1 README, RTX 4090, 5-s 480P video in 'about 4 minutes' (no H100 figure)",
        ),
        Generator(
            "wan2.1-14b",
            "wan",
            "Wan-AI/Wan2.1-T2V-14B-Diffusers",
            1280,
            720,
            81,
            16,
            50,
            5.0,
            "bf16",
            "UniPCMultistepScheduler",
            label="Wan2.1-14B",
            source="huggingface.co/Wan-AI/Wan2.1-T2V-14B-Diffusers and diffusers' Wan docs: 720P 1280x720, 81 frames "
            "16 fps, guidance 5, UniPC flow_shift 5.0 (720P), fp32 VAE, the card's negative prompt",
            scheduler_args={**_WAN_UNIPC, "flow_shift": 5.0},
            negative_prompt=WAN_NEGATIVE,
            max_sequence_length=512,
        ),
        Generator(
            "ltx-video",
            "ltx",
            "Lightricks/LTX-Video",
            704,
            480,
            161,
            24,
            50,
            3.0,
            "bf16",
            "FlowMatchEulerDiscreteScheduler",
            label="LTX-Video",
            source="huggingface.co/Lightricks/LTX-Video and diffusers' LTX docs: 704x480, 161 frames (8k+1) 24 fps, "
            "50 steps, guidance 3, sizes divisible by 32, negative prompt of the docs' example",
            negative_prompt="worst quality, inconsistent motion, blurry, jittery, distorted",
            max_sequence_length=128,
        ),
        Generator(
            "hunyuanvideo",
            "hunyuan",
            "hunyuanvideo-community/HunyuanVideo",
            1280,
            720,
            129,
            24,
            50,
            6.0,
            "bf16",
            "FlowMatchEulerDiscreteScheduler",
            label="HunyuanVideo",
            source="github.com/Tencent/HunyuanVideo: 720p 1280x720, 129 frames 24 fps, 50 steps, embedded guidance 6, "
            "flow shift 7 (the checkpoint's scheduler config), bf16; diffusers' HunyuanVideoPipeline",
            max_sequence_length=256,
            seconds_per_clip=1904.0,
            seconds_source="documented: xDiT HunyuanVideo report, 1x H100, 1280x720 129 frames 50 steps (1904 s)",
        ),
    )
}
DEFAULT_GENERATOR = "cogvideox-2b"  # the paper's


def get_generator(name: str) -> Generator:
    if name not in GENERATORS:
        raise ValueError(f"--generator {name!r}: choose one of {', '.join(GENERATORS)}")
    return GENERATORS[name]
