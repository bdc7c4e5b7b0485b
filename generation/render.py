"""The resumable render loop: prompts.jsonl -> `videos/<class-slug>/<row_id>.mp4` + manifest.jsonl.

Each clip is written atomically (`.<row_id>.mp4.partial`, fsync, rename) and only then registered
by appending its `ManifestRow`, so a row in the manifest always points at a complete file. A re-run
repairs a torn manifest tail, skips registered rows, deletes leftover `.partial` files and
re-renders clips whose file exists but was never registered: kill -9 at any moment loses at most the
clip in flight. Rows are sharded deterministically (row i -> shard i % num_shards), so N processes
(SLURM array, torchrun) can share one output folder.

A backend is a name (`procedural`, `diffusers` = any generator of `generation.t2v.GENERATORS`, `cogvideox` its
old name; `ray` spreads either over a Ray actor pool, see `generation.ray_render`) or any callable
`(PromptRow) -> uint8 (T, H, W, 3)` with optional `name`, `generator` and `record` attributes recorded in the
manifest (family, generator name, settings); an object with `batch_size` and `render_batch(rows)` is fed
batches. A row whose rendering raises is recorded in `failed.jsonl` (row id + error), counted, and
retried by the next run; `python -m generation status` reports it.

Every row id becomes a file name, so it is checked (`datamodules.manifest.check_path_id`) before anything
is rendered, and every path written is checked to stay inside the output folder. A registered row whose
clip is gone (or, with `verify`, unreadable or truncated) is dropped from the manifest and rendered again
(single-shard runs; sharded runs report it, see `plan_render`), so the manifest never holds a row twice.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.manifest import (
    ManifestRow,
    append_manifest_rows,
    check_path_id,
    read_manifest,
    repair_torn_tail,
    safe_join,
    write_jsonl,
)
from datamodules.progress import Progress
from generation.prompts import PromptRow, read_prompts, slug
from generation.video_io import write_video

Renderer = Callable[[PromptRow], np.ndarray]
GENERATOR_FPS = 8  # CogVideoX-2B's (the default generator) when no settings are given
BACKENDS: tuple[str, ...] = ("procedural", "diffusers", "cogvideox", "ray")


@dataclass
class RenderSummary:
    """What one `render_prompts` call did."""

    total_rows: int  # rows in prompts.jsonl
    shard_rows: int  # rows assigned to this shard
    already_done: int  # shard rows found in the manifest and skipped
    rendered: int  # clips rendered and registered by this call
    unregistered_rerendered: int  # of `rendered`: clips whose file existed but was not in the manifest
    partials_removed: int  # leftover .partial files deleted
    missing_files: int  # manifest rows of this shard whose clip was gone or broken (re-rendered when 1 shard)
    seconds: float
    failed: int = 0  # rows whose rendering raised (listed in failed.jsonl; retried by the next run)

    @property
    def clips_per_s(self) -> float:
        return self.rendered / self.seconds if self.seconds > 0 else 0.0


def procedural_renderer(num_frames: int = 16, size: int = 64, style: str = "synthetic") -> Renderer:
    """The demo-world renderer as a row callable."""
    from generation.procedural import render_clip

    def render(row: PromptRow) -> np.ndarray:
        return render_clip(
            row.prompt, row.seed, num_frames=num_frames, size=size, style=style, action_hint=row.class_name
        )

    render.name = "procedural"  # type: ignore[attr-defined]
    render.record = {"generator": "procedural", "frames": num_frames, "size": size}  # type: ignore[attr-defined]
    return render


def video_relpath(row: PromptRow) -> str:
    """Clip path relative to the output folder; raises ValueError for a row id that is no safe file name."""
    return f"videos/{slug(row.class_name)}/{check_path_id(row.row_id, 'row_id')}.mp4"


def make_renderer(backend: str, *, num_frames: int = 16, size: int = 64, t2v=None) -> Renderer:
    """A renderer by name: `procedural` (num_frames, size) or `diffusers` / `cogvideox` (a `T2VSettings`)."""
    if backend == "procedural":
        if size < 8 or size % 2:
            raise ValueError(f"--size must be an even number >= 8 (yuv420p video), got {size}")
        if num_frames < 1:
            raise ValueError(f"--frames must be >= 1, got {num_frames}")
        return procedural_renderer(num_frames, size)
    if backend in ("diffusers", "cogvideox"):
        from generation.t2v import T2VRenderer

        return T2VRenderer(t2v)
    raise ValueError(
        f"unknown render backend {backend!r}; available here: {', '.join(BACKENDS)} (or pass a callable renderer)"
    )


def render_batches(renderer: Renderer, rows: list[PromptRow]):
    """Yield (row, frames or the exception it raised), in batches of `renderer.batch_size` (default 1)."""
    size = max(1, int(getattr(renderer, "batch_size", 1)))
    batch_fn = getattr(renderer, "render_batch", None) or (lambda rs: [renderer(r) for r in rs])
    for i in range(0, len(rows), size):
        batch = rows[i : i + size]
        try:
            outputs = batch_fn(batch)
        except Exception as e:  # recorded per row by the caller, never silently dropped
            outputs = [e] * len(batch)
        yield from zip(batch, outputs)


def write_clip(out_dir: Path, row: PromptRow, frames: np.ndarray, fps: float, renderer) -> ManifestRow:
    """Write one clip atomically and return its manifest row (not yet appended); `renderer`'s `name`, `generator`
    and `record` attributes (family, generator, settings) go into the row."""
    rel = video_relpath(row)
    path = safe_join(out_dir, rel, "clip path")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, frames, fps=fps)
    t, h, w, _ = frames.shape  # (T, H, W, 3)
    return ManifestRow(
        row_id=row.row_id,
        class_id=row.class_id,
        class_name=row.class_name,
        strategy=row.strategy,
        prompt=row.prompt,
        seed=row.seed,
        env_id=row.env_id,
        env_text=row.env_text,
        char_id=row.char_id,
        char_text=row.char_text,
        prompt_backend=row.prompt_backend,
        video=rel,
        num_frames=t,
        fps=fps,
        width=w,
        height=h,
        backend=getattr(renderer, "name", "custom"),
        generator=getattr(renderer, "generator", None) or (getattr(renderer, "record", None) or {}).get("generator"),
        generation=getattr(renderer, "record", None),
    )


def record_failure(out_dir: Path, row: PromptRow, error: BaseException) -> None:
    """Append (durably) one line to out_dir/failed.jsonl: which row failed and why."""
    line = json.dumps({"row_id": row.row_id, "error": f"{type(error).__name__}: {error}"[:500]})
    with (out_dir / "failed.jsonl").open("a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


@dataclass
class Plan:
    """The rows of one shard and which of them still need rendering."""

    rows: list[PromptRow]
    mine: list[PromptRow]
    todo: list[PromptRow]
    manifest: Path
    partials_removed: int
    missing: int


def plan_render(
    prompts_path: str | Path, out_dir: Path, num_shards: int = 1, shard_index: int = 0, verify: bool = False
) -> Plan:
    """Read prompts, repair the manifest tail, clear this shard's partial files, list the rows to do.

    Registered rows of this shard whose clip is missing (with `verify`: also unreadable or shorter than
    the manifest says, `datamodules.video.probe`) are rendered again: with one shard their rows are first
    removed from the manifest (rewritten atomically); other shards may be appending to it, so a sharded
    run only reports them (re-run with `--num-shards 1` to repair).
    """
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"need num_shards >= 1 and 0 <= shard_index < num_shards, got {shard_index}/{num_shards}")
    manifest = out_dir / "manifest.jsonl"
    rows = read_prompts(prompts_path)
    for lineno, row in enumerate(rows, start=1):
        try:
            safe_join(out_dir, video_relpath(row), "clip path")
        except ValueError as exc:
            raise ValueError(f"{prompts_path}: row {lineno}: {exc}") from exc
    mine = [row for i, row in enumerate(rows) if i % num_shards == shard_index]
    out_dir.mkdir(parents=True, exist_ok=True)
    repair_torn_tail(manifest)
    done = {r.row_id: r for r in read_manifest(manifest)} if manifest.exists() else {}
    by_id = {row.row_id: row for row in rows}
    for row_id, mrow in done.items():
        if row_id in by_id and mrow.prompt != by_id[row_id].prompt:
            raise ValueError(
                f"{manifest}: row {row_id!r} was rendered from a different prompt than {prompts_path} now "
                "holds; render into a new --out folder or delete the old one"
            )
    if num_shards == 1:
        partials = list((out_dir / "videos").glob("*/.*.partial"))
    else:  # other shards may be writing their own partial files right now: touch only ours
        partials = [p for row in mine if (p := _partial_path(out_dir, row)).exists()]
    for p in partials:
        p.unlink(missing_ok=True)
    broken = {row.row_id for row in mine if row.row_id in done and not _clip_ok(out_dir, done[row.row_id], verify)}
    if broken and num_shards == 1:
        write_jsonl(manifest, [m for m in done.values() if m.row_id not in broken])
        print(
            f"warning: {len(broken)} manifest rows pointed at missing or broken clips in {out_dir}; "
            "removed from the manifest and rendered again"
        )
        done = {k: v for k, v in done.items() if k not in broken}
    elif broken:
        print(
            f"warning: {len(broken)} manifest rows of this shard point at missing or broken clips in {out_dir}; "
            "re-run with --num-shards 1 (after the sharded runs finish) to render them again"
        )
    todo = [row for row in mine if row.row_id not in done]
    return Plan(rows, mine, todo, manifest, len(partials), len(broken))


def _clip_ok(out_dir: Path, row: ManifestRow, verify: bool) -> bool:
    path = out_dir / row.video
    if not verify:
        return path.is_file() and path.stat().st_size > 0
    from datamodules.video import VideoDecodeError, probe

    try:
        probe(path, expected_frames=row.num_frames)
    except VideoDecodeError:
        return False
    return True


def render_prompts(
    prompts_path: str | Path,
    out_dir: str | Path,
    *,
    backend: str | Renderer = "procedural",
    num_frames: int = 16,
    size: int = 64,
    fps: float | None = None,
    num_shards: int = 1,
    shard_index: int = 0,
    progress: bool = True,
    t2v=None,
    ray_backend: str = "procedural",
    ray_workers: int = 1,
    ray_batch_size: int = 4,
    verify: bool = False,
) -> RenderSummary:
    """Render every row of this shard that is not yet in `out_dir/manifest.jsonl`.

    Args:
        prompts_path: prompts.jsonl (from `python -m generation prompts`).
        out_dir: output folder; holds manifest.jsonl and videos/.
        backend: "procedural", "diffusers" (or its old name "cogvideox"), "ray", or a callable
            `(PromptRow) -> uint8 (T, H, W, 3)`.
        num_frames: frames per clip (procedural backend).
        size: frame height and width, even (procedural backend).
        fps: frame rate written to the file and the manifest (default: the generator's, 8 for procedural).
        num_shards: total shards; row i belongs to shard i % num_shards.
        shard_index: this process's shard, 0 <= shard_index < num_shards.
        progress: show a tqdm bar (clips/s and ETA).
        t2v: `T2VSettings` for the diffusers backend (default: CogVideoX-2B with the paper's settings).
        ray_backend: renderer inside each Ray actor (procedural | diffusers | cogvideox).
        ray_workers: Ray actors (one pipeline each; one GPU each on a GPU cluster).
        ray_batch_size: rows per Ray batch.
        verify: also re-render registered clips that are unreadable or truncated (probes every clip).

    Raises:
        FileNotFoundError, PromptError: missing or invalid prompts file.
        ManifestError: unreadable manifest.
        ValueError: bad shard or size arguments, unknown backend, or a manifest made from other prompts.
    """
    # 1. Check inputs and build the renderer (before touching the output folder).
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"need num_shards >= 1 and 0 <= shard_index < num_shards, got {shard_index}/{num_shards}")
    out_dir = Path(out_dir)
    uses_t2v = backend in ("diffusers", "cogvideox") or (backend == "ray" and ray_backend != "procedural")
    if fps is None:
        fps = (t2v.resolved().fps if t2v is not None else GENERATOR_FPS) if uses_t2v else 8
    if backend == "ray":
        from generation.ray_render import render_with_ray

        return render_with_ray(
            prompts_path,
            out_dir,
            backend=ray_backend,
            workers=ray_workers,
            batch_size=ray_batch_size,
            num_frames=num_frames,
            size=size,
            fps=fps,
            t2v=t2v,
            num_shards=num_shards,
            shard_index=shard_index,
            progress=progress,
        )
    read_prompts(prompts_path)  # fail on a bad prompts file before loading a large model
    renderer = (
        make_renderer(backend, num_frames=num_frames, size=size, t2v=t2v) if isinstance(backend, str) else backend
    )

    # 2. Resume: repair the manifest tail, find registered rows, clear partial files.
    plan = plan_render(prompts_path, out_dir, num_shards, shard_index, verify=verify)

    # 3. Render; one writer thread encodes, writes atomically and registers clips in render order while the
    #    next batch renders (at most two batches in flight, so memory stays bounded and kill -9 loses little).
    start = time.perf_counter()
    rendered = unregistered = failed = 0
    in_flight_limit = 2 * max(1, int(getattr(renderer, "batch_size", 1)))

    def write_and_register(row: PromptRow, frames: np.ndarray) -> None:
        append_manifest_rows(plan.manifest, [write_clip(out_dir, row, frames, fps, renderer)])

    bar = Progress(total=len(plan.todo), unit="clip", disable=not progress, desc=f"render {shard_index}/{num_shards}")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-writer") as writer:
        in_flight: deque[Future] = deque()
        try:
            for row, frames in render_batches(renderer, plan.todo):
                if isinstance(frames, Exception):
                    record_failure(out_dir, row, frames)
                    failed += 1
                    if rendered == 0 and failed >= 3:  # nothing works: a configuration problem, not a bad prompt
                        raise frames
                    bar.update(1)
                    continue
                unregistered += (out_dir / video_relpath(row)).exists()
                in_flight.append(writer.submit(write_and_register, row, frames))
                rendered += 1
                while len(in_flight) > in_flight_limit or (in_flight and in_flight[0].done()):
                    in_flight.popleft().result()  # re-raises a write error here
                    bar.update(1)
            while in_flight:
                in_flight.popleft().result()
                bar.update(1)
        finally:
            bar.close()
    if failed:
        print(f"warning: {failed} rows failed to render (see {out_dir / 'failed.jsonl'}); re-run to retry them")
    return RenderSummary(
        total_rows=len(plan.rows),
        shard_rows=len(plan.mine),
        already_done=len(plan.mine) - len(plan.todo),
        rendered=rendered,
        unregistered_rerendered=unregistered,
        partials_removed=plan.partials_removed,
        missing_files=plan.missing,
        seconds=time.perf_counter() - start,
        failed=failed,
    )


def _partial_path(out_dir: Path, row: PromptRow) -> Path:
    return out_dir / "videos" / slug(row.class_name) / f".{check_path_id(row.row_id, 'row_id')}.mp4.partial"
