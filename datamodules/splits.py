"""Seeded split builders: K-shot subsets, base/novel class halves and long-tailed (Pareto) subsets.

Each builder takes the records of any list format in `datamodules.annotations` (grouped by their
`label`: the class id, or the UCF-Crime class) and the output is written in the input's own format, so a
user can build the protocols of the paper for a new dataset, or HMDB-51-LT from
`hmdb51/official/train_rgb_split_1.txt`. Randomness is seeded: the same list and seed give the same
output, byte for byte. Kept clips stay in their input order. `python -m datamodules splits --help`.

- K-shot: K clips drawn per class (all of a class's clips where it has fewer than K; reported).
- Base/novel: the classes split in two (random by seed, or by id), each half with a label CSV of new
  contiguous ids (in the order of the original ids) and every given list remapped into both halves.
- Long-tail: class k of a seeded class order keeps n_k = round(n_max * x_k^-7) clips,
  x_k = linspace(1, (n_max / n_min)^(1/7), K) (so n_0 = n_max and n_{K-1} = n_min; halves round up);
  a JSON beside the list gives the counts and the groups: Head = the most frequent classes that together
  hold at least half the clips, Few = the other classes with fewer than 20 clips, Tail = the rest.
- Long-tail top-up: generated clips fill each class of a long-tailed list up to a target count (the
  largest class's, or a given N): class c gets min(max(target - n_c, 0), its generated clips) of them,
  drawn per class with a seed, so the tail and few-shot classes get the most (`topup`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from datamodules.annotations import (
    LABELLED_FORMATS,
    AnnotationError,
    Record,
    read_labels,
    read_list,
    write_labels,
    write_list,
)

log = logging.getLogger(__name__)

PARETO_EXPONENT = 7  # the profile of ../shared/data/README.md: n_k = n_max * x_k^-7
FEW_BELOW = 20  # classes with fewer training clips than this are "Few"


def _by_class(records: Sequence[Record]) -> dict[int, list[int]]:
    """label -> positions of its records in the list, in list order."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        groups[r.label].append(i)
    return dict(groups)


def _class_rng(seed: int, label: int) -> np.random.Generator:
    # One stream per (seed, class): a class's draw does not depend on the other classes in the list.
    return np.random.default_rng([seed, label])


# ------------------------------------------------------------------------------------------ K-shot


def kshot(records: Sequence[Record], k: int, seed: int) -> list[Record]:
    """K records per class, drawn without replacement; a class with at most K records keeps all of them.

    Returns the kept records in their input order.
    """
    if k <= 0:
        raise ValueError(f"k must be >= 1, got {k}")
    keep: set[int] = set()
    for label, positions in _by_class(records).items():
        if len(positions) <= k:
            keep.update(positions)
        else:
            keep.update(int(p) for p in _class_rng(seed, label).choice(positions, size=k, replace=False))
    return [r for i, r in enumerate(records) if i in keep]


# ------------------------------------------------------------------------------------------ base/novel


@dataclass(frozen=True)
class BaseNovel:
    """A base/novel split of a label space: the original ids of each half, in new-id order."""

    base: list[int]
    novel: list[int]

    def mapping(self, half: Literal["base", "novel"]) -> dict[int, int]:
        """original id -> new contiguous id within the half."""
        return {old: new for new, old in enumerate(getattr(self, half))}


def split_classes(
    num_classes: int, num_base: int | None = None, seed: int = 0, order: Literal["random", "id"] = "random"
) -> BaseNovel:
    """Split ids 0..num_classes-1 into base and novel halves.

    Args:
        num_classes: size of the label space.
        num_base: classes in the base half; default ceil(num_classes / 2) (as the shipped halves: HMDB-51
            26/25, UCF-101 51/50).
        seed: seeds the random class order.
        order: `random` (seeded) picks the base classes at random; `id` takes the first num_base ids.
    """
    num_base = math.ceil(num_classes / 2) if num_base is None else num_base
    if not 0 < num_base < num_classes:
        raise ValueError(f"num_base must be in 1..{num_classes - 1}, got {num_base}")
    ids = np.arange(num_classes) if order == "id" else np.random.default_rng(seed).permutation(num_classes)
    return BaseNovel(base=sorted(int(i) for i in ids[:num_base]), novel=sorted(int(i) for i in ids[num_base:]))


