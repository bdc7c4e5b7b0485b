"""datamodules/video.py: TSN index sampling, frame-exact decoding with seeks, real clips, broken files."""

from __future__ import annotations

import os
import time
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from datamodules import video
from datamodules.video import VideoDecodeError, decode_frames, read_clip, sample_indices, video_info

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
REAL_CLIPS = SHARED_DATA / "real_clips"
VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".m4v", ".mov", ".webm"}
needs_shared = pytest.mark.skipif(not REAL_CLIPS.is_dir(), reason="../shared/data/real_clips is not present")


def _real_clips() -> list[Path]:
    if not REAL_CLIPS.is_dir():
        return []
    return sorted(p for p in REAL_CLIPS.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)


# ------------------------------------------------------------------------------------ sample_indices


def test_test_indices_are_segment_centres() -> None:
    np.testing.assert_array_equal(sample_indices(16, 4, train=False), [2, 6, 10, 14])
    # 10 frames / 4 segments of 2.5: centres at 1.25, 3.75, 6.25, 8.75
    np.testing.assert_array_equal(sample_indices(10, 4, train=False), [1, 3, 6, 8])


def test_test_views_are_evenly_staggered() -> None:
    # positions 0.25 and 0.75 inside each 4-frame segment
    np.testing.assert_array_equal(sample_indices(16, 4, train=False, view=0, num_views=2), [1, 5, 9, 13])
    np.testing.assert_array_equal(sample_indices(16, 4, train=False, view=1, num_views=2), [3, 7, 11, 15])


def test_short_clip_repeats_frames_monotonically() -> None:
    # 3 frames, 8 segments of 0.375: centres 0.19, 0.56, 0.94, 1.31, 1.69, 2.06, 2.44, 2.81
    np.testing.assert_array_equal(sample_indices(3, 8, train=False), [0, 0, 0, 1, 1, 2, 2, 2])
    # in training every segment holds at most one frame, so the draw is forced
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(sample_indices(3, 8, train=True, rng=rng), [0, 0, 0, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(sample_indices(1, 8, train=True, rng=rng), np.zeros(8))


def test_train_indices_fall_in_their_segments_and_follow_the_rng() -> None:
    # 100 frames, 8 segments of 12.5 -> integer segments [0, 12), [12, 25), [25, 37), ...
    starts = [int(12.5 * k) for k in range(9)]
    draws = np.stack([sample_indices(100, 8, train=True, rng=np.random.default_rng(s)) for s in range(500)])
    assert draws.dtype == np.int64 and draws.shape == (500, 8)
    for k in range(8):
        assert set(draws[:, k]) == set(range(starts[k], starts[k + 1]))  # uniform: every frame is hit
    assert len({tuple(d) for d in draws}) > 450  # different seeds, different clips
    a = sample_indices(100, 8, train=True, rng=np.random.default_rng(7))
    b = sample_indices(100, 8, train=True, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_train_default_rng_follows_numpy_global_seed() -> None:
    np.random.seed(3)
    a = sample_indices(1000, 8, train=True)
    np.random.seed(3)
    np.testing.assert_array_equal(a, sample_indices(1000, 8, train=True))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_frames=0, num_segments=8),
        dict(num_frames=8, num_segments=0),
        dict(num_frames=8, num_segments=2, view=2, num_views=2),
    ],
)
def test_sample_indices_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        sample_indices(**kwargs, train=False)


# ------------------------------------------------------------------------- synthetic coded videos

NUM_FRAMES = 300  # 12 s at 25 fps: far-apart indices need seeks (SEEK_AHEAD_SECONDS = 2)
GOP = 12


