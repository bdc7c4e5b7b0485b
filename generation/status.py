"""Observability of a render folder: `status` (what is planned, done, failed, missing) and `gallery`.

`render_status` compares prompts.jsonl with OUT/manifest.jsonl, OUT/failed.jsonl and the files under
OUT/videos: a row is *done* when the manifest registers it and its clip is intact (`datamodules.video.probe`:
it opens, and holds the frames the manifest says; `decode=True` decodes every frame too), *broken* when
it is registered but its clip is unreadable or truncated, *failed* when its last attempt raised
(failed.jsonl) and it is not done, *missing* otherwise. Leftover `.partial` files (a run was killed
mid-write) and orphan clips (a file no manifest row points at) are flagged; the next `render` removes
the former and re-renders the latter's rows (and, with `--verify`, the broken ones). `RenderStatus.complete`
is what `python -m generation status` turns into its exit code: 0 complete, 1 anything left to do.

`make_gallery` writes one labelled contact sheet per class (title: class name and id; one strip of frames
per clip, scaled to a readable size and captioned with its row id and uncertainty) as PNG, and the same
images into TensorBoard with `add_image`, so a person can eyeball quality.
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
        return (
            self.overall.done == self.overall.planned
            and not self.partial_files
            and not self.orphan_files
            and not self.registered_without_file
            and not self.broken_files
        )

    def table(self) -> str:
        width = max([len("overall")] + [len(c) for c in self.classes]) + 2
        lines = [f"{'class':<{width}}{'planned':>9}{'done':>8}{'broken':>8}{'failed':>8}{'missing':>9}"]
        for name, c in [*self.classes.items(), ("overall", self.overall)]:
            lines.append(f"{name:<{width}}{c.planned:>9}{c.done:>8}{c.broken:>8}{c.failed:>8}{c.missing:>9}")
        for what, files in (
            ("partial files (killed mid-write; the next render removes them)", self.partial_files),
            ("orphan files (in no manifest row; the next render redoes their rows)", self.orphan_files),
            ("manifest rows whose file is gone (the next render redoes them)", self.registered_without_file),
            ("broken clips (`render --verify` redoes them)", self.broken_files),
        ):
            if files:
                lines.append(f"{len(files)} {what}: {', '.join(files[:5])}{' ...' if len(files) > 5 else ''}")
        lines.append(
            "complete"
            if self.complete
            else "INCOMPLETE: run `python -m generation render` again with the same --prompts/--out (exit code 1)"
        )
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
                got = (
                    len(read_video(out_dir / m.video)) if decode else probe(out_dir / m.video, m.num_frames).num_frames
                )
                if got < m.num_frames:
                    raise VideoDecodeError(f"{got} of the {m.num_frames} frames the manifest says")
                state = "done"
            except VideoDecodeError as exc:
                state = "broken"
                broken_files.append(
                    f"{m.video}: {str(exc).split('. Check that it exists')[0].split(chr(39) + ': ', 1)[-1]}"
                )
        for counts in (c, overall):
            counts.planned += 1
            setattr(counts, state, getattr(counts, state) + 1)
    videos = out_dir / "videos"
    partial = sorted(str(p.relative_to(out_dir)) for p in videos.glob("*/.*.partial")) if videos.exists() else []
    known = {m.video for m in registered.values()}
    orphans = (
        sorted(rel for p in videos.glob("*/*.mp4") if (rel := str(p.relative_to(out_dir))) not in known)
        if videos.exists()
        else []
    )
    gone = sorted(m.row_id for m in registered.values() if not (out_dir / m.video).exists())
    return RenderStatus(classes, overall, partial, orphans, gone, broken_files)


def status_json(status: RenderStatus) -> str:
    return json.dumps(asdict(status), indent=2)


GALLERY_PAD = 6  # pixels between cells and around the sheet
GALLERY_BACKGROUND = (32, 32, 32)


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable built-in font


def contact_sheet(title: str, clips: list[tuple[str, np.ndarray]], columns: int) -> np.ndarray:
    """A labelled contact sheet: `title` on top, then one cell per clip in `columns` columns, each cell a strip
    of the clip's frames (F, H, W, 3) with its caption underneath. Returns (H', W', 3) uint8."""
    from PIL import Image, ImageDraw

    title_font, caption_font = _font(18), _font(12)
    header, caption = 30, 18  # band heights in pixels
    strip_h = max(f.shape[1] for _, f in clips)
    strip_w = max(f.shape[0] * (f.shape[2] + 2) - 2 for _, f in clips)  # frames 2 px apart
    strip_w = max(strip_w, *(math.ceil(caption_font.getlength(label)) for label, _ in clips))  # captions fit
    cols = min(columns, len(clips))
    rows = math.ceil(len(clips) / cols)
    cell_w, cell_h = strip_w + GALLERY_PAD, strip_h + caption + GALLERY_PAD
    sheet = Image.new("RGB", (cols * cell_w + GALLERY_PAD, header + rows * cell_h + GALLERY_PAD), GALLERY_BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((GALLERY_PAD, 6), title, fill=(255, 255, 255), font=title_font)
    for k, (label, frames) in enumerate(clips):
        r, c = divmod(k, cols)
        x, y = GALLERY_PAD + c * cell_w, header + r * cell_h
        for i, frame in enumerate(frames):  # (H, W, 3) each, side by side
            sheet.paste(Image.fromarray(frame), (x + i * (frame.shape[1] + 2), y))
        draw.text((x, y + frames.shape[1] + 2), label, fill=(230, 230, 230), font=caption_font)
    return np.asarray(sheet)


def make_gallery(
    manifest_path: str | Path,
    out_dir: str | Path,
    *,
    per_class: int = 8,
    columns: int = 2,
    frames_per_clip: int = 4,
    frame_size: int = 128,
    tensorboard: str | Path | None = None,
) -> list[Path]:
    """One labelled contact sheet per class, as PNG and (optionally) TensorBoard images.

    A sheet is titled with the class name and id and how many of its clips it shows; each clip is a strip
    of `frames_per_clip` frames (segment centres, so 1 is the middle frame) scaled to a `frame_size` px
    short side, captioned with its row id (and CLIP uncertainty when scored).

    Args:
        manifest_path: manifest.jsonl of a render folder.
        out_dir: where `<class-slug>.png` files go.
        per_class: clips shown per class (the first ones of the manifest).
        columns: clips per row of the sheet.
        frames_per_clip: frames shown per clip.
        frame_size: short side of each shown frame in pixels (small clips are scaled up to be readable).
        tensorboard: also log every sheet as an image `gallery/<class-slug>` in this TensorBoard folder.

    Returns:
        The PNG paths written, in class order.
    """
    from PIL import Image

    from datamodules.manifest import safe_join
    from datamodules.video import decode_frames, sample_indices

    manifest_path, out_dir = Path(manifest_path), Path(out_dir)
    if min(per_class, columns, frames_per_clip, frame_size) < 1:
        raise ValueError(
            f"--per-class, --columns, --frames-per-clip and --frame-size must be >= 1, got "
            f"{per_class}, {columns}, {frames_per_clip}, {frame_size}"
        )
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
    for (class_id, name), members in sorted(by_class.items()):
        clips = []
        for m in members[:per_class]:
            indices = sample_indices(m.num_frames, frames_per_clip, train=False)
            frames = decode_frames(manifest_path.parent / m.video, indices, short_side=frame_size)  # (F, H, W, 3)
            label = m.row_id if m.uncertainty is None else f"{m.row_id}  u={m.uncertainty:.2f}"
            clips.append((label, frames))
        title = f"{name}  (class {class_id}; {len(clips)} of {len(members)} clips)"
        sheet = contact_sheet(title, clips, columns)  # (H', W', 3)
        path = safe_join(out_dir, f"{slug(name)}.png", "gallery file")
        tmp = path.with_name(f".{path.name}.partial")
        Image.fromarray(sheet).save(tmp, format="PNG")
        tmp.replace(path)
        written.append(path)
        if writer is not None:
            writer.add_image(f"gallery/{slug(name)}", sheet, dataformats="HWC")
    if writer is not None:
        writer.close()
    return written
