"""Minimal video file I/O for generated clips: an atomic mp4 writer (PyAV) and the project's decoder.

Reading goes through `datamodules.video` (one decoder for the whole project, so generated clips get the
same integrity checks as training clips).

Clips are written as H.264 (libx264, CRF 12: clean at 64x64) when this PyAV build has it, else
MPEG-4 Part 2 at a high bitrate; pixel format yuv420p, so width and height must be even.
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

from datamodules.video import read_video as decode_all


def video_codec() -> str:
    """The encoder used for new clips: libx264 if available, else mpeg4."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_video(path: str | Path, frames: np.ndarray, fps: float = 8) -> None:
    """Write uint8 frames (T, H, W, 3) RGB to `path` as mp4, atomically.

    Encodes into `.<name>.partial` in the same folder, fsyncs it, then renames it over `path`, so
    `path` either does not exist or is a complete file.

    Raises:
        ValueError: frames are not uint8 (T, H, W, 3) with T >= 1 and even H and W.
    """
    path = Path(path)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 1:
        raise ValueError(f"{path}: expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"{path}: frame size {w}x{h} must be even for yuv420p video; use an even --size")
    tmp = path.with_name(f".{path.name}.partial")
    codec = video_codec()
    try:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = container.add_stream(codec, rate=int(round(fps)) if float(fps).is_integer() else fps)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.thread_count = 1  # tiny frames: threads cost more than they save
            if codec == "libx264":
                # tune=zerolatency (no lookahead / mb-tree / B-frames) makes the bytes a function of the frames:
                # without it this machine's libx264 gave 20 different decodes for 30 encodes of one clip, and
                # `make demo` numbers moved with every data build.
                stream.options = {"crf": "12", "preset": "fast", "tune": "zerolatency"}
            else:
                stream.bit_rate = max(400_000, w * h * 60)
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_video(path: str | Path) -> np.ndarray:
    """Decode every frame of a video file to uint8 RGB (T, H, W, 3), through the project's one decoder
    (`datamodules.video.read_video`: container check, decode errors, frame count against the claim).

    Raises:
        VideoDecodeError: the file is missing, not a video, truncated or corrupt.
    """
    return decode_all(path)
