"""Check a dataset's annotation list against its label file and (optionally) its videos before training.

`validate` reports, for one list + label CSV (+ the video root when given): label ids outside the label
file, paths listed twice, class balance, clips whose file name names another class than their label
(UCF-101 `v_<Class>_gXX_cYY`, HMDB-51 `<title>_<class>_<attrs>`), and, with a root, missing files,
undecodable files and clips shorter than the frames a sample needs. Label/name disagreements are
summarised as a confusion between label ids and the classes the file names say: a pair of ids whose
clips are mostly named after each other is reported as a swap with the rows to exchange in the label
CSV (this catches the HMDB-51 CSV that TC-CLIP, ViFi-CLIP and X-CLIP ship, where ids 20/21 and 44/45
are swapped). `python -m datamodules validate --help` runs it; the exit code is 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.annotations import LABELLED_FORMATS, AnnotationError, FrameListEntry, read_labels, read_list
from datamodules.datasets import VideoLayout, layout_hint, resolve_paths
from datamodules.manifest import write_text_atomic
from datamodules.video import VideoDecodeError, VideoInfo, decode_frames, sample_indices, video_info

Status = Literal["ok", "error", "warning", "info", "skipped"]
Naming = Literal["auto", "ucf101", "hmdb51", "none"]

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".m4v", ".webm", ".mov", ".mpg", ".mpeg")
UCF101_NAME = re.compile(r"v_([A-Za-z0-9]+)_g\d+_c\d+")
# HMDB-51 attributes: visible body part, camera motion, people count, camera view, quality, clip number.
HMDB51_NAME = re.compile(r"(.+)_[fhlu]_(?:cm|nm)_np\d+_(?:fr|ba|le|ri)_(?:bad|med|goo)_\d+")
MAX_DETAILS = 5  # detail lines per check in the human summary (the JSON has them all)


@dataclass
class Check:
    """The outcome of one check: a one-line summary, detail lines for people, items for machines."""

    name: str
    status: Status
    summary: str
    details: list[str] = field(default_factory=list)
    items: list[dict] = field(default_factory=list)


@dataclass
class Report:
    """Everything `validate` found; `ok` is False when any check has status `error`."""

    list_file: str
    label_file: str
    root: str | None
    format: str
    num_clips: int
    num_classes: int
    naming: str  # the file-naming convention checked (ucf101, hmdb51) or none
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return not any(c.status == "error" for c in self.checks)

    def to_json(self) -> dict:
        return {"ok": self.ok, **asdict(self)}

    def summary(self) -> str:
        """A summary a person reads in ten seconds: one line per check, the fix under a failing one."""
        head = (
            f"{self.list_file}: {self.num_clips} clips, {self.num_classes} classes in {self.label_file}, "
            f"format {self.format}, naming {self.naming}"
        )
        lines = [head]
        order = {"error": 0, "warning": 1, "ok": 2, "info": 3, "skipped": 4}
        tag = {"error": "FAIL", "warning": "WARN", "ok": "ok", "info": "info", "skipped": "skip"}
        for c in sorted(self.checks, key=lambda c: order[c.status]):
            lines.append(f"  {tag[c.status]:<5} {c.name:<11} {c.summary}")
            shown = c.details if c.status in ("error", "warning") else c.details[:2]
            for d in shown[:MAX_DETAILS]:
                lines.append(f"{'':19}{d}")
            if len(shown) > MAX_DETAILS:
                lines.append(f"{'':19}... and {len(shown) - MAX_DETAILS} more (--json lists all)")
        errors = [c.name for c in self.checks if c.status == "error"]
        if errors:
            lines.append(f"FAILED: {len(errors)} check(s) failed ({', '.join(errors)}); exit code 1")
        else:
            lines.append("PASSED: no errors")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------ file names


def _stem(path: str) -> str:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if name.lower().endswith(VIDEO_SUFFIXES) else name


def _key(name: str, sep: str) -> str:
    return sep.join(name.lower().split())


def name_from_path(path: str, naming: str) -> str | None:
    """The class a file name says (UCF-101 token, or HMDB-51 `<title>_<class>` before the attributes), raw.

    None when the name does not follow the convention. For HMDB-51 the whole `<title>_<class>` part comes
    back, as the class can only be cut from the title against the label names (see `infer_labels`).
    """
    pattern = UCF101_NAME if naming == "ucf101" else HMDB51_NAME
    m = pattern.fullmatch(_stem(path))
    return m.group(1) if m else None


def detect_naming(paths: list[str]) -> str:
    """`ucf101` or `hmdb51` if at least half the file names follow that convention, else `none`."""
    for naming in ("ucf101", "hmdb51"):
        if sum(name_from_path(p, naming) is not None for p in paths) * 2 >= len(paths):
            return naming
    return "none"


def infer_labels(paths: list[str], class_names: list[str], naming: str) -> tuple[list[int | None], list[str | None]]:
    """The label id each file name implies, and the raw class text it carries.

    UCF-101: the `v_<Class>_` token, compared case-insensitively with the label names with spaces
    removed (`ApplyEyeMakeup`, `Apply Eye Makeup`). HMDB-51: the label name (spaces as underscores) that
    ends `<title>_<class>`, the longest when several do (`kick_ball` before `ball`). Returns
    (ids, texts): id None where the text matches no label name; text None where the file name does not
    follow the convention.
    """
    texts = [name_from_path(p, naming) for p in paths]
    ids: list[int | None] = []
    if naming == "ucf101":
        lookup = {_key(n, ""): i for i, n in enumerate(class_names)}
        return [None if t is None else lookup.get(t.lower()) for t in texts], texts
    keys = sorted(((_key(n, "_"), i) for i, n in enumerate(class_names)), key=lambda k: -len(k[0]))
    for i, text in enumerate(texts):
        if text is None:
            ids.append(None)
            continue
        low = text.lower()
        match = next((cid for key, cid in keys if low == key or low.endswith("_" + key)), None)
        ids.append(match)
        if match is None:
            texts[i] = low.rsplit("_", 1)[-1]
    return ids, texts


def find_swaps(confusion: dict[tuple[int, int], int], totals: Counter) -> list[tuple[int, int]]:
    """Pairs (a, b), a < b, where most clips labelled a are named as b and most labelled b are named as a.

    Args:
        confusion: (label id, id the file name says) -> clips.
        totals: label id -> clips whose file name says a known class.
    """
    swaps = []
    for (a, b), n_ab in sorted(confusion.items()):
        if a < b and 2 * n_ab > totals[a] and 2 * confusion.get((b, a), 0) > totals[b]:
            swaps.append((a, b))
    return swaps


def _names_check(entries, class_names: list[str], label_file: str, naming: str) -> tuple[str, Check]:
    paths = [e.path for e in entries]
    if naming == "auto":
        naming = detect_naming(paths)
    if naming == "none":
        return naming, Check(
            "names", "skipped", "file names follow no known convention (UCF-101, HMDB-51); names not checked"
        )
    ids, texts = infer_labels(paths, class_names, naming)
    in_range = [0 <= e.label < len(class_names) for e in entries]
    confusion: Counter = Counter()
    totals: Counter = Counter()
    for e, inferred, ok in zip(entries, ids, in_range):
        if inferred is not None and ok:
            confusion[(e.label, inferred)] += 1
            totals[e.label] += 1
    wrong = {k: n for k, n in confusion.items() if k[0] != k[1]}
    unknown = Counter(t for t, i in zip(texts, ids) if t is not None and i is None)
    unparsed = sum(t is None for t in texts)

    def q(i: int) -> str:
        return f"{i} ({class_names[i]!r})"

    details, items = [], []
    swaps = find_swaps(wrong, totals)
    in_swap = {i for pair in swaps for i in pair}
    for a, b in swaps:
        details.append(
            f"ids {a} and {b} look swapped: {wrong[(b, a)]}/{totals[b]} clips labelled {q(b)} are named "
            f"{class_names[a]!r}, and {wrong[(a, b)]}/{totals[a]} labelled {q(a)} are named {class_names[b]!r}"
        )
        items.append({"kind": "swap", "ids": [a, b], "names": [class_names[a], class_names[b]]})
    for (a, b), n in sorted(wrong.items(), key=lambda kv: -kv[1]):
        if a in in_swap and b in in_swap and ((a, b) in swaps or (b, a) in swaps):
            continue
        mostly = 2 * n > totals[a]
        kind = "relabel" if mostly else "mismatch"
        items.append({"kind": kind, "label": a, "named": b, "clips": n, "of": totals[a]})
        if mostly:
            details.append(
                f"label {q(a)}: {n}/{totals[a]} clips are named {class_names[b]!r}; "
                f"row {a} of {label_file} should probably read {class_names[b]!r}"
            )
        else:
            example = next(e for e, i in zip(entries, ids) if e.label == a and i == b)
            details.append(
                f"{n} clip(s) labelled {q(a)} are named {class_names[b]!r} (e.g. line {example.line}: {example.path})"
            )
    if swaps:
        rows = ", and of ".join(f"rows {a} and {b} (-> {a},{class_names[b]} / {b},{class_names[a]})" for a, b in swaps)
        details.append(f"fix: in {label_file} swap the names of {rows}; or relabel those clips in the list")
    n_wrong = sum(wrong.values())
    if unknown:
        top = ", ".join(f"{t!r} x{n}" for t, n in unknown.most_common(3))
        details.append(f"{sum(unknown.values())} clip(s) are named after no class in the label file: {top}")
        items.append({"kind": "unknown", "names": dict(unknown)})
    if unparsed:
        details.append(f"{unparsed} clip name(s) do not follow the {naming} convention and were not checked")
    checked = sum(totals.values())
    if n_wrong:
        status: Status = "error"
        summary = f"{n_wrong} of {checked} clips are named after another class than their label's"
    else:
        status = "warning" if unknown else "ok"
        summary = f"all {checked} checked clips are named after their label's class"
    return naming, Check("names", status, summary, details, items)


# ------------------------------------------------------------------------------------ other checks


def _labels_check(entries, num_classes: int, label_file: str) -> Check:
    bad = [e for e in entries if not 0 <= e.label < num_classes]
    if not bad:
        return Check("labels", "ok", f"all {len(entries)} labels are in 0..{num_classes - 1}")
    details = [f"line {e.line}: label {e.label} ({e.path})" for e in bad]
    return Check(
        "labels",
        "error",
        f"{len(bad)} label(s) outside 0..{num_classes - 1} of {label_file}; is the list paired with the right "
        "label file?",
        details,
        [{"line": e.line, "path": e.path, "label": e.label} for e in bad],
    )


def _duplicates_check(entries) -> Check:
    by_path: dict[str, list] = defaultdict(list)
    for e in entries:
        by_path[e.path.replace("\\", "/").removeprefix("./")].append(e)
    dups = {p: es for p, es in by_path.items() if len(es) > 1}
    if not dups:
        return Check("duplicates", "ok", "no path is listed twice")
    conflicting = {p for p, es in dups.items() if len({e.label for e in es}) > 1}
    details = [
        f"{p}: lines {', '.join(str(e.line) for e in es)}"
        + (f" with different labels {sorted({e.label for e in es})}" if p in conflicting else "")
        for p, es in sorted(dups.items(), key=lambda kv: (kv[0] not in conflicting, kv[0]))
    ]
    items = [{"path": p, "lines": [e.line for e in es], "labels": [e.label for e in es]} for p, es in dups.items()]
    summary = f"{len(dups)} path(s) listed more than once, {len(conflicting)} of them with different labels"
    return Check("duplicates", "error", summary, details, items)


def _balance_check(entries, class_names: list[str]) -> Check:
    counts = Counter(e.label for e in entries if 0 <= e.label < len(class_names))
    per_class = [counts.get(i, 0) for i in range(len(class_names))]
    present = [n for n in per_class if n]
    if not present:
        return Check("balance", "info", "no clip has a label in the label file")
    mean = sum(present) / len(present)
    summary = (
        f"clips per class: min {min(present)}, max {max(present)}, mean {mean:.1f}; "
        f"{len(present)} of {len(class_names)} classes present"
    )
    order = sorted(range(len(class_names)), key=lambda i: (per_class[i], i))
    details = [
        "fewest: " + ", ".join(f"{class_names[i]} {per_class[i]}" for i in order[:3]),
        "most: " + ", ".join(f"{class_names[i]} {per_class[i]}" for i in order[::-1][:3]),
    ]
    items = [{"id": i, "name": n, "clips": per_class[i]} for i, n in enumerate(class_names)]
    return Check("balance", "info", summary, details, items)


def _file_checks(
    entries, root: Path | None, frames: int, decode: bool, layout: VideoLayout = "as_listed"
) -> list[Check]:
    """missing / decode / length: what needs the videos (the length of a frame list needs no videos)."""
    checks = []
    listed_frames = {e.line: e.num_frames for e in entries if isinstance(e, FrameListEntry)}
    num_frames: dict[int, int] = dict(listed_frames)
    if root is None:
        checks.append(Check("files", "skipped", "no --root given: existence and decoding not checked"))
    elif not root.is_dir():
        checks.append(Check("files", "error", f"--root {root} is not a folder; existence and decoding not checked"))
    else:
        try:
            resolved = dict(zip((e.line for e in entries), resolve_paths(root, [e.path for e in entries], layout)))
        except ValueError as exc:
            return [*checks, Check("missing", "error", str(exc))]
        missing = [e for e in entries if not resolved[e.line].exists()]
        if missing:
            hint = layout_hint(root, [e.path for e in missing]) if layout == "as_listed" else None
            checks.append(
                Check(
                    "missing",
                    "error",
                    f"{len(missing)} of {len(entries)} listed clips are not under {root}"
                    + (f"; {hint}" if hint else ""),
                    [f"line {e.line}: {e.path}" for e in missing],
                    [{"line": e.line, "path": e.path} for e in missing],
                )
            )
        else:
            checks.append(Check("missing", "ok", f"all {len(entries)} listed clips exist under {root}"))
        if not decode:
            checks.append(Check("decode", "skipped", "--skip-decode: files not opened"))
        else:
            present = [e for e in entries if resolved[e.line].exists()]
            broken, undeclared = [], []
            for e in present:
                info, cause = decode_check(resolved[e.line], frames)
                if info is None:
                    broken.append((e, cause))
                    continue
                num_frames[e.line] = info.num_frames
                if not info.declared:
                    undeclared.append(e)
            if broken:
                checks.append(
                    Check(
                        "decode",
                        "error",
                        f"{len(broken)} of {len(present)} clips do not decode; re-download them or drop them",
                        [f"line {e.line}: {cause}" for e, cause in broken],
                        [{"line": e.line, "path": e.path, "cause": cause} for e, cause in broken],
                    )
                )
            elif not present:  # never "ok" for nothing checked
                checks.append(Check("decode", "skipped", "no listed clip exists under the root: nothing was decoded"))
            else:
                checks.append(Check("decode", "ok", f"all {len(present)} clips decode to the end of their stream"))
            if undeclared:
                checks.append(
                    Check(
                        "length",
                        "warning",
                        f"{len(undeclared)} clip(s): length unverifiable (the container declares no length, e.g. a "
                        "raw MPEG-4 stream named .mp4; a truncated file cannot be told from a short one). Remux "
                        "them (ffmpeg -i in -c copy out.mp4)",
                        [f"line {e.line}: {e.path} ({num_frames[e.line]} frames counted)" for e in undeclared],
                        [{"line": e.line, "path": e.path, "frames": num_frames[e.line]} for e in undeclared],
                    )
                )
    if num_frames:
        short = [e for e in entries if e.line in num_frames and num_frames[e.line] < frames]
        if short:
            fewest = min(num_frames[e.line] for e in short)
            checks.append(
                Check(
                    "length",
                    "info",
                    f"{len(short)} clip(s) have fewer than {frames} frames (fewest {fewest}): not an error, a "
                    f"sample of {frames} takes some of their frames twice (the frame of each of {frames} equal "
                    "segments)",
                    [f"line {e.line}: {e.path} has {num_frames[e.line]} frames" for e in short],
                    [{"line": e.line, "path": e.path, "frames": num_frames[e.line]} for e in short],
                )
            )
        else:
            checks.append(Check("length", "ok", f"every checked clip has at least {frames} frames"))
    return checks


# ------------------------------------------------------------------------------------ decode checks


def decode_check(path: str | Path, frames: int = 8) -> tuple[VideoInfo | None, str]:
    """What `validate` checks of one clip: the frames a test samples (`frames` of them), decoded on to the end
    of the stream with the frame count checked. Returns (its info, "") or (None, the cause)."""
    try:
        info = video_info(path)
        decode_frames(path, sample_indices(info.num_frames, frames, train=False), short_side=32)
    except VideoDecodeError as exc:
        return None, str(exc).split(". Check that it exists")[0]
    return info, ""


class _DecodeChecks(Dataset):
    """`decode_check` of each path, for a DataLoader (worker processes decode in parallel)."""

    def __init__(self, paths: list[Path], frames: int):
        self.paths, self.frames = paths, frames

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, str]:
        return index, decode_check(self.paths[index], self.frames)[1]


def _stat_key(path: Path) -> list[int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def check_cache() -> Path:
    """Where decode checks are remembered: `$SYNTHACT_CACHE/decode_checks.json`, by default under
    `$XDG_CACHE_HOME/synthact` (`~/.cache/synthact`). One file for every run folder: an entry is a file's
    absolute path with its size and modification time, so it holds for whichever run reads that file."""
    root = os.environ.get("SYNTHACT_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "synthact"
    return Path(root).expanduser() / "decode_checks.json"


def _read_checks(cache: Path) -> dict:
    try:
        return json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}  # absent or damaged: it only costs a re-check


def check_decodes(
    paths: list[Path], frames: int = 8, cache: str | Path | None = None, num_workers: int = 0, save: bool = True
) -> list[tuple[Path, str]]:
    """`decode_check` every path; returns the ones that fail, with the cause.

    Args:
        paths: video files or frame folders.
        frames: frames a sample needs (the frames `validate --frames` decodes first).
        cache: a JSON file remembering each checked path's outcome under its size and modification time, so a
            rerun decodes only new or changed files; None checks everything.
        num_workers: DataLoader worker processes that decode (0: this process).
        save: write what was checked to `cache` (False: read it only, e.g. on all but one DDP rank).
    """
    known = _read_checks(Path(cache)) if cache is not None else {}
    unique = list(dict.fromkeys(Path(p).absolute() for p in paths))
    keys = {p: _stat_key(p) for p in unique}
    todo = [p for p in unique if keys[p] is None or (known.get(str(p)) or {}).get("key") != keys[p]]
    if todo:
        # its own generator: a check (run or not, cached) must not move the global random stream the run's
        # model init and data order are drawn from
        loader = DataLoader(
            _DecodeChecks(todo, frames), batch_size=None, num_workers=num_workers, generator=torch.Generator()
        )
        found = {}
        for index, cause in loader:
            path = todo[index]
            if keys[path] is not None:
                found[str(path)] = {"key": keys[path], "cause": cause}
        known.update(found)
        if cache is not None and save:  # merged with what runs beside this one wrote meanwhile
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(cache, json.dumps({**_read_checks(Path(cache)), **found}) + "\n")
    return [(p, known[str(p)]["cause"]) for p in unique if str(p) in known and known[str(p)]["cause"]] + [
        (p, "not found") for p in unique if keys[p] is None
    ]


# ------------------------------------------------------------------------------------ entry points


def validate(
    list_file: str | Path,
    label_file: str | Path,
    root: str | Path | None = None,
    frames: int = 8,
    fmt: str = "auto",
    naming: Naming = "auto",
    decode: bool = True,
    layout: VideoLayout = "as_listed",
) -> Report:
    """Run every check on one list.

    Args:
        list_file: the annotation list (video, frames or csv format).
        label_file: label CSV `id,name`.
        root: folder the listed paths are relative to; None checks the list and label file only.
        frames: frames a sample needs (the datamodule's `num_frames`); shorter clips are reported.
        fmt: list format (`auto` guesses it; see `datamodules.annotations.LIST_FORMATS`).
        naming: file-naming convention to check labels against; `auto` picks the one most names follow.
        decode: open each listed file and decode `frames` frames, on to the stream's end (needs `root`).
        layout: `as_listed` (root / listed path) or `by_name` (found by file name under root).

    Raises:
        FileNotFoundError, AnnotationError: the list or label file is missing or malformed.
    """
    class_names = read_labels(label_file)
    fmt, entries = read_list(list_file, fmt)
    if fmt not in LABELLED_FORMATS:
        raise AnnotationError(
            f"{list_file}: the validator checks labelled lists ({', '.join(LABELLED_FORMATS)}), not {fmt}"
        )
    naming, names = _names_check(entries, class_names, str(label_file), naming)
    checks = [
        names,
        _labels_check(entries, len(class_names), str(label_file)),
        _duplicates_check(entries),
        _balance_check(entries, class_names),
        *_file_checks(entries, None if root is None else Path(root), frames, decode, layout),
    ]
    return Report(
        str(list_file),
        str(label_file),
        None if root is None else str(root),
        fmt,
        len(entries),
        len(class_names),
        naming,
        checks,
    )


def run(args: argparse.Namespace) -> int:
    try:
        report = validate(
            args.list,
            args.labels,
            args.root,
            args.frames,
            args.format,
            args.naming,
            decode=not args.skip_decode,
            layout=args.root_layout.replace("-", "_"),
        )
    except (FileNotFoundError, AnnotationError) as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}))
        else:
            print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.to_json(), indent=1) if args.json else report.summary())
    return 0 if report.ok else 1