def _colour(i: int) -> tuple[int, int, int]:
    """Solid RGB colour that encodes frame index i < 304: red steps of 16, green steps of 13."""
    return (i % 16) * 16 + 8, (i // 16) * 13 + 8, 128


def _index_of(frame: np.ndarray) -> int:
    r, g, _ = frame.reshape(-1, 3).mean(axis=0)
    return int(round((r - 8) / 16)) + 16 * int(round((g - 8) / 13))


def _encode(path: Path, codec: str, *, start_pts: int = 0, width: int = 80, height: int = 48) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = GOP
        stream.bit_rate = 4_000_000  # mpeg4's default rate control drops small colour changes
        stream.codec_context.time_base = Fraction(1, 25)
        for i in range(NUM_FRAMES):
            rgb = np.empty((height, width, 3), np.uint8)
            rgb[:] = _colour(i)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = start_pts + i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module", params=["mp4-h264", "mkv-h264-late-start", "avi-mpeg4"])
def coded_video(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("coded")
    if request.param == "mp4-h264":
        return _encode(folder / "clip.mp4", "libx264")
    if request.param == "mkv-h264-late-start":  # stream starts at 4 s: index 0 is the first frame
        return _encode(folder / "clip.mkv", "libx264", start_pts=100)
    return _encode(folder / "clip.avi", "mpeg4")  # AVI: decoded forward, no seeks


class _CountingContainer:
    """Wraps a PyAV container to count decoded frames and seeks."""

    def __init__(self, container: av.container.InputContainer, log: dict[str, int]) -> None:
        self._container, self._log = container, log

    def __getattr__(self, name: str):
        return getattr(self._container, name)

    def seek(self, *args, **kwargs) -> None:
        self._log["seeks"] += 1
        self._container.seek(*args, **kwargs)

    def decode(self, *args, **kwargs):
        for frame in self._container.decode(*args, **kwargs):
            self._log["frames"] += 1
            yield frame


@pytest.fixture
def decode_log(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    log = {"seeks": 0, "frames": 0}
    real_open = video._open
    monkeypatch.setattr(video, "_open", lambda path: _CountingContainer(real_open(path), log))
    return log


def test_video_info_of_coded_video(coded_video: Path) -> None:
    info = video_info(coded_video)
    assert (info.width, info.height) == (80, 48)
    assert info.fps == pytest.approx(25.0)
    assert abs(info.num_frames - NUM_FRAMES) <= 1  # container estimate; decode_frames clamps


def test_decode_frames_returns_exactly_the_requested_frames(coded_video: Path) -> None:
    indices = [250, 3, 3, 120, 0, 299, 121, 60, 250, 17]  # out of order, duplicates, far apart
    frames = decode_frames(coded_video, indices)
    assert frames.shape == (len(indices), 48, 80, 3) and frames.dtype == np.uint8
    assert [_index_of(f) for f in frames] == indices
    np.testing.assert_allclose(frames[0].reshape(-1, 3).mean(0), _colour(250), atol=6)


def test_indices_past_the_end_clamp_to_the_last_frame(coded_video: Path) -> None:
    frames = decode_frames(coded_video, [5, NUM_FRAMES + 40])
    assert [_index_of(f) for f in frames] == [5, NUM_FRAMES - 1]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_far_frames_are_reached_by_seeking(tmp_path: Path, suffix: str, decode_log: dict[str, int]) -> None:
    path = _encode(tmp_path / f"clip{suffix}", "libx264", start_pts=100 if suffix == ".mkv" else 0)
    assert _index_of(decode_frames(path, [290])[0]) == 290
    assert decode_log["seeks"] == 1 and decode_log["frames"] <= 2 * GOP  # one GOP, not 290 frames

    decode_log.update(seeks=0, frames=0)
    indices = sample_indices(NUM_FRAMES, 4, train=False)  # [37, 112, 187, 262]
    assert [_index_of(f) for f in decode_frames(path, indices, verify=False)] == list(indices)
    # mp4 seeks for every target; mkv loads its index on the first seek, so it decodes up to 37 first
    assert decode_log["seeks"] == (4 if suffix == ".mp4" else 3)
    assert decode_log["frames"] <= 38 + 3 * 2 * GOP  # about one GOP per target, not 263 frames

    # verify (the default) decodes on to the end: one more seek to the last keyframe and about one GOP
    unverified = dict(decode_log)
    video._VERIFIED.clear()  # the first call above verified the file; start as a fresh process would
    decode_log.update(seeks=0, frames=0)
    assert [_index_of(f) for f in decode_frames(path, indices)] == list(indices)
    assert decode_log["seeks"] == unverified["seeks"] + 1
    assert decode_log["frames"] <= unverified["frames"] + 2 * GOP

    # once verified in this process, verify=True costs what verify=False does
    decode_log.update(seeks=0, frames=0)
    assert [_index_of(f) for f in decode_frames(path, indices)] == list(indices)
    assert decode_log == unverified


def test_frames_within_one_gop_are_decoded_forward(tmp_path: Path, decode_log: dict[str, int]) -> None:
    path = _encode(tmp_path / "clip.mp4", "libx264")
    assert [_index_of(f) for f in decode_frames(path, [1, 5, 9], verify=False)] == [1, 5, 9]
    assert decode_log["seeks"] == 0 and decode_log["frames"] <= 10 + GOP  # decoder may read ahead


def test_without_an_index_seeks_only_past_two_seconds(
    tmp_path: Path, decode_log: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(video._KeyframeIndex, "refresh", lambda self: None)  # index stays empty
    path = _encode(tmp_path / "clip.mp4", "libx264")  # 25 fps: 2 s = 50 frames
    got = decode_frames(path, [10, 30, 45, 120, 130], verify=False)
    assert [_index_of(f) for f in got] == [10, 30, 45, 120, 130]
    assert decode_log["seeks"] == 1  # only 45 -> 120


def test_short_side_resizes_keeping_aspect(coded_video: Path) -> None:
    frames = decode_frames(coded_video, [0, 200], short_side=32)
    assert frames.shape == (2, 32, 53, 3)  # 80 x 48 -> 53.3 x 32
    assert [_index_of(f) for f in frames] == [0, 200]


def test_exact_size_false_shrinks_only_big_frames(coded_video: Path) -> None:
    # 80 x 48 frames: a short side of 48 is not over 1.5 * 32, so they keep their size ...
    frames = decode_frames(coded_video, [0, 200], short_side=32, exact_size=False)
    assert frames.shape == (2, 48, 80, 3)
    np.testing.assert_array_equal(frames, decode_frames(coded_video, [0, 200]))  # the native frames
    # ... but 48 is over 1.5 * 31, so they are shrunk (area averaging) as with exact_size=True
    frames = decode_frames(coded_video, [0, 200], short_side=31, exact_size=False)
    assert frames.shape == (2, 31, 52, 3)
    assert [_index_of(f) for f in frames] == [0, 200]
    clip = read_clip(coded_video, 4, train=False, short_side=64, exact_size=False)  # 64 > 48: never enlarged
    assert clip.shape == (1, 4, 48, 80, 3)


def _tasks() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(
    not Path("/proc/self/task").is_dir() or (os.cpu_count() or 1) < 2,
    reason="counts threads through /proc; PyAV's automatic swscale threads need >= 2 CPUs",
)
def test_rgb_conversion_starts_no_threads(tmp_path: Path) -> None:
    """PyAV >= 17 converts with one swscale thread per CPU by default, started for each frame (each frame
    has its own converter), which cost more than decoding; `_rgb` converts on the calling thread."""
    path = _encode(tmp_path / "clip.mp4", "libx264")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        frames = [frame for _, frame in zip(range(4), container.decode(stream))]
        before = _tasks()
        rgb = [video._rgb(frames[0], (53, 32)), video._rgb(frames[1], (53, 32), "AREA")]
        rgb.append(video._rgb(frames[2], (80, 48)))
        assert _tasks() == before  # the frames (and their converters) are still alive
        assert [f.shape for f in rgb] == [(32, 53, 3), (32, 53, 3), (48, 80, 3)]
        assert [_index_of(f) for f in rgb] == [0, 1, 2]


def test_a_verified_file_is_not_decoded_again_until_it_changes(tmp_path: Path, decode_log: dict[str, int]) -> None:
    path = _encode(tmp_path / "clip.avi", "mpeg4")  # AVI: decoded forward from the start, no seeks
    decode_frames(path, [10])  # first read: decodes all 300 frames to check the count
    assert decode_log["frames"] == NUM_FRAMES and video._file_key(path) in video._VERIFIED
    decode_log.update(frames=0)
    assert _index_of(decode_frames(path, [10])[0]) == 10
    assert decode_log["frames"] <= 10 + 1 + 4  # up to frame 10 (+ the decoder's look-ahead), not to the end
    decode_log.update(frames=0)
    read_clip(path, 4, train=False)  # segment centres 37, 112, 187, 262; no probe either
    assert 262 < decode_log["frames"] < NUM_FRAMES

    # the same path rewritten (a truncated copy): its size and time differ, so it is checked again
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    for _ in range(2):  # and every time: a failed check is not remembered
        with pytest.raises(VideoDecodeError, match=r"only \d+ of the 300 frames"):
            decode_frames(path, [10])
        with pytest.raises(VideoDecodeError, match=r"only \d+ of the 300 frames"):
            read_clip(path, 4, train=True, rng=np.random.default_rng(0))


def test_a_verified_file_corrupted_in_place_is_checked_again(tmp_path: Path) -> None:
    """Same path, same size, same inode, even the modification time put back: the change time still moves."""
    path = _encode(tmp_path / "clip.avi", "mpeg4")
    decode_frames(path, [10])
    assert video._file_key(path) in video._VERIFIED
    stat = path.stat()
    time.sleep(0.05)  # past the file system's timestamp granularity
    data = bytearray(path.read_bytes())
    data[len(data) // 2 :] = bytes(len(data) - len(data) // 2)  # the second half zeroed
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as `cp -p` / `rsync -t` would leave it
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    with pytest.raises(VideoDecodeError, match=r"clip\.avi"):
        decode_frames(path, [10])


def test_read_clip_views_decode_their_sampled_indices(coded_video: Path) -> None:
    clip = read_clip(coded_video, 8, train=False, num_views=3)
    assert clip.shape == (3, 8, 48, 80, 3)
    num_frames = video_info(coded_video).num_frames
    for v in range(3):
        expected = sample_indices(num_frames, 8, train=False, view=v, num_views=3)
        assert [_index_of(f) for f in clip[v]] == [min(i, NUM_FRAMES - 1) for i in expected]

    train = read_clip(coded_video, 8, train=True, rng=np.random.default_rng(5))
    expected = sample_indices(num_frames, 8, train=True, rng=np.random.default_rng(5))
    assert train.shape == (1, 8, 48, 80, 3)
    assert [_index_of(f) for f in train[0]] == [min(i, NUM_FRAMES - 1) for i in expected]


# ------------------------------------------------------------------------------------ frame folders


@pytest.fixture
def frame_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "v_Clip_g01_c01"
    folder.mkdir()
    for i in range(20):
        Image.new("RGB", (40, 30), _colour(i)).save(folder / f"img_{i + 1:05d}.png")
    (folder / "notes.txt").write_text("not a frame")
    return folder


def test_frame_folder_reads_like_a_video(frame_folder: Path) -> None:
    assert video_info(frame_folder) == video.VideoInfo(num_frames=20, fps=0.0, width=40, height=30)
    frames = decode_frames(frame_folder, [19, 0, 5, 5, 25])
    assert frames.shape == (5, 30, 40, 3)
    assert [_index_of(f) for f in frames] == [19, 0, 5, 5, 19]  # PNG is lossless; 25 clamps
    np.testing.assert_array_equal(frames[1], np.broadcast_to(np.uint8(_colour(0)), (30, 40, 3)))
    clip = read_clip(frame_folder, 4, train=False, short_side=15)
    assert clip.shape == (1, 4, 15, 20, 3)
    assert [_index_of(f) for f in clip[0]] == [2, 7, 12, 17]


def test_frame_folder_errors_name_the_folder_or_image(tmp_path: Path, frame_folder: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoDecodeError, match="empty"):
        video_info(empty)
    broken = frame_folder / "img_00003.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(VideoDecodeError, match="img_00003.png"):
        decode_frames(frame_folder, [2])


# ------------------------------------------------------------------------------------ broken inputs


def _broken_files(folder: Path) -> dict[str, Path]:
    good = _encode(folder / "good.mp4", "libx264").read_bytes()
    files = {
        "truncated": folder / "truncated.mp4",
        "empty": folder / "empty.mp4",
        "garbage": folder / "garbage.avi",
        "text": folder / "text.mp4",
        "audio_only": folder / "audio.wav",
    }
    files["truncated"].write_bytes(good[: len(good) // 2])  # moov atom (the index) is at the end
    files["empty"].write_bytes(b"")
    files["garbage"].write_bytes(np.random.default_rng(0).bytes(50_000))
    files["text"].write_text("this is a text file, not a video\n" * 100)
    with wave.open(str(files["audio_only"]), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000), w.writeframes(b"\0\0" * 8000)
    files["missing"] = folder / "does_not_exist.mp4"
    return files


@pytest.mark.parametrize("kind", ["truncated", "empty", "garbage", "text", "audio_only", "missing"])
def test_broken_files_raise_video_decode_error_naming_the_path(tmp_path: Path, kind: str) -> None:
    path = _broken_files(tmp_path)[kind]
    calls = [lambda: video_info(path), lambda: decode_frames(path, [0])]
    calls.append(lambda: read_clip(path, 8, train=True))
    for call in calls:
        with pytest.raises(VideoDecodeError) as err:
            call()
        assert str(path) in str(err.value)
    if kind == "missing":
        assert "not found" in str(err.value)
    if kind == "audio_only":
        assert "no video stream" in str(err.value)


def test_bad_indices_are_rejected(coded_video: Path) -> None:
    with pytest.raises(ValueError):
        decode_frames(coded_video, [])
    with pytest.raises(ValueError):
        decode_frames(coded_video, [3, -1])


# ------------------------------------------------------------------------------------ real clips


@needs_shared
def test_all_real_clips_are_found() -> None:
    manifest = (REAL_CLIPS / "MANIFEST.tsv").read_text().splitlines()[1:]
    assert len(_real_clips()) == len(manifest) == 66


@needs_shared
@pytest.mark.parametrize("path", _real_clips(), ids=lambda p: p.name)
def test_real_clip_reads_at_short_side_128(path: Path) -> None:
    info = video_info(path)
    clip = read_clip(path, 8, train=False, short_side=128)
    assert clip.shape[:2] == (1, 8) and clip.shape[-1] == 3 and clip.dtype == np.uint8
    height, width = clip.shape[2:4]
    assert min(height, width) == 128
    assert width / height == pytest.approx(info.width / info.height, rel=0.02)
    assert clip.std() > 5  # real picture content, not a blank frame
    assert np.abs(np.diff(clip[0].astype(np.int16), axis=0)).mean() > 0.5  # 8 different moments


# Representative edge cases: AVI with packed B-frames and non-UTF-8 metadata, AVI h264 1080p, raw m4v,
# mkv without frame count, mp4 with start_time 1014 (1/15360), mp4 with start_time 353 and long GOPs.
EDGE_CLIPS = [
    "hmdb51/cartwheel/Turnk_r_Pippi_Michel_cartwheel_f_cm_np2_le_med_6.avi",
    "ucf101/Basketball/v_Basketball_g01_c02.mp4",
    "kinetics400/flipping_pancake/flipping_a_pancake.mkv",
    "hmdb51/dive/BASE_Jumping_Compilation_-_Brilliant_dive_f_cm_np1_le_bad_3.mp4",
    "ucf_crime_like/Robbery/Robbery3.mp4",
    "kinetics400/_unlabeled/SOX5yA1l24A.mp4",
]


def _decode_all(path: Path) -> list[np.ndarray]:
    with av.open(str(path), metadata_errors="ignore") as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _check_against_full_decode(path: Path) -> None:
    reference = _decode_all(path)  # every frame, in presentation order
    n = len(reference)
    indices = list(np.random.default_rng(0).integers(0, n, 12)) + [0, n - 1, n + 3]
    indices += list(sample_indices(video_info(path).num_frames, 16, train=False))
    frames = decode_frames(path, indices)
    for i, frame in zip(indices, frames):
        np.testing.assert_array_equal(frame, reference[min(i, n - 1)], err_msg=f"{path.name} frame {i}")


@needs_shared
@pytest.mark.parametrize("relative", EDGE_CLIPS, ids=lambda p: Path(p).name[:24])
def test_real_clip_frames_match_a_full_sequential_decode(relative: str) -> None:
    _check_against_full_decode(REAL_CLIPS / relative)


@needs_shared
@pytest.mark.slow
@pytest.mark.parametrize("path", _real_clips(), ids=lambda p: p.name)
def test_every_real_clip_matches_a_full_sequential_decode(path: Path) -> None:
    _check_against_full_decode(path)
