"""DemoNet: the small video-text model of the embedded demo world, trainable from scratch on 2 CPU cores.

The full models (TC-CLIP, X-CLIP, ViFi-CLIP) keep their tiny configs for code-path tests, but random-init
ViT/ResNet towers at demo sizes do not learn in a CPU budget (measured: 48 px, 4 frames, every row at
chance). DemoNet is what does: a 4-block 3D CNN with BatchNorm over (T, H, W) for the video, and a bag of
hashed words for the text, classifying by scaled cosine similarity like CLIP. The first block runs at full
resolution (the demo figure's limbs are 1-2 px wide at 32 px; strided stems lose them and did not learn).
Class names are tokenised by a stable hash of their words into `vocab_size` buckets, so the net needs no
tokenizer files; a class name is a word or two, so the text tower is in effect a learned class embedding
(which is all the demo's protocols need: every test class has training clips, synthetic or real).
In training it is the `net` of `VideoCLIPModule` (configs/models/demo_net.yaml); `DemoNet.from_checkpoint`
loads the weights a `train.py fit` phase wrote (the demo's stand-in CLIP scores clips with them).
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from lightning_modules.models.normalisation import CLIP_MEAN, CLIP_STD
from lightning_modules.models.spec import InputSpec

PAD = 0  # token id of padding; words hash into 1 .. vocab_size - 1


def _block(c_in: int, c_out: int, kernel: tuple[int, int, int]) -> list[nn.Module]:
    pad = tuple(k // 2 for k in kernel)
    return [nn.Conv3d(c_in, c_out, kernel, padding=pad, bias=False), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True)]


class DemoNet(nn.Module):
    """3D-CNN video tower + bag-of-words text tower; logits = scale * cos(video, class text).

    Args:
        width: channels of the first block; the blocks have width, 2x, 4x and 8x as many.
        embed_dim: joint embedding size.
        vocab_size: hash buckets for class-name words.
        context_length: tokens per class prompt (longer prompts are cut).
        prompt: text template filled with each class name.
        logit_scale: initial scale of the cosine logits (learned, as CLIP's; capped at 100).
        num_frames: frames per clip it is trained and tested on (the datamodule takes it; the demo renders 16).
        image_size: frame side in pixels (the datamodule takes it; the demo's 64 px frames are resized: the
            figure stays visible and a 3D CNN learns in seconds).
    """

    input_mean, input_std = CLIP_MEAN, CLIP_STD  # trained from scratch on the data's default

    def __init__(
        self,
        width: int = 8,
        embed_dim: int = 64,
        vocab_size: int = 1024,
        context_length: int = 8,
        prompt: str = "a person {}",
        logit_scale: float = 10.0,
        num_frames: int = 8,
        image_size: int = 32,
    ):
        super().__init__()
        if width < 1 or embed_dim < 1 or vocab_size < 2 or context_length < 1:
            raise ValueError(
                f"DemoNet needs width, embed_dim, context_length >= 1 and vocab_size >= 2; got width={width}, "
                f"embed_dim={embed_dim}, vocab_size={vocab_size}, context_length={context_length}"
            )
        self.vocab_size, self.context_length, self.prompt = vocab_size, context_length, prompt
        self.num_frames, self.image_size = num_frames, image_size
        w = width
        self.video = nn.Sequential(  # (B, 3, T, H, W) -> (B, 8w, 1, 1, 1)
            *_block(3, w, (1, 3, 3)),
            nn.MaxPool3d((1, 2, 2)),  # per-frame edges at full resolution; the 3 blocks above convolve time too
            *_block(w, 2 * w, (3, 3, 3)),
            nn.MaxPool3d((1, 2, 2)),
            *_block(2 * w, 4 * w, (3, 3, 3)),
            nn.MaxPool3d(2),
            *_block(4 * w, 8 * w, (3, 3, 3)),
            nn.AdaptiveAvgPool3d(1),
        )
        # Channels-last 3D: oneDNN's convolutions run ~1.8x faster on CPU in this layout than in NCDHW (same math;
        # measured on the demo's 32 x 8 x 32 x 32 batches, one thread). `.to(device)` and loading weights keep it.
        self.video.to(memory_format=torch.channels_last_3d)
        self.video_proj = nn.Linear(8 * w, embed_dim)
        self.token_embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.text_proj = nn.Linear(embed_dim, embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(logit_scale)))

    @property
    def input_spec(self) -> InputSpec:
        """Frames, frame side, normalisation and text length this net takes (linked to the datamodule)."""
        return InputSpec(
            num_frames=self.num_frames,
            image_size=self.image_size,
            mean=tuple(self.input_mean),
            std=tuple(self.input_std),
            context_length=self.context_length,
        )

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> DemoNet:
        """The net of a `train.py fit` phase: `path` is its `weights.pt` (VideoCLIPModule state dict, keys
        `net.*`) or a Lightning `.ckpt`; the net's arguments come from the phase's `config.yaml` beside it
        (`model.init_args.net.init_args`), else the defaults. Returned in eval mode."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"DemoNet checkpoint {path} not found; give a phase's weights.pt (train.py fit)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
        net_state = {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")} or state
        config = path.parent / "config.yaml"
        if path.suffix == ".ckpt" and not config.is_file():  # <phase>/checkpoints/last.ckpt
            config = path.parent.parent / "config.yaml"
        kwargs = {}
        if config.is_file():
            cfg = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
            kwargs = ((cfg.get("model") or {}).get("init_args", {}).get("net") or {}).get("init_args") or {}
        net = cls(**kwargs)
        try:
            net.load_state_dict(net_state)
        except RuntimeError as error:
            raise ValueError(
                f"{path} does not hold DemoNet weights matching {config if config.is_file() else 'the defaults'}: "
                f"{str(error).splitlines()[0]}"
            ) from None
        return net.eval()

    def tokenize(self, class_names: list[str]) -> torch.Tensor:
        """Class names -> (K, context_length) word-hash ids, PAD-filled."""
        tokens = torch.full((len(class_names), self.context_length), PAD, dtype=torch.long)
        for i, name in enumerate(class_names):
            words = re.findall(r"[a-z0-9]+", self.prompt.format(name.replace("_", " ")).lower())
            ids = [
                1 + int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "big") % (self.vocab_size - 1)
                for w in words
            ][: self.context_length]
            tokens[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return tokens

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) -> (B, D) L2-normalised."""
        x = video.transpose(1, 2).contiguous(memory_format=torch.channels_last_3d)  # (B, C, T, H, W), C innermost
        x = self.video(x)  # (B, 8w, 1, 1, 1)
        return F.normalize(self.video_proj(x.flatten(1)), dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(K, L) token ids -> (K, D) L2-normalised: the mean embedding of the non-pad words, projected."""
        mask = (tokens != PAD).unsqueeze(-1).float()  # (K, L, 1)
        words = (self.token_embedding(tokens) * mask).sum(1) / mask.sum(1).clamp(min=1)  # (K, D)
        return F.normalize(self.text_proj(words), dim=-1)

    def forward(self, video: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) clips and (K, L) class tokens -> (B, K) logits."""
        scale = self.logit_scale.exp().clamp(max=100.0)
        return scale * self.encode_video(video) @ self.encode_text(tokens).T
