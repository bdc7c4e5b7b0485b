"""Where a TC-CLIP training step spends its time: per section and per operator (torch.profiler).

Run from the repo root: `python benchmarks/profile_tc_clip.py [--device cuda --dtype bf16 --frames 16 --batch 16]`.
Random weights, our way (batched prompting + SDPA). One warm-up step, then one profiled step (forward,
cross-entropy, backward, AdamW). Sections are `record_function` ranges around the parts of the forward
(vision stem, each block's attention / seed selection + merge / MLP is not separable without editing the
model, so the vision tower is one range and the operators show its inside), the text side, the loss, the
backward and the optimiser step. Prints the sections (ms and % of the step) and the top operators by self
time; reports each section as a measurement (ours = section ms, baseline = the whole step).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from benchmarks.common import report  # noqa: E402
from benchmarks.train_step import class_names, image_size  # noqa: E402
from lightning_modules.models.tc_clip import TCCLIP  # noqa: E402

SECTIONS = [
    "vision tower (encode_video_tokens)",
    "text (encode_text_batched)",
    "logits + loss",
    "backward",
    "optimizer step",
]


def step(net: TCCLIP, optimizer, video, tokens, labels, autocast) -> None:
    with autocast():
        with record_function(SECTIONS[0]):
            video_features, context = net.encode_video_tokens(video)
        with record_function(SECTIONS[1]):
            text = net.encode_text_batched(tokens, context.detach())  # (B, K, E)
        with record_function(SECTIONS[2]):
            logits = net.clip.logit_scale.exp() * torch.einsum(
                "be,bke->bk", video_features, text.to(video_features.dtype)
            )
            loss = F.cross_entropy(logits.float(), labels)
    with record_function(SECTIONS[3]):
        loss.backward()
    with record_function(SECTIONS[4]):
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ViT-B-16")
    parser.add_argument("--context-tokens", type=int, default=96)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--classes", type=int, default=51)
    parser.add_argument("--top", type=int, default=15, help="operators listed")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    net = TCCLIP(arch=args.arch, pretrained=None, num_context_tokens=args.context_tokens).to(device).train()
    optimizer = torch.optim.AdamW(
        [p for p in net.parameters() if p.requires_grad], lr=1e-6, fused=device.type == "cuda"
    )
    autocast = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if args.dtype == "bf16" else contextlib.nullcontext
    )
    video = torch.randn(args.batch, args.frames, 3, *image_size(net), device=device)  # (B, T, C, H, W)
    tokens = net.tokenize(class_names(args.classes)).to(device)
    labels = torch.arange(args.batch, device=device) % args.classes
    step(net, optimizer, video, tokens, labels, autocast)  # warm-up
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        step(net, optimizer, video, tokens, labels, autocast)
        if device.type == "cuda":
            torch.cuda.synchronize()
    wall = 1000 * (time.perf_counter() - start)
    events = {e.key: e for e in prof.key_averages()}
    use_cuda = device.type == "cuda"

    def ms(e) -> float:  # device time on CUDA (what bounds the step), CPU time otherwise
        return (e.device_time_total if use_cuda else e.cpu_time_total) / 1000

    print(
        f"{args.arch}, {args.batch} clips x {args.frames} frames, {args.classes} classes, {args.dtype}, {device}: "
        f"profiled step {wall:.0f} ms wall (profiler overhead included)"
    )
    total = sum(ms(events[s]) for s in SECTIONS if s in events)
    for s in SECTIONS:
        if s in events:
            print(f"  {s:40s} {ms(events[s]):9.1f} ms  {100 * ms(events[s]) / total:5.1f}%")
            report(
                "profile_tc_clip",
                f"{s} ms, batch {args.batch}, {args.frames} frames, {args.dtype}",
                ms(events[s]),
                total,
                "ms",
                higher_is_better=False,
                note=f"{device}; ratio = step / section",
            )
    sort = "self_device_time_total" if use_cuda else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=args.top, max_name_column_width=40))


if __name__ == "__main__":
    main()
