"""Label CSVs and the annotation-list formats that action-recognition datasets ship, read unchanged.

- Label CSV: a header `id,name`, then one `id,name` row per class, ids 0..K-1 (any row order).
`read_video_list` is the one reader of labelled lists (training and test): it recognises the three formats
below from the file and reads each with its own reader.
- Video list (TC-CLIP / ViFi-CLIP / X-CLIP): `relative/path.ext <int label>`; the path is relative to the
  dataset's video root and may itself contain spaces (the label is the last field). `read_path_label_list`.
- Frame-folder list (the official UCF-101 / HMDB-51 splits): `Class/clip_name <num_frames> <label>`, the
  path naming a folder of frames. `read_frame_list`.
- CSV list (UCF-101-LT `real/train.csv`): `path label`, separated by a comma, a tab or a space (the
  published files use a space). `read_csv_list`.
- UCF-Crime lists, one function each, all giving `CrimeVideo` records whose intervals are 1-indexed,
  inclusive frame ranges (the files' -1 means "no interval"):
  `read_crime_temporal` (`Temporal_Anomaly_Annotation.txt`: `Name_x264.mp4  Class  s1  e1  s2  e2`),
  `read_crime_counts` (`*_with_frame_counts.txt`: `Class/Name.mp4 n_frames [Class s1 e1 s2 e2]`),
  `read_crime_ucf` (`UCF_train.txt` `path 0 last_frame class_id` / `UCF_test.txt`
  `path n_frames class_id s1 e1 s2 e2`, another group's lists whose test intervals differ from the
  temporal annotation on 14 videos) and `read_crime_paths` (`Anomaly_Train.txt`: one path a line).
  Each logs which file and layout it read, and every record keeps its layout, so a run can say which
  annotation it used.

Every record has `to_line()`, which writes it back in its own format (the split builders rely on it),
and `read_list` / `write_list` dispatch on a format name (`LIST_FORMATS`), `auto` guessing it from the
file. Every parse error names the file and line and says what to do, before any training starts.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from datamodules.manifest import write_text_atomic

log = logging.getLogger(__name__)


class AnnotationError(ValueError):
    """A label file or annotation list that cannot be used as given."""


# ------------------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class ListEntry:
    """One line of a video list `relative/path.ext label`."""

    path: str  # relative to the dataset's video root
    label: int
    line: int  # 1-based line number in the list file, for error messages

    def to_line(self) -> str:
        return f"{self.path} {self.label}"


@dataclass(frozen=True)
class CsvEntry(ListEntry):
    """One line of a CSV list `path<sep>label` (UCF-101-LT); `sep` is kept so the line writes back as read."""

    sep: str = ","

    def to_line(self) -> str:
        return f"{self.path}{self.sep}{self.label}"


@dataclass(frozen=True)
class FrameListEntry:
    """One line of a frame-folder list `Class/clip_name num_frames label` (official UCF-101/HMDB-51 splits)."""

    path: str  # frame folder, relative to the dataset's frame root
    num_frames: int
    label: int
    line: int

    def to_line(self) -> str:
        return f"{self.path} {self.num_frames} {self.label}"


# UCF-Crime's 14 classes in the id order of `UCF_train.txt` / `UCF_test.txt` (Normal first, then A-Z).
UCF_CRIME_CLASSES = (
    "Normal",
    "Abuse",
    "Arrest",
    "Arson",
    "Assault",
    "Burglary",
    "Explosion",
    "Fighting",
    "RoadAccidents",
    "Robbery",
    "Shooting",
    "Shoplifting",
    "Stealing",
    "Vandalism",
)
# Folders that hold UCF-Crime's normal videos.
_CRIME_NORMAL_FOLDERS = {"Training_Normal_Videos_Anomaly", "Testing_Normal_Videos_Anomaly", "Normal"}

# How a UCF-Crime line is laid out (what `CrimeVideo.to_line` writes back):
#   temporal     `Name  Class  s1  e1  s2  e2`              (Temporal_Anomaly_Annotation.txt)
#   counts       `path n_frames`                            (Train_Annotation_with_frame_counts.txt)
#   counts_test  `path n_frames Class s1 e1 s2 e2`          (Test_Annotation_with_frame_counts.txt)
#   ucf          `path 0 last_frame class_id`               (UCF_train.txt; last_frame = n_frames - 1)
#   ucf_test     `path n_frames class_id s1 e1 s2 e2`       (UCF_test.txt)
#   paths        `path`                                     (Anomaly_Train.txt)
CrimeLayout = Literal["temporal", "counts", "counts_test", "ucf", "ucf_test", "paths"]


@dataclass(frozen=True)
class CrimeVideo:
    """One UCF-Crime video of a weak-supervision list.

    `intervals` are the anomalous frames as 1-indexed inclusive `(start, end)` ranges, as the files
    write them; () for normal videos and for training lists (video-level labels only).
    """

    path: str  # as written in the list (the temporal annotation has bare file names)
    class_name: str  # one of UCF_CRIME_CLASSES
    num_frames: int | None  # None when the list does not say
    intervals: tuple[tuple[int, int], ...]
    line: int
    layout: CrimeLayout

    @property
    def label(self) -> int:
        """Class id in UCF_CRIME_CLASSES (0 = Normal)."""
        return UCF_CRIME_CLASSES.index(self.class_name)

    @property
    def anomalous(self) -> bool:
        return self.class_name != "Normal"

    def frame_labels(self, num_frames: int | None = None) -> np.ndarray:
        """Per-frame anomaly labels, 0-indexed: bool array of shape (num_frames,).

        Frame f (0-based) is anomalous if some interval has start <= f + 1 <= end. Intervals reaching past
        the end are clipped: five of the 290 temporal annotations end 1-2 frames after the video does.
        """
        n = self.num_frames if num_frames is None else num_frames
        if n is None:
            raise ValueError(f"{self.path}: the list gives no frame count; pass num_frames")
        labels = np.zeros(n, dtype=bool)
        for start, end in self.intervals:
            labels[start - 1 : end] = True
        return labels

    def to_line(self) -> str:
        slots = [x for interval in self.intervals for x in interval] + [-1, -1, -1, -1]
        s = " ".join(str(x) for x in slots[:4])
        if self.layout == "temporal":
            return "  ".join([self.path, self.class_name, *s.split()])
        if self.layout == "counts":
            return f"{self.path} {self.num_frames}"
        if self.layout == "counts_test":
            return f"{self.path} {self.num_frames} {self.class_name} {s}"
        if self.layout == "ucf":
            return f"{self.path} 0 {self.num_frames - 1} {self.label}"
        if self.layout == "ucf_test":
            return f"{self.path} {self.num_frames} {self.label} {s}"
        return self.path


Record = ListEntry | FrameListEntry | CrimeVideo


# ------------------------------------------------------------------------------------------ helpers


def _require_file(path: Path, what: str, hint: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}. {hint}")


def _lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, stripped text) of the non-empty lines."""
    with path.open(encoding="utf-8") as f:
        return [(n, s) for n, line in enumerate(f, start=1) if (s := line.strip())]