def remap(records: Sequence[Record], mapping: dict[int, int]) -> list[Record]:
    """The records whose label is in `mapping`, relabelled with the mapped ids (labelled formats only)."""
    out = []
    for r in records:
        if r.label in mapping:
            if not any(f.name == "label" for f in dataclasses.fields(r)):
                raise AnnotationError(
                    f"{type(r).__name__} records carry class names, not ids; base/novel needs a labelled list "
                    f"({', '.join(LABELLED_FORMATS)})"
                )
            out.append(dataclasses.replace(r, label=mapping[r.label]))
    return out


# ------------------------------------------------------------------------------------------ long-tail


def pareto_counts(n_max: int, n_min: int, num_classes: int) -> list[int]:
    """Clips per class of the long-tail profile, largest first: round(n_max * x_k^-7),
    x_k = linspace(1, (n_max / n_min)^(1/7), num_classes), halves rounded up."""
    if not 0 < n_min <= n_max or num_classes <= 0:
        raise ValueError(f"need 0 < n_min <= n_max and num_classes > 0, got {n_min}, {n_max}, {num_classes}")
    x = np.linspace(1.0, (n_max / n_min) ** (1 / PARETO_EXPONENT), num_classes)
    return [int(math.floor(n_max * v**-PARETO_EXPONENT + 0.5)) for v in x]


def lt_groups(counts: dict[int, int], few_below: int = FEW_BELOW) -> dict[str, list[int]]:
    """Head / Tail / Few classes of a count profile (class -> clips).

    Head: the smallest set of most frequent classes (ties by class id) holding at least half the clips.
    Few: the other classes with fewer than `few_below` clips. Tail: the rest. Each list is sorted by id.
    """
    order = sorted(counts, key=lambda c: (-counts[c], c))
    total, running, head = sum(counts.values()), 0, []
    for c in order:
        if 2 * running >= total:
            break
        head.append(c)
        running += counts[c]
    rest = [c for c in order if c not in set(head)]
    return {
        "head": sorted(head),
        "tail": sorted(c for c in rest if counts[c] >= few_below),
        "few": sorted(c for c in rest if counts[c] < few_below),
    }


@dataclass
class LongTail:
    """A long-tailed subset: kept records plus the profile that made it."""

    records: list[Record]
    target: dict[int, int]  # class -> n_k it was given
    counts: dict[int, int]  # class -> clips kept (less than target where the class had fewer)
    class_order: list[int]  # classes from largest to smallest target

    @property
    def groups(self) -> dict[str, list[int]]:
        return lt_groups(self.counts)


def long_tail(records: Sequence[Record], n_max: int, n_min: int, seed: int) -> LongTail:
    """Keep n_k clips of the k-th class of a seeded class order (`pareto_counts`), drawn per class.

    A class with fewer clips than its n_k keeps all of them (`counts` < `target`; logged).
    """
    groups = _by_class(records)
    labels = sorted(groups)
    class_order = [labels[i] for i in np.random.default_rng(seed).permutation(len(labels))]
    target = dict(zip(class_order, pareto_counts(n_max, n_min, len(labels))))
    keep: set[int] = set()
    for label in class_order:
        positions = groups[label]
        n = min(target[label], len(positions))
        if n < target[label]:
            log.warning("class %s has %d clips, fewer than its %d: keeping all", label, len(positions), target[label])
        keep.update(int(p) for p in _class_rng(seed, label).choice(positions, size=n, replace=False))
    kept = [r for i, r in enumerate(records) if i in keep]
    kept_per_class = Counter(r.label for r in kept)
    counts = {label: kept_per_class[label] for label in class_order}
    return LongTail(kept, target, counts, class_order)


# ------------------------------------------------------------------------------------------ long-tail top-up


def topup_target(real_counts: dict[int, int], target: int | str) -> int:
    """The per-class count a top-up fills to: `"max"` is the largest class's real count, an int is itself."""
    if target == "max":
        if not real_counts or max(real_counts.values()) <= 0:
            raise ValueError("top-up target 'max' needs a real list with at least one clip")
        return max(real_counts.values())
    if isinstance(target, bool) or not isinstance(target, int) or target < 1:
        raise ValueError(f"top-up target must be 'max' or a positive int (clips per class), got {target!r}")
    return target


