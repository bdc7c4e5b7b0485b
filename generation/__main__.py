"""Command line of the generation program: `python -m generation <step> ...`, one step per entry of `STEPS`.

    python -m generation prompts --labels labels.csv --out prompts.jsonl --strategy ie
    python -m generation render --prompts prompts.jsonl --out data/synth --num_shards 4 --shard_index 0
    python -m generation render --prompts prompts.jsonl --out data/synth --generator wan2.1-1.3b --batch_size 2
    python -m generation render --config configs/generation/render_cogvideox_2b.yaml --print_config > saved.yaml
    python -m generation plan --generator cogvideox-2b --labels labels.csv --videos_per_class 128 --gpus 8
    python -m generation status --prompts prompts.jsonl --out data/synth
    python -m generation gallery --manifest data/synth/manifest.jsonl --out data/synth/gallery
    python -m generation demo --out data/demo --preset demo
    python -m generation score --manifest data/synth/manifest.jsonl --labels labels.csv
    python -m generation analyze --dataset '[synth=data/synth/manifest.jsonl, real=val1.txt@videos]' \\
        --reference real --labels labels.csv --out analysis/

Every step takes `--config FILE`, `--print_config` and dotted overrides (jsonargparse, as train.py); its options
are the signature of the function or dataclass that does the work (`generation.cli`), so a default lives in one
place. The older argparse spellings (`--num-shards`, `--no-progress`, bare `--verify`) still work. User errors
(missing files, malformed inputs, bad arguments) print one `error: ...` line and exit 2. `status` exits 1 when
the render folder is incomplete (missing, failed, broken/truncated or partial clips).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Literal

from datamodules.manifest import ManifestError
from generation.cli import Step, function_step, run_cli
from generation.prompts import PromptError

# ------------------------------------------------------------------ prompts


def _build_prompts(p) -> None:
    from generation.llm import LLMWriter, make_llm_prompts
    from generation.prompts import make_prompts

    p.add_argument("--labels", type=str, required=True, help="label CSV of `id,name` lines (header optional)")
    p.add_argument("--out", type=str, required=True, help="prompts.jsonl to write (atomically)")
    p.add_function_arguments(make_prompts, skip={"labels", "backend"}, as_group=False)
    p.add_argument(
        "--backend",
        type=Literal["auto", "template", "openai"],
        default="auto",
        help="template: offline built-in vocabularies; openai: an LLM (OpenAI or any compatible server); "
        "auto: openai when OPENAI_API_KEY, --llm.base_url or OPENAI_BASE_URL is set, else template",
    )
    p.add_class_arguments(LLMWriter, "llm", skip={"usage"}, help="openai backend: the LLM client")
    p.add_function_arguments(
        make_llm_prompts,
        skip={"labels", "strategy", "writer", "videos_per_class", "num_envs", "num_chars", "tokenizer"},
        as_group=False,
    )
    p.add_argument(
        "--tokenizer",
        type=str | None,
        default=None,
        help="T5 tokenizer folder (or CogVideoX model folder) to check the 226-token limit; default: a 120-word bound",
    )


def _prompts(cfg: dict) -> None:
    from generation.prompts import fit_tokens, labels_from_csv, make_prompts, write_prompts

    labels = labels_from_csv(cfg["labels"])
    tokenizer = _tokenizer(cfg["tokenizer"])
    llm = cfg["llm"]
    backend = cfg["backend"]
    counts = {k: cfg[k] for k in ("videos_per_class", "num_envs", "num_chars")}
    if backend == "auto":  # the template backend stays the default when no key/server is configured
        configured = os.environ.get("OPENAI_API_KEY") or llm["base_url"] or os.environ.get("OPENAI_BASE_URL")
        backend = "openai" if configured else "template"
    if backend == "openai":
        from generation.llm import LLMWriter, make_llm_prompts

        writer = LLMWriter(**llm)
        rows, report = make_llm_prompts(
            labels, cfg["strategy"], writer, chunk=cfg["chunk"], tokenizer=tokenizer, **counts
        )
        truncated, short = report.truncated, report.short
        print(f"LLM usage ({writer.model}): {report.usage}")
    else:
        rows = make_prompts(labels, cfg["strategy"], backend=backend, **counts)
        truncated = short = 0
        for row in rows:
            row.prompt, cut = fit_tokens(row.prompt, tokenizer)
            truncated += cut
    write_prompts(cfg["out"], rows)
    limit = "226 T5 tokens" if tokenizer is not None else "120 words (no --tokenizer given)"
    print(
        f"wrote {len(rows)} {cfg['strategy']} prompts ({backend} backend) to {cfg['out']}; "
        f"{truncated} truncated to fit {limit}, {short} under 50 words"
    )


def _tokenizer(path: str | None):
    if not path:
        return None
    from transformers import AutoTokenizer

    sub = Path(path) / "tokenizer"
    return AutoTokenizer.from_pretrained(str(sub) if sub.is_dir() else path)


LLM_ALIASES = {
    f"--{k}": f"--llm.{k}"
    for k in ("model", "base_url", "cache_dir", "temperature", "timeout", "max_retries", "max_attempts")
}

# ------------------------------------------------------------------ render


def render_options(
    prompts: str,
    out: str,
    backend: Literal["procedural", "diffusers", "cogvideox", "ray"] | None = None,
    size: int = 64,
    num_shards: int = 1,
    shard_index: int = 0,
    ray_backend: Literal["procedural", "diffusers", "cogvideox"] = "procedural",
    ray_workers: int = 1,
    verify: bool = False,
    progress: bool = True,
) -> None:
    """Render every row of this shard not yet in OUT/manifest.jsonl; safe to re-run after a crash or kill.

    Args:
        prompts: prompts.jsonl from `python -m generation prompts`.
        out: output folder (manifest.jsonl, videos/<class>/<row_id>.mp4).
        backend: procedural (the CPU demo world), diffusers (the --generator; cogvideox is its old name) or ray
            (--ray_backend on a pool of Ray actors); default diffusers when --generator is given, else procedural.
        size: procedural: frame width and height, even.
        num_shards: total shards; row i goes to shard i % N.
        shard_index: this process's shard, 0..N-1.
        ray_backend: ray: the renderer inside each actor.
        ray_workers: ray: actors, one pipeline (and GPU) each.
        verify: also check every registered clip (opens it) and render unreadable/truncated ones again.
        progress: show the progress bar.
    """


def _build_render(p) -> None:
    from generation.t2v import GENERATORS, T2VSettings

    p.add_function_arguments(render_options, as_group=False)
    p.add_class_arguments(T2VSettings, None, skip={"generator"}, as_group=False)
    # None: the paper's CogVideoX-2B, and the procedural backend unless --backend says otherwise
    p.add_argument(
        "--generator",
        type=Literal[tuple(GENERATORS)] | None,
        default=None,
        help=f"text-to-video model ({', '.join(GENERATORS)}); its model card settings are the defaults of the "
        "options below (see `python -m generation plan`); default cogvideox-2b",
    )


def _render(cfg: dict) -> None:
    from generation.render import render_prompts
    from generation.t2v import T2VSettings

    run = {
        k: cfg.pop(k)
        for k in (
            "prompts",
            "out",
            "backend",
            "size",
            "num_shards",
            "shard_index",
            "ray_backend",
            "ray_workers",
            "verify",
            "progress",
        )
    }
    generator = cfg.pop("generator")
    backend = run["backend"] or ("diffusers" if generator else "procedural")
    settings = T2VSettings(**cfg, **({"generator": generator} if generator else {}))
    settings.compare_log = settings.compare_log or str(Path(run["out"]) / "cache_deviation.jsonl")
    uses_t2v = backend in ("diffusers", "cogvideox") or (backend == "ray" and run["ray_backend"] != "procedural")
    if uses_t2v:
        settings.check()
    log = Path(settings.compare_log)
    logged_before = log.stat().st_size if log.is_file() else 0
    s = render_prompts(
        run["prompts"],
        run["out"],
        backend=backend,
        num_frames=settings.frames or 16,
        size=run["size"],
        fps=settings.fps,
        num_shards=run["num_shards"],
        shard_index=run["shard_index"],
        progress=run["progress"],
        t2v=settings if uses_t2v else None,
        ray_backend=run["ray_backend"],
        ray_workers=run["ray_workers"],
        ray_batch_size=settings.batch_size,
        verify=run["verify"],
    )
    print(
        f"shard {run['shard_index']}/{run['num_shards']}: {s.shard_rows} rows, {s.already_done} already done, "
        f"{s.rendered} rendered ({s.unregistered_rerendered} unregistered files redone), {s.failed} failed, "
        f"{s.partials_removed} partial files removed, {s.clips_per_s:.2f} clips/s -> {run['out']}/manifest.jsonl"
    )
    if uses_t2v and settings.compare_to_uncached and log.is_file():
        with log.open(encoding="utf-8") as f:
            f.seek(logged_before)
            psnrs = [json.loads(line)["psnr_db"] for line in f if line.strip()]
        finite = [p for p in psnrs if p is not None]
        if psnrs:
            worst = f"{min(finite):.2f} dB" if finite else "inf (identical)"
            print(
                f"--cache {settings.cache} vs uncached: {len(psnrs)} clips compared, PSNR min {worst}, "
                f"{len(psnrs) - len(finite)} identical -> {log}"
            )


# ------------------------------------------------------------------ the other steps


def _status(cfg: dict) -> int:
    from generation.status import render_status, status_json

    st = render_status(cfg["prompts"], cfg["out"], decode=cfg["decode"])
    print(status_json(st) if cfg["json"] else st.table())
    return 0 if st.complete else 1


def status_options(prompts: str, out: str, json: bool = False, decode: bool = False) -> None:
    """Compare prompts.jsonl with a render folder (manifest, failed.jsonl, files).

    Args:
        prompts: prompts.jsonl the folder is rendered from.
        out: render output folder.
        json: print JSON instead of a table.
        decode: check clips by decoding every frame (slow) instead of reading their packets.
    """


def _gallery_build(p) -> None:
    from generation.status import make_gallery

    p.add_argument("--manifest", type=str, required=True, help="manifest.jsonl of a render folder")
    p.add_argument("--out", type=str, required=True, help="folder for <class>.png sheets")
    p.add_function_arguments(make_gallery, skip={"manifest_path", "out_dir"}, as_group=False)


def _gallery(cfg: dict) -> None:
    from generation.status import make_gallery

    out = cfg.pop("out")
    paths = make_gallery(cfg.pop("manifest"), out, **cfg)
    tb = cfg["tensorboard"]
    print(f"wrote {len(paths)} contact sheets to {out}" + (f" and {tb}" if tb else ""))


def _demo_build(p) -> None:
    from generation.demo import build_demo

    p.add_function_arguments(build_demo, as_group=False)
    p.set_defaults(out="data/demo")


def _demo(cfg: dict) -> None:
    from generation.demo import build_demo

    done = build_demo(**cfg)
    print(f"demo dataset ({cfg['preset']}) ready in {cfg['out']}: {done['counts']}")


def _weights(cfg: dict) -> dict:
    """`--pretrained none` (any case) means random weights."""
    if isinstance(cfg.get("pretrained"), str) and cfg["pretrained"].lower() in ("none", ""):
        cfg["pretrained"] = None
    return cfg


def _score_build(p) -> None:
    from generation.score import score_manifest

    p.add_function_arguments(score_manifest, as_group=False)


def _score(cfg: dict) -> None:
    from generation.score import score_manifest

    s = score_manifest(**_weights(cfg))
    print(
        f"{s.rows} rows: {s.scored} scored now ({s.clips_per_s:.1f} clips/s), {s.already_scored} already scored; "
        f"uncertainty re-normalised ({cfg['normalisation']}) -> {cfg['manifest']}"
    )


def _analyze_build(p) -> None:
    from generation.analyze import analyze_datasets

    p.add_argument(
        "--dataset",
        type=list[str],
        required=True,
        help="NAME=manifest.jsonl, or NAME=list.txt@VIDEO_ROOT for a `path label` list; a list, or repeat the option",
    )
    p.add_function_arguments(analyze_datasets, skip={"datasets"}, as_group=False)
    p.set_defaults(out="analysis")


def _analyze(cfg: dict) -> None:
    from generation.analyze import DatasetSpec, analyze_datasets

    specs = [DatasetSpec.parse(d) for d in cfg.pop("dataset")]
    report = analyze_datasets(specs, **_weights(cfg))
    print(f"reference: {report['reference']}; RBF sigma = {report['rbf_sigma']:.4g} (median heuristic)")
    print(f"{'dataset':<16}{'clips':>7}{'DB':>9}{'MMD2 lin':>12}{'MMD2 rbf':>12}{'MMD2 poly':>12}")
    for name, d in report["datasets"].items():
        m = d["mmd2"]
        db = d["davies_bouldin"]
        print(f"{name:<16}{d['clips']:>7}{db:>9.3f}{m['linear']:>12.4g}{m['rbf']:>12.4g}{m['poly']:>12.4g}")
    print(f"-> {cfg['out']}/analysis.json, {cfg['out']}/tsne.png")


def _plan_step() -> Step:
    from generation.plan import plan_cost, print_plan

    return function_step(
        plan_cost, "clips, GPU-hours and wall-clock of rendering a label list with each generator", print_plan, "plan"
    )


def _rephrase_step() -> Step:
    from generation.rephrase import rephrase_labels

    def report(names: dict[str, str]) -> None:
        print(f"{len(names)} class names rephrased")

    return function_step(rephrase_labels, "LLM-rephrased class names (FROSTER's JSON) for TC-CLIP (LLM) rows", report)


CLIP_ALIASES = {"--frames": "--num_frames"}

# The subcommands, in --help order. A new one is one entry: `function_step(fn, help)` makes its options from
# fn's signature (as the LLM label rephraser's, `rephrase-labels`).
STEPS: list[Step] = [
    Step(
        "prompts",
        "write prompts.jsonl (one row per video) from a label CSV",
        _build_prompts,
        _prompts,
        aliases=LLM_ALIASES,
    ),
    Step(
        "render",
        "render prompts.jsonl to mp4 clips + manifest.jsonl (resumable)",
        _build_render,
        _render,
        description=render_options.__doc__.split("\n\n")[0],
    ),
    _plan_step(),
    Step(
        "status",
        "planned/done/failed/missing clips per class; partial and orphan files",
        lambda p: p.add_function_arguments(status_options, as_group=False),
        _status,
    ),
    Step("gallery", "labelled contact-sheet PNG per class, optionally into TensorBoard", _gallery_build, _gallery),
    _rephrase_step(),
    Step("demo", "build the whole offline demo dataset (labels, real splits, Basic and IE sets)", _demo_build, _demo),
    Step(
        "score", "CLIP uncertainty of every clip of a manifest (resumable)", _score_build, _score, aliases=CLIP_ALIASES
    ),
    Step(
        "analyze",
        "Davies-Bouldin, MMD and t-SNE of datasets in CLIP feature space",
        _analyze_build,
        _analyze,
        aliases=CLIP_ALIASES,
    ),
]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return run_cli(
            STEPS,
            argv,
            "python -m generation",
            "Make synthetic action videos: prompts from class "
            "names, clips from prompts, or the whole offline demo dataset.",
        )
    except (FileNotFoundError, PromptError, ManifestError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
