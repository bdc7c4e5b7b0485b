"""BIKE (Wu et al., CVPR 2023, whwu95/BIKE): CLIP with Video Concept Spotting and Video Attribute Association.

Video encoder: CLIP's image tower on every frame, then BIKE's temporal module (`sim_header: Transf`): learnt
frame position embeddings, 6 pre-LN transformer blocks (width = the joint embedding, heads = text width / 64,
LayerNorm eps 1e-12, QuickGELU) and a residual around the whole stack: (B, T, D) frame features in and out.
Text: the class prompt "This is a video about {class}" through CLIP's text tower; its EOT feature is the class
feature and every token position's projected feature is a "word" feature (all context positions, padding
included, as the reference averages over the whole 77-token sequence).

Video Concept Spotting (text -> video, `interaction: vcs`): for class k, frame t gets the saliency
softmax_t(cos(word_kw, frame_t) / 0.01) averaged over the class's words w; the saliency-weighted sum of the
(normalised) frame features is the class-specific video feature, and its dot product with the normalised class
feature is the logit, times CLIP's logit scale (trainable, as in the reference). `interaction: dp` is the
plain frame mean (the reference's other choice).

Video Attribute Association (video -> text, off unless `attribute_weight > 0`): the top `attribute_top_k`
lexicon entries closest to the video (frame-mean CLIP feature against the lexicon's text features, no
gradient) form the sentence "This is a video about a1,a2,...", encoded by the text tower; two MLPs (query_fc
on the class feature, sentence_fc on the sentence feature) map them before a cosine, times the logit scale.
At test the reference fuses the two branches' class probabilities 0.7 / 0.3; here the net returns the log of
`(1 - w) softmax(video logits) + w softmax(attribute logits)` (w = `attribute_weight`), whose softmax is that
mixture, so one cross-entropy trains both heads and the module's softmax-over-views sees the fused score.

What the reference's zero-shot setting does, and this default follows: the K400-trained video branch only
(Transf + VCS; `tm` / `joint_st` off; the attribute branch belongs to the separate "V+A" K400 ViT-B/32 model),
the text tower frozen (`fix_text: True`; class features are then computed once per class list), CLIP's
parameters at 1/10 of the temporal module's learning rate (`clip_ratio: 0.1`). Its loss over a batch is
`bike_nce_loss` (below; `loss: {name: nce}` selects it, `lightning_modules.losses`); the paper this project
implements trains on synthetic clips with its own losses, which `VideoCLIPModule` applies to these logits. Official checkpoints load through `bike_checkpoint.py`.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from lightning_modules.models.clip import TextFeatureCache, clear_text_cache, create_clip, text_tower_parameters
from lightning_modules.models.normalisation import CLIP_MEAN, CLIP_STD
from lightning_modules.models.spec import InputSpec, image_side
from lightning_modules.models.text import split_camel_case

SPOTTING_TEMPERATURE = 0.01  # the reference's softmax temperature over frames in Video Concept Spotting
ATTRIBUTE_FUSION = 0.3  # the reference's weight of the attribute branch when fused (0.7 video + 0.3 attributes)


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class TemporalBlock(nn.Module):
    """Pre-LN transformer block of BIKE's temporal module (names as the official `fusion_model` weights)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = nn.LayerNorm(width, eps=1e-12)  # the reference's TF-style LayerNorm
        self.mlp = nn.Sequential(
            OrderedDict(
                [("c_fc", nn.Linear(width, 4 * width)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(4 * width, width))]
            )
        )
        self.ln_2 = nn.LayerNorm(width, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class TemporalTransformer(nn.Module):
    """BIKE's `Transf` video header: (B, T, D) frame features -> (B, T, D), frame order seen.

    Args:
        width: feature width D (CLIP's joint embedding).
        heads: attention heads.
        layers: transformer blocks (6 in the reference).
        max_frames: rows of the frame position table (the reference sizes it by the text context, 77).
    """

    def __init__(self, width: int, heads: int, layers: int = 6, max_frames: int = 77):
        super().__init__()
        self.frame_position_embeddings = nn.Embedding(max_frames, width)
        self.transformer = nn.Module()
        self.transformer.resblocks = nn.ModuleList([TemporalBlock(width, heads) for _ in range(layers)])
        self.grad_checkpointing = False
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """The reference's init: N(0, 0.02) linear/embedding weights, zero biases, unit LayerNorms."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        if t > self.frame_position_embeddings.num_embeddings:
            raise ValueError(
                f"{t} frames exceed the temporal module's {self.frame_position_embeddings.num_embeddings} "
                "frame positions; sample fewer frames"
            )
        h = x + self.frame_position_embeddings.weight[:t]  # (B, T, D)
        for block in self.transformer.resblocks:
            h = (
                activation_checkpoint(block, h, use_reentrant=False)
                if self.grad_checkpointing and h.requires_grad
                else block(h)
            )
        return h.to(x.dtype) + x  # residual around the whole stack, as the reference


class SentenceHead(nn.Module):
    """The attribute branch's two MLPs (`sentence_text_logit` of the reference): cosine of the mapped features."""

    def __init__(self, width: int):
        super().__init__()
        self.query_fc = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
        self.sentence_fc = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, sentence: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """(B, D) sentence and (K, D) class features (both L2-normalised) -> (B, K) cosine similarities."""
        return F.normalize(self.sentence_fc(sentence), dim=-1) @ F.normalize(self.query_fc(classes), dim=-1).T


def concept_spotting(
    frames: torch.Tensor, words: torch.Tensor, classes: torch.Tensor, temperature: float = SPOTTING_TEMPERATURE
) -> torch.Tensor:
    """Video Concept Spotting: category-conditioned temporal saliency.

    Args:
        frames: (B, T, D) frame features (normalised here).
        words: (K, L, D) every class prompt's token features (normalised here).
        classes: (K, D) class features (normalised here).
        temperature: softmax temperature over frames.

    Returns:
        (B, K): for each class, the class feature's dot product with the saliency-weighted frame sum, the
        saliency of frame t being softmax_t(cos(word, frame_t) / temperature) averaged over the class's words.
    """
    # float32 even under bf16/fp16 autocast: dividing by 0.01 turns a bf16 rounding of the cosine (~4e-3)
    # into a ~0.4 change of the saliency logit
    with torch.autocast(frames.device.type, enabled=False):
        frames, words, classes = (F.normalize(x.float(), dim=-1) for x in (frames, words, classes))
        sims = torch.einsum("kld,btd->kblt", words, frames)  # (K, B, L, T)
        saliency = (sims / temperature).softmax(dim=-1).mean(dim=2)  # (K, B, T)
        video = torch.einsum("kbt,btd->kbd", saliency, frames)  # (K, B, D) class-specific video features
        return torch.einsum("kbd,kd->bk", video, classes)  # (B, K)


def fuse_branches(video_logits: torch.Tensor, attribute_logits: torch.Tensor, weight: float) -> torch.Tensor:
    """log((1 - w) softmax(video) + w softmax(attributes)), (B, K): its softmax is the reference's fused score."""
    probs = (1 - weight) * video_logits.softmax(dim=-1) + weight * attribute_logits.softmax(dim=-1)
    return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()


def bike_nce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BIKE's training loss (`NCELoss`, symmetric): the reference scores each video against the prompts of the
    batch's own labels, (B, B) = `logits[:, labels]`, target row i = softmax(10 * [labels_j == labels_i]) (about
    uniform over same-class columns) and takes KL(target || softmax(row)) summed over columns and averaged over
    rows, for videos -> texts and for texts -> videos, then averages the two.

    Args:
        logits: (B, K) scaled logits of the videos over all K classes.
        labels: (B,) class ids.
    """
    batch = logits[:, labels]  # (B, B): video i against the prompt of sample j's class
    target = (labels[:, None] == labels[None, :]).to(logits.dtype)  # symmetric
    target = (10 * target).softmax(dim=1)

    def kl(x: torch.Tensor) -> torch.Tensor:
        return F.kl_div(x.log_softmax(dim=1), target, reduction="sum") / len(x)

    return (kl(batch) + kl(batch.T)) / 2


def _clear_lexicon_cache(module: nn.Module, incompatible_keys) -> None:
    module.lexicon_cache.clear()


def read_lexicon(path: str | Path) -> list[str]:
    """An attribute lexicon file: one entry per line (blank lines and `#` comments skipped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"attribute lexicon not found: {path}; give a text file with one attribute a line")
    entries = [s.strip() for s in path.read_text().splitlines() if s.strip() and not s.lstrip().startswith("#")]
    if not entries:
        raise ValueError(f"attribute lexicon {path} has no entries")
    return entries