def topup(synthetic_labels: Sequence[int], real_counts: dict[int, int], target: int | str, seed: int = 0) -> list[int]:
    """Positions of the generated clips that fill each class up to `target` clips (real + generated).

    Class c gets min(max(target - n_c, 0), available_c) generated clips, n_c = `real_counts.get(c, 0)`,
    drawn without replacement by a per-(seed, class) stream; a class already at or above the target gets
    none (its real clips are all kept). Returns the kept positions in input order.

    Args:
        synthetic_labels: the class of each generated clip.
        real_counts: class -> clips in the (long-tailed) real list; classes absent count 0.
        target: `"max"` (fill to the largest real class, e.g. UCF-101-LT's head) or clips per class.
        seed: seeds the per-class draw.
    """
    goal = topup_target(real_counts, target)
    keep: list[int] = []
    groups: dict[int, list[int]] = defaultdict(list)  # class -> positions of its generated clips
    for i, label in enumerate(synthetic_labels):
        groups[int(label)].append(i)
    for label, positions in groups.items():
        need = max(goal - real_counts.get(label, 0), 0)
        if need >= len(positions):
            keep += positions
        elif need > 0:
            keep += [int(p) for p in _class_rng(seed, label).choice(positions, size=need, replace=False)]
    return sorted(keep)


# ------------------------------------------------------------------------------------------ command line


def _kshot_cmd(args: argparse.Namespace) -> int:
    fmt, records = read_list(args.list, args.format)
    kept = kshot(records, args.k, args.seed)
    write_list(args.out, kept)
    short = {c: len(p) for c, p in _by_class(records).items() if len(p) < args.k}
    note = f"; {len(short)} class(es) have fewer than {args.k} and keep all: {short}" if short else ""
    print(f"wrote {args.out}: {len(kept)} clips, {args.k} per class ({fmt} format, seed {args.seed}){note}")
    return 0


def _base_novel_cmd(args: argparse.Namespace) -> int:
    names = read_labels(args.labels)
    split = split_classes(len(names), args.num_base, args.seed, args.order)
    out = Path(args.out_dir)
    for half in ("base", "novel"):
        write_labels(out / f"{half}_labels.csv", [names[i] for i in getattr(split, half)])
    for list_file in args.list:
        fmt, records = read_list(list_file, args.format, len(names), args.labels)
        if fmt not in LABELLED_FORMATS:
            raise AnnotationError(f"{list_file}: base/novel needs a labelled list ({', '.join(LABELLED_FORMATS)})")
        for half in ("base", "novel"):
            write_list(out / f"{half}_{Path(list_file).name}", remap(records, split.mapping(half)))
    print(
        f"wrote {out}/base_labels.csv ({len(split.base)} classes), novel_labels.csv ({len(split.novel)}) and "
        f"base_/novel_ versions of {len(args.list)} list(s) (order {args.order}, seed {args.seed})"
    )
    return 0


def _long_tail_cmd(args: argparse.Namespace) -> int:
    fmt, records = read_list(args.list, args.format)
    sizes = {c: len(p) for c, p in _by_class(records).items()}
    n_max = min(sizes.values()) if args.n_max is None else args.n_max
    lt = long_tail(records, n_max, args.n_min, args.seed)
    out = Path(args.out)
    write_list(out, lt.records)
    names = read_labels(args.labels) if args.labels else None
    groups = lt.groups
    summary = {
        "list": out.name,  # the list this JSON sits beside
        "source": str(args.list),
        "format": fmt,
        "seed": args.seed,
        "profile": {"n_max": n_max, "n_min": args.n_min, "exponent": PARETO_EXPONENT, "few_below": FEW_BELOW},
        "counts": {str(c): lt.counts[c] for c in sorted(lt.counts)},
        "target": {str(c): lt.target[c] for c in sorted(lt.target)},
        "class_order": lt.class_order,
        **groups,
    }
    if names is not None:
        summary["names"] = {str(c): names[c] for c in sorted(lt.counts) if 0 <= c < len(names)}
    groups_file = out.with_name(out.stem + "_groups.json")
    groups_file.write_text(json.dumps(summary, indent=1) + "\n")
    print(
        f"wrote {out}: {len(lt.records)} clips over {len(lt.counts)} classes (n_max {n_max}, n_min {args.n_min}, "
        f"seed {args.seed}); {groups_file.name}: head {len(groups['head'])}, tail {len(groups['tail'])}, "
        f"few {len(groups['few'])} classes"
    )
    return 0