def _int(text: str) -> int | None:
    return int(text) if text.lstrip("-").isdigit() else None


def _check_label(path: Path, lineno: int, label: int, num_classes: int | None, label_file) -> None:
    if num_classes is not None and not 0 <= label < num_classes:
        where = f" in {label_file}" if label_file else ""
        raise AnnotationError(
            f"{path}:{lineno}: label {label} is outside the {num_classes} classes{where}; "
            "is the list paired with the right label file?"
        )


def _nonempty(path: Path, entries: list) -> list:
    if not entries:
        raise AnnotationError(f"{path}: the annotation list is empty; nothing to train or test on")
    return entries


# ------------------------------------------------------------------------------------------ labels


def read_labels(path: str | Path) -> list[str]:
    """Read a label CSV `id,name` into a list of class names indexed by id.

    Raises:
        FileNotFoundError: the file does not exist.
        AnnotationError: a malformed row, an empty or repeated name, a duplicate id, or ids that are not
            exactly 0..K-1.
    """
    path = Path(path)
    _require_file(
        path, "label file", "Pass a CSV of `id,name` lines (`--data.label_file` in training, `--labels` in generation)."
    )
    names: dict[int, str] = {}
    line_of_name: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip():
                continue
            if lineno == 1 and row[0].strip().lower() == "id":
                continue  # header
            if len(row) < 2 or not row[0].strip().lstrip("-").isdigit():
                raise AnnotationError(f"{path}:{lineno}: expected `id,name`, got {','.join(row)!r}")
            class_id, name = int(row[0]), ",".join(row[1:]).strip()
            if class_id in names:
                raise AnnotationError(f"{path}:{lineno}: class id {class_id} appears twice")
            if not name:
                raise AnnotationError(f"{path}:{lineno}: empty class name for id {class_id}")
            if name in line_of_name:
                raise AnnotationError(f"{path}:{lineno}: class name {name!r} already on line {line_of_name[name]}")
            names[class_id] = name
            line_of_name[name] = lineno
    if not names:
        raise AnnotationError(f"{path}: no classes found; expected lines `id,name`")
    missing = sorted(set(range(len(names))) - set(names))
    if missing:
        raise AnnotationError(f"{path}: class ids must be 0..{len(names) - 1} without gaps; missing {missing[:10]}")
    return [names[i] for i in range(len(names))]