class BIKE(nn.Module):
    """BIKE video-text model: CLIP + temporal transformer + Video Concept Spotting (+ optional attributes).

    Args:
        arch: open_clip architecture (`ViT-B-16-quickgelu` for the paper's B/16: OpenAI weights and BIKE's
            checkpoints need QuickGELU; `synthact-tiny` for tests).
        pretrained: open_clip pretrained tag (`openai`), local CLIP weight file, or None for random weights.
        checkpoint: official BIKE release file(s) (`{"model_state_dict", "fusion_model_state_dict", ...}`),
            loaded over `pretrained`; a list merges a video-branch and an attribute-branch file. Every key must
            map onto this model, or a ValueError lists the mismatches (`bike_checkpoint.py`).
        trust_checkpoint: unpickle `checkpoint` fully (`torch.load(weights_only=False)`); only for trusted files.
        prompt: class prompt template (the reference's "This is a video about {}").
        temporal_layers: blocks of the temporal transformer (reference: 6); 0 = no temporal module
            (`sim_header: None`).
        interaction: `vcs` (Video Concept Spotting, the reference's choice) or `dp` (frame mean, cosine).
        spotting_temperature: softmax temperature over frames in concept spotting (reference: 0.01).
        freeze_text: freeze CLIP's text tower (reference `fix_text: True`); the logit scale stays trainable.
        clip_lr_scale: learning-rate factor of CLIP's parameters relative to the temporal module and attribute
            head (reference `clip_ratio: 0.1`: the base lr is the head's, CLIP gets a tenth).
        attribute_weight: weight of the attribute branch in the fused score (0 = branch off, as in the
            reference's zero-shot models; its "V+A" K400 model fuses 0.3).
        attribute_lexicon: file of attribute phrases, one a line; None = the class names of the current label
            space (the reference's attributes are class names, `classname_topk`).
        attribute_top_k: attributes retrieved per video (reference: 5).
        grad_checkpointing: recompute transformer blocks in the backward pass (less memory).
        num_frames: frames per clip; the datamodule takes it.
    """

    # OpenAI CLIP's statistics, as BIKE trains and tests (whwu95/BIKE test_zeroshot.py `input_mean`/`input_std`)
    input_mean, input_std = CLIP_MEAN, CLIP_STD

    def __init__(
        self,
        arch: str = "ViT-B-16-quickgelu",
        pretrained: str | None = "openai",
        checkpoint: str | list[str] | None = None,
        trust_checkpoint: bool = False,
        prompt: str = "This is a video about {}",
        temporal_layers: int = 6,
        interaction: str = "vcs",
        spotting_temperature: float = SPOTTING_TEMPERATURE,
        freeze_text: bool = True,
        clip_lr_scale: float = 0.1,
        attribute_weight: float = 0.0,
        attribute_lexicon: str | None = None,
        attribute_top_k: int = 5,
        grad_checkpointing: bool = False,
        num_frames: int = 16,
    ):
        super().__init__()
        if interaction not in ("vcs", "dp"):
            raise ValueError(f"interaction {interaction!r}: choose 'vcs' (concept spotting) or 'dp' (frame mean)")
        if not 0.0 <= attribute_weight < 1.0:
            raise ValueError(f"attribute_weight {attribute_weight} must be in [0, 1) (0 turns the branch off)")
        self.clip, self.tokenizer = create_clip(arch, pretrained)
        if not hasattr(self.clip, "token_embedding"):
            raise ValueError(f"BIKE needs an open_clip model with the built-in text tower; {arch!r} is not one")
        self.prompt, self.interaction, self.temperature = prompt, interaction, spotting_temperature
        self.context_length = self.clip.positional_embedding.shape[0]
        self.num_frames = num_frames
        embed_dim = self.clip.text_projection.shape[-1]
        heads = max(1, self.clip.ln_final.weight.shape[0] // 64)  # the reference: text width // 64
        self.temporal = TemporalTransformer(embed_dim, heads, temporal_layers) if temporal_layers > 0 else None
        self.freeze_text, self.clip_lr_scale = freeze_text, clip_lr_scale
        for p in text_tower_parameters(self.clip):
            p.requires_grad_(not freeze_text)
        self.attribute_weight, self.attribute_top_k = attribute_weight, attribute_top_k
        self.lexicon = read_lexicon(attribute_lexicon) if attribute_lexicon else None
        self.sentence_head = SentenceHead(embed_dim) if attribute_weight > 0 else None
        self.grad_checkpointing = grad_checkpointing
        self.clip.set_grad_checkpointing(grad_checkpointing)
        if self.temporal is not None:
            self.temporal.grad_checkpointing = grad_checkpointing
        self.text_cache, self.lexicon_cache = TextFeatureCache(), TextFeatureCache()
        self.register_load_state_dict_post_hook(clear_text_cache)
        self.register_load_state_dict_post_hook(_clear_lexicon_cache)
        self._class_names: list[str] = []
        if checkpoint is not None:
            from lightning_modules.models.bike_checkpoint import load_official_checkpoint

            load_official_checkpoint(self, checkpoint, weights_only=not trust_checkpoint)

    # ---------------------------------------------------------------- text
    @property
    def input_spec(self) -> InputSpec:
        """Frames, frame side, normalisation and text length this net takes (linked to the datamodule)."""
        return InputSpec(
            num_frames=self.num_frames,
            image_size=image_side(self.clip.visual),
            mean=tuple(self.input_mean),
            std=tuple(self.input_std),
            context_length=int(self.context_length),
        )

    def tokenize(self, class_names: list[str]) -> torch.Tensor:
        """(K, context_length) token ids of the prompted class names (UCF CamelCase split into words)."""
        self._class_names = list(class_names)  # the default attribute lexicon
        return self.tokenizer(
            [self.prompt.format(split_camel_case(c)) for c in class_names], context_length=self.context_length
        )

    def encode_text_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(K, L) token ids -> (K, 1 + L, D): the EOT (class) feature, then every position's projected feature."""
        clip = self.clip
        x = clip.token_embedding(tokens) + clip.positional_embedding  # (K, L, W)
        x = clip.ln_final(clip.transformer(x, attn_mask=clip.attn_mask))
        x = clip.text_projection(x) if isinstance(clip.text_projection, nn.Linear) else x @ clip.text_projection
        eot = x[torch.arange(len(x), device=x.device), tokens.argmax(dim=-1)]  # (K, D)
        return torch.cat([eot[:, None], x], dim=1)

    def _text(self, tokens: torch.Tensor, cache: TextFeatureCache) -> torch.Tensor:
        if self.freeze_text:
            return cache.get(tokens, self.encode_text_tokens)
        return self.encode_text_tokens(tokens)

    # ---------------------------------------------------------------- video
    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) -> (B, T, D) frame features after the temporal module (not normalised)."""
        b, t = video.shape[:2]
        frames = self.clip.encode_image(video.flatten(0, 1)).view(b, t, -1)  # (B*T, D) -> (B, T, D)
        return frames if self.temporal is None else self.temporal(frames)

    def video_logits(self, frames: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """(B, T, D) frames and (K, 1 + L, D) text features -> (B, K) unscaled video-branch similarities."""
        classes, words = text[:, 0], text[:, 1:]
        if self.interaction == "vcs":
            return concept_spotting(frames, words, classes, self.temperature)
        return F.normalize(frames.mean(dim=1), dim=-1) @ F.normalize(classes, dim=-1).T

    def attribute_tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, D) frame features -> (B, L) tokens of "{prompt} a1,a2,..." with each video's top-k lexicon
        entries (frame-mean feature against the lexicon's prompted text features, no gradient)."""
        lexicon = self.lexicon or self._class_names
        if not lexicon:
            raise ValueError("the attribute branch needs a lexicon: set attribute_lexicon or call tokenize() first")
        k = min(self.attribute_top_k, len(lexicon))
        lex_tokens = self.tokenizer(
            [self.prompt.format(split_camel_case(w)) for w in lexicon], context_length=self.context_length
        ).to(frames.device)
        with torch.no_grad():
            lex = F.normalize(self._text(lex_tokens, self.lexicon_cache)[:, 0], dim=-1)  # (N, D)
            video = F.normalize(frames.detach().mean(dim=1), dim=-1)  # (B, D)
            top = (video @ lex.to(video.dtype).T).topk(k, dim=-1).indices  # (B, k), most similar first
        sentences = [self.prompt.format(",".join(split_camel_case(lexicon[i]) for i in row)) for row in top.tolist()]
        return self.tokenizer(sentences, context_length=self.context_length).to(frames.device)

    def forward(self, video: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) video and (K, L) class tokens -> (B, K) logits (logit_scale.exp() * similarity; with
        the attribute branch on, the log of the fused class probabilities)."""
        scale = self.clip.logit_scale.exp()
        frames = self.encode_frames(video)
        text = self._text(tokens, self.text_cache).to(frames.dtype)
        logits = scale * self.video_logits(frames, text)
        if self.sentence_head is None:
            return logits
        sentence_tokens = self.attribute_tokens(frames)  # (B, L)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_text):
            sentence = self.encode_text_tokens(sentence_tokens)[:, 0]  # (B, D)
        attributes = scale * self.sentence_head(
            F.normalize(sentence.to(frames.dtype), dim=-1), F.normalize(text[:, 0], dim=-1)
        )
        return fuse_branches(logits, attributes, self.attribute_weight)

    def param_groups(self) -> list[dict]:
        """CLIP's trainable parameters at `clip_lr_scale` of the base lr; the temporal module and attribute
        head at the base lr (the reference's `clip_ratio`)."""
        clip = [p for p in self.clip.parameters() if p.requires_grad]
        ids = {id(p) for p in clip}
        heads = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        return [{"params": clip, "lr_scale": self.clip_lr_scale}, {"params": heads, "lr_scale": 1.0}]
