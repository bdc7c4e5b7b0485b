"""The `cogvideox` render backend: diffusers' CogVideoXPipeline behind the render loop's batch interface.

Defaults are the paper's CogVideoX-2B settings (DESIGN.md "Video rendering"): fp16, CogVideoXDDIMScheduler
(trailing timesteps, as the model card uses), no dynamic CFG, 50 steps, guidance 6, 49 frames at 720x480,
saved at 8 fps. diffusers ignores `num_videos_per_prompt` for CogVideoX, so a batch is a list of prompts
with one seeded `torch.Generator` per clip: clip i gets the same noise whatever batch it lands in. Weights
come from a hub id or a local folder (`save_pretrained` layout); the switches trade speed for memory
(cpu offload, VAE tiling/slicing) or compile the transformer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from generation.prompts import PromptRow

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


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

    def check(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"--dtype {self.dtype!r}: choose one of {', '.join(DTYPES)}")
        if self.num_frames < 1 or (self.num_frames - 1) % 4:
            raise ValueError(f"--frames {self.num_frames}: CogVideoX needs 4k + 1 frames (e.g. 9, 49)")
        if self.width % 16 or self.height % 16:
            raise ValueError(f"--width/--height {self.width}x{self.height}: CogVideoX needs multiples of 16")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("--steps and --batch-size must be >= 1")


def load_pipeline(settings: CogVideoXSettings):
    """CogVideoXPipeline from a hub id or local folder, with the DDIM scheduler and the chosen switches."""
    from diffusers import CogVideoXDDIMScheduler, CogVideoXPipeline

    settings.check()
    import importlib.util

    # Without accelerate, low-memory loading is unavailable: say so once here instead of a warning per load.
    low_mem = importlib.util.find_spec("accelerate") is not None
    try:
        pipe = CogVideoXPipeline.from_pretrained(settings.model, dtype=DTYPES[settings.dtype],
                                                 low_cpu_mem_usage=low_mem)
    except (OSError, ValueError) as e:  # no such folder/repo, no network or cache (HF_HUB_OFFLINE=1), gated
        raise ValueError(f"cannot load a CogVideoX pipeline from --model {settings.model!r} ({e}). Give a local "
                         "folder saved with save_pretrained, or a hub id with network access "
                         "(HF_HUB_OFFLINE unset) or in the local hub cache") from None
    pipe.scheduler = CogVideoXDDIMScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
    return configure_pipeline(pipe, settings)


def configure_pipeline(pipe, settings: CogVideoXSettings):
    """Apply device placement and the memory/speed switches to a built pipeline."""
    device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if settings.cpu_offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    if settings.vae_tiling:
        pipe.vae.enable_tiling()
    if settings.vae_slicing:
        pipe.vae.enable_slicing()
    if settings.compile:
        pipe.transformer = torch.compile(pipe.transformer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


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

    def render_batch(self, rows: list[PromptRow]) -> list[np.ndarray]:
        s = self.settings
        # One generator per clip, seeded by the row: the clip does not depend on its batch-mates.
        gen_device = "cpu" if s.cpu_offload else self.pipe.device
        generators = [torch.Generator(device=gen_device).manual_seed(row.seed) for row in rows]
        out = self.pipe(
            prompt=[row.prompt for row in rows], generator=generators, num_videos_per_prompt=1,
            num_inference_steps=s.steps, guidance_scale=s.guidance, use_dynamic_cfg=False,
            num_frames=s.num_frames, height=s.height, width=s.width, max_sequence_length=s.max_sequence_length,
            output_type="np",
        )
        frames = np.asarray(out.frames)  # (B, T, H, W, 3) floats in [0, 1]
        return [np.clip(np.rint(f * 255), 0, 255).astype(np.uint8) for f in frames]

    def __call__(self, row: PromptRow) -> np.ndarray:
        return self.render_batch([row])[0]


# ------------------------------------------------------------------- toy-size pipeline (tests, benchmarks)

TINY_WORDS = ("a person is waving jumping clapping in on the park beach gym room man woman girl boy tall short red "
              "blue green shirt jacket arms legs hands slowly camera shot").split()


def tiny_tokenizer():
    """A T5 (Unigram) tokenizer from an in-memory vocabulary: whole words, then single letters as fallback."""
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [("\u2581" + w, -1.0 - 0.01 * i) for i, w in enumerate(TINY_WORDS)]
    vocab += [("\u2581", -4.0)] + [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz.,"]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def tiny_pipeline(seed: int = 0, channels: int = 8):
    """CogVideoX-2B's architecture at toy size, random weights, no download: a 1-layer transformer, a
    4-level VAE of `channels` channels, a 1-layer T5 encoder and `tiny_tokenizer`. Use with
    `tiny_pipeline_settings()` (9 frames, 16 tokens; any 16-multiple frame size)."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    tok = tiny_tokenizer()
    text = T5EncoderModel(T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=37, num_layers=1, num_heads=4))
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=2,
        text_embed_dim=32, num_layers=1, sample_width=2, sample_height=2, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=16)
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(channels,) * 4, latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4)
    return CogVideoXPipeline(tokenizer=tok, text_encoder=text, vae=vae, transformer=transformer,
                             scheduler=CogVideoXDDIMScheduler())


def tiny_pipeline_settings(**overrides) -> CogVideoXSettings:
    """Settings matching `tiny_pipeline`: fp32 on CPU, 2 steps, 9 frames of 16x16, 16 text tokens."""
    base = dict(model="tiny", dtype="fp32", device="cpu", steps=2, num_frames=9, width=16, height=16,
                max_sequence_length=16)
    return CogVideoXSettings(**{**base, **overrides})