def write_labels(path: str | Path, names: Sequence[str]) -> None:
    """Write a label CSV `id,name` (header first, ids 0..K-1), readable by `read_labels`, atomically."""
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(["id", "name"])
    writer.writerows([i, name] for i, name in enumerate(names))
    write_text_atomic(path, rows.getvalue())


# ------------------------------------------------------------------------------------------ lists


def read_video_list(
    path: str | Path, num_classes: int | None, label_file: str | Path | None = None
) -> list[ListEntry | FrameListEntry | CsvEntry]:
    """Read any labelled list the project writes or documents: the one reader every training and test list
    goes through. The format is taken from the file (`detect_labelled_format`): a video list
    `relative/path label`, a frame-folder list `Class/clip_name num_frames label` (e.g. the HMDB-51-LT list
    `python -m datamodules splits long-tail` writes from the official splits), or a CSV list `path,label`.
    Every entry has `.path` (relative to the video root: a file, or a folder of frames) and `.label`.

    Args:
        path: the list file.
        num_classes: size of the label space; every label must be in [0, num_classes). None: no check.
        label_file: named in the error when a label is out of range.

    Raises:
        FileNotFoundError: the list does not exist.
        AnnotationError: a malformed line, a label outside the label file, or an empty list.
    """
    fmt = detect_labelled_format(path)
    reader = {"video": read_path_label_list, "frames": read_frame_list, "csv": read_csv_list}[fmt]
    return reader(path, num_classes, label_file)


def detect_labelled_format(path: str | Path) -> str:
    """`csv` (a `.csv` name, or a comma / tab in the first line), `frames` (first line `path int int` whose
    path has no video-file extension), else `video`."""
    path = Path(path)
    _require_file(path, "annotation list", "Check `--data.split_dir` and the list name the task uses.")
    lines = _lines(path)
    if not lines:
        raise AnnotationError(f"{path}: the annotation list is empty; nothing to train or test on")
    first = lines[0][1]
    if path.suffix.lower() == ".csv" or "," in first or "\t" in first:
        return "csv"
    fields = first.split()
    if len(fields) >= 3 and all(_int(x) is not None for x in fields[-2:]) and not _VIDEO_SUFFIX.search(fields[-3]):
        return "frames"
    return "video"


_VIDEO_SUFFIX = re.compile(r"\.(avi|mp4|mkv|webm|mov|mpe?g|m4v|gif)$", re.IGNORECASE)


def read_path_label_list(
    path: str | Path, num_classes: int | None, label_file: str | Path | None = None
) -> list[ListEntry]:
    """Read a video list `relative/path label` (TC-CLIP / ViFi-CLIP / X-CLIP), checking every label.

    Args:
        path: the list file.
        num_classes: size of the label space; every label must be in [0, num_classes). None: no check.
        label_file: named in the error when a label is out of range.

    Raises:
        FileNotFoundError: the list does not exist.
        AnnotationError: a malformed line, a label outside the label file, or an empty list.
    """
    path = Path(path)
    _require_file(path, "annotation list", "Check `--data.split_dir` and the list name the task uses.")
    entries: list[ListEntry] = []
    for lineno, line in _lines(path):
        clip, _, label = line.rpartition(" ")
        if not clip or _int(label) is None:
            raise AnnotationError(f"{path}:{lineno}: expected `relative/path label`, got {line!r}")
        _check_label(path, lineno, int(label), num_classes, label_file)
        entries.append(ListEntry(path=clip.strip(), label=int(label), line=lineno))
    return _nonempty(path, entries)


