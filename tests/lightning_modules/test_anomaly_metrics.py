"""The anomaly modules' test metric under its two protocols (`umil`, `sultani`) against hand-computed values,
on annotations read by `datamodules.anomaly_eval`."""

import numpy as np
import pytest

from datamodules.annotations import AnnotationError
from datamodules.anomaly_eval import frame_counts_from, read_annotation, read_scores, read_umil_annotation
from datamodules.features import segment_bounds
from lightning_modules.anomaly_metrics import (
    evaluate,
    frame_scores,
    smooth_windows,
    spread_sultani,
    spread_umil,
    write_scores,
)
from lightning_modules.anomaly_metrics import segment_bounds as metric_bounds

ABN, NOR = "Arrest001_x264.mp4", "Normal_Videos_001_x264.mp4"
# UMIL layout: 0-based end-exclusive: frames 4-7 and 20-23 of 40 (two intervals); a normal video.
UMIL_LINES = f"frames/Arrest/{ABN} 40 2 4 8 20 24\nframes/Normal/{NOR} 40 0 -1 -1 -1 -1\n"
# The same frames in the temporal annotation's 1-indexed inclusive layout.
SULTANI_LINES = f"{ABN}  Arrest  5  8  21  24\n{NOR}  Normal  -1  -1  -1  -1\n"
SCORES = {ABN: [0.9, 0.1, 0.8, 0.2], NOR: [0.5, 0.3]}
# Positives: 4 frames at 0.9, 4 at 0.8. Negatives of the abnormal video: 6 at 0.9, 10 at 0.1, 6 at 0.8,
# 10 at 0.2; of the normal video: 20 at 0.5, 20 at 0.3. Ties count one half:
# AUC_A = (4 * (26 + 6/2) + 4 * (20 + 6/2)) / (8 * 32) = 208 / 256
# AUC   = (4 * (66 + 6/2) + 4 * (60 + 6/2)) / (8 * 72) = 528 / 576
EXPECTED = {"auc": 528 / 576, "auc_a": 208 / 256}


def test_umil_layout_is_zero_based_end_exclusive_with_minus_one_absent(tmp_path):
    path = tmp_path / "UCF_test.txt"
    path.write_text(UMIL_LINES)
    abnormal, normal = read_umil_annotation(path)
    assert (abnormal.name, normal.name) == (ABN, NOR)
    assert np.flatnonzero(abnormal.labels).tolist() == [4, 5, 6, 7, 20, 21, 22, 23]
    assert normal.num_frames == 40 and not normal.abnormal


def test_umil_ignores_an_interval_starting_at_frame_zero_as_its_code_does(tmp_path):
    path = tmp_path / "UCF_test.txt"
    path.write_text("a/x.mp4 10 1 0 3 6 8\n")
    (video,) = read_umil_annotation(path)
    assert np.flatnonzero(video.labels).tolist() == [6, 7]  # UMIL: `if start > 0`


def test_sultani_layout_is_one_indexed_inclusive_and_needs_counts(tmp_path):
    path = tmp_path / "Temporal_Anomaly_Annotation.txt"
    path.write_text(SULTANI_LINES)
    with pytest.raises(AnnotationError, match=r"no frame count for Arrest001_x264.mp4.*--frame-counts"):
        read_annotation("sultani", path)
    abnormal, normal = read_annotation("sultani", path, {ABN: 40, NOR: 40})
    assert np.flatnonzero(abnormal.labels).tolist() == [4, 5, 6, 7, 20, 21, 22, 23]
    umil = tmp_path / "UCF_test.txt"
    umil.write_text(UMIL_LINES)
    assert frame_counts_from(umil) == {ABN: 40, NOR: 40}


def test_spreading_differs_between_protocols():
    # 4 scores over 10 frames. UMIL: r = 2.5, bounds int(i * r + 0.5) = 0, 3, 5, 8, 10.
    assert spread_umil(np.array([1.0, 2.0, 3.0, 4.0]), 10).tolist() == [1, 1, 1, 2, 2, 3, 3, 3, 4, 4]
    # Sultani: round(linspace(0, 10, 5)) = round(0, 2.5, 5, 7.5, 10) = 0, 2, 5, 8, 10 (half to even).
    assert spread_sultani(np.array([1.0, 2.0, 3.0, 4.0]), 10).tolist() == [1, 1, 2, 2, 2, 3, 3, 3, 4, 4]


