"""TC-CLIP: temporally contextualised CLIP with video-conditional text prompts, on an open_clip ViT.

Vision: every block after the first lets each frame's tokens attend to themselves plus k context tokens
shared by all frames of the video (a learnable per-head bias separates local from context keys). After the
attention, each frame's top `int(num_patches * seed_ratio)` patches by CLS attention (head mean) are
gathered from the residual stream and merged by ToMe bipartite soft matching (size-weighted averages,
`merges_per_step` merges per step) into k new context tokens, which are appended before the MLP and feed
the next block as keys/values only. The video feature is the frame mean of the projected final CLS.
Text: learnable prompt vectors ("a photo of a") replace the first prompt tokens; just before the last text
block a cross-attention layer lets them attend to the video's final context tokens. Blocks 0..L-2 of the
text tower do not depend on the video, so the batched path runs them once per batch and, since the prompt
positions are the same for every class under the causal mask, runs the prompt layer once per video and
only the EOT row of the last block per (video, class); `batched_prompting=False` keeps the per-video loop
over the whole text tower (the official way) as the reference. Vision attention runs through
`scaled_dot_product_attention` (additive per-head bias as its float mask); as SDPA returns no weights, the
CLS row's weights needed for seed selection are recomputed separately (one query per frame, no gradient:
only the top-k indices are used); `sdpa=False` computes the full attention matrix instead.
The official release checkpoints load via `checkpoint=` (see `tc_clip_checkpoint.py`).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from lightning_modules.models.clip import create_clip
from lightning_modules.models.normalisation import IMAGENET_MEAN, IMAGENET_STD
from lightning_modules.models.spec import InputSpec, image_side
from lightning_modules.models.text import split_camel_case


def bipartite_merge(tokens: torch.Tensor, size: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One ToMe step: merge the `r` most similar (even -> odd) token pairs by size-weighted average.

    Args:
        tokens: (B, N, D) tokens; their cosine similarity decides the matching.
        size: (B, N, 1) how many original tokens each token stands for.
        r: merges to make (at most N // 2).

    Returns:
        (B, N - r, D) tokens and (B, N - r, 1) sizes: the unmerged even tokens, then the odd tokens.
    """
    metric = F.normalize(tokens, dim=-1)
    a, b = metric[:, ::2], metric[:, 1::2]  # alternate split: sources (even) and destinations (odd)
    best, best_dst = (a @ b.transpose(1, 2)).max(dim=-1)  # (B, Na): each source's closest destination
    order = best.argsort(dim=-1, descending=True)[..., None]  # (B, Na, 1) most similar first
    unmerged_idx, src_idx = order[:, r:], order[:, :r]
    dst_idx = best_dst[..., None].gather(1, src_idx)  # (B, r, 1)

    def merge(x: torch.Tensor) -> torch.Tensor:
        src, dst = x[:, ::2], x[:, 1::2]
        c = x.shape[-1]
        unmerged = src.gather(1, unmerged_idx.expand(-1, -1, c))
        moved = src.gather(1, src_idx.expand(-1, -1, c))
        dst = dst.scatter_reduce(1, dst_idx.expand(-1, -1, c), moved, reduce="sum")
        return torch.cat([unmerged, dst], dim=1)

    weighted, size = merge(tokens * size), merge(size)
    return weighted / size, size


