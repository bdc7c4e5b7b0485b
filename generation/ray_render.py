"""The `ray` render backend: the same resumable render, spread over a pool of Ray actors with Ray Data.

Each actor builds one renderer (one diffusers pipeline per GPU, or the procedural renderer) and turns
batches of prompt rows into clip files, written atomically exactly as the single-process loop does;
the driver alone appends manifest rows, as results stream back, so the manifest has one writer and
a killed job resumes like any other render. On GPUs every actor asks for one GPU; on CPU for half a
CPU, because with ray 2.60 on 2 cores two actors asking for a whole CPU each starve the read task and
the job hangs (DESIGN.md). Connects to a running cluster when RAY_ADDRESS is set, else starts a local one.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from datamodules.manifest import ManifestRow, append_manifest_rows
from datamodules.progress import Progress
from generation.prompts import PromptRow


class RayRenderer:
    """A Ray Data actor: `{"row": [PromptRow json]} -> {"manifest": [ManifestRow json or ""], "error": [...]}`.

    Args:
        out_dir: output folder (shared filesystem on a cluster).
        backend: procedural | diffusers (cogvideox: its old name).
        fps: frame rate of the written files.
        num_frames: frames per clip (procedural).
        size: frame size (procedural).
        t2v: `T2VSettings` (diffusers / cogvideox).
    """

    def __init__(self, out_dir: str, backend: str, fps: float, num_frames: int, size: int, t2v=None):
        from generation.render import make_renderer

        self.out_dir = Path(out_dir)
        self.fps = fps
        self.renderer = make_renderer(backend, num_frames=num_frames, size=size, t2v=t2v)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        from generation.render import render_batches, write_clip

        rows = [PromptRow.model_validate_json(text) for text in batch["row"]]
        manifest, errors = [], []
        for row, frames in render_batches(self.renderer, rows):
            if isinstance(frames, Exception):
                manifest.append("")
                errors.append(f"{type(frames).__name__}: {frames}")
            else:
                manifest.append(write_clip(self.out_dir, row, frames, self.fps, self.renderer).model_dump_json())
                errors.append("")
        return {"row": [r.model_dump_json() for r in rows], "manifest": manifest, "error": errors}


def render_with_ray(
    prompts_path: str | Path,
    out_dir: Path,
    *,
    backend: str = "procedural",
    workers: int = 1,
    batch_size: int = 4,
    num_frames: int = 16,
    size: int = 64,
    fps: float = 8,
    t2v=None,
    num_shards: int = 1,
    shard_index: int = 0,
    progress: bool = True,
):
    """Render this shard's missing rows on `workers` Ray actors; returns a `RenderSummary`."""
    try:
        import ray
    except ImportError:
        raise ValueError("--backend ray needs Ray Data: pip install 'ray[data]' (the project's [ray] extra)") from None
    from generation.render import RenderSummary, plan_render, record_failure

    if workers < 1 or batch_size < 1:
        raise ValueError(f"--ray-workers and --ray-batch-size must be >= 1, got {workers} and {batch_size}")
    if backend not in ("procedural", "diffusers", "cogvideox"):
        raise ValueError(f"--ray_backend {backend!r}: choose procedural or diffusers (cogvideox: its old name)")
    plan = plan_render(prompts_path, out_dir, num_shards, shard_index)
    start = time.perf_counter()
    rendered = failed = 0
    if plan.todo:
        if not ray.is_initialized():
            ray.init(log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        gpu = backend != "procedural" and ray.cluster_resources().get("GPU", 0) > 0
        ds = ray.data.from_items([{"row": row.model_dump_json()} for row in plan.todo])
        ds = ds.map_batches(
            RayRenderer,
            batch_size=batch_size,
            batch_format="numpy",
            fn_constructor_kwargs=dict(
                out_dir=str(out_dir.resolve()),
                backend=backend,
                fps=fps,
                num_frames=num_frames,
                size=size,
                t2v=t2v,
            ),
            compute=ray.data.ActorPoolStrategy(size=workers),
            **({"num_gpus": 1} if gpu else {"num_cpus": 0.5}),
        )
        bar = Progress(total=len(plan.todo), unit="clip", disable=not progress, desc=f"render (ray x{workers})")
        for out in ds.iter_rows():
            bar.update(1)
            if out["manifest"]:
                append_manifest_rows(plan.manifest, [ManifestRow.model_validate_json(out["manifest"])])
                rendered += 1
            else:
                record_failure(out_dir, PromptRow.model_validate_json(out["row"]), RuntimeError(out["error"]))
                failed += 1
        bar.close()
    return RenderSummary(
        total_rows=len(plan.rows),
        shard_rows=len(plan.mine),
        already_done=len(plan.mine) - len(plan.todo),
        rendered=rendered,
        unregistered_rerendered=0,
        partials_removed=plan.partials_removed,
        missing_files=plan.missing,
        seconds=time.perf_counter() - start,
        failed=failed,
    )
