"""AUC and AUC_A of video anomaly scores on UCF-Crime under two named protocols (the anomaly modules' test
metric; `datamodules.anomaly_eval` reads the annotations).

A detector gives each test video a sequence of scores (one per segment or instance, any number per video);
the protocol says how the scores become frame scores:

- `umil`: UMIL's code path (ktr-hubrt/UMIL `utils/tools.py: evaluate_result`), which the paper's Table 5
  follows. Score i of n covers frames [int(i * r + 0.5), int((i + 1) * r + 0.5)) with r = n_frames / n; then
  the frame curve is smoothed: cut into 32 windows of n_frames // 32 frames (the rest, if any, is one more
  window) and every frame takes its window's mean (UMIL's `postpress(seg_size=32)`).
- `sultani`: Sultani et al.'s evaluation: score j of S covers frames [b_j, b_{j+1}) with
  b = round(linspace(0, n_frames, S + 1)) (the segment bounds of `datamodules.features`); no smoothing.

AUC is the ROC AUC over the frames of all test videos; AUC_A over the frames of the abnormal videos only
(videos with at least one anomalous frame, as UMIL counts them). Every step is checked against
hand-computed values (tests/lightning_modules/test_anomaly_metrics.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal
from typing import Protocol as TypingProtocol

import numpy as np
from sklearn.metrics import roc_auc_score

Protocol = Literal["umil", "sultani"]
PROTOCOLS: tuple[str, ...] = ("umil", "sultani")
SMOOTHING_WINDOWS = 32  # UMIL's postpress(seg_size=32)


class LabelledVideo(TypingProtocol):
    """A test video of a protocol (`datamodules.anomaly_eval.EvalVideo`): its SCORES.json key and frame labels."""

    name: str
    labels: np.ndarray  # (n_frames,) bool

    @property
    def num_frames(self) -> int: ...

    @property
    def abnormal(self) -> bool: ...


def check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown anomaly evaluation protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def segment_bounds(num_frames: int, num_segments: int) -> np.ndarray:
    """(S + 1,) frame bounds of S equal segments: round(linspace(0, num_frames, S + 1))."""
    return np.round(np.linspace(0, num_frames, num_segments + 1)).astype(np.int64)


# ------------------------------------------------------------------------------------- scores -> frames


def spread_umil(scores: np.ndarray, num_frames: int) -> np.ndarray:
    """UMIL: score i of n on frames [int(i * r + 0.5), int((i + 1) * r + 0.5)), r = num_frames / n."""
    ratio = num_frames / len(scores)
    frames = np.zeros(num_frames, dtype=np.float64)
    for i, score in enumerate(scores):
        frames[int(i * ratio + 0.5) : int((i + 1) * ratio + 0.5)] = score
    return frames


def smooth_windows(curve: np.ndarray, windows: int = SMOOTHING_WINDOWS) -> np.ndarray:
    """UMIL's `postpress`: windows of len // windows frames take their mean; the remainder is one more window.

    (A curve shorter than `windows` frames has zero-length windows, so it becomes its mean everywhere.)
    """
    size = len(curve) // windows
    out = np.empty_like(curve, dtype=np.float64)
    for i in range(windows):
        if size:
            out[size * i : size * (i + 1)] = curve[size * i : size * (i + 1)].mean()
    if len(curve) > size * windows:
        out[size * windows :] = curve[size * windows :].mean()
    return out


def spread_sultani(scores: np.ndarray, num_frames: int) -> np.ndarray:
    """Sultani et al.: segment j of S on frames [b_j, b_{j+1}), b = round(linspace(0, num_frames, S + 1))."""
    bounds = segment_bounds(num_frames, len(scores))
    return np.repeat(scores.astype(np.float64), np.diff(bounds))


def frame_scores(protocol: Protocol, scores: Sequence[float], num_frames: int) -> np.ndarray:
    """(n,) segment/instance scores -> (num_frames,) frame scores under `protocol`."""
    check_protocol(protocol)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) == 0:
        raise ValueError("a video has no scores")
    if protocol == "umil":
        return smooth_windows(spread_umil(scores, num_frames))
    return spread_sultani(scores, num_frames)


# ------------------------------------------------------------------------------------- AUC


def evaluate(
    protocol: Protocol, videos: Sequence[LabelledVideo], scores: Mapping[str, Sequence[float]]
) -> dict[str, float]:
    """{"auc": frame AUC over all videos, "auc_a": frame AUC over the abnormal videos only}.

    Every annotated video needs scores (a missing one raises, naming the first few); scores of videos the
    annotation does not list are ignored (`unscored` callers report them).
    """
    missing = [v.name for v in videos if v.name not in scores]
    if missing:
        raise KeyError(
            f"{len(missing)} of {len(videos)} annotated videos have no scores (e.g. {', '.join(missing[:3])}); "
            "SCORES.json keys are video file names without folders"
        )
    labels, values, abnormal_labels, abnormal_values = [], [], [], []
    for video in videos:
        curve = frame_scores(protocol, scores[video.name], video.num_frames)
        labels.append(video.labels)
        values.append(curve)
        if video.abnormal:
            abnormal_labels.append(video.labels)
            abnormal_values.append(curve)
    all_labels = np.concatenate(labels)
    if all_labels.all() or not all_labels.any():
        raise ValueError("AUC needs anomalous and normal frames; the annotation has only one kind")
    auc = float(roc_auc_score(all_labels, np.concatenate(values)))
    auc_a = float("nan")
    if abnormal_labels:
        a_labels = np.concatenate(abnormal_labels)
        if not a_labels.all():
            auc_a = float(roc_auc_score(a_labels, np.concatenate(abnormal_values)))
    return {"auc": auc, "auc_a": auc_a}


def write_scores(path: str | Path, scores: Mapping[str, Sequence[float]]) -> None:
    """Write SCORES.json (sorted keys, one video a line)."""
    lines = [f"{json.dumps(name)}: {json.dumps([float(s) for s in scores[name]])}" for name in sorted(scores)]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("{\n" + ",\n".join(lines) + "\n}\n")


def evaluate_protocols(
    scores: Mapping[str, Sequence[float]],
    videos: Mapping[str, Sequence[LabelledVideo]],
    default: str,
    log_dir: str | Path | None = None,
) -> dict[str, float]:
    """A test's metrics: SCORES.json written to `log_dir` (when given), then every protocol of `videos`
    (protocol -> its annotated test videos) evaluated on the same scores: `test/<protocol>/auc`,
    `test/<protocol>/auc_a`, and the `default` protocol's also as `test/auc`, `test/auc_a`."""
    if default not in videos:
        raise ValueError(f"the default protocol {default!r} has no annotation (protocols: {', '.join(videos)})")
    if log_dir is not None:
        write_scores(Path(log_dir) / "SCORES.json", scores)
    metrics = {}
    for protocol, annotated in videos.items():
        for key, value in evaluate(protocol, annotated, scores).items():
            metrics[f"test/{protocol}/{key}"] = value
            if protocol == default:
                metrics[f"test/{key}"] = value
    return metrics
