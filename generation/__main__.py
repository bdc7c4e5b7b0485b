"""Command line of the generation program: `python -m generation <step> ...`, one step per subcommand.

    python -m generation prompts --labels labels.csv --out prompts.jsonl --strategy ie
    python -m generation render --prompts prompts.jsonl --out data/synth --num-shards 4 --shard-index 0
    python -m generation render --prompts prompts.jsonl --out data/synth --backend cogvideox --batch-size 2
    python -m generation status --prompts prompts.jsonl --out data/synth
    python -m generation gallery --manifest data/synth/manifest.jsonl --out data/synth/gallery
    python -m generation demo --out data/demo --preset demo
    python -m generation score --manifest data/synth/manifest.jsonl --labels labels.csv
    python -m generation analyze --dataset synth=data/synth/manifest.jsonl --dataset real=val1.txt@videos \\
        --reference real --labels labels.csv --out analysis/

User errors (missing files, malformed inputs, bad arguments) print one `error: ...` line and exit 2.
`status` exits 1 when the render folder is incomplete (missing, failed, broken/truncated or partial clips).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from datamodules.manifest import ManifestError
from generation.prompts import STRATEGIES, PromptError


def _prompts(args: argparse.Namespace) -> None:
    import os

    from generation.prompts import fit_tokens, labels_from_csv, make_prompts, write_prompts

    labels = labels_from_csv(args.labels)
    tokenizer = _tokenizer(args.tokenizer)
    backend = args.backend
    if backend == "auto":  # the template backend stays the default when no key/server is configured
        configured = os.environ.get("OPENAI_API_KEY") or args.base_url or os.environ.get("OPENAI_BASE_URL")
        backend = "openai" if configured else "template"
    if backend == "openai":
        from generation.llm import LLMWriter, make_llm_prompts

        writer = LLMWriter(
            model=args.model,
            cache_dir=args.cache_dir,
            base_url=args.base_url,
            temperature=args.temperature,
            timeout=args.timeout,
            max_retries=args.max_retries,
            max_attempts=args.max_attempts,
        )
        rows, report = make_llm_prompts(
            labels,
            args.strategy,
            writer,
            videos_per_class=args.videos_per_class,
            num_envs=args.num_envs,
            num_chars=args.num_chars,
            chunk=args.chunk,
            tokenizer=tokenizer,
        )
        truncated, short = report.truncated, report.short
        print(f"LLM usage ({args.model}): {report.usage}")
    else:
        rows = make_prompts(
            labels,
            args.strategy,
            videos_per_class=args.videos_per_class,
            num_envs=args.num_envs,
            num_chars=args.num_chars,
            backend=backend,
        )
        truncated = short = 0
        for row in rows:
            row.prompt, cut = fit_tokens(row.prompt, tokenizer)
            truncated += cut
    write_prompts(args.out, rows)
    limit = "226 T5 tokens" if tokenizer is not None else "120 words (no --tokenizer given)"
    print(
        f"wrote {len(rows)} {args.strategy} prompts ({backend} backend) to {args.out}; "
        f"{truncated} truncated to fit {limit}, {short} under 50 words"
    )


def _tokenizer(path: str | None):
    if not path:
        return None
    from transformers import AutoTokenizer

    sub = Path(path) / "tokenizer"
    return AutoTokenizer.from_pretrained(str(sub) if sub.is_dir() else path)


def _render(args: argparse.Namespace) -> None:
    from generation.cogvideox import CogVideoXSettings
    from generation.render import render_prompts

    cog = None
    if args.backend == "cogvideox" or (args.backend == "ray" and args.ray_backend == "cogvideox"):
        cog = CogVideoXSettings(
            model=args.model,
            dtype=args.dtype,
            device=args.device,
            steps=args.steps,
            guidance=args.guidance,
            num_frames=args.frames or 49,
            width=args.width,
            height=args.height,
            max_sequence_length=args.max_sequence_length,
            batch_size=args.batch_size,
            cpu_offload=args.cpu_offload,
            vae_tiling=args.vae_tiling,
            vae_slicing=args.vae_slicing,
            compile=args.compile,
            cache=args.cache,
            cache_args=_cache_args(args.cache_arg),
            fp8=args.fp8,
            compare_to_uncached=args.compare_to_uncached,
            compare_log=str(Path(args.out) / "cache_deviation.jsonl"),
        )
        cog.check()
    log = Path(args.out) / "cache_deviation.jsonl"
    logged_before = log.stat().st_size if log.is_file() else 0
    s = render_prompts(
        args.prompts,
        args.out,
        backend=args.backend,
        num_frames=args.frames or 16,
        size=args.size,
        fps=args.fps,
        num_shards=args.num_shards,
        shard_index=args.shard_index,
        progress=not args.no_progress,
        cogvideox=cog,
        ray_backend=args.ray_backend,
        ray_workers=args.ray_workers,
        ray_batch_size=args.batch_size,
        verify=args.verify,
    )
    print(
        f"shard {args.shard_index}/{args.num_shards}: {s.shard_rows} rows, {s.already_done} already done, "
        f"{s.rendered} rendered ({s.unregistered_rerendered} unregistered files redone), {s.failed} failed, "
        f"{s.partials_removed} partial files removed, {s.clips_per_s:.2f} clips/s -> {args.out}/manifest.jsonl"
    )
    if cog is not None and cog.compare_to_uncached and log.is_file():
        with log.open(encoding="utf-8") as f:
            f.seek(logged_before)
            psnrs = [json.loads(line)["psnr_db"] for line in f if line.strip()]
        finite = [p for p in psnrs if p is not None]
        if psnrs:
            worst = f"{min(finite):.2f} dB" if finite else "inf (identical)"
            print(
                f"--cache {cog.cache} vs uncached: {len(psnrs)} clips compared, PSNR min {worst}, "
                f"{len(psnrs) - len(finite)} identical -> {log}"
            )


def _cache_args(items: list[str] | None) -> dict[str, str]:
    """`--cache-arg key=value` options as a dict (values parsed later, by the cache's knob types)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--cache-arg {item!r}: expected KEY=VALUE, e.g. --cache-arg threshold=0.1")
        out[key.strip()] = value
    return out


def _status(args: argparse.Namespace) -> int:
    from generation.status import render_status, status_json

    st = render_status(args.prompts, args.out, decode=args.decode)
    print(status_json(st) if args.json else st.table())
    return 0 if st.complete else 1


def _gallery(args: argparse.Namespace) -> None:
    from generation.status import make_gallery

    paths = make_gallery(
        args.manifest,
        args.out,
        per_class=args.per_class,
        columns=args.columns,
        frames_per_clip=args.frames_per_clip,
        frame_size=args.frame_size,
        tensorboard=args.tensorboard,
    )
    print(f"wrote {len(paths)} contact sheets to {args.out}" + (f" and {args.tensorboard}" if args.tensorboard else ""))


def _demo(args: argparse.Namespace) -> None:
    from generation.demo import build_demo

    done = build_demo(args.out, args.preset, progress=not args.no_progress)
    print(f"demo dataset ({args.preset}) ready in {args.out}: {done['counts']}")


def _score(args: argparse.Namespace) -> None:
    from generation.score import score_manifest

    s = score_manifest(
        args.manifest,
        args.labels,
        arch=args.arch,
        pretrained=_weights(args.pretrained),
        num_frames=args.frames,
        template=args.template,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        normalisation=args.normalisation,
        top=args.top,
        progress=not args.no_progress,
        tensorboard=args.tensorboard,
        checkpoint=args.checkpoint,
        views=args.views,
        rescore=args.rescore,
    )
    print(
        f"{s.rows} rows: {s.scored} scored now ({s.clips_per_s:.1f} clips/s), {s.already_scored} already scored; "
        f"uncertainty re-normalised ({args.normalisation}) -> {args.manifest}"
    )


def _analyze(args: argparse.Namespace) -> None:
    from generation.analyze import DatasetSpec, analyze_datasets

    specs = [DatasetSpec.parse(d) for d in args.dataset]
    report = analyze_datasets(
        specs,
        args.reference,
        args.out,
        labels=args.labels,
        arch=args.arch,
        pretrained=_weights(args.pretrained),
        num_frames=args.frames,
        template=args.template,
        batch_size=args.batch_size,
        max_clips=args.max_clips,
        tensorboard=args.tensorboard,
    )
    print(f"reference: {report['reference']}; RBF sigma = {report['rbf_sigma']:.4g} (median heuristic)")
    print(f"{'dataset':<16}{'clips':>7}{'DB':>9}{'MMD2 lin':>12}{'MMD2 rbf':>12}{'MMD2 poly':>12}")
    for name, d in report["datasets"].items():
        m = d["mmd2"]
        db = d["davies_bouldin"]
        print(f"{name:<16}{d['clips']:>7}{db:>9.3f}{m['linear']:>12.4g}{m['rbf']:>12.4g}{m['poly']:>12.4g}")
    print(f"-> {args.out}/analysis.json, {args.out}/tsne.png")


def _weights(text: str) -> str | None:
    return None if text.lower() in ("none", "") else text


def _add_clip_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default="ViT-B-16", help="open_clip architecture (default ViT-B-16)")
    p.add_argument(
        "--pretrained",
        default="openai",
        help="open_clip tag, local weight file, or 'none' for random weights (default openai)",
    )
    p.add_argument("--frames", type=int, default=8, help="frames sampled uniformly per clip (default 8)")
    p.add_argument("--template", default="a photo of a {}.", help="class-name prompt (default 'a photo of a {}.')")
    p.add_argument("--batch-size", type=int, default=16, help="clips per forward pass (default 16)")
    p.add_argument("--tensorboard", default=None, help="also log the figures to this TensorBoard folder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m generation",
        description="Make synthetic action videos: prompts from class names, clips from prompts, "
        "or the whole offline demo dataset.",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{prompts,render,status,gallery,demo,score,analyze}"
    )

    p = sub.add_parser(
        "prompts",
        help="write prompts.jsonl (one row per video) from a label CSV",
        description="Write one prompt row per video to render, for every class of a label CSV.",
    )
    p.add_argument("--labels", required=True, help="label CSV of `id,name` lines (header optional)")
    p.add_argument("--out", required=True, help="prompts.jsonl to write (atomically)")
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="ie",
        help="basic: 'a person is <action>'; env: + environment; cha: + character; "
        "ie: environment + character (default)",
    )
    p.add_argument("--videos-per-class", type=int, default=128, help="videos per class (default 128)")
    p.add_argument("--num-envs", type=int, default=4, help="environments per class (default 4)")
    p.add_argument("--num-chars", type=int, default=16, help="characters per class (default 16)")
    p.add_argument(
        "--backend",
        choices=("auto", "template", "openai"),
        default="auto",
        help="template: offline built-in vocabularies; openai: an LLM (OpenAI or any compatible server); "
        "auto (default): openai when OPENAI_API_KEY, --base-url or OPENAI_BASE_URL is set, else template",
    )
    p.add_argument("--model", default="gpt-4o", help="openai: chat model (default gpt-4o)")
    p.add_argument(
        "--base-url",
        default=None,
        help="openai: server URL, e.g. http://localhost:8000/v1 (vLLM/Ollama); default OPENAI_BASE_URL",
    )
    p.add_argument("--cache-dir", default=".cache/llm", help="openai: response cache folder (default .cache/llm)")
    p.add_argument("--chunk", type=int, default=8, help="openai: action descriptions per request (default 8)")
    p.add_argument("--temperature", type=float, default=1.0, help="openai: sampling temperature (default 1.0)")
    p.add_argument("--timeout", type=float, default=60.0, help="openai: seconds per HTTP request (default 60)")
    p.add_argument("--max-retries", type=int, default=4, help="openai: client retries on 429/5xx (default 4)")
    p.add_argument(
        "--max-attempts",
        type=int,
        default=3,
        help="openai: re-asks for a malformed reply or wrong item count (default 3)",
    )
    p.add_argument(
        "--tokenizer",
        default=None,
        help="T5 tokenizer folder (or CogVideoX model folder) to check the 226-token limit; default: a 120-word bound",
    )
    p.set_defaults(func=_prompts)

    r = sub.add_parser(
        "render",
        help="render prompts.jsonl to mp4 clips + manifest.jsonl (resumable)",
        description="Render every row of this shard not yet in OUT/manifest.jsonl; safe to re-run "
        "after a crash or kill.",
    )
    r.add_argument("--prompts", required=True, help="prompts.jsonl from `python -m generation prompts`")
    r.add_argument("--out", required=True, help="output folder (manifest.jsonl, videos/<class>/<row_id>.mp4)")
    r.add_argument(
        "--backend",
        default="procedural",
        metavar="{procedural,cogvideox,ray}",
        help="procedural: the CPU demo world (default); cogvideox: diffusers CogVideoXPipeline; "
        "ray: --ray-backend on a pool of Ray actors",
    )
    r.add_argument("--num-shards", type=int, default=1, help="total shards; row i goes to shard i %% N")
    r.add_argument("--shard-index", type=int, default=0, help="this process's shard, 0..N-1")
    r.add_argument("--frames", type=int, default=None, help="frames per clip (default 16 procedural, 49 cogvideox)")
    r.add_argument("--size", type=int, default=64, help="procedural: frame width and height, even (default 64)")
    r.add_argument("--fps", type=float, default=8, help="frame rate of the written files (default 8)")
    r.add_argument("--batch-size", type=int, default=1, help="prompts per pipeline call / Ray batch (default 1)")
    r.add_argument("--model", default="THUDM/CogVideoX-2b", help="cogvideox: hub id or local pipeline folder")
    r.add_argument("--dtype", default="fp16", choices=("fp16", "bf16", "fp32"), help="cogvideox: dtype (default fp16)")
    r.add_argument("--device", default=None, help="cogvideox: torch device (default cuda if available)")
    r.add_argument("--steps", type=int, default=50, help="cogvideox: denoising steps (default 50)")
    r.add_argument("--guidance", type=float, default=6.0, help="cogvideox: guidance scale (default 6)")
    r.add_argument("--width", type=int, default=720, help="cogvideox: width (default 720)")
    r.add_argument("--height", type=int, default=480, help="cogvideox: height (default 480)")
    r.add_argument(
        "--max-sequence-length",
        type=int,
        default=226,
        help="cogvideox: T5 tokens per prompt (default 226, the model's text length)",
    )
    r.add_argument("--cpu-offload", action="store_true", help="cogvideox: model cpu offload (needs accelerate)")
    r.add_argument("--vae-tiling", action="store_true", help="cogvideox: tiled VAE decoding (less memory)")
    r.add_argument("--vae-slicing", action="store_true", help="cogvideox: VAE decodes one clip at a time")
    r.add_argument("--compile", action="store_true", help="cogvideox: torch.compile the transformer")
    r.add_argument(
        "--cache",
        default="none",
        choices=("none", "pab", "fastercache", "firstblock", "taylorseer", "magcache"),
        help="cogvideox: diffusers step cache (default none: exact); pab = Pyramid Attention Broadcast, "
        "firstblock = First Block Cache; magcache calibrates its ratios at load unless given",
    )
    r.add_argument(
        "--cache-arg",
        action="append",
        metavar="KEY=VALUE",
        help="cogvideox: a knob of --cache (a field of its diffusers config, e.g. threshold=0.1, "
        "spatial_attention_timestep_skip_range=100,800, mag_ratios=1.0,1.01,...); repeat",
    )
    r.add_argument(
        "--fp8",
        action="store_true",
        help="cogvideox: fp8 linear layers in the transformer (torchao; GPU capability >= 8.9)",
    )
    r.add_argument(
        "--compare-to-uncached",
        type=int,
        default=0,
        metavar="N",
        help="cogvideox: render the first N clips also without --cache and print/log their PSNR "
        "(OUT/cache_deviation.jsonl)",
    )
    r.add_argument(
        "--ray-backend",
        choices=("procedural", "cogvideox"),
        default="procedural",
        help="ray: renderer inside each actor (default procedural)",
    )
    r.add_argument("--ray-workers", type=int, default=1, help="ray: actors, one pipeline (and GPU) each (default 1)")
    r.add_argument(
        "--verify",
        action="store_true",
        help="also check every registered clip (opens it) and render unreadable/truncated ones again",
    )
    r.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    r.set_defaults(func=_render)

    st = sub.add_parser(
        "status",
        help="planned/done/failed/missing clips per class; partial and orphan files",
        description="Compare prompts.jsonl with a render folder (manifest, failed.jsonl, files).",
    )
    st.add_argument("--prompts", required=True, help="prompts.jsonl the folder is rendered from")
    st.add_argument("--out", required=True, help="render output folder")
    st.add_argument("--json", action="store_true", help="print JSON instead of a table")
    st.add_argument(
        "--decode",
        action="store_true",
        help="check clips by decoding every frame (slow) instead of reading their packets",
    )
    st.set_defaults(func=_status)

    g = sub.add_parser("gallery", help="labelled contact-sheet PNG per class, optionally into TensorBoard")
    g.add_argument("--manifest", required=True, help="manifest.jsonl of a render folder")
    g.add_argument("--out", required=True, help="folder for <class>.png sheets")
    g.add_argument("--per-class", type=int, default=8, help="clips per sheet (default 8)")
    g.add_argument("--columns", type=int, default=2, help="clips per sheet row (default 2)")
    g.add_argument("--frames-per-clip", type=int, default=4, help="frames shown per clip, 1 = middle (default 4)")
    g.add_argument("--frame-size", type=int, default=128, help="short side of each frame in px (default 128)")
    g.add_argument("--tensorboard", default=None, help="also add the sheets to this TensorBoard folder")
    g.set_defaults(func=_gallery)

    d = sub.add_parser(
        "demo",
        help="build the whole offline demo dataset (labels, real splits, Basic and IE sets)",
        description="Build labels.csv, a held-out 'real' set with few-shot/val lists, and Basic and IE "
        "synthetic sets. Re-running finishes an interrupted build.",
    )
    d.add_argument("--out", default="data/demo", help="output folder (default data/demo)")
    d.add_argument(
        "--preset",
        default="demo",
        choices=("demo", "smoke"),
        help="demo: the full demo (about a minute on 2 cores); smoke: tiny, for tests",
    )
    d.add_argument("--no-progress", action="store_true", help="hide progress bars")
    d.set_defaults(func=_demo)

    s = sub.add_parser(
        "score",
        help="CLIP uncertainty of every clip of a manifest (resumable)",
        description="Add entropy, uncertainty (normalised over the set), clip_pred and clip_prob to "
        "every row; writes score.json, uncertainty_hist.png and uncertain_clips.json "
        "beside the manifest. Rows already scored are kept; re-running re-normalises.",
    )
    s.add_argument("--manifest", required=True, help="manifest.jsonl to score (rewritten atomically)")
    s.add_argument("--labels", required=True, help="label CSV `id,name` of the training label space")
    _add_clip_args(s)
    s.add_argument("--num-workers", type=int, default=0, help="decoding processes (default 0)")
    s.add_argument(
        "--normalisation",
        choices=("minmax", "max_entropy"),
        default="minmax",
        help="minmax: (H - min) / (max - min) over the set (paper, default); max_entropy: H / log K",
    )
    s.add_argument("--top", type=int, default=10, help="most uncertain clips listed per class (default 10)")
    s.add_argument("--checkpoint", default=None, help="--arch demo: the stand-in CLIP's weights.pt (tasks/demo_scorer)")
    s.add_argument("--views", type=int, default=2, help="--arch demo: temporal views per clip, S averaged (default 2)")
    s.add_argument("--rescore", action="store_true", help="encode every row again, not only the unscored ones")
    s.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    s.set_defaults(func=_score)

    a = sub.add_parser(
        "analyze",
        help="Davies-Bouldin, MMD and t-SNE of datasets in CLIP feature space",
        description="Compare datasets (manifests or annotation lists) in CLIP video-feature space: "
        "Davies-Bouldin per dataset, unbiased MMD^2 (linear, RBF, polynomial) against "
        "the reference, and a t-SNE plot.",
    )
    a.add_argument(
        "--dataset",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="NAME=manifest.jsonl, or NAME=list.txt@VIDEO_ROOT for a `path label` list; repeat",
    )
    a.add_argument("--reference", required=True, help="NAME of the dataset the others are compared with")
    a.add_argument("--labels", default=None, help="label CSV, for class names in the t-SNE legend")
    a.add_argument("--out", default="analysis", help="output folder (default analysis)")
    a.add_argument("--max-clips", type=int, default=None, help="seeded random subset per dataset (default all)")
    _add_clip_args(a)
    a.set_defaults(func=_analyze)
    return parser


