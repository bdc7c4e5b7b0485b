"""`status`, `gallery`, failed rows, and the Ray backend against the single-process render."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from datamodules.manifest import read_manifest
from generation import vocab
from generation.__main__ import main
from generation.prompts import Label, make_prompts, slug, write_prompts
from generation.render import render_prompts
from generation.status import make_gallery, render_status
from generation.video_io import read_video

LABELS = [Label(0, "waving"), Label(1, "jumping jacks / star"), Label(2, "Hüpfen ..")]
SMALL = dict(num_frames=4, size=16, progress=False)


def _prompts(tmp_path: Path, per_class: int = 3) -> Path:
    path = tmp_path / "prompts.jsonl"
    write_prompts(path, make_prompts(LABELS, "ie", videos_per_class=per_class))
    return path


def test_status_counts_done_failed_missing_and_flags_partial_and_orphan_files(tmp_path, capsys):
    prompts = _prompts(tmp_path)
    out = tmp_path / "out"
    calls = []

    def flaky(row):  # the 2nd row of every class fails
        calls.append(row.row_id)
        if row.row_id.endswith("0001"):
            raise RuntimeError("CUDA out of memory (simulated)")
        return np.full((4, 16, 16, 3), 100, np.uint8)

    s = render_prompts(prompts, out, backend=flaky, progress=False)
    assert (s.rendered, s.failed) == (6, 3)
    failed = [json.loads(x) for x in (out / "failed.jsonl").read_text().splitlines()]
    assert [f["row_id"][-4:] for f in failed] == ["0001"] * 3 and "out of memory" in failed[0]["error"]
    # Simulate a kill mid-write and a clip whose manifest line was lost; drop one more file.
    manifest = read_manifest(out / "manifest.jsonl")
    (out / manifest[0].video).with_name(".x.mp4.partial").write_bytes(b"half")
    lines = (out / "manifest.jsonl").read_text().splitlines()
    (out / "manifest.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # last clip becomes an orphan
    st = render_status(prompts, out)
    assert (st.overall.planned, st.overall.done, st.overall.failed, st.overall.missing) == (9, 5, 3, 1)
    c = st.classes["Hüpfen .."]
    assert (c.planned, c.done, c.failed, c.missing) == (3, 1, 1, 1)
    assert st.partial_files == [str(Path(manifest[0].video).with_name(".x.mp4.partial"))]
    assert st.orphan_files == [manifest[-1].video]
    assert main(["status", "--prompts", str(prompts), "--out", str(out)]) == 1  # incomplete
    table = capsys.readouterr().out
    assert "overall" in table and "1 partial files" in table and "1 orphan files" in table and "INCOMPLETE" in table
    # A re-run retries the failed rows and redoes the orphan; status then says all done.
    s2 = render_prompts(prompts, out, backend=lambda row: np.zeros((4, 16, 16, 3), np.uint8), progress=False)
    assert (s2.rendered, s2.failed, s2.partials_removed) == (4, 0, 1)
    st = render_status(prompts, out)
    assert (st.overall.done, st.overall.failed, st.overall.missing) == (9, 0, 0)
    assert not st.partial_files and not st.orphan_files
    assert main(["status", "--prompts", str(prompts), "--out", str(out)]) == 0 and st.complete


def test_status_flags_truncated_and_deleted_clips_and_a_rerender_redoes_them(tmp_path, capsys):
    prompts = _prompts(tmp_path)
    out = tmp_path / "out"
    render_prompts(prompts, out, **SMALL)
    rows = read_manifest(out / "manifest.jsonl")
    truncated, deleted = out / rows[0].video, out / rows[4].video
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    deleted.unlink()
    st = render_status(prompts, out)
    assert (st.overall.done, st.overall.broken, st.overall.missing) == (7, 1, 1)
    assert st.broken_files[0].startswith(rows[0].video) and st.registered_without_file == [rows[4].row_id]
    assert main(["status", "--prompts", str(prompts), "--out", str(out)]) == 1
    # a plain re-render redoes the deleted clip; --verify also the truncated one; no row is registered twice
    s = render_prompts(prompts, out, **SMALL)
    assert (s.rendered, s.missing_files) == (1, 1) and deleted.is_file()
    s = render_prompts(prompts, out, **SMALL, verify=True)
    assert (s.rendered, s.missing_files) == (1, 1)
    manifest = read_manifest(out / "manifest.jsonl")  # raises on a repeated row_id
    assert sorted(m.row_id for m in manifest) == sorted(m.row_id for m in rows)
    assert main(["status", "--prompts", str(prompts), "--out", str(out), "--decode"]) == 0


def test_a_row_id_that_escapes_the_output_folder_is_refused(tmp_path, capsys):
    prompts = _prompts(tmp_path)
    lines = prompts.read_text().splitlines()
    row = json.loads(lines[1])
    row["row_id"] = "../../../x"
    prompts.write_text("\n".join([lines[0], json.dumps(row), *lines[2:]]) + "\n")
    out = tmp_path / "deep" / "er" / "out"
    code = main(
        ["render", "--prompts", str(prompts), "--out", str(out), "--frames", "4", "--size", "16", "--no-progress"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "row 2" in err and "'../../../x' cannot be used as a file name" in err
    assert not list(tmp_path.rglob("x*.mp4")) and not (out / "manifest.jsonl").exists()  # nothing written anywhere
    from datamodules.manifest import ManifestError

    manifest = tmp_path / "m.jsonl"  # a hand-edited manifest is refused too
    manifest.write_text(
        json.dumps(
            {
                "row_id": "ok",
                "class_id": 0,
                "class_name": "a",
                "strategy": "ie",
                "prompt": "p",
                "seed": 0,
                "video": "../../x.mp4",
                "num_frames": 1,
                "fps": 8,
                "width": 2,
                "height": 2,
                "backend": "procedural",
            }
        )
        + "\n"
    )
    with pytest.raises(ManifestError, match=r"video.*must be a relative path inside its folder"):
        read_manifest(manifest)


def test_a_renderer_that_always_fails_stops_with_its_error(tmp_path):
    def broken(row):
        raise ValueError("weights not found")

    with pytest.raises(ValueError, match="weights not found"):
        render_prompts(_prompts(tmp_path), tmp_path / "out", backend=broken, progress=False)
    assert len((tmp_path / "out" / "failed.jsonl").read_text().splitlines()) == 3


def test_class_names_map_to_safe_unique_folders(tmp_path):
    out = tmp_path / "out"
    render_prompts(_prompts(tmp_path, per_class=1), out, **SMALL)
    folders = sorted(p.name for p in (out / "videos").iterdir())
    assert len(folders) == 3 and folders == sorted(slug(label.name) for label in LABELS)
    for name in folders:
        assert name not in (".", "..") and "/" not in name and name.isascii()
        assert (out / "videos" / name).resolve().parent == (out / "videos").resolve()


def test_gallery_sheets_are_labelled_readable_and_go_to_tensorboard(tmp_path):
    from PIL import Image

    from generation.status import GALLERY_BACKGROUND, GALLERY_PAD

    out = tmp_path / "out"
    rows = make_prompts(LABELS[:2], "ie", videos_per_class=3)
    write_prompts(tmp_path / "p.jsonl", rows)
    render_prompts(tmp_path / "p.jsonl", out, num_frames=5, size=16, progress=False)
    tb = tmp_path / "tb"
    paths = make_gallery(
        out / "manifest.jsonl", tmp_path / "gallery", columns=2, frames_per_clip=1, frame_size=16, tensorboard=tb
    )
    assert [p.name for p in paths] == [f"{slug(label.name)}.png" for label in LABELS[:2]]
    sheet = np.asarray(Image.open(paths[0]))
    header, caption = 30, 18
    cell_h = 16 + caption + GALLERY_PAD
    assert sheet.shape[0] == header + 2 * cell_h + GALLERY_PAD  # 3 clips in 2 columns: 2 rows
    cell_w = (sheet.shape[1] - GALLERY_PAD) // 2  # cells widen to fit the caption
    assert cell_w >= 16 + GALLERY_PAD
    first = read_video(out / read_manifest(out / "manifest.jsonl")[0].video)
    x, y = GALLERY_PAD, header
    assert np.array_equal(sheet[y : y + 16, x : x + 16], first[2])  # frames_per_clip=1: the middle of 5 frames
    assert (sheet[4 : header - 4] != GALLERY_BACKGROUND).any()  # the class-name title is drawn
    assert (sheet[y + 16 : y + 16 + caption, x : x + cell_w] != GALLERY_BACKGROUND).any()  # the row-id caption
    assert (sheet[header + cell_h :, GALLERY_PAD + cell_w :] == GALLERY_BACKGROUND).all()  # 4th cell empty
    assert (sheet[header + cell_h : header + cell_h + 16, GALLERY_PAD : GALLERY_PAD + 16] != GALLERY_BACKGROUND).any()
    # defaults: 4 frames per clip at a 128 px short side, so a 16 px clip is scaled up to be readable
    big = np.asarray(Image.open(make_gallery(out / "manifest.jsonl", tmp_path / "big")[0]))
    assert big.shape[1] >= 2 * 4 * 128 and big.shape[0] >= 2 * 128
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb))
    acc.Reload()
    assert sorted(acc.Tags()["images"]) == sorted(f"gallery/{slug(label.name)}" for label in LABELS[:2])


def test_gallery_of_an_empty_render_is_a_clear_error(tmp_path):
    (tmp_path / "manifest.jsonl").write_text("")
    with pytest.raises(ValueError, match="no rendered clips yet"):
        make_gallery(tmp_path / "manifest.jsonl", tmp_path / "g")


def test_ray_backend_equals_the_single_process_render(tmp_path):
    ray = pytest.importorskip("ray")
    labels = [Label(i, a.name) for i, a in enumerate(vocab.ACTIONS[:3])]
    write_prompts(tmp_path / "p.jsonl", make_prompts(labels, "ie", videos_per_class=3))
    render_prompts(tmp_path / "p.jsonl", tmp_path / "single", **SMALL)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        s = render_prompts(
            tmp_path / "p.jsonl", tmp_path / "ray", backend="ray", ray_workers=2, ray_batch_size=2, **SMALL
        )
        again = render_prompts(tmp_path / "p.jsonl", tmp_path / "ray", backend="ray", ray_workers=2, **SMALL)
    finally:
        ray.shutdown()
    assert (s.rendered, s.failed, again.rendered, again.already_done) == (9, 0, 0, 9)
    single = {m.row_id: m for m in read_manifest(tmp_path / "single" / "manifest.jsonl")}
    distributed = {m.row_id: m for m in read_manifest(tmp_path / "ray" / "manifest.jsonl")}
    assert single == distributed  # same rows, paths, sizes, backend name
    for m in single.values():
        assert np.array_equal(read_video(tmp_path / "single" / m.video), read_video(tmp_path / "ray" / m.video))
