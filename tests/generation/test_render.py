"""The resumable render loop: files, manifest rows, resume, sharding, kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datamodules.manifest import read_manifest
from generation import vocab
from generation.prompts import Label, make_prompts, write_prompts
from generation.render import render_prompts
from generation.video_io import read_video

REPO = Path(__file__).resolve().parents[2]
LABELS = [Label(i, a.name) for i, a in enumerate(vocab.ACTIONS[:4])]
SMALL = dict(num_frames=4, size=16, progress=False)


def _prompts(tmp_path: Path, per_class: int = 3) -> tuple[Path, list]:
    rows = make_prompts(LABELS, "ie", videos_per_class=per_class)
    path = tmp_path / "prompts.jsonl"
    write_prompts(path, rows)
    return path, rows


def _manifest_lines(out: Path) -> list[str]:
    return (out / "manifest.jsonl").read_text().splitlines()


def test_writes_decodable_videos_and_valid_manifest(tmp_path):
    prompts, rows = _prompts(tmp_path)
    out = tmp_path / "out"
    s = render_prompts(prompts, out, num_frames=8, size=32, fps=8, progress=False)
    assert (s.rendered, s.shard_rows, s.already_done) == (len(rows), len(rows), 0)
    manifest = read_manifest(out / "manifest.jsonl")
    assert [m.row_id for m in manifest] == [r.row_id for r in rows]
    for m, r in zip(manifest, rows):
        assert m.video == f"videos/{r.row_id.rsplit('-', 2)[0]}/{r.row_id}.mp4"
        assert (m.prompt, m.seed, m.env_id, m.char_id, m.class_id) == (
            r.prompt,
            r.seed,
            r.env_id,
            r.char_id,
            r.class_id,
        )
        assert (m.num_frames, m.width, m.height, m.fps, m.backend) == (8, 32, 32, 8, "procedural")
        frames = read_video(out / m.video)
        assert frames.shape == (8, 32, 32, 3)
    again = render_prompts(prompts, out, **SMALL)
    assert (again.rendered, again.already_done) == (0, len(rows))


def test_resume_renders_exactly_the_missing_rows(tmp_path):
    prompts, rows = _prompts(tmp_path)
    out = tmp_path / "out"
    render_prompts(prompts, out, **SMALL)
    lines = _manifest_lines(out)
    # Drop 3 registered rows (their files stay: "never registered"), tear the tail, leave a partial file.
    dropped = [lines[1], lines[5], lines[-1]]
    kept = [x for x in lines if x not in dropped]
    (out / "manifest.jsonl").write_text("\n".join(kept) + "\n" + dropped[-1][:20])
    partial = out / "videos" / "waving" / ".waving-ie-0099.mp4.partial"
    partial.write_bytes(b"half a video")
    before = {p: p.stat().st_mtime_ns for p in (out / "videos").rglob("*.mp4")}
    time.sleep(0.01)
    s = render_prompts(prompts, out, **SMALL)
    assert (s.rendered, s.unregistered_rerendered, s.partials_removed) == (3, 3, 1)
    assert not list(out.rglob("*.partial"))
    manifest = read_manifest(out / "manifest.jsonl")  # also checks no duplicate row_ids
    assert sorted(m.row_id for m in manifest) == sorted(r.row_id for r in rows)
    changed = {p for p in before if p.stat().st_mtime_ns != before[p]}
    assert {p.stem for p in changed} == {x.split('"row_id":"')[1].split('"')[0] for x in dropped}


def test_sharding_is_a_disjoint_cover(tmp_path):
    prompts, rows = _prompts(tmp_path, per_class=5)
    out = tmp_path / "out"
    per_shard = []
    for i in range(3):
        s = render_prompts(prompts, out, num_shards=3, shard_index=i, **SMALL)
        per_shard.append(s.rendered)
    assert per_shard == [len(range(i, len(rows), 3)) for i in range(3)]
    ids = [m.row_id for m in read_manifest(out / "manifest.jsonl")]
    assert sorted(ids) == sorted(r.row_id for r in rows) and len(ids) == len(set(ids))
    with pytest.raises(ValueError, match="shard_index"):
        render_prompts(prompts, out, num_shards=2, shard_index=2, **SMALL)


def test_refuses_manifest_from_other_prompts(tmp_path):
    prompts, rows = _prompts(tmp_path)
    out = tmp_path / "out"
    render_prompts(prompts, out, **SMALL)
    write_prompts(prompts, make_prompts(LABELS, "basic", videos_per_class=3))
    # basic rows have other row_ids, so nothing clashes: they render next to the ie rows
    assert render_prompts(prompts, out, **SMALL).rendered == len(rows)
    changed = [r.model_copy(update={"prompt": r.prompt + " Extra."}) for r in rows]
    write_prompts(prompts, changed)
    with pytest.raises(ValueError, match="different prompt"):
        render_prompts(prompts, out, **SMALL)


def test_sigkill_then_resume(tmp_path):
    rows = make_prompts(LABELS, "ie", videos_per_class=10)  # 40 rows
    prompts = tmp_path / "prompts.jsonl"
    write_prompts(prompts, rows)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "generation",
        "render",
        "--prompts",
        str(prompts),
        "--out",
        str(out),
        "--frames",
        "16",
        "--size",
        "64",
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    manifest = out / "manifest.jsonl"
    deadline = time.time() + 30
    while time.time() < deadline and (not manifest.exists() or len(manifest.read_text().splitlines()) < 5):
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len(manifest.read_text().splitlines())
    assert 5 <= n_before < len(rows), "kill landed too late to test anything; render got faster?"
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    ids = [m.row_id for m in read_manifest(manifest)]
    assert sorted(ids) == sorted(r.row_id for r in rows)  # every row exactly once
    assert not list(out.rglob("*.partial"))
    for m in read_manifest(manifest):
        assert read_video(out / m.video).shape == (16, 64, 64, 3)
    assert len(list((out / "videos").rglob("*.mp4"))) == len(rows)


def test_write_video_gives_the_same_file_for_the_same_frames(tmp_path):
    """Encoding is a function of the frames (libx264's lookahead made identical frames decode differently,
    so the demo world and its numbers changed with every build)."""
    import numpy as np

    from generation.video_io import write_video

    rng = np.random.default_rng(0)
    frames = (rng.random((16, 64, 64, 3)) * 255).astype(np.uint8)  # noise: the hardest case for rate control
    frames[:, 16:48, 16:48] = 200  # and a flat square
    written = []
    for i in range(8):
        write_video(tmp_path / f"{i}.mp4", frames, fps=8)
        written.append((tmp_path / f"{i}.mp4").read_bytes())
    assert all(w == written[0] for w in written)
