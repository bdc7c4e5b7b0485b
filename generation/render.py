"""The resumable render loop: prompts.jsonl -> `videos/<class-slug>/<row_id>.mp4` + manifest.jsonl.

Each clip is written atomically (`.<row_id>.mp4.partial`, fsync, rename) and only then registered
by appending its `ManifestRow`, so a row in the manifest always points at a complete file. A re-run
repairs a torn manifest tail, skips registered rows, deletes leftover `.partial` files and
re-renders clips whose file exists but was never registered: kill -9 at any moment loses at most the
clip in flight. Rows are sharded deterministically (row i -> shard i % num_shards), so N processes
(SLURM array, torchrun) can share one output folder.

A backend is a name (`procedural`) or any callable `(PromptRow) -> uint8 (T, H, W, 3)` with an
optional `name` attribute recorded in the manifest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datamodules.manifest import ManifestRow, append_manifest_rows, read_manifest, repair_torn_tail
from generation.prompts import PromptRow, read_prompts, slug
from generation.video_io import write_video

Renderer = Callable[[PromptRow], np.ndarray]
BACKENDS: tuple[str, ...] = ("procedural",)


@dataclass
class RenderSummary:
    """What one `render_prompts` call did."""

    total_rows: int  # rows in prompts.jsonl
    shard_rows: int  # rows assigned to this shard
    already_done: int  # shard rows found in the manifest and skipped
    rendered: int  # clips rendered and registered by this call
    unregistered_rerendered: int  # of `rendered`: clips whose file existed but was not in the manifest
    partials_removed: int  # leftover .partial files deleted
    missing_files: int  # manifest rows of this shard whose video file is gone (reported, not fixed)
    seconds: float

    @property
    def clips_per_s(self) -> float:
        return self.rendered / self.seconds if self.seconds > 0 else 0.0


def procedural_renderer(num_frames: int = 16, size: int = 64, style: str = "synthetic") -> Renderer:
    """The demo-world renderer as a row callable."""
    from generation.procedural import render_clip

    def render(row: PromptRow) -> np.ndarray:
        return render_clip(row.prompt, row.seed, num_frames=num_frames, size=size, style=style,
                           action_hint=row.class_name)

    render.name = "procedural"  # type: ignore[attr-defined]
    return render


def video_relpath(row: PromptRow) -> str:
    """Clip path relative to the output folder."""
    return f"videos/{slug(row.class_name)}/{row.row_id}.mp4"


def render_prompts(
    prompts_path: str | Path,
    out_dir: str | Path,
    *,
    backend: str | Renderer = "procedural",
    num_frames: int = 16,
    size: int = 64,
    fps: float = 8,
    num_shards: int = 1,
    shard_index: int = 0,
    progress: bool = True,
) -> RenderSummary:
    """Render every row of this shard that is not yet in `out_dir/manifest.jsonl`.

    Args:
        prompts_path: prompts.jsonl (from `python -m generation prompts`).
        out_dir: output folder; holds manifest.jsonl and videos/.
        backend: "procedural" or a callable `(PromptRow) -> uint8 (T, H, W, 3)`.
        num_frames: frames per clip (procedural backend).
        size: frame height and width, even (procedural backend).
        fps: frame rate written to the file and the manifest.
        num_shards: total shards; row i belongs to shard i % num_shards.
        shard_index: this process's shard, 0 <= shard_index < num_shards.
        progress: show a tqdm bar (clips/s).

    Raises:
        FileNotFoundError, PromptError: missing or invalid prompts file.
        ManifestError: unreadable manifest.
        ValueError: bad shard or size arguments, unknown backend, or a manifest made from other prompts.
    """
    # 1. Check inputs.
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"need num_shards >= 1 and 0 <= shard_index < num_shards, got {shard_index}/{num_shards}")
    if isinstance(backend, str):
        if backend not in BACKENDS:
            raise ValueError(
                f"unknown render backend {backend!r}; available here: {', '.join(BACKENDS)} "
                "(or pass a callable renderer)"
            )
        if size < 8 or size % 2:
            raise ValueError(f"--size must be an even number >= 8 (yuv420p video), got {size}")
        if num_frames < 1:
            raise ValueError(f"--frames must be >= 1, got {num_frames}")
        renderer = procedural_renderer(num_frames, size)
    else:
        renderer = backend
    backend_name = getattr(renderer, "name", "custom")
    out_dir = Path(out_dir)
    manifest = out_dir / "manifest.jsonl"
    rows = read_prompts(prompts_path)
    mine = [row for i, row in enumerate(rows) if i % num_shards == shard_index]

    # 2. Resume: repair the manifest tail, find registered rows, clear partial files.
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
    partials_removed = 0
    if num_shards == 1:
        partials = list((out_dir / "videos").glob("*/.*.partial"))
    else:  # other shards may be writing their own partial files right now: touch only ours
        partials = [p for row in mine if (p := _partial_path(out_dir, row)).exists()]
    for p in partials:
        p.unlink(missing_ok=True)
        partials_removed += 1
    todo = [row for row in mine if row.row_id not in done]
    missing = sum(1 for row in mine if row.row_id in done and not (out_dir / done[row.row_id].video).exists())
    if missing:
        print(f"warning: {missing} manifest rows of this shard point at missing video files in {out_dir}")

    # 3. Render, write atomically, register.
    start = time.perf_counter()
    rendered = unregistered = 0
    bar = tqdm(todo, total=len(todo), unit="clip", disable=not progress, desc=f"render {shard_index}/{num_shards}")
    for row in bar:
        rel = video_relpath(row)
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        unregistered += path.exists()
        frames = renderer(row)  # (T, H, W, 3) uint8
        write_video(path, frames, fps=fps)
        t, h, w, _ = frames.shape
        append_manifest_rows(manifest, [ManifestRow(
            row_id=row.row_id, class_id=row.class_id, class_name=row.class_name, strategy=row.strategy,
            prompt=row.prompt, seed=row.seed, env_id=row.env_id, env_text=row.env_text, char_id=row.char_id,
            char_text=row.char_text, video=rel, num_frames=t, fps=fps, width=w, height=h, backend=backend_name,
        )])
        rendered += 1
    bar.close()
    return RenderSummary(
        total_rows=len(rows), shard_rows=len(mine), already_done=len(mine) - len(todo), rendered=rendered,
        unregistered_rerendered=unregistered, partials_removed=partials_removed, missing_files=missing,
        seconds=time.perf_counter() - start,
    )


def _partial_path(out_dir: Path, row: PromptRow) -> Path:
    return out_dir / "videos" / slug(row.class_name) / f".{row.row_id}.mp4.partial"