def config_argv(argv: list[str]) -> list[str]:
    """Expand `<step> --config FILE` into command-line options, placed before the explicit ones (which win).

    A config is a YAML mapping under configs/generation/: `command: <step>` plus option names with
    underscores (`videos_per_class: 128`); `true` switches a flag on, a list repeats the option.
    """
    if "--config" not in argv:
        return argv
    i = argv.index("--config")
    if i + 1 >= len(argv):
        raise SystemExit("error: --config needs a YAML file")
    path = Path(argv[i + 1])
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise SystemExit(f"error: cannot read --config {path}: {e.strerror}") from None
    if not isinstance(data, dict) or "command" not in data:
        raise SystemExit(f"error: {path}: expected a YAML mapping with a `command:` key (e.g. command: render)")
    rest = argv[:i] + argv[i + 2 :]
    step = data.pop("command")
    if not rest or rest[0] != step:
        raise SystemExit(f"error: {path} is a config for `{step}`; run `python -m generation {step} --config {path}`")
    expanded: list[str] = []
    for key, value in data.items():
        flag = "--" + str(key).replace("_", "-")
        if value is True:
            expanded.append(flag)
        elif value is False or value is None:
            continue
        else:
            for v in value if isinstance(value, list) else [value]:
                expanded += [flag, str(v)]
    return [step, *expanded, *rest[1:]]


def main(argv: list[str] | None = None) -> int:
    argv = config_argv(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (PromptError, ManifestError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