def merge_to(tokens: torch.Tensor, target: int, merges_per_step: int) -> torch.Tensor:
    """ToMe-merge (B, N, D) tokens down to (B, target, D): `merges_per_step` merges per step (each capped
    at half the tokens), then one last step for the remainder, with sizes tracked across steps."""
    size = tokens.new_ones(tokens.shape[0], tokens.shape[1], 1)
    n = tokens.shape[1]
    steps = [merges_per_step] * ((n - target) // merges_per_step)
    for r in steps:
        r = min(r, tokens.shape[1] // 2)
        tokens, size = bipartite_merge(tokens, size, r)
    while tokens.shape[1] > target:
        tokens, size = bipartite_merge(tokens, size, min(tokens.shape[1] - target, tokens.shape[1] // 2))
    return tokens


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(..., N, D) -> (..., H, N, D/H)."""
    return x.unflatten(-1, (heads, -1)).transpose(-3, -2)


class PromptGenerationLayer(nn.Module):
    """Pre-LN cross-attention block: prompt vectors (queries) attend to video context tokens (keys/values).

    Initialised as a copy of a text block (`ln_1`, `attn`, `ln_2`, `mlp`) plus `ln_1_kv`, a copy of `ln_1`
    for the keys/values, as in the paper.
    """

    def __init__(self, text_block: nn.Module):
        super().__init__()
        block = copy.deepcopy(text_block)
        self.ln_1, self.attn, self.ln_2, self.mlp = block.ln_1, block.attn, block.ln_2, block.mlp
        self.ln_1_kv = copy.deepcopy(block.ln_1)

    def forward(self, prompts: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """(B, n, D) prompts and (B, k, D) context -> (B, n, D) updated prompts."""
        w, bias, heads = self.attn.in_proj_weight, self.attn.in_proj_bias, self.attn.num_heads
        d = prompts.shape[-1]
        q = F.linear(self.ln_1(prompts), w[:d], bias[:d])
        k, v = F.linear(self.ln_1_kv(context), w[d:], bias[d:]).chunk(2, dim=-1)
        out = F.scaled_dot_product_attention(*(_split_heads(t, heads) for t in (q, k, v)))  # (B, H, n, D/H)
        prompts = prompts + self.attn.out_proj(out.transpose(1, 2).flatten(2))
        return prompts + self.mlp(self.ln_2(prompts))


class TCCLIP(nn.Module):
    """TC-CLIP video-text model (temporal contextualisation + video-conditional prompting).

    Args:
        arch: open_clip architecture (`ViT-B-16` for the paper; `synthact-tiny` for tests). The activation
            follows the weights (`create_clip`): QuickGELU for `pretrained: openai` and whenever `checkpoint`
            is given (the official releases were trained from OpenAI's CLIP).
        pretrained: open_clip pretrained tag (`openai`), local CLIP weight file, or None for random weights.
            The token embedding always comes from here (the official checkpoints do not store it).
        checkpoint: path to an official TC-CLIP release checkpoint (`{"model": ...}`), loaded over
            `pretrained`; every key must map onto this model, or a ValueError lists the mismatches.
        trust_checkpoint: unpickle `checkpoint` fully (`torch.load(weights_only=False)`); needed only when
            the file holds non-tensor objects (e.g. an optimizer/scheduler state). Only for files you trust.
        num_context_tokens: k, context tokens per video and layer.
        seed_ratio: fraction of each frame's patches kept as seeds (196 * 0.3 -> 58 at 224 px).
        merges_per_step: ToMe merges per bipartite matching step.
        num_prompt_tokens: learnable prompt vectors in front of the class name.
        prompt_init: words whose embeddings initialise the prompt vectors (padded with random vectors).
        context_length: text token length (at most the CLIP text context length).
        num_frames: frames per clip the net is trained and tested on (the paper: 16); the datamodule takes it.
        grad_checkpointing: recompute each transformer block in the backward pass (less memory).
        batched_prompting: run the video-independent text blocks once per batch (fast); False runs the
            whole text tower once per video, the reference path.
        sdpa: use `scaled_dot_product_attention` in the vision blocks (plus the CLS-row weights computed
            separately for seed selection); False computes the full attention matrix (reference path).
        compile_vision: run the vision tower (`encode_video_tokens`) through `torch.compile` (the first step
            compiles, about a minute on a GPU; same maths, kernels fused). Measure with `python -m benchmarks
            --gpu` before relying on it.
    """

    # ImageNet statistics, as TC-CLIP trained (naver-ai/tc-clip datasets/build.py `img_norm_cfg`)
    input_mean, input_std = IMAGENET_MEAN, IMAGENET_STD

    def __init__(
        self,
        arch: str = "ViT-B-16",
        pretrained: str | None = "openai",
        checkpoint: str | None = None,
        trust_checkpoint: bool = False,
        num_context_tokens: int = 96,
        seed_ratio: float = 0.3,
        merges_per_step: int = 100,
        num_prompt_tokens: int = 4,
        prompt_init: str = "a photo of a",
        context_length: int = 30,
        num_frames: int = 16,
        grad_checkpointing: bool = False,
        batched_prompting: bool = True,
        sdpa: bool = True,
        compile_vision: bool = False,
    ):
        super().__init__()
        self.clip, self.tokenizer = create_clip(  # an official checkpoint was trained with QuickGELU
            arch,
            pretrained,
            quick_gelu=True if checkpoint is not None else None,
            quick_gelu_source=f"TC-CLIP checkpoint {checkpoint!r}",
        )
        visual = self.clip.visual
        if not hasattr(visual, "conv1") or not hasattr(self.clip, "token_embedding"):
            raise ValueError(f"TCCLIP needs an open_clip ViT with the built-in text tower; {arch!r} is not one")
        if context_length > self.clip.positional_embedding.shape[0]:
            raise ValueError(
                f"context_length {context_length} exceeds {arch}'s text context "
                f"{self.clip.positional_embedding.shape[0]}"
            )
        self.num_patches = visual.positional_embedding.shape[0] - 1  # 196 for ViT-B/16 at 224 px
        self.num_seeds = int(self.num_patches * seed_ratio)
        self.num_context_tokens, self.merges_per_step = num_context_tokens, merges_per_step
        self.context_length, self.n_prompt = context_length, num_prompt_tokens
        self.num_frames = num_frames
        self.grad_checkpointing, self.batched_prompting, self.sdpa = grad_checkpointing, batched_prompting, sdpa
        self.compile_vision = compile_vision
        blocks = visual.transformer.resblocks
        heads = blocks[0].attn.num_heads
        # per-head (local, context) logit bias of every block that sees context (all but the first)
        self.context_bias = nn.ParameterList(
            [nn.Parameter(torch.empty(heads, 1, 2).normal_(std=0.02)) for _ in range(len(blocks) - 1)]
        )
        self.prompt_layer = PromptGenerationLayer(self.clip.transformer.resblocks[-1])
        self.clip.token_embedding.requires_grad_(False)  # not trained in TC-CLIP (not in its checkpoints)
        self.prompt_init = prompt_init
        self.prompt_ctx = nn.Parameter(self._init_prompt(prompt_init, num_prompt_tokens))
        causal = torch.full((context_length, context_length), float("-inf")).triu_(1)
        self.register_buffer("causal_mask", causal, persistent=False)
        if checkpoint is not None:
            from lightning_modules.models.tc_clip_checkpoint import load_official_checkpoint

            load_official_checkpoint(self, checkpoint, weights_only=not trust_checkpoint)

    def _init_prompt(self, words: str, n: int) -> torch.Tensor:
        ids = self.tokenizer([words], context_length=self.context_length)[0]
        n_words = int((ids == ids.max()).nonzero()[0]) - 1  # tokens between SOT and EOT
        if n_words > n:
            raise ValueError(
                f"prompt_init {words!r} is {n_words} tokens but num_prompt_tokens is {n}; "
                "shorten prompt_init or raise num_prompt_tokens"
            )
        with torch.no_grad():
            init = self.clip.token_embedding(ids[1 : 1 + n_words]).clone()
        self._prompt_pad = n - n_words  # prompt slots beyond prompt_init: random vectors, "X" in the text
        extra = torch.empty(n - n_words, init.shape[-1]).normal_(std=0.02)
        return torch.cat([init, extra])

    # ---------------------------------------------------------------- text
    @property
    def input_spec(self) -> InputSpec:
        """Frames, frame side, normalisation and text length this net takes (linked to the datamodule)."""
        return InputSpec(
            num_frames=self.num_frames,
            image_size=image_side(self.clip.visual),
            mean=tuple(self.input_mean),
            std=tuple(self.input_std),
            context_length=self.context_length,
        )

    def tokenize(self, class_names: list[str]) -> torch.Tensor:
        """(K, context_length) token ids of `"{prompt_init} {class}."` (UCF CamelCase split into words);
        the first `num_prompt_tokens` tokens after SOT are replaced by the learnt prompt vectors."""
        prefix = self.prompt_init + " X" * self._prompt_pad
        prompts = [f"{prefix} {split_camel_case(c)}." for c in class_names]
        too_long = [p for p in prompts if len(self.tokenizer.encode(p)) + 2 > self.context_length]  # + SOT, EOT
        if too_long:  # the tokenizer would cut them silently
            raise ValueError(
                f"{len(too_long)} class prompts exceed TCCLIP's context_length {self.context_length} "
                f"tokens, e.g. {too_long[0]!r}; raise `context_length` (77 for LLM-rephrased labels)"
            )
        return self.tokenizer(prompts, context_length=self.context_length)

    def _prompt_embeddings(self, tokens: torch.Tensor) -> torch.Tensor:
        """(K, L) ids -> (K, L, D) embeddings with the prompt vectors in place, plus positions."""
        if tokens.shape[1] != self.context_length:
            raise ValueError(
                f"tokens have length {tokens.shape[1]}, expected context_length "
                f"{self.context_length}; build them with TCCLIP.tokenize"
            )
        x = self.clip.token_embedding(tokens)  # (K, L, D)
        ctx = self.prompt_ctx.to(x.dtype).expand(x.shape[0], -1, -1)
        x = torch.cat([x[:, :1], ctx, x[:, 1 + self.n_prompt :]], dim=1)
        return x + self.clip.positional_embedding[: self.context_length].to(x.dtype)

    def _run_block(self, block: nn.Module, x: torch.Tensor, **kwargs) -> torch.Tensor:
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return activation_checkpoint(block, x, use_reentrant=False, **kwargs)
        return block(x, **kwargs)

    def _text_head(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) EOT states -> (..., E) L2-normalised text features."""
        return F.normalize(self.clip.ln_final(x) @ self.clip.text_projection, dim=-1)

    def encode_text_reference(self, tokens: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Per-video loop over the whole text tower, as the official code does.

        Args:
            tokens: (K, L) class token ids.
            context: (B, k, E) projected video context tokens.

        Returns:
            (B, K, E) L2-normalised class features per video.
        """
        blocks = self.clip.transformer.resblocks
        eot = tokens.argmax(dim=-1)
        out = []
        for b in range(context.shape[0]):
            x = self._prompt_embeddings(tokens)
            for block in blocks[:-1]:
                x = self._run_block(block, x, attn_mask=self.causal_mask)
            ctx = self.prompt_layer(x[:, 1 : 1 + self.n_prompt], context[b].expand(x.shape[0], -1, -1))
            x = torch.cat([x[:, :1], ctx, x[:, 1 + self.n_prompt :]], dim=1)
            x = self._run_block(blocks[-1], x, attn_mask=self.causal_mask)  # (K, L, D)
            out.append(self._text_head(x[torch.arange(x.shape[0]), eot]))
        return torch.stack(out)

    def encode_text_batched(self, tokens: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Same result as `encode_text_reference`, computing the video-independent parts once.

        Blocks 0..L-2 run once on (K, L'), L' = the last EOT position + 1 (under the causal mask the
        padding after it never reaches an EOT row). Under the causal mask the prompt positions see only SOT and the
        shared prompt vectors, so they are the same for every class: the prompt layer runs once per video on
        (B, n). The last block is needed only at each class's EOT row: its keys/values come from the class
        tokens (once per class) and the video's prompt states (once per video), its query and MLP run on the
        (B, K) EOT rows.
        """
        blocks = self.clip.transformer.resblocks
        last, n = blocks[-1], self.n_prompt
        eot = tokens.argmax(dim=-1)  # (K,)
        length = int(eot.max()) + 1  # causal: positions after the last EOT never reach an EOT row
        x = self._prompt_embeddings(tokens)[:, :length]  # (K, L', D)
        mask = self.causal_mask[:length, :length]
        for block in blocks[:-1]:
            x = self._run_block(block, x, attn_mask=mask)  # (K, L', D)
        kc = x.shape[0]
        prompts = self.prompt_layer(x[:1, 1 : 1 + n].expand(context.shape[0], -1, -1), context)  # (B, n, D)
        # last block, EOT rows only
        w, bias, heads = last.attn.in_proj_weight, last.attn.in_proj_bias, last.attn.num_heads
        d = x.shape[-1]
        q_cls = F.linear(last.ln_1(x[torch.arange(kc), eot]), w[:d], bias[:d])  # (K, D)
        k_cls, v_cls = F.linear(last.ln_1(x), w[d:], bias[d:]).chunk(2, dim=-1)  # (K, L', D) each
        k_p, v_p = F.linear(last.ln_1(prompts), w[d:], bias[d:]).chunk(2, dim=-1)  # (B, n, D) each
        q_cls, k_cls, v_cls, k_p, v_p = (t.unflatten(-1, (heads, -1)) for t in (q_cls, k_cls, v_cls, k_p, v_p))
        scale = (d // heads) ** -0.5
        s_cls = torch.einsum("khd,klhd->khl", q_cls * scale, k_cls)  # (K, H, L)
        keep = torch.arange(x.shape[1], device=x.device)[None] <= eot[:, None]  # (K, L') causal for the EOT row
        s_cls = s_cls.masked_fill(~keep[:, None], float("-inf"))
        s_p = torch.einsum("khd,bnhd->bkhn", q_cls * scale, k_p)  # (B, K, H, n)
        s = torch.cat(
            [
                s_cls[None, :, :, :1].expand(s_p.shape[0], -1, -1, -1),
                s_p,
                s_cls[None, :, :, 1 + n :].expand(s_p.shape[0], -1, -1, -1),
            ],
            dim=-1,
        ).softmax(-1)  # (B,K,H,L)
        attn = (
            torch.einsum("bkhl,klhd->bkhd", s[..., :1], v_cls[:, :1])
            + torch.einsum("bkhn,bnhd->bkhd", s[..., 1 : 1 + n], v_p)
            + torch.einsum("bkhl,klhd->bkhd", s[..., 1 + n :], v_cls[:, 1 + n :])
        )
        h = x[torch.arange(kc), eot] + last.ls_1(last.attn.out_proj(attn.flatten(-2)))  # (B, K, D)
        h = h + last.ls_2(last.mlp(last.ln_2(h)))
        return self._text_head(h)

    # ---------------------------------------------------------------- vision
    def _vision_block(
        self, i: int, x: torch.Tensor, context: torch.Tensor | None, num_frames: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One contextualised block. x (B*T, N, W) frame tokens, context (B, k, W) or None (block 0)."""
        block = self.clip.visual.transformer.resblocks[i]
        bt, n, width = x.shape
        b, t = bt // num_frames, num_frames
        heads = block.attn.num_heads
        w, bias = block.attn.in_proj_weight, block.attn.in_proj_bias
        q, k, v = (_split_heads(z, heads) for z in F.linear(block.ln_1(x), w, bias).chunk(3, dim=-1))  # (BT,H,N,hd)
        mask = None
        if context is not None:
            kv = F.linear(block.ln_1(context), w[width:], bias[width:])  # (B, k, 2W): no queries for context
            kc, vc = (_split_heads(z, heads) for z in kv.chunk(2, dim=-1))  # (B, H, k, hd)
            kc, vc = (z.repeat_interleave(t, dim=0) for z in (kc, vc))  # (B, H, k, hd) -> (BT, H, k, hd)
            k, v = torch.cat([k, kc], dim=2), torch.cat([v, vc], dim=2)  # (BT, H, N + k, hd)
            table = self.context_bias[i - 1].to(x.dtype)  # (H, 1, 2): local, context
            mask = torch.cat([table[..., :1].expand(-1, -1, n), table[..., 1:].expand(-1, -1, kc.shape[2])], -1)
        scale = q.shape[-1] ** -0.5
        if self.sdpa:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (BT, H, N, hd)
            with torch.no_grad():  # SDPA returns no weights: redo the CLS row (only indices are used)
                logits = (q[:, :, :1] * scale) @ k.transpose(-2, -1)  # (BT, H, 1, N + k)
                cls_attn = (logits if mask is None else logits + mask).softmax(-1)
        else:
            logits = (q * scale) @ k.transpose(-2, -1)  # (BT, H, N, N + k)
            attn = (logits if mask is None else logits + mask).softmax(-1)
            out, cls_attn = attn @ v, attn[:, :, :1]
        x = x + block.ls_1(block.attn.out_proj(out.transpose(1, 2).flatten(2)))  # (BT, N, W)
        # seeds: the patches each frame's CLS attends to most (head mean), from the residual stream
        scores = cls_attn[:, :, 0, 1 : 1 + self.num_patches].mean(dim=1).view(b, t, -1)  # (B, T, Np)
        idx = scores.topk(self.num_seeds, dim=-1).indices  # (B, T, s), sorted by score
        patches = x.view(b, t, n, width)[:, :, 1:]  # (B, T, Np, W)
        seeds = patches.gather(2, idx[..., None].expand(-1, -1, -1, width)).flatten(1, 2)  # (B, T*s, W)
        context = merge_to(seeds, self.num_context_tokens, self.merges_per_step)  # (B, k, W)
        tokens = torch.cat([x.view(b, t * n, width), context], dim=1)  # (B, T*N + k, W)
        tokens = tokens + block.ls_2(block.mlp(block.ln_2(tokens)))
        return tokens[:, : t * n].reshape(bt, n, width), tokens[:, t * n :]

    def encode_video_tokens(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C, H, W) frames -> (B, E) normalised video features and (B, k, E) projected context tokens."""
        visual = self.clip.visual
        b, t = video.shape[:2]
        size = visual.image_size if isinstance(visual.image_size, tuple) else (visual.image_size,) * 2
        if video.dim() != 5 or tuple(video.shape[-2:]) != tuple(size):
            raise ValueError(
                f"TCCLIP expects video (B, T, C, {size[0]}, {size[1]}), got {tuple(video.shape)}; "
                "resize/crop frames to the CLIP input size"
            )
        if t * self.num_seeds < self.num_context_tokens:
            raise ValueError(
                f"{t} frames x {self.num_seeds} seeds < num_context_tokens "
                f"{self.num_context_tokens}; use more frames or fewer context tokens"
            )
        x = visual.conv1(video.flatten(0, 1))  # (B*T, W, g, g)
        x = x.flatten(2).transpose(1, 2)  # (B*T, Np, W)
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)  # (B*T, N, W)
        x = visual.ln_pre(x)
        context = None
        for i in range(len(visual.transformer.resblocks)):
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x, context = activation_checkpoint(self._vision_block, i, x, context, t, use_reentrant=False)
            else:
                x, context = self._vision_block(i, x, context, t)
        cls_out = visual.ln_post(x[:, 0]) @ visual.proj  # (B*T, E)
        video_features = F.normalize(cls_out.view(b, t, -1).mean(dim=1), dim=-1)  # (B, E)
        return video_features, visual.ln_post(context) @ visual.proj

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) frames -> (B, E) L2-normalised video features."""
        return self.encode_video_tokens(video)[0]

    def forward(self, video: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) video and (K, L) class tokens -> (B, K) logits (logit_scale.exp() * cosine)."""
        # torch.compile caches by code object (guarded on this module), so wrapping per call compiles once and
        # keeps no compiled object on the module (deepcopy and pickling stay plain).
        encode_video = torch.compile(self.encode_video_tokens) if self.compile_vision else self.encode_video_tokens
        video_features, context = encode_video(video)
        context = context.detach()  # the prompts see the video, no gradient flows back through them
        encode = self.encode_text_batched if self.batched_prompting else self.encode_text_reference
        text = encode(tokens, context)  # (B, K, E)
        return self.clip.logit_scale.exp() * torch.einsum("be,bke->bk", video_features, text.to(video_features.dtype))

    def param_groups(self) -> list[dict]:
        """Optimizer groups: the prompt vectors and prompt layer at 10x the base learning rate."""
        prompt = [self.prompt_ctx, *self.prompt_layer.parameters()]
        ids = {id(p) for p in prompt}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        return [{"params": rest, "lr_scale": 1.0}, {"params": [p for p in prompt if p.requires_grad], "lr_scale": 10.0}]
