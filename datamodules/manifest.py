"""The synthetic-video manifest: one JSON line per generated clip, shared by `generation` and training.

`generation` writes it (prompt -> clip -> uncertainty score); the datamodules read it as a labelled video
set. A row is appended only once its clip file is complete, so every row in a manifest points at a
finished video. Paths are stored relative to the manifest's folder, so a generated set can be moved.

Schema changes bump `MANIFEST_VERSION`; readers refuse rows from a newer version with a clear message.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MANIFEST_VERSION = 1

Strategy = Literal["basic", "env", "cha", "ie"]
# An id that becomes a file or folder name: letters, digits, '.', '_', '-', starting with a letter or digit
# (so never '', '.', '..', a hidden file, a path separator or a drive).
PATH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def check_path_id(value: str, what: str = "id") -> str:
    """Return `value` if it is safe as one file/folder name (`PATH_ID`), else raise ValueError saying why."""
    if not isinstance(value, str) or not PATH_ID.fullmatch(value) or value.endswith("."):
        raise ValueError(
            f"{what} {value!r} cannot be used as a file name: use 1-200 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no '/', '\\', '..' or spaces)"
        )
    return value


def check_relative_path(value: str, what: str = "path") -> str:
    """Return `value` if it is a relative POSIX path that stays inside its folder (no '..', not absolute)."""
    parts = PurePosixPath(value).parts
    if not value or "\\" in value or PurePosixPath(value).is_absolute() or ".." in parts or ":" in parts[0]:
        raise ValueError(f"{what} {value!r} must be a relative path inside its folder (no '..', not absolute)")
    return value


def safe_join(root: str | Path, relative: str | Path, what: str = "path") -> Path:
    """`root / relative`, refusing a result that resolves outside `root` (symlinks included)."""
    root = Path(root)
    path = root / relative
    if not path.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"{what} {str(relative)!r} escapes its folder {root}; refusing to write there")
    return path


class ManifestRow(BaseModel):
    """One generated clip and everything known about it."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = MANIFEST_VERSION
    row_id: str = Field(description="unique id of the clip within its manifest, e.g. 'c003-ie-0042'")
    class_id: int = Field(ge=0, description="label id in the dataset's label CSV")
    class_name: str
    strategy: Strategy = Field(description="prompt strategy: basic | env | cha | ie (paper Table 6)")
    prompt: str
    prompt_backend: str | None = Field(
        default=None,
        description="who wrote the prompt: 'template' (offline fallback) or 'openai:<model>'; None "
        "for rows rendered before prompts recorded it",
    )
    seed: int
    env_id: int | None = None
    env_text: str | None = None
    char_id: int | None = None
    char_text: str | None = None
    video: str = Field(description="clip path relative to the manifest's folder")
    num_frames: int = Field(gt=0)
    fps: float = Field(gt=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    backend: str = Field(description="renderer family that made the clip: procedural | cogvideox | wan | ltx | hunyuan")
    generator: str | None = Field(
        default=None,
        description="named generator, e.g. 'cogvideox-2b', 'wan2.1-1.3b' (None: rendered before it was recorded)",
    )
    generation: dict | None = Field(
        default=None,
        description="the generator's settings that made the clip (checkpoint, steps, guidance, cache, ...)",
    )
    # Filled in by `python -m generation score` (CLIP uncertainty); None until scored.
    entropy: float | None = None
    uncertainty: float | None = Field(default=None, ge=0.0, le=1.0)
    clip_pred: int | None = None
    clip_prob: float | None = None

    @field_validator("row_id")
    @classmethod
    def _row_id_is_a_file_name(cls, value: str) -> str:
        return check_path_id(value, "row_id")

    @field_validator("video")
    @classmethod
    def _video_stays_inside(cls, value: str) -> str:
        return check_relative_path(value, "video")


class ManifestError(ValueError):
    """A manifest file that cannot be read as a list of `ManifestRow`s."""


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """Read every row of a manifest, validating each.

    Raises:
        FileNotFoundError: the manifest does not exist.
        ManifestError: a row is not JSON, fails the schema, comes from a newer schema version, or
            repeats a `row_id`; the message names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"manifest not found: {path}. Generate one with `python -m generation render ...` "
            "or point the config at an existing manifest.jsonl."
        )
    rows: list[ManifestRow] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{path}:{lineno}: not valid JSON ({e.msg}); fix or delete this line") from e
            version = data.get("schema_version", MANIFEST_VERSION) if isinstance(data, dict) else None
            if isinstance(version, int) and version > MANIFEST_VERSION:
                raise ManifestError(
                    f"{path}:{lineno}: schema_version {version} is newer than this synthact "
                    f"(reads <= {MANIFEST_VERSION}); upgrade synthact"
                )
            try:
                row = ManifestRow.model_validate(data)
            except ValidationError as e:
                problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
                raise ManifestError(f"{path}:{lineno}: invalid manifest row ({problems})") from e
            if row.row_id in seen:
                raise ManifestError(
                    f"{path}:{lineno}: row_id {row.row_id!r} already appears on line {seen[row.row_id]}"
                )
            seen[row.row_id] = lineno
            rows.append(row)
    return rows


def append_manifest_rows(path: str | Path, rows: list[ManifestRow]) -> None:
    """Append rows durably: each row is one complete line, flushed and fsynced before returning.

    Call it only after the rows' clip files are complete and renamed into place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(row.model_dump_json() + "\n")
        f.flush()
        os.fsync(f.fileno())


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a text file atomically: a temp file beside it, fsynced, then renamed over it, so readers (and
    a re-run after a crash) see the old file or the new one, never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_jsonl(path: str | Path, records: Iterable[BaseModel]) -> None:
    """Atomically (re)write a JSON-lines file of pydantic records (see `write_text_atomic`)."""
    write_text_atomic(path, "".join(record.model_dump_json() + "\n" for record in records))


def repair_torn_tail(path: str | Path) -> bool:
    """Drop a trailing partial line left by a crash mid-append. Returns True if one was removed."""
    path = Path(path)
    if not path.is_file():
        return False
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    keep = data[: data.rfind(b"\n") + 1]
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(keep)
    os.replace(tmp, path)
    return True


def prompt_provenance(path: str | Path) -> dict:
    """Who wrote the prompts of a manifest's clips, for results: a run trained on offline template prompts
    must not pass for one trained on the paper's LLM prompts.

    Returns:
        `{"manifest": path, "clips": N, "prompt_backends": {backend: count}, "strategies": {strategy: count},
        "prompts": label, "generators": {name: count}, "generator": name}` with backend `unknown` for rows that
        predate the record, and label `template` (every clip from the offline template), `openai:<model>` (every
        clip from that LLM), `mixed` or `unknown`; generator: the display name of the video generator of every
        clip (e.g. `Wan2.1-1.3B`; the renderer for rows that predate the record), `mixed` or `unknown`.
    """
    rows = read_manifest(path)
    backends = Counter(row.prompt_backend or "unknown" for row in rows)
    label = next(iter(backends)) if len(backends) == 1 else ("mixed" if backends else "unknown")
    gens = Counter((row.generation or {}).get("label") or row.generator or row.backend for row in rows)
    return {
        "manifest": str(path),
        "clips": len(rows),
        "prompt_backends": dict(sorted(backends.items())),
        "strategies": dict(sorted(Counter(row.strategy for row in rows).items())),
        "prompts": label,
        "generators": dict(sorted(gens.items())),
        "generator": next(iter(gens)) if len(gens) == 1 else ("mixed" if gens else "unknown"),
    }