def read_frame_list(
    path: str | Path, num_classes: int | None = None, label_file: str | Path | None = None
) -> list[FrameListEntry]:
    """Read a frame-folder list `Class/clip_name num_frames label` (the official UCF-101/HMDB-51 splits).

    Args:
        path: the list file.
        num_classes: size of the label space; every label must be in [0, num_classes). None: no check.
        label_file: named in the error when a label is out of range.

    Raises:
        FileNotFoundError: the list does not exist.
        AnnotationError: a malformed line (three fields, two integers, num_frames >= 0), a label outside
            the label file, or an empty list.
    """
    path = Path(path)
    _require_file(path, "frame-folder list", "Check the path of the official split file.")
    entries: list[FrameListEntry] = []
    for lineno, line in _lines(path):
        parts = line.rsplit(None, 2)
        if len(parts) != 3 or _int(parts[1]) is None or _int(parts[2]) is None or int(parts[1]) < 0:
            raise AnnotationError(f"{path}:{lineno}: expected `Class/clip_name num_frames label`, got {line!r}")
        _check_label(path, lineno, int(parts[2]), num_classes, label_file)
        entries.append(FrameListEntry(path=parts[0], num_frames=int(parts[1]), label=int(parts[2]), line=lineno))
    return _nonempty(path, entries)


def read_csv_list(
    path: str | Path, num_classes: int | None = None, label_file: str | Path | None = None
) -> list[CsvEntry]:
    """Read a CSV list `path,label` (UCF-101-LT `real/train.csv`); the separator may be `,`, a tab or a space.

    The separator is taken from the first line (a comma if it has one, else a tab, else a space) and kept
    in each entry, so `to_line` writes the file back as it was. There is no header row.

    Args:
        path: the list file.
        num_classes: size of the label space; every label must be in [0, num_classes). None: no check.
        label_file: named in the error when a label is out of range.

    Raises:
        FileNotFoundError: the list does not exist.
        AnnotationError: a malformed line, a label outside the label file, or an empty list.
    """
    path = Path(path)
    _require_file(path, "CSV list", "Check the path of the list (e.g. ucf101_lt/real/train.csv).")
    lines = _lines(path)
    sep = next((c for c in (",", "\t", " ") if lines and c in lines[0][1]), " ")
    entries: list[CsvEntry] = []
    for lineno, line in lines:
        clip, _, label = line.rpartition(sep)
        if not clip.strip() or _int(label.strip()) is None:
            raise AnnotationError(f"{path}:{lineno}: expected `path{sep}label`, got {line!r}")
        _check_label(path, lineno, int(label), num_classes, label_file)
        entries.append(CsvEntry(path=clip.strip(), label=int(label), line=lineno, sep=sep))
    return _nonempty(path, entries)


# ------------------------------------------------------------------------------------------ UCF-Crime


def _crime_class(path: Path, lineno: int, name: str) -> str:
    if name in _CRIME_NORMAL_FOLDERS:
        return "Normal"
    if name not in UCF_CRIME_CLASSES:
        raise AnnotationError(
            f"{path}:{lineno}: unknown UCF-Crime class {name!r}; expected one of {', '.join(UCF_CRIME_CLASSES)} "
            "(or a *_Normal_Videos_Anomaly folder)"
        )
    return name


def _crime_class_of_path(path: Path, lineno: int, clip: str) -> str:
    parts = [p for p in clip.split("/")[:-1] if p != "frames"]
    if not parts:
        raise AnnotationError(f"{path}:{lineno}: cannot tell the class of {clip!r}; expected `Class/Name.mp4`")
    return _crime_class(path, lineno, parts[-1])


