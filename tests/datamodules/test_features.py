"""`python -m datamodules features`: segment bounds and pooling by hand, snippet encoding on a written
video with a net whose features are its frames' brightness, atomic resumable cache, CLI errors, and a
run on real UCF-Crime-style clips with the tiny ViFi-CLIP."""

import numpy as np
import pytest
import torch
from torch import nn

from datamodules.__main__ import main
from datamodules.features import (
    extract,
    feature_path,
    list_videos,
    load_features,
    load_net,
    pool_segments,
    save_features,
    segment_bounds,
)
from datamodules.transforms import CLIP_MEAN, CLIP_STD
from generation.video_io import write_video


def test_segment_bounds_split_frames_equally():
    assert segment_bounds(40, 4).tolist() == [0, 10, 20, 30, 40]
    assert segment_bounds(18, 4).tolist() == [0, 4, 9, 14, 18]  # 4.5 and 13.5 round to even
    assert segment_bounds(3, 4).tolist() == [0, 1, 2, 2, 3]  # fewer frames than segments: one is empty
    with pytest.raises(ValueError, match="num_frames >= 1"):
        segment_bounds(0, 32)


def test_pool_segments_averages_overlapping_snippets():
    snippets = torch.arange(5.0).unsqueeze(1)  # snippet k = [k], 4 frames each, 18 frames
    pooled = pool_segments(snippets, num_frames=18, frames_per_snippet=4, num_segments=4)
    # segments: frames 0-3 -> snippet 0; 4-8 -> 1, 2; 9-13 -> 2, 3; 14-17 -> 3, 4
    assert pooled.flatten().tolist() == [0.0, 1.5, 2.5, 3.5]
    # an empty segment takes the snippet at its boundary
    assert pool_segments(torch.arange(3.0).unsqueeze(1), 3, 1, 4).flatten().tolist() == [0.0, 1.0, 2.0, 2.0]


class FrameBrightness(nn.Module):
    """encode_video -> each frame's mean normalised value: (B, T, C, H, W) -> (B, T)."""

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        return video.mean(dim=(2, 3, 4))


def _brightness(level: float) -> float:
    """What FrameBrightness gives for a uniform grey frame of `level` (CLIP normalisation)."""
    return float(np.mean([(level / 255 - m) / s for m, s in zip(CLIP_MEAN, CLIP_STD)]))


def test_extract_encodes_snippets_and_pools_segments(tmp_path):
    levels = [20 + 10 * i for i in range(18)]  # frame i is uniformly grey at this level
    frames = np.stack([np.full((64, 64, 3), v, np.uint8) for v in levels])
    write_video(tmp_path / "clip.mp4", frames, fps=8)
    report = extract(
        FrameBrightness(),
        [tmp_path / "clip.mp4"],
        tmp_path / "out",
        num_segments=4,
        frames_per_snippet=4,
        image_size=32,
        progress=False,
    )
    assert (report.extracted, report.skipped_done, report.failed) == (1, 0, 0)
    bag = load_features(tmp_path / "out" / "clip.pt")
    assert bag.num_frames == 18 and bag.features.shape == (4, 4)
    snippets = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15], [16, 17, 17, 17]]  # last one padded
    segments = [[0], [1, 2], [2, 3], [3, 4]]  # snippets overlapping each segment (bounds 0, 4, 9, 14, 18)
    expected = [np.mean([[_brightness(levels[f]) for f in snippets[k]] for k in seg], axis=0) for seg in segments]
    assert bag.features.numpy() == pytest.approx(np.array(expected), abs=0.03)  # codec noise of 1-2 levels


def test_cache_is_atomic_and_resumable(tmp_path):
    frames = np.zeros((6, 32, 32, 3), np.uint8)
    write_video(tmp_path / "a.mp4", frames)
    write_video(tmp_path / "b.mp4", frames)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".b.pt.tmp").write_bytes(b"partial")  # a crash mid-write: never counts as done
    save_features(feature_path(tmp_path / "out", "a.mp4"), torch.ones(2, 4), 6, "a.mp4")
    report = extract(
        FrameBrightness(),
        [tmp_path / "a.mp4", tmp_path / "b.mp4"],
        tmp_path / "out",
        num_segments=2,
        frames_per_snippet=4,
        image_size=32,
        progress=False,
    )
    assert (report.extracted, report.skipped_done) == (1, 1)
    assert load_features(tmp_path / "out" / "a.pt").features.tolist() == [[1.0] * 4] * 2  # untouched
    assert load_features(tmp_path / "out" / "b.pt").features.shape == (2, 4)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.pt", "b.pt"]  # the partial was replaced


