"""Observability of a render folder: `status` (what is planned, done, failed, missing) and `gallery`.

`render_status` compares prompts.jsonl with OUT/manifest.jsonl, OUT/failed.jsonl and the files under
OUT/videos: a row is *done* when the manifest registers it and its clip is intact (`datamodules.video.probe`:
it opens, and holds the frames the manifest says; `decode=True` decodes every frame too), *broken* when
it is registered but its clip is unreadable or truncated, *failed* when its last attempt raised
(failed.jsonl) and it is not done, *missing* otherwise. Leftover `.partial` files (a run was killed
mid-write) and orphan clips (a file no manifest row points at) are flagged; the next `render` removes
the former and re-renders the latter's rows (and, with `--verify`, the broken ones). `RenderStatus.complete`
is what `python -m generation status` turns into its exit code: 0 complete, 1 anything left to do.

`make_gallery` writes one contact sheet per class (the middle frame of up to N clips, in a grid) as
PNG, and the same images into TensorBoard with `add_image`, so a person can eyeball quality.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from datamodules.manifest import read_manifest, repair_torn_tail
from generation.prompts import read_prompts, slug


@dataclass
class ClassStatus:
    """Counts of one class (or of all of them)."""

    planned: int = 0
    done: int = 0
    broken: int = 0  # registered, but the clip is unreadable or truncated
    failed: int = 0
    missing: int = 0


@dataclass
class RenderStatus:
    """The state of one render folder."""

    classes: dict[str, ClassStatus]
    overall: ClassStatus
    partial_files: list[str] = field(default_factory=list)
    orphan_files: list[str] = field(default_factory=list)
    registered_without_file: list[str] = field(default_factory=list)
    broken_files: list[str] = field(default_factory=list)  # "path: cause" of registered clips that fail the check

    @property
    def complete(self) -> bool:
        """Every planned row is done and nothing is left over: what exit code 0 means."""
        return (self.overall.done == self.overall.planned and not self.partial_files and not self.orphan_files
                and not self.registered_without_file and not self.broken_files)

    def table(self) -> str:
        width = max([len("overall")] + [len(c) for c in self.classes]) + 2
        lines = [f"{'class':<{width}}{'planned':>9}{'done':>8}{'broken':>8}{'failed':>8}{'missing':>9}"]
        for name, c in [*self.classes.items(), ("overall", self.overall)]:
            lines.append(f"{name:<{width}}{c.planned:>9}{c.done:>8}{c.broken:>8}{c.failed:>8}{c.missing:>9}")
        for what, files in (("partial files (killed mid-write; the next render removes them)", self.partial_files),
                            ("orphan files (in no manifest row; the next render redoes their rows)", self.orphan_files),
                            ("manifest rows whose file is gone (the next render redoes them)", self.registered_without_file),
                            ("broken clips (`render --verify` redoes them)", self.broken_files)):
            if files:
                lines.append(f"{len(files)} {what}: {', '.join(files[:5])}{' ...' if len(files) > 5 else ''}")
        lines.append("complete" if self.complete else
                     "INCOMPLETE: run `python -m generation render` again with the same --prompts/--out (exit code 1)")
        return "\n".join(lines)


def render_status(prompts_path: str | Path, out_dir: str | Path, decode: bool = False) -> RenderStatus:
    """Per-class and overall planned/done/broken/failed/missing counts, plus partial and orphan files.

    Args:
        prompts_path: prompts.jsonl the folder is rendered from.
        out_dir: the render folder.
        decode: check registered clips by decoding every frame (slow) instead of reading their packets.
    """
    from datamodules.video import VideoDecodeError, probe, read_video

    out_dir = Path(out_dir)
    rows = read_prompts(prompts_path)
    manifest = out_dir / "manifest.jsonl"
    repair_torn_tail(manifest)
    registered = {m.row_id: m for m in read_manifest(manifest)} if manifest.exists() else {}
    failed: set[str] = set()
    failed_path = out_dir / "failed.jsonl"
    if failed_path.exists():
        for lineno, line in enumerate(failed_path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                failed.add(json.loads(line)["row_id"])
            except (json.JSONDecodeError, KeyError, TypeError):
                print(f"warning: {failed_path}:{lineno}: unreadable line skipped")
    classes: dict[str, ClassStatus] = {}
    overall = ClassStatus()
    broken_files: list[str] = []
    for row in rows:
        c = classes.setdefault(row.class_name, ClassStatus())
        m = registered.get(row.row_id)
        state = "failed" if row.row_id in failed else "missing"
        if m is not None and (out_dir / m.video).exists():
            try:
                got = len(read_video(out_dir / m.video)) if decode else probe(out_dir / m.video, m.num_frames).num_frames
                if got < m.num_frames:
                    raise VideoDecodeError(f"{got} of the {m.num_frames} frames the manifest says")
                state = "done"
            except VideoDecodeError as exc:
                state = "broken"
                broken_files.append(f"{m.video}: {str(exc).split('. Check that it exists')[0].split(chr(39) + ': ', 1)[-1]}")
        for counts in (c, overall):
            counts.planned += 1
            setattr(counts, state, getattr(counts, state) + 1)
    videos = out_dir / "videos"
    partial = sorted(str(p.relative_to(out_dir)) for p in videos.glob("*/.*.partial")) if videos.exists() else []
    known = {m.video for m in registered.values()}
    orphans = sorted(rel for p in videos.glob("*/*.mp4") if (rel := str(p.relative_to(out_dir))) not in known) \
        if videos.exists() else []
    gone = sorted(m.row_id for m in registered.values() if not (out_dir / m.video).exists())
    return RenderStatus(classes, overall, partial, orphans, gone, broken_files)


def status_json(status: RenderStatus) -> str:
    return json.dumps(asdict(status), indent=2)


def make_gallery(
    manifest_path: str | Path,
    out_dir: str | Path,
    *,
    per_class: int = 16,
    columns: int = 8,
    tensorboard: str | Path | None = None,
) -> list[Path]:
    """One contact sheet per class: middle frames of the first `per_class` clips, `columns` per row.

    Args:
        manifest_path: manifest.jsonl of a render folder.
        out_dir: where `<class-slug>.png` files go.
        per_class: clips shown per class.
        columns: clips per row of the sheet.
        tensorboard: also log every sheet as an image `gallery/<class-slug>` in this TensorBoard folder.

    Returns:
        The PNG paths written, in class order.
    """
    from PIL import Image

    from generation.video_io import read_video

    manifest_path, out_dir = Path(manifest_path), Path(out_dir)
    if per_class < 1 or columns < 1:
        raise ValueError(f"--per-class and --columns must be >= 1, got {per_class} and {columns}")
    rows = read_manifest(manifest_path)
    if not rows:
        raise ValueError(f"{manifest_path}: no rendered clips yet; run `python -m generation render` first")
    by_class: dict[tuple[int, str], list] = {}
    for m in rows:
        by_class.setdefault((m.class_id, m.class_name), []).append(m)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = None
    if tensorboard is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(tensorboard))
    written = []
    for (_, name), clips in sorted(by_class.items()):
        frames = []
        for m in clips[:per_class]:
            video = read_video(manifest_path.parent / m.video)  # (T, H, W, 3)
            frames.append(video[len(video) // 2])
        h, w = max(f.shape[0] for f in frames), max(f.shape[1] for f in frames)
        cols = min(columns, len(frames))
        sheet = np.zeros((math.ceil(len(frames) / cols) * h, cols * w, 3), np.uint8)  # (H', W', 3) grid
        for k, f in enumerate(frames):
            r, c = divmod(k, cols)
            sheet[r * h:r * h + f.shape[0], c * w:c * w + f.shape[1]] = f
        path = out_dir / f"{slug(name)}.png"
        tmp = path.with_name(f".{path.name}.partial")
        Image.fromarray(sheet).save(tmp, format="PNG")
        tmp.replace(path)
        written.append(path)
        if writer is not None:
            writer.add_image(f"gallery/{slug(name)}", sheet, dataformats="HWC")
    if writer is not None:
        writer.close()
    return written
