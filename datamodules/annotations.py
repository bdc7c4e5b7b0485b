"""Label CSVs and annotation lists in the format the TC-CLIP / ViFi-CLIP / X-CLIP family ships.

- Label CSV: a header `id,name`, then one `id,name` row per class, ids 0..K-1 (any row order).
- Annotation list: one clip a line, `relative/path.ext <int label>`; the path is relative to the
  dataset's video root and may itself contain spaces (the label is the last field).

Every parse error names the file and line and says what to do, before any training starts.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


class AnnotationError(ValueError):
    """A label file or annotation list that cannot be used as given."""


@dataclass(frozen=True)
class ListEntry:
    """One line of an annotation list."""

    path: str  # relative to the dataset's video root
    label: int
    line: int  # 1-based line number in the list file, for error messages


def _require_file(path: Path, what: str, hint: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}. {hint}")


def read_labels(path: str | Path) -> list[str]:
    """Read a label CSV `id,name` into a list of class names indexed by id.

    Raises:
        FileNotFoundError: the file does not exist.
        AnnotationError: a malformed row, a duplicate id, or ids that are not exactly 0..K-1.
    """
    path = Path(path)
    _require_file(path, "label file", "Set `--data.label_file` to a CSV with lines `id,name`.")
    names: dict[int, str] = {}
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
            names[class_id] = name
    if not names:
        raise AnnotationError(f"{path}: no classes found; expected lines `id,name`")
    missing = sorted(set(range(len(names))) - set(names))
    if missing:
        raise AnnotationError(
            f"{path}: class ids must be 0..{len(names) - 1} without gaps; missing {missing[:10]}"
        )
    return [names[i] for i in range(len(names))]


def read_video_list(path: str | Path, num_classes: int, label_file: str | Path | None = None) -> list[ListEntry]:
    """Read an annotation list `relative/path label`, checking every label against the label space.

    Args:
        path: the list file.
        num_classes: size of the label space; every label must be in [0, num_classes).
        label_file: named in the error when a label is out of range.

    Raises:
        FileNotFoundError: the list does not exist.
        AnnotationError: a malformed line, a label outside the label file, or an empty list.
    """
    path = Path(path)
    _require_file(path, "annotation list", "Check `--data.split_dir` and the list name the task uses.")
    entries: list[ListEntry] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            clip, _, label = line.rpartition(" ")
            if not clip or not label.lstrip("-").isdigit():
                raise AnnotationError(f"{path}:{lineno}: expected `relative/path label`, got {line!r}")
            if not 0 <= int(label) < num_classes:
                where = f" in {label_file}" if label_file else ""
                raise AnnotationError(
                    f"{path}:{lineno}: label {label} is outside the {num_classes} classes{where}; "
                    "is the list paired with the right label file?"
                )
            entries.append(ListEntry(path=clip.strip(), label=int(label), line=lineno))
    if not entries:
        raise AnnotationError(f"{path}: the annotation list is empty; nothing to train or test on")
    return entries