def test_broken_videos_raise_or_are_counted(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(RuntimeError, match="cannot read video"):
        extract(FrameBrightness(), [tmp_path / "bad.mp4"], tmp_path / "out", progress=False)
    report = extract(FrameBrightness(), [tmp_path / "bad.mp4"], tmp_path / "out", on_error="skip", progress=False)
    assert report.failed == 1 and not (tmp_path / "out" / "bad.pt").exists()


def test_bad_feature_file_and_bad_net_are_explained(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"x.pt: not a feature file.*re-extract"):
        load_features(tmp_path / "x.pt")
    with pytest.raises(ValueError, match="has no `encode_video"):
        load_net("collections.OrderedDict")
    with pytest.raises(ValueError, match="cannot import"):
        load_net("no_such_package.Net")


def test_list_videos_finds_bare_names_and_reports_missing(tmp_path):
    (tmp_path / "videos" / "Arrest").mkdir(parents=True)
    write_video(tmp_path / "videos" / "Arrest" / "Arrest001_x264.mp4", np.zeros((2, 32, 32, 3), np.uint8))
    listing = tmp_path / "Temporal_Anomaly_Annotation.txt"
    listing.write_text("Arrest001_x264.mp4  Arrest  2  3  -1  -1\n")
    assert list_videos(listing, tmp_path / "videos") == [tmp_path / "videos" / "Arrest" / "Arrest001_x264.mp4"]
    listing.write_text("Arrest001_x264.mp4  Arrest  2  3  -1  -1\nArrest002_x264.mp4  Arrest  2  3  -1  -1\n")
    with pytest.raises(FileNotFoundError, match=r"1 of 2 videos .*Arrest002_x264.mp4.*--video-root"):
        list_videos(listing, tmp_path / "videos")


def test_cli_on_real_ucf_crime_style_clip(shared_data, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("Robbery/Robbery2.mp4\n")  # 960 frames, 320x240
    argv = [
        "features",
        "--model-class",
        "lightning_modules.models.vifi_clip.ViFiCLIP",
        "--model-args",
        '{"arch": "synthact-tiny", "pretrained": null}',
        "--list",
        str(listing),
        "--video-root",
        str(shared_data / "real_clips" / "ucf_crime_like"),
        "--out",
        str(tmp_path / "out"),
        "--image-size",
        "32",
        "--batch-size",
        "40",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    bag = load_features(tmp_path / "out" / "Robbery2.pt")
    assert bag.num_frames == 960
    assert bag.features.shape[0] == 32 and torch.isfinite(bag.features).all()
    assert bag.features.std(dim=0).mean() > 0  # segments differ: the clip's content reaches the features
    mtime = (tmp_path / "out" / "Robbery2.pt").stat().st_mtime_ns
    assert main(argv) == 0  # resumed: nothing left to do
    assert (tmp_path / "out" / "Robbery2.pt").stat().st_mtime_ns == mtime
    with pytest.raises(SystemExit, match="--model-args must be a JSON object"):
        main([*argv[:4], "[1, 2]", *argv[5:]])


class FourFrames(nn.Module):
    """A net that, like X-CLIP, accepts only its own number of frames."""

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        if video.shape[1] != 4:
            raise ValueError(f"expects 4 frames, got {video.shape[1]}")
        return video.mean(dim=(1, 2, 3, 4)).unsqueeze(1)


def test_snippet_shape_the_net_refuses_is_explained(tmp_path):
    write_video(tmp_path / "a.mp4", np.zeros((8, 32, 32, 3), np.uint8))
    with pytest.raises(
        ValueError, match=r"FourFrames.encode_video refused snippets of shape \(1, 8, 3, 32, 32\).*--frames-per-snippet"
    ):
        extract(
            FourFrames(), [tmp_path / "a.mp4"], tmp_path / "out", frames_per_snippet=8, image_size=32, progress=False
        )
    report = extract(
        FourFrames(),
        [tmp_path / "a.mp4"],
        tmp_path / "out",
        num_segments=2,
        frames_per_snippet=4,
        image_size=32,
        progress=False,
    )
    assert report.extracted == 1 and load_features(tmp_path / "out" / "a.pt").features.shape == (2, 1)


def test_feature_names_never_leave_the_feature_folder(tmp_path):
    from datamodules.features import feature_path

    assert feature_path(tmp_path, "videos/Abuse001_x264.mp4") == tmp_path / "Abuse001_x264.pt"
    for bad in ("videos/..", "videos/.hidden.mp4", ""):
        with pytest.raises(ValueError, match="cannot name a feature file"):
            feature_path(tmp_path, bad)
