"""The test annotations of UCF-Crime under two named evaluation protocols, read into per-frame labels.

A detector gives each test video a sequence of scores (one per segment or instance, any number per video);
the protocol says which annotation the frames are labelled from and how the scores become frame scores:

- `umil`: the code path of UMIL (Lv et al., CVPR 2023; ktr-hubrt/UMIL `utils/tools.py: evaluate_result`),
  which the paper's Table 5 follows. Annotation `UCF_test.txt`, lines `path n_frames class s1 e1 s2 e2`:
  intervals are 0-based and end-exclusive (frames [s, e)), -1 marks an absent interval, and, as UMIL's
  `if start > 0`, an interval starting at frame 0 is not counted (no line of UCF_test.txt has one). Score i
  of n covers frames [int(i * r + 0.5), int((i + 1) * r + 0.5)) with r = n_frames / n; then the frame
  curve is smoothed: cut into 32 windows of n_frames // 32 frames (the rest, if any, is one more window)
  and every frame takes its window's mean (UMIL's `postpress(seg_size=32)`).
- `sultani`: Sultani et al.'s evaluation (synthact's earlier default). Annotation
  `Temporal_Anomaly_Annotation.txt` (1-indexed inclusive intervals) or
  `Test_Annotation_with_frame_counts.txt`; score j of S covers frames [b_j, b_{j+1}) with
  b = round(linspace(0, n_frames, S + 1)) (`datamodules.features.segment_bounds`); no smoothing.

This module is data: which frames of which test video are anomalous, and the `SCORES.json` a test writes
(`{"<video file name>": [scores...]}`, read back by `python -m tasks evaluate-anomaly`). Turning scores into
frame scores and AUC / AUC_A is the modules' metric (`lightning_modules.anomaly_metrics`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from datamodules.annotations import AnnotationError, read_list

Protocol = Literal["umil", "sultani"]
PROTOCOLS: tuple[str, ...] = ("umil", "sultani")


@dataclass(frozen=True)
class EvalVideo:
    """One test video of a protocol: its file name (the SCORES.json key) and per-frame labels."""

    name: str  # file name without folders, e.g. Arrest001_x264.mp4
    labels: np.ndarray  # (n_frames,) bool, True on anomalous frames

    @property
    def num_frames(self) -> int:
        return len(self.labels)

    @property
    def abnormal(self) -> bool:
        return bool(self.labels.any())


def video_name(path: str) -> str:
    """The key a video has in SCORES.json: its file name without folders (`frames/Abuse/Abuse028_x264.mp4`
    -> `Abuse028_x264.mp4`), as UMIL keys its scores."""
    return path.replace("\\", "/").split("/")[-1]


# ------------------------------------------------------------------------------------- annotations


def read_umil_annotation(path: str | Path) -> list[EvalVideo]:
    """Read UMIL's test list (`UCF_test.txt`): `path n_frames class s1 e1 s2 e2`, 0-based end-exclusive.

    Any number of `s e` pairs is read (UMIL's loop); a pair is an interval when s > 0 (UMIL's test, which
    also skips the -1 -1 of an absent one). Raises AnnotationError naming the line on a malformed one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"UMIL annotation {path} not found; it is UCF_test.txt (ktr-hubrt/UMIL labels/)")
    videos = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            numbers = [int(x) for x in fields[1:]]
        except ValueError:
            numbers = []
        if len(fields) < 3 or len(numbers) != len(fields) - 1 or len(numbers[2:]) % 2 or numbers[0] < 1:
            raise AnnotationError(
                f"{path}:{lineno}: expected UMIL's `path n_frames class s1 e1 s2 e2` (integers, n_frames >= 1, "
                f"-1 for an absent interval), got {line!r}; for Temporal_Anomaly_Annotation.txt use --protocol sultani"
            )
        labels = np.zeros(numbers[0], dtype=bool)
        pairs = numbers[2:]
        for start, end in zip(pairs[::2], pairs[1::2]):
            if start > 0:  # UMIL: `if start > 0: gt[start:end] = 1`
                if end < start:
                    raise AnnotationError(f"{path}:{lineno}: interval ({start}, {end}) ends before it starts")
                labels[start:end] = True
        videos.append(EvalVideo(video_name(fields[0]), labels))
    if not videos:
        raise AnnotationError(f"{path}: the annotation is empty; nothing to evaluate")
    return videos


def read_sultani_annotation(path: str | Path, frame_counts: Mapping[str, int] | None = None) -> list[EvalVideo]:
    """Read a UCF-Crime list with temporal intervals as Sultani et al.: 1-indexed inclusive frames.

    `Temporal_Anomaly_Annotation.txt` gives no frame counts: take them from `frame_counts` (file name ->
    frames; e.g. the decoded videos, or `frame_counts_from` of a list that has them).
    `Test_Annotation_with_frame_counts.txt` carries its own.
    """
    fmt, records = read_list(path)
    if fmt not in ("crime-temporal", "crime-counts") or records[0].layout not in ("temporal", "counts_test"):
        raise AnnotationError(
            f"{path}: a {fmt!r} list is not a Sultani-style test annotation; give Temporal_Anomaly_Annotation.txt "
            "or Test_Annotation_with_frame_counts.txt (for UCF_test.txt use --protocol umil)"
        )
    videos = []
    for record in records:
        name = video_name(record.path)
        count = (frame_counts or {}).get(name, record.num_frames)
        if count is None:
            raise AnnotationError(
                f"{path}:{record.line}: no frame count for {name}; this list has none, so pass the counts "
                "(`--frame-counts Test_Annotation_with_frame_counts.txt` or UCF_test.txt)"
            )
        videos.append(EvalVideo(name, record.frame_labels(count)))
    return videos


def frame_counts_from(path: str | Path) -> dict[str, int]:
    """File name -> frame count from a UCF-Crime list that has counts (UCF_test.txt, *_with_frame_counts.txt)."""
    _, records = read_list(path)
    counts = {video_name(r.path): r.num_frames for r in records if getattr(r, "num_frames", None) is not None}
    if not counts:
        raise AnnotationError(f"{path}: this list has no frame counts")
    return counts


def read_annotation(
    protocol: Protocol, path: str | Path, frame_counts: Mapping[str, int] | None = None
) -> list[EvalVideo]:
    """The protocol's reading of an annotation file."""
    check_protocol(protocol)
    if protocol == "umil":
        return read_umil_annotation(path)
    return read_sultani_annotation(path, frame_counts)


def check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown anomaly evaluation protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def read_scores(path: str | Path) -> dict[str, list[float]]:
    """SCORES.json: `{"<video file name>": [scores...]}`; names may carry folders (reduced to the file name)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"scores file {path} not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f'{path}: not valid JSON ({err}); expected {{"<video file name>": [scores...]}}') from err
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a JSON object {{"<video file name>": [scores...]}}')
    out = {}
    for name, values in data.items():
        flat = np.asarray(values, dtype=np.float64).reshape(-1) if isinstance(values, list) else None
        if flat is None or flat.size == 0:
            raise ValueError(f"{path}: {name!r} must map to a non-empty list of numbers")
        out[video_name(name)] = flat.tolist()
    return out
