"""Read action-recognition clips: TSN segment sampling plus PyAV decoding of only the frames it picks.

`sample_indices` splits a clip into equal segments and picks one frame per segment (random in training,
evenly staggered positions for each test view). `decode_frames` decodes just those frames: it seeks to
the keyframe before a wanted frame, decodes forward, and seeks again when the container index shows a
keyframe between the last decoded frame and the next wanted one (or, without an index, when that frame
is over 2 s ahead), so 16 frames from a 3-minute video cost a few GOPs, not the whole file. Frame folders (one
jpg/png per frame, sorted by name) are read the same way. `read_clip` ties the two together and returns
`(num_views, T, H, W, 3)` uint8 RGB. Every failure to read a file raises `VideoDecodeError`.

This is the one PyAV reader of the project: training (`read_clip`), feature extraction and generated-clip
checks (`iter_frames`, `read_video`), `validate` and `generation status` (`probe`) all open files through
`_open`, so every reader gets the same checks:
- the container must be a video (not a still image) of the kind its extension says (an AVI named `.mp4`
  is refused with the rename to make; raw MPEG-4/H.264 streams named `.mp4`/`.m4v` are accepted);
- decoding verifies what it got: after the wanted frames it decodes on to the end of the stream (for
  indexed containers it seeks to the last keyframe first, so this costs about one GOP) and raises when
  fewer frames decode than the container claims, beyond `frame_tolerance` (truncated, bit-flipped or
  zeroed files), or when the decoder stops on an error anywhere on that path. A file that passed this check
  is remembered by the process (path, size, inode, modification and change times): later reads of the
  unchanged file stop at their last wanted frame, so a DataLoader worker checks each file once, not per epoch.

Frames are converted to RGB on the calling thread (`to_ndarray(threads=1)`): PyAV >= 17 otherwise starts a
swscale thread pool per frame, which cost ~1.5 ms a frame, more than decoding it. `exact_size=False` skips the
decode-time resize unless it shrinks a frame a lot, for callers that resize again (`VideoTransform`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
# Seek when the container index shows a keyframe at least this many frames past the last decoded frame
# (and at or before the next wanted one): jumping there skips that many frames of decoding.
MIN_SEEK_SKIP_FRAMES = 8
# Where the index does not (yet) reach: seek when the next wanted frame is this far ahead.
SEEK_AHEAD_SECONDS = 2.0
# Containers whose packets carry real presentation timestamps, so a frame's index can be computed from
# its pts after a seek. AVI stores decode-order counters (wrong with packed B-frames, e.g. HMDB-51) and
# raw elementary streams (m4v, h264) have no index; those are decoded forward from the start, counting
# frames, which is exact and cheap for the short clips these formats hold.
_SEEKABLE_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})
_ERRORS = (av.FFmpegError, OSError, UnicodeDecodeError, EOFError)
# A clip may decode a few frames fewer than its container claims (AVI with packed B-frames: one fewer;
# edit lists, a dropped last frame); more than this many is a truncated or corrupt file.
MAX_MISSING_FRAMES = 3
MAX_MISSING_FRACTION = 0.03
# Which demuxers may open a file of each extension. Raw MPEG-4 Part 2 / H.264 streams named .mp4 exist in
# released datasets (UCF101-24 demo clips are `m4v` streams), so they are accepted for .mp4 and .m4v.
_MP4_LIKE = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "m4v", "h264", "hevc"})
CONTAINERS: dict[str, frozenset[str]] = {
    ".avi": frozenset({"avi"}),
    ".mp4": _MP4_LIKE,
    ".m4v": _MP4_LIKE,
    ".mov": _MP4_LIKE,
    ".3gp": _MP4_LIKE,
    ".mkv": frozenset({"matroska,webm"}),
    ".webm": frozenset({"matroska,webm"}),
    ".mpg": frozenset({"mpeg", "mpegvideo"}),
    ".mpeg": frozenset({"mpeg", "mpegvideo"}),
    ".ts": frozenset({"mpegts"}),
    ".flv": frozenset({"flv"}),
    ".wmv": frozenset({"asf"}),
    ".gif": frozenset({"gif"}),
}
# `exact_size=False`: resize at decode time only when the frame's short side is over this many times the wanted
# one (a big shrink, done with area averaging); smaller frames come back at their own size.
SHRINK_RATIO = 1.5
# RGB conversion on the calling thread: PyAV >= 17 (swscale's frame API) defaults to a thread pool per frame.
_CONVERT_ARGS: dict = {"threads": 1} if int(av.__version__.split(".")[0]) >= 17 else {}
# Files whose full decode check passed in this process: `_file_key` -> the frame count their container claims.
_VERIFIED: dict[int, int] = {}
_EXTENSION_OF = {
    "avi": ".avi",
    "mov,mp4,m4a,3gp,3g2,mj2": ".mp4",
    "matroska,webm": ".mkv",
    "mpeg": ".mpg",
    "mpegts": ".ts",
    "flv": ".flv",
    "asf": ".wmv",
    "gif": ".gif",
    "m4v": ".m4v",
    "h264": ".h264",
}


def frame_tolerance(claimed: int) -> int:
    """Frames a clip may decode fewer than its container claims before it counts as truncated/corrupt."""
    return max(MAX_MISSING_FRAMES, int(MAX_MISSING_FRACTION * claimed))


class VideoDecodeError(RuntimeError):
    """A video file or frame folder could not be read; the message names the path and the cause."""


def _decode_error(path: str | Path, cause: str) -> VideoDecodeError:
    return VideoDecodeError(
        f"cannot read video {str(path)!r}: {cause}. Check that it exists and plays (e.g. `ffprobe` it); "
        "re-download or re-extract it, or drop it from the split list."
    )


@dataclass(frozen=True)
class VideoInfo:
    """What a clip claims about itself (container metadata; frame folders: 0.0 fps = unknown)."""

    num_frames: int
    fps: float
    width: int
    height: int
    declared: bool = True  # False: the container states no length (a raw stream); num_frames was counted, so a
    # truncated file cannot be told from a short one ("length unverifiable")


# --------------------------------------------------------------------------------------- sampling


def sample_indices(
    num_frames: int,
    num_segments: int,
    *,
    train: bool,
    rng: np.random.Generator | None = None,
    view: int = 0,
    num_views: int = 1,
) -> np.ndarray:
    """TSN sampling: one frame index from each of `num_segments` equal segments of `[0, num_frames)`.

    Train: a uniformly random frame inside each segment, drawn from `rng` (default: a generator seeded
    from NumPy's global state, which DataLoader workers and `seed_everything` seed). Test: the frame at
    relative position `(view + 0.5) / num_views` inside each segment, so one view takes segment centres
    and several views are evenly staggered. A clip shorter than `num_segments` repeats frames: the result
    is always monotone non-decreasing, of length `num_segments`, with values in `[0, num_frames)`.

    Returns:
        int64 array of shape (num_segments,).
    """
    if num_frames <= 0 or num_segments <= 0:
        raise ValueError(f"need num_frames > 0 and num_segments > 0, got {num_frames} and {num_segments}")
    if not 0 <= view < num_views:
        raise ValueError(f"view must be in [0, num_views={num_views}), got {view}")
    seg_len = num_frames / num_segments
    k = np.arange(num_segments)
    if train:
        if rng is None:
            rng = np.random.default_rng(np.random.randint(2**31 - 1))
        start = np.floor(seg_len * k).astype(np.int64)
        end = np.maximum(np.floor(seg_len * (k + 1)).astype(np.int64), start + 1)  # exclusive
        idx = rng.integers(start, end)
    else:
        idx = np.floor(seg_len * (k + (view + 0.5) / num_views)).astype(np.int64)
    return np.clip(idx, 0, num_frames - 1).astype(np.int64)


# --------------------------------------------------------------------------------------- metadata


def _frame_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise _decode_error(folder, f"folder holds no {'/'.join(IMAGE_SUFFIXES)} frames")
    return files


def _open(path: Path) -> av.container.InputContainer:
    """Open a video file, checking it is a video container of the kind its extension names."""
    if not path.is_file():
        raise _decode_error(path, "file not found")
    if path.stat().st_size == 0:
        raise _decode_error(path, "the file is empty (0 bytes)")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except _ERRORS as exc:
        raise _decode_error(path, f"{type(exc).__name__}: {exc}") from exc
    problem = _container_problem(path, container)
    if problem:
        container.close()
        raise _decode_error(path, problem)
    return container


def _container_problem(path: Path, container: av.container.InputContainer) -> str | None:
    fmt = container.format.name
    if not container.streams.video:
        return "no video stream"
    if fmt in ("image2", "image2pipe") or fmt.endswith("_pipe"):
        return f"the file holds a still image ({fmt}), not a video"
    allowed = CONTAINERS.get(path.suffix.lower())
    if allowed is not None and fmt not in allowed:
        right = _EXTENSION_OF.get(fmt)
        fix = f"rename it to {path.stem}{right}" if right else "re-mux it into the container its name says"
        return f"wrong extension: the file holds a {fmt!r} container, not what {path.suffix!r} means; {fix}"
    return None


def _stream_fps(stream: av.video.stream.VideoStream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return Fraction(0)


def video_info(path: str | Path) -> VideoInfo:
    """Frame count, fps and size of a video file or frame folder, from metadata (no decoding).

    The frame count is `stream.frames`, else the stream duration times its average rate, else the number
    of video packets found by demuxing. It is what the container claims: `decode_frames` clamps indices
    past the frames that really decode.
    """
    path = Path(path)
    if path.is_dir():
        files = _frame_files(path)
        try:
            with Image.open(files[0]) as im:
                width, height = im.size
        except OSError as exc:
            raise _decode_error(files[0], f"{type(exc).__name__}: {exc}") from exc
        return VideoInfo(num_frames=len(files), fps=0.0, width=width, height=height)

    container = _open(path)
    try:
        return _container_info(path, container)
    finally:
        container.close()


def _container_info(path: Path, container: av.container.InputContainer) -> VideoInfo:
    """`video_info` of an open container (demuxing it when it has no frame count: seek back before decoding)."""
    try:
        stream = container.streams.video[0]
        fps = _stream_fps(stream)
        num_frames = stream.frames
        declared = num_frames > 0 or bool(stream.duration and fps)
        if num_frames <= 0 and stream.duration and fps:
            num_frames = round(stream.duration * stream.time_base * fps)
        if num_frames <= 0:  # e.g. raw m4v or some mkv: count packets, cheap next to decoding
            num_frames = sum(1 for packet in container.demux(stream) if packet.size > 0)
        width, height = stream.codec_context.width, stream.codec_context.height
    except _ERRORS as exc:
        raise _decode_error(path, f"{type(exc).__name__}: {exc}") from exc
    if num_frames <= 0 or width <= 0 or height <= 0:
        raise _decode_error(path, f"no usable video frames (frames={num_frames}, size={width}x{height})")
    return VideoInfo(num_frames=num_frames, fps=float(fps), width=width, height=height, declared=declared)


def probe(path: str | Path, expected_frames: int | None = None) -> VideoInfo:
    """Cheap integrity check without decoding: the file opens as the video its extension says, and its
    video packets can all be read (demuxed). Raises `VideoDecodeError` when the container claims more
    frames than packets exist, or fewer frames than `expected_frames` (e.g. a manifest row's), beyond
    `frame_tolerance`. `decode_frames(..., verify=True)` is the full check (it decodes)."""
    path = Path(path)
    if path.is_dir():
        return video_info(path)
    container = _open(path)
    try:
        info = _container_info(path, container)
        try:
            container.seek(0)
        except _ERRORS:
            pass  # nothing was demuxed, or the demuxer cannot seek: demuxing below starts where it is
        stream = container.streams.video[0]
        packets = sum(1 for packet in container.demux(stream) if packet.size > 0)
    except _ERRORS as exc:
        raise _decode_error(path, f"{type(exc).__name__}: {exc}") from exc
    finally:
        container.close()
    for what, claimed in (("its container claims", info.num_frames), ("expected", expected_frames)):
        if claimed is not None and claimed - packets > frame_tolerance(claimed):
            raise _decode_error(path, f"truncated: {packets} frames stored, {claimed} {what}")
    return info


# --------------------------------------------------------------------------------------- decoding


def _file_key(path: Path) -> int | None:
    """What identifies a file's bytes without reading them: a 64-bit hash of its absolute path, size, inode,
    modification and change times (ns; a copy that keeps the modification time still gets a new change
    time), ~100 bytes a file in `_VERIFIED`; None when it cannot be read (the reader then raises)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return hash((os.path.abspath(path), stat.st_size, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns))


def _rgb(frame: av.VideoFrame, size: tuple[int, int], interpolation: str | None = None) -> np.ndarray:
    """`frame` as (H, W, 3) uint8 RGB at `size` (width, height), converted on this thread."""
    return frame.to_ndarray(format="rgb24", width=size[0], height=size[1], interpolation=interpolation, **_CONVERT_ARGS)


def _output_size(
    width: int, height: int, short_side: int | None, exact_size: bool
) -> tuple[tuple[int, int], str | None]:
    """(width, height) to convert a width x height frame to, and the swscale interpolation (None: default)."""
    if exact_size or short_side is None:
        return _resized(width, height, short_side), None
    if min(width, height) > SHRINK_RATIO * short_side:
        return _resized(width, height, short_side), "AREA"
    return (width, height), None


def _resized(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) scaled so the shorter side is `short_side`, keeping the aspect ratio."""
    if short_side is None:
        return width, height
    scale = short_side / min(width, height)
    if width <= height:
        return short_side, max(1, round(height * scale))
    return max(1, round(width * scale)), short_side


@dataclass(frozen=True)
class _Clock:
    """Maps frame index <-> pts: index i is shown at start_pts + i / fps seconds."""

    start_pts: int
    time_base: Fraction
    fps: Fraction

    def pts(self, index: int) -> int:
        return self.start_pts + round(index / (self.fps * self.time_base))

    def index(self, pts: int) -> int:
        return round((pts - self.start_pts) * self.time_base * self.fps)


def _frames_from(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    clock: _Clock,
    target: int | None,
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Yield (index, frame) in presentation order from the keyframe at or before `target`.

    `target=None` decodes from the current position of a freshly opened container (its first frame).
    After a seek only the first frame's index comes from its pts; later frames are counted, so streams
    with unreliable per-frame timestamps still index correctly. If the seek lands past `target` (or on a
    frame without pts), decoding restarts from the beginning of the stream.
    """
    if target is not None:
        container.seek(clock.pts(target), stream=stream, backward=True)
        frames = container.decode(stream)
        first = next(frames, None)
        if first is not None and first.pts is not None and clock.index(first.pts) <= target:
            start = clock.index(first.pts)
            yield start, first
            yield from enumerate(frames, start + 1)
            return
        container.seek(clock.start_pts, stream=stream, backward=True)
    yield from enumerate(container.decode(stream))


class _KeyframeIndex:
    """Approximate frame indices of the keyframes the container index knows about.

    mp4 has its whole index at open; matroska reads its cues on the first seek and other demuxers add
    entries as they read, so the index is re-read whenever it has grown. Index timestamps are decode
    times (mp4) or keyframe pts (mkv); measured from the first entry they place each keyframe within a
    frame or two, which is all the seek decision needs.
    """

    def __init__(self, stream: av.video.stream.VideoStream, clock: _Clock) -> None:
        self.stream, self.clock = stream, clock
        self.indices = np.empty(0, dtype=np.int64)
        self._entries_seen = 0

    def refresh(self) -> None:
        entries = getattr(self.stream, "index_entries", None)  # PyAV >= 14
        if entries is None or len(entries) == self._entries_seen:
            return
        self._entries_seen = len(entries)
        first = entries[0].timestamp
        start = self.clock.start_pts - first
        keys = [self.clock.index(start + e.timestamp) for e in entries if e.is_keyframe]
        self.indices = np.sort(np.array(keys, dtype=np.int64))

    def worth_seeking(self, pos: int, target: int, fps: Fraction) -> bool:
        """Whether seeking for `target` skips decoding, given the last decoded frame `pos`."""
        self.refresh()
        before = self.indices[self.indices <= target]  # a seek lands on the last of these
        if before.size and before[-1] - pos >= MIN_SEEK_SKIP_FRAMES:
            return True
        # Past the last indexed keyframe the index may just not have been read yet: go by distance.
        beyond_index = not self.indices.size or target > self.indices[-1]
        return beyond_index and target - pos > SEEK_AHEAD_SECONDS * fps


def _decode_video(
    path: Path,
    wanted: list[int],
    short_side: int | None,
    thread_type: str,
    verify: bool = True,
    exact_size: bool = True,
) -> list[np.ndarray]:
    """RGB frames for the sorted, unique indices `wanted`, each (H, W, 3) uint8.

    With `verify`, decoding goes on past the last wanted frame to the end of the stream (indexed
    containers seek to the last keyframe first), and a stream that ends more than `frame_tolerance`
    frames short of what the container claims raises `VideoDecodeError`. A file that passed is recorded in
    `_VERIFIED`, and `verify` is skipped for it while it is unchanged (`_file_key`).
    """
    key = _file_key(path) if verify else None
    verify = verify and (key is None or key not in _VERIFIED)
    container = _open(path)
    pos = -1  # index of the frame last decoded
    try:
        stream = container.streams.video[0]
        claimed = _claimed_frames(path, stream) if verify else 0
        stream.thread_type = thread_type
        fps = _stream_fps(stream)
        clock = _Clock(stream.start_time or 0, stream.time_base or Fraction(1), fps)
        seekable = container.format.name in _SEEKABLE_FORMATS and fps > 0 and stream.time_base is not None
        keyframes = _KeyframeIndex(stream, clock)

        out: list[np.ndarray] = []
        frames = _frames_from(container, stream, clock, None)
        frame, exhausted = None, False  # frame last decoded
        size: tuple[int, int] | None = None  # output (width, height), fixed by the first frame
        interpolation: str | None = None
        rgb, rgb_of = None, None  # last conversion, reused when several indices clamp to one frame
        for target in wanted:
            if not exhausted and pos < target:
                if seekable and keyframes.worth_seeking(pos, target, fps):
                    frames = _frames_from(container, stream, clock, target)
                for pos, frame in frames:  # noqa: B007 - pos and frame are read after the loop
                    if pos >= target:
                        break
                else:  # fewer frames than claimed: later indices clamp to the last decoded frame
                    exhausted = True
            if frame is None:
                claim = claimed or _claimed_frames(path, stream)
                raise _decode_error(path, f"no decodable video frames (0 of the {claim} its container claims)")
            if frame is not rgb_of:
                if size is None:
                    size, interpolation = _output_size(frame.width, frame.height, short_side, exact_size)
                rgb = _rgb(frame, size, interpolation)  # (H, W, 3)
                rgb_of = frame
            out.append(rgb)
        if verify:
            if not exhausted:  # decode on to the end: from the last keyframe where the index shows one
                if seekable and claimed - 1 > pos and keyframes.worth_seeking(pos, claimed - 1, fps):
                    frames = _frames_from(container, stream, clock, claimed - 1)
                for pos, _ in frames:  # noqa: B007 - the last pos is the count
                    pass
            _check_count(path, pos + 1, claimed)
            if key is not None:
                _VERIFIED[key] = claimed
        return out
    except _ERRORS as exc:
        raise _decode_error(path, f"decoding stopped at frame {pos + 1}: {type(exc).__name__}: {exc}") from exc
    finally:
        container.close()


def _claimed_frames(path: Path, stream: av.video.stream.VideoStream) -> int:
    """The frame count the container claims, without moving the open container (a container without a
    count or duration is counted by `video_info` through a second handle)."""
    fps = _stream_fps(stream)
    if stream.frames > 0:
        return stream.frames
    if stream.duration and fps:
        return round(stream.duration * stream.time_base * fps)
    return video_info(path).num_frames


def _check_count(path: Path, got: int, claimed: int) -> None:
    if claimed - got > frame_tolerance(claimed):
        raise _decode_error(
            path, f"truncated or corrupt: only {got} of the {claimed} frames its container claims decode"
        )


def iter_frames(path: str | Path, *, short_side: int | None = None, thread_type: str = "AUTO") -> Iterator[np.ndarray]:
    """Every frame of a video file, in order, as (H, W, 3) uint8 RGB; the checks of `decode_frames`
    (container, decode errors, frame count against the container's claim) apply, the count check once
    the stream ends."""
    path = Path(path)
    container = _open(path)
    got = 0
    try:
        stream = container.streams.video[0]
        claimed = _claimed_frames(path, stream)
        stream.thread_type = thread_type
        size = None
        for frame in container.decode(stream):
            size = size or _resized(frame.width, frame.height, short_side)
            yield _rgb(frame, size)  # (H, W, 3)
            got += 1
    except _ERRORS as exc:
        raise _decode_error(path, f"decoding stopped at frame {got}: {type(exc).__name__}: {exc}") from exc
    finally:
        container.close()
    if got == 0:
        raise _decode_error(path, "no decodable video frames")
    _check_count(path, got, claimed)


def read_video(path: str | Path, *, short_side: int | None = None) -> np.ndarray:
    """Every frame of a video file (see `iter_frames`): uint8 RGB (T, H, W, 3)."""
    return np.stack(list(iter_frames(path, short_side=short_side)))


def _load_images(folder: Path, wanted: list[int], short_side: int | None, exact_size: bool) -> list[np.ndarray]:
    files = _frame_files(folder)
    out: list[np.ndarray] = []
    for index in wanted:
        file = files[min(index, len(files) - 1)]
        try:
            with Image.open(file) as im:
                im = im.convert("RGB")
                size, _ = _output_size(*im.size, short_side, exact_size)
                if size != im.size:
                    im = im.resize(size, Image.BILINEAR)  # PIL's bilinear averages when it shrinks
                out.append(np.asarray(im))  # (H, W, 3)
        except OSError as exc:
            raise _decode_error(file, f"{type(exc).__name__}: {exc}") from exc
    return out


def decode_frames(
    path: str | Path,
    indices: Sequence[int],
    *,
    short_side: int | None = None,
    thread_type: str = "AUTO",
    verify: bool = True,
    exact_size: bool = True,
) -> np.ndarray:
    """Decode the frames at `indices` (any order, duplicates allowed) of a video file or frame folder.

    Only the needed stretch of the video is decoded (see the module docstring). Indices past the frames
    that actually decode take the last decoded frame (within `frame_tolerance` of the container's claim).

    Args:
        path: video file, or a folder of jpg/png frames sorted by name.
        indices: 0-based frame indices.
        short_side: if given, each frame is resized so its shorter side has this length (see `exact_size`).
        thread_type: PyAV decoder threading, "AUTO" (frame + slice threads) or "NONE".
        verify: also decode to the end of the stream and check the frame count (see `_decode_video`); once
            per process for an unchanged file: later calls stop at the last wanted frame.
        exact_size: if False, resize only frames whose short side is over `SHRINK_RATIO` (1.5) times
            `short_side` (with area averaging); smaller frames keep their own size, e.g. 320x240 stays
            320x240 for `short_side=256`. For callers that resize again (`VideoTransform` does one resize
            from any input size), so a near-1x resize is not done twice.

    Returns:
        uint8 RGB array of shape (len(indices), H, W, 3), in the order of `indices`.

    Raises:
        VideoDecodeError: the file is missing, not a video of its extension's kind, truncated or corrupt;
            the message names the file and what was got against what was expected.
    """
    path = Path(path)
    indices = [int(i) for i in indices]
    if not indices or min(indices) < 0:
        raise ValueError(f"indices must be a non-empty list of frame numbers >= 0, got {indices}")
    wanted = sorted(set(indices))
    if path.is_dir():
        frames = _load_images(path, wanted, short_side, exact_size)
    else:
        frames = _decode_video(path, wanted, short_side, thread_type, verify, exact_size)
    by_index = dict(zip(wanted, frames))
    return np.stack([by_index[i] for i in indices])  # (N, H, W, 3)


def read_clip(
    path: str | Path,
    num_segments: int,
    *,
    train: bool,
    rng: np.random.Generator | None = None,
    num_views: int = 1,
    short_side: int | None = None,
    thread_type: str = "AUTO",
    verify: bool = True,
    exact_size: bool = True,
) -> np.ndarray:
    """Sample and decode one clip: (1, T, H, W, 3) in training, (num_views, T, H, W, 3) in test.

    The test views' indices are decoded in one pass over the file. T = num_segments. With `verify` (the
    default) a clip that decodes fewer frames than its container claims, or stops on a decode error,
    raises `VideoDecodeError` (see `decode_frames`) instead of serving repeated last frames; a file this
    process has verified is neither probed nor verified again while it is unchanged. `short_side` and
    `exact_size` are `decode_frames`'.
    """
    path = Path(path)
    num_frames = _VERIFIED.get(_file_key(path)) or video_info(path).num_frames
    if train:
        views = [sample_indices(num_frames, num_segments, train=True, rng=rng)]
    else:
        views = [
            sample_indices(num_frames, num_segments, train=False, view=v, num_views=num_views) for v in range(num_views)
        ]
    frames = decode_frames(
        path,
        np.concatenate(views),
        short_side=short_side,
        thread_type=thread_type,
        verify=verify,
        exact_size=exact_size,
    )
    return frames.reshape(len(views), num_segments, *frames.shape[1:])  # (V, T, H, W, 3)