def _crime_intervals(path: Path, lineno: int, fields: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Parse `s1 e1 s2 e2` (1-indexed inclusive frames, -1 -1 = no interval)."""
    values = [_int(f) for f in fields]
    if len(values) != 4 or None in values:
        raise AnnotationError(f"{path}:{lineno}: expected four frame numbers `s1 e1 s2 e2`, got {' '.join(fields)!r}")
    intervals = []
    for start, end in zip(values[::2], values[1::2]):
        if start == -1 and end == -1:
            continue
        if not 1 <= start <= end:
            raise AnnotationError(
                f"{path}:{lineno}: bad interval ({start}, {end}); frames are 1-indexed, start <= end, "
                "and -1 -1 means none"
            )
        intervals.append((start, end))
    return tuple(intervals)


def _crime_log(path: Path, layout: str, videos: list[CrimeVideo]) -> list[CrimeVideo]:
    _nonempty(path, videos)
    log.info("UCF-Crime annotation: %s (%s layout, %d videos)", path, layout, len(videos))
    return videos


def read_crime_temporal(path: str | Path) -> list[CrimeVideo]:
    """Read UCF-Crime's `Temporal_Anomaly_Annotation.txt`: `Name_x264.mp4  Class  s1  e1  s2  e2`.

    Paths are bare file names; frame counts are unknown (None). Normal videos have no intervals.

    Raises:
        FileNotFoundError: the file does not exist.
        AnnotationError: a malformed line, an unknown class, or an interval that is not 1-indexed start <= end.
    """
    path = Path(path)
    _require_file(path, "UCF-Crime temporal annotation", "It is Temporal_Anomaly_Annotation.txt of UCF-Crime.")
    videos = []
    for lineno, line in _lines(path):
        f = line.split()
        if len(f) != 6:
            raise AnnotationError(f"{path}:{lineno}: expected `Name  Class  s1  e1  s2  e2`, got {line!r}")
        intervals = _crime_intervals(path, lineno, f[2:])
        videos.append(CrimeVideo(f[0], _crime_class(path, lineno, f[1]), None, intervals, lineno, "temporal"))
    return _crime_log(path, "temporal", videos)


def read_crime_counts(path: str | Path) -> list[CrimeVideo]:
    """Read a UCF-Crime list with frame counts: `Class/Name.mp4 n_frames` (training) or
    `Class/Name.mp4 n_frames Class s1 e1 s2 e2` (test); `*_Annotation_with_frame_counts.txt`.

    Raises:
        FileNotFoundError: the file does not exist.
        AnnotationError: a malformed line (2 or 7 fields), an unknown class or a bad interval.
    """
    path = Path(path)
    _require_file(path, "UCF-Crime list", "It is *_Annotation_with_frame_counts.txt of UCF-Crime.")
    videos = []
    for lineno, line in _lines(path):
        f = line.split()
        if len(f) not in (2, 7) or _int(f[1]) is None or int(f[1]) <= 0:
            raise AnnotationError(
                f"{path}:{lineno}: expected `path n_frames` or `path n_frames Class s1 e1 s2 e2`, got {line!r}"
            )
        if len(f) == 2:
            video = CrimeVideo(f[0], _crime_class_of_path(path, lineno, f[0]), int(f[1]), (), lineno, "counts")
        else:
            intervals = _crime_intervals(path, lineno, f[3:])
            video = CrimeVideo(f[0], _crime_class(path, lineno, f[2]), int(f[1]), intervals, lineno, "counts_test")
        videos.append(video)
    return _crime_log(path, videos[0].layout, videos)


def read_crime_ucf(path: str | Path) -> list[CrimeVideo]:
    """Read the `UCF_train.txt` / `UCF_test.txt` variant of UCF-Crime's lists.

    Training: `path 0 last_frame class_id` (num_frames = last_frame + 1). Test:
    `path n_frames class_id s1 e1 s2 e2`. Class ids index UCF_CRIME_CLASSES (0 = Normal). Mind that these
    test intervals differ from `Temporal_Anomaly_Annotation.txt` on 14 videos; name the file you use.

    Raises:
        FileNotFoundError: the file does not exist.
        AnnotationError: a malformed line (4 or 7 fields), a class id outside 0..13 or a bad interval.
    """
    path = Path(path)
    _require_file(path, "UCF-Crime list", "It is UCF_train.txt or UCF_test.txt.")
    videos = []
    for lineno, line in _lines(path):
        f = line.split()
        ints = [_int(x) for x in f[1:]]
        if len(f) not in (4, 7) or None in ints:
            raise AnnotationError(
                f"{path}:{lineno}: expected `path 0 last_frame class_id` or "
                f"`path n_frames class_id s1 e1 s2 e2`, got {line!r}"
            )
        class_id = ints[2] if len(f) == 4 else ints[1]
        if not 0 <= class_id < len(UCF_CRIME_CLASSES):
            raise AnnotationError(
                f"{path}:{lineno}: class id {class_id} is outside 0..{len(UCF_CRIME_CLASSES) - 1} (UCF_CRIME_CLASSES)"
            )
        name = UCF_CRIME_CLASSES[class_id]
        if len(f) == 4:
            if ints[0] != 0 or ints[1] < 0:
                raise AnnotationError(f"{path}:{lineno}: expected `path 0 last_frame class_id`, got {line!r}")
            videos.append(CrimeVideo(f[0], name, ints[1] + 1, (), lineno, "ucf"))
        else:
            intervals = _crime_intervals(path, lineno, f[3:])
            videos.append(CrimeVideo(f[0], name, ints[0], intervals, lineno, "ucf_test"))
    return _crime_log(path, videos[0].layout, videos)


def read_crime_paths(path: str | Path) -> list[CrimeVideo]:
    """Read UCF-Crime's `Anomaly_Train.txt`: one `Class/Name.mp4` a line; the class is the folder.

    Raises:
        FileNotFoundError: the file does not exist.
        AnnotationError: a line whose folder is not a UCF-Crime class.
    """
    path = Path(path)
    _require_file(path, "UCF-Crime list", "It is Anomaly_Train.txt of UCF-Crime.")
    videos = [
        CrimeVideo(line, _crime_class_of_path(path, lineno, line), None, (), lineno, "paths")
        for lineno, line in _lines(path)
    ]
    return _crime_log(path, "paths", videos)


# ------------------------------------------------------------------------------------------ dispatch

# format name -> reader; the readers of labelled lists take (path, num_classes, label_file).
LIST_FORMATS: dict[str, Callable[..., list]] = {
    "video": read_path_label_list,
    "frames": read_frame_list,
    "csv": read_csv_list,
    "crime-temporal": read_crime_temporal,
    "crime-counts": read_crime_counts,
    "crime-ucf": read_crime_ucf,
    "crime-paths": read_crime_paths,
}
# Formats whose labels are integer ids of a label CSV (the others carry UCF-Crime class names).
LABELLED_FORMATS = ("video", "frames", "csv")


def detect_list_format(path: str | Path) -> str:
    """Guess a list's format from its name and first line; pass the format explicitly where this guesses wrong.

    `.csv` -> csv; a name containing `frame_counts` -> crime-counts; then by the first line's fields:
    1 -> crime-paths, 6 -> crime-temporal, 7 -> crime-ucf (third field numeric) or crime-counts,
    4 numeric after the path -> crime-ucf, `path int int` -> frames, `path int` -> video.
    """
    path = Path(path)
    _require_file(path, "annotation list", "Check the list's path.")
    if path.suffix.lower() == ".csv":
        return "csv"
    if "frame_counts" in path.name:
        return "crime-counts"
    lines = _lines(path)
    if not lines:
        raise AnnotationError(f"{path}: the annotation list is empty; nothing to train or test on")
    f = lines[0][1].split()
    numeric = [_int(x) is not None for x in f]
    if len(f) == 1:
        return "crime-paths"
    if len(f) == 6 and not numeric[1]:
        return "crime-temporal"
    if len(f) == 7:
        return "crime-ucf" if numeric[2] else "crime-counts"
    if len(f) == 4 and all(numeric[1:]):
        return "crime-ucf"
    if len(f) >= 3 and all(numeric[-2:]):
        return "frames"
    return "video"


def read_list(
    path: str | Path, fmt: str = "auto", num_classes: int | None = None, label_file: str | Path | None = None
) -> tuple[str, list[Record]]:
    """Read a list in any of LIST_FORMATS (`auto`: `detect_list_format`); returns (format, records).

    `num_classes` / `label_file` check the labels of the labelled formats (video, frames, csv).
    """
    if fmt == "auto":
        fmt = detect_list_format(path)
    if fmt not in LIST_FORMATS:
        raise ValueError(f"unknown list format {fmt!r}; expected one of auto, {', '.join(LIST_FORMATS)}")
    if fmt in LABELLED_FORMATS:
        return fmt, LIST_FORMATS[fmt](path, num_classes, label_file)
    return fmt, LIST_FORMATS[fmt](path)


def write_list(path: str | Path, records: Sequence[Record]) -> None:
    """Write records back in their own format, one `to_line()` a line (through a temp file and rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(r.to_line() + "\n" for r in records), encoding="utf-8")
    os.replace(tmp, path)