def test_umil_smoothing_over_32_windows():
    # 35 frames: 32 windows of 1 frame, then frames 32-34 are one more window: their mean.
    assert smooth_windows(np.arange(35.0)).tolist() == list(range(32)) + [33.0, 33.0, 33.0]
    # 70 frames: windows of 2 frames; a step at frame 35 falls inside window [34, 36): both become 0.5.
    step = np.array([0.0] * 35 + [1.0] * 35)
    smoothed = smooth_windows(step)
    assert smoothed[:34].tolist() == [0.0] * 34 and smoothed[34:36].tolist() == [0.5, 0.5]
    assert smoothed[36:].tolist() == [1.0] * 34
    # 2 scores on 70 frames: UMIL spreads (35 frames each), then smooths: the step is averaged.
    assert frame_scores("umil", [0.0, 1.0], 70).tolist() == smoothed.tolist()
    assert frame_scores("sultani", [0.0, 1.0], 70).tolist() == step.tolist()
    # Fewer frames than windows: windows are empty, the whole curve is one window.
    assert smooth_windows(np.array([1.0, 3.0])).tolist() == [2.0, 2.0]


@pytest.mark.parametrize("protocol", ["umil", "sultani"])
def test_auc_and_auc_a_hand_computed(tmp_path, protocol):
    path = tmp_path / "annotation.txt"
    path.write_text(UMIL_LINES if protocol == "umil" else SULTANI_LINES)
    videos = read_annotation(protocol, path, {ABN: 40, NOR: 40} if protocol == "sultani" else None)
    assert evaluate(protocol, videos, SCORES) == pytest.approx(EXPECTED)


def test_missing_scores_raise(tmp_path):
    path = tmp_path / "UCF_test.txt"
    path.write_text(UMIL_LINES)
    with pytest.raises(KeyError, match=r"1 of 2 annotated videos have no scores \(e.g. Normal_Videos_001_x264.mp4\)"):
        evaluate("umil", read_umil_annotation(path), {ABN: [0.5]})


def test_scores_file_round_trip_and_errors(tmp_path):
    path = tmp_path / "SCORES.json"
    write_scores(path, {f"Arrest/{ABN}": [0.25, 0.5], NOR: [1.0]})
    assert read_scores(path) == {ABN: [0.25, 0.5], NOR: [1.0]}
    path.write_text('{"a.mp4": []}')
    with pytest.raises(ValueError, match=r"'a.mp4' must map to a non-empty list of numbers"):
        read_scores(path)


def test_bad_umil_line_names_file_and_line(tmp_path):
    path = tmp_path / "UCF_test.txt"
    path.write_text(UMIL_LINES + "Abuse028_x264.mp4  Abuse  165  240  -1  -1\n")
    with pytest.raises(AnnotationError, match=r"UCF_test.txt:3: expected UMIL's .*--protocol sultani"):
        read_umil_annotation(path)


def test_real_umil_list_reads(shared_data):
    videos = read_umil_annotation(shared_data / "splits" / "ucf_crime" / "UCF_test.txt")
    assert len(videos) == 290 and sum(v.abnormal for v in videos) == 140


def test_real_lists_oracle_scores_under_both_protocols(shared_data):
    """Scores = the UMIL labels' anomalous fraction of every 30-frame segment: both protocols read all 290
    videos (the temporal annotation's names match UCF_test.txt's, whose frame counts it borrows) and rank
    them almost perfectly; they differ (other intervals on 14 videos, smoothing)."""
    splits = shared_data / "splits" / "ucf_crime"
    umil_videos = read_umil_annotation(splits / "UCF_test.txt")
    scores = {v.name: [float(v.labels[s : s + 30].mean()) for s in range(0, v.num_frames, 30)] for v in umil_videos}
    counts = frame_counts_from(splits / "UCF_test.txt")
    umil = evaluate("umil", umil_videos, scores)
    sultani = evaluate(
        "sultani", read_annotation("sultani", splits / "Temporal_Anomaly_Annotation.txt", counts), scores
    )
    assert min(umil.values()) > 0.95 and min(sultani.values()) > 0.9
    assert umil != pytest.approx(sultani)


@pytest.mark.parametrize(("frames", "segments"), [(40, 4), (41, 32), (7, 32), (1000, 32), (33, 2)])
def test_the_metric_spreads_scores_over_the_segments_the_features_pooled(frames, segments):
    """The sultani protocol's segment bounds are the feature cache's (datamodules.features.segment_bounds)."""
    assert metric_bounds(frames, segments).tolist() == segment_bounds(frames, segments).tolist()
