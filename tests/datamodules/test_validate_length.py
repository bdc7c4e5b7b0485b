"""Issue 27 point 6: `validate` does not contradict itself on frame counts, and says when a clip's length
cannot be checked (a raw stream whose container declares none)."""

from __future__ import annotations

import av
import numpy as np

from datamodules.validate import validate
from datamodules.video import video_info


def _clip(path, frames: int, fmt: str | None = None) -> None:
    container = av.open(str(path), "w", format=fmt)
    stream = container.add_stream("mpeg4", rate=8)
    stream.width = stream.height = 32
    stream.pix_fmt = "yuv420p"
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 10, np.uint8), format="rgb24")
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
    container.close()


def test_a_raw_stream_is_length_unverifiable_and_decode_ok_claims_no_frame_count(tmp_path):
    _clip(tmp_path / "a.mp4", 12)  # a real MP4: declares its length
    _clip(tmp_path / "b.mp4", 12, fmt="m4v")  # a raw MPEG-4 stream named .mp4
    assert video_info(tmp_path / "a.mp4").declared and not video_info(tmp_path / "b.mp4").declared
    (tmp_path / "labels.csv").write_text("id,name\n0,x\n")
    (tmp_path / "list.txt").write_text("a.mp4 0\nb.mp4 0\n")
    report = validate(tmp_path / "list.txt", tmp_path / "labels.csv", tmp_path, frames=16, naming="none")
    summaries = {(c.name, c.status): c.summary for c in report.checks}
    assert summaries[("decode", "ok")] == "all 2 clips decode to the end of their stream"
    unverifiable = [c for c in report.checks if "length unverifiable" in c.summary]
    assert len(unverifiable) == 1 and unverifiable[0].details == ["line 2: b.mp4 (12 frames counted)"]
    short = [c for c in report.checks if c.name == "length" and "fewer than 16" in c.summary]
    assert len(short) == 1 and len(short[0].details) == 2  # both have 12 < 16 frames: said once, and what happens
    assert short[0].status == "info" and short[0].summary == (
        "2 clip(s) have fewer than 16 frames (fewest 12): not an error, a sample of 16 takes some of their frames "
        "twice (the frame of each of 16 equal segments)"
    )
    assert [c.status for c in report.checks if c.name == "length"] == ["warning", "info"]  # unverifiable: a warning
