"""Build the embedded demo dataset: demo labels, a held-out "real" set and Basic / IE synthetic sets.

Layout under `out`:

    labels.csv                                  id,name (the demo actions, ids 0..K-1)
    real/videos/<class-slug>_{train,val}_NNN.mp4   style="real" clips, own seeds
    real/splits/train1_few_shot_{2,4,8,16}.txt  `<file>.mp4 <label>` lines, nested K-shot subsets
    real/splits/val1.txt                        held-out real test clips, same format
    real/splits/val{2,3}.txt                    zero-shot test splits 2/3 (seeded draws from all real clips)
    labels_base.csv, labels_novel.csv           base/novel halves (seeded, datamodules.splits.split_classes)
    real/splits/base2novel/fs_base_s{1,2,3}_train.txt, base_val.txt, novel_val.txt   (half ids)
    real/splits/train_lt.txt, train_lt_groups.json   long-tailed training list + Head/Tail/Few groups
    real/splits/ucf101_lt/real/{train,test}.csv, train_groups.json   the same, in UCF-101-LT's layout
    labels_zs{1,2,3}.csv                        Kinetics-600-like zero-shot label splits (class subsets)
    real/splits/k600/ZS_split{1,2,3}_K600_eval.txt   their eval lists (val1 clips, split ids)
    synthetic/{basic,ie}/prompts.jsonl, manifest.jsonl, videos/<class-slug>/<row_id>.mp4
    synthetic/ie_unreliable/...                 the IE prompts again, from a generator that fails on a
                                                fraction of rows (`unreliable_rate`); unreliable.json lists them
    web/videos/*.mp4, web/list.txt              the scorer's labelled "web" split (`web_per_class` > 0); the
    web/train.txt, web/val.txt                  stand-in CLIP trains on train.txt and is tested on the held-out
                                                val.txt (the last 1 / `WEB_VAL_EVERY` of each class)
    DONE.json                                   preset parameters; written last

The unreliable set stands in for a video generator's failures: a failed row's clip shows incoherent motion
(every frame a pose of some *other* action at a random phase) instead of its label, so its label is wrong and
its motion no action at all; every other row is the very clip of the clean IE set (same prompt, same seed). Which rows
fail is a stable hash of the row id (`is_unreliable`). The web split is what the demo's stand-in for CLIP
is trained on: correctly labelled clips of every environment and character (the real split's extras
included), half in the synthetic style and half in the real style, own seeds.

Real clips draw their environment and character from the whole vocabulary plus extra phrases the
template backend never writes (`vocab.REAL_EXTRA_*`), in the real style. Every step is resumable:
synthetic sets through `render_prompts`, real clips skipped when their file exists (written atomically).

The protocol lists are cut from the same real clips (no extra rendering), scaled to a world of
len(vocab.ACTIONS) = 8 classes: base-to-novel uses 4 + 4 classes and `B2N_SHOTS` = 8 shots per base
class (16 would take every training clip, and the seeds would not differ); the long-tailed list keeps
16 ... 2 clips per class (Pareto profile) and its groups use Few = fewer than `LT_FEW_BELOW` = 4 clips
(the paper's 20 would make every demo class Few); the Kinetics-600-like zero-shot splits hold
`ZS_CLASSES` = 4 of the 8 classes each (K600's hold 160 of 220). Zero-shot never trains on real clips, so
val2/val3 may overlap the few-shot training clips.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from datamodules.annotations import ListEntry, write_labels, write_list
from datamodules.manifest import write_text_atomic
from datamodules.progress import Progress
from datamodules.splits import kshot, long_tail, lt_groups, remap, split_classes
from generation import vocab
from generation.procedural import render_clip
from generation.prompts import Label, make_prompts, slug, stable_hash, write_prompts
from generation.render import render_prompts
from generation.video_io import write_video

SHOTS = (2, 4, 8, 16)
LAYOUT = 3  # version of the list layout; a build of an older layout is completed in place
WEB_VAL_EVERY = 6  # 1/6 of each class's web clips are held out to test the stand-in CLIP
B2N_SHOTS = 8  # base-to-novel shots per base class in the demo world
B2N_SEEDS = (1, 2, 3)
LT_N_MIN = 2  # the long-tailed list keeps real_train_per_class ... LT_N_MIN clips per class
LT_FEW_BELOW = 4  # demo-world Few threshold (the paper's 20 is larger than any demo class)
ZS_CLASSES = 4  # classes per Kinetics-600-like zero-shot split


@dataclass(frozen=True)
class DemoPreset:
    """Sizes of a demo build."""

    synthetic_per_class: int  # clips per class for each of Basic and IE
    real_train_per_class: int  # real clips per class for few-shot lists (>= max shots)
    real_val_per_class: int  # held-out real test clips per class
    num_frames: int
    size: int
    fps: float = 8
    num_envs: int = 4
    num_chars: int = 16
    strategies: tuple[str, ...] = ("basic", "ie")
    unreliable_rate: float = 0.0  # > 0: also build synthetic/ie_unreliable with this fraction of failed rows
    web_per_class: int = 0  # > 0: also build the scorer's labelled web split


PRESETS: dict[str, DemoPreset] = {
    "smoke": DemoPreset(synthetic_per_class=4, real_train_per_class=16, real_val_per_class=2, num_frames=8, size=32),
    "demo": DemoPreset(
        synthetic_per_class=64,
        real_train_per_class=16,
        real_val_per_class=40,
        num_frames=16,
        size=64,
        unreliable_rate=0.25,
        web_per_class=96,
    ),
    # The reduced demo of tests/generation/test_demo.py (IE > Basic in under a minute).
    "mini": DemoPreset(synthetic_per_class=32, real_train_per_class=4, real_val_per_class=12, num_frames=16, size=64),
}
UNRELIABLE = "ie_unreliable"  # folder (under synthetic/) of the IE set with failed generations


def is_unreliable(row_id: str, rate: float) -> bool:
    """Whether the demo generator fails on row `row_id` (a stable hash: the same rows on every machine)."""
    return stable_hash(f"unreliable/{row_id}") % 10_000 < round(rate * 10_000)


def unreliable_renderer(rate: float, num_frames: int, size: int):
    """The procedural renderer as a generator that fails on `rate` of its rows (see the module doc)."""

    def render(row) -> np.ndarray:
        return render_clip(
            row.prompt,
            row.seed,
            num_frames=num_frames,
            size=size,
            action_hint=row.class_name,
            unreliable=is_unreliable(row.row_id, rate),
        )

    render.name = "procedural"  # type: ignore[attr-defined]
    return render


class DemoError(ValueError):
    """A demo build that cannot proceed (unknown preset, folder holding another build)."""


def demo_labels() -> list[Label]:
    """The demo classes: one per `vocab.ACTIONS` entry."""
    return [Label(i, a.name) for i, a in enumerate(vocab.ACTIONS)]


def real_prompt(action: vocab.Action, split: str, index: int) -> tuple[str, int]:
    """Prompt and seed of real clip `index` of `split` for `action` (deterministic)."""
    rng = np.random.default_rng(stable_hash(f"real/{action.name}/{split}/{index}"))
    envs = [e.text for e in vocab.ENVIRONMENTS] + list(vocab.REAL_EXTRA_ENVIRONMENTS)
    chars = [c.text for c in vocab.CHARACTERS] + list(vocab.REAL_EXTRA_CHARACTERS)
    env = envs[rng.integers(len(envs))]
    char = chars[rng.integers(len(chars))]
    seed = stable_hash(f"real-seed/{action.name}/{split}/{index}", bits=31)
    return f"{char[0].upper()}{char[1:]} is {action.ing} {env}.", seed


def _build_real(out: Path, p: DemoPreset, progress: bool) -> dict[str, int]:
    videos = out / "real" / "videos"
    splits = out / "real" / "splits"
    videos.mkdir(parents=True, exist_ok=True)
    splits.mkdir(parents=True, exist_ok=True)
    for stale in videos.glob(".*.partial"):
        stale.unlink()
    jobs = []  # (file, label, split, action, index)
    for label, action in enumerate(vocab.ACTIONS):
        for split, n in (("train", p.real_train_per_class), ("val", p.real_val_per_class)):
            jobs += [(f"{slug(action.name)}_{split}_{i:03d}.mp4", label, split, action, i) for i in range(n)]
    made = 0
    for file, _, split, action, i in Progress(jobs, unit="clip", desc="real", disable=not progress):
        if (videos / file).exists():
            continue
        prompt, seed = real_prompt(action, split, i)
        write_video(
            videos / file, render_clip(prompt, seed, num_frames=p.num_frames, size=p.size, style="real"), fps=p.fps
        )
        made += 1
    for k in SHOTS:  # nested: the K-shot list is the first K train clips of every class
        lines = [f"{f} {lab}" for f, lab, split, _, i in jobs if split == "train" and i < k]
        write_text_atomic(splits / f"train1_few_shot_{k}.txt", "\n".join(lines) + "\n")
    lines = [f"{f} {lab}" for f, lab, split, _, _ in jobs if split == "val"]
    write_text_atomic(splits / "val1.txt", "\n".join(lines) + "\n")
    train = [ListEntry(f, lab, n) for n, (f, lab, split, _, _) in enumerate(jobs, 1) if split == "train"]
    val = [ListEntry(f, lab, n) for n, (f, lab, split, _, _) in enumerate(jobs, 1) if split == "val"]
    _protocol_lists(out, splits, train, val, p.real_val_per_class)
    return {"real_clips": len(jobs), "real_rendered": made}


def _build_web(out: Path, p: DemoPreset, progress: bool) -> dict[str, int]:
    """The scorer's labelled split: `web_per_class` clips per class, alternating synthetic and real style."""
    videos = out / "web" / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    lines, made = [], 0
    jobs = [(label, action, i) for label, action in enumerate(vocab.ACTIONS) for i in range(p.web_per_class)]
    for label, action, i in Progress(jobs, unit="clip", desc="web", disable=not progress):
        file = f"{slug(action.name)}_web_{i:03d}.mp4"
        lines.append(f"{file} {label}")
        if (videos / file).exists():
            continue
        prompt, seed = real_prompt(action, "web", i)
        style = "real" if i % 2 else "synthetic"
        write_video(
            videos / file, render_clip(prompt, seed, num_frames=p.num_frames, size=p.size, style=style), fps=p.fps
        )
        made += 1
    write_text_atomic(out / "web" / "list.txt", "\n".join(lines) + "\n")
    n_val = max(1, p.web_per_class // WEB_VAL_EVERY)  # the last clips of each class (both styles) are held out
    held_out = [i % p.web_per_class >= p.web_per_class - n_val for i in range(len(lines))]
    write_text_atomic(out / "web" / "train.txt", "".join(f"{x}\n" for x, v in zip(lines, held_out) if not v))
    write_text_atomic(out / "web" / "val.txt", "".join(f"{x}\n" for x, v in zip(lines, held_out) if v))
    return {"web_rendered": made}


def _protocol_lists(out: Path, splits: Path, train: list[ListEntry], val: list[ListEntry], per_class: int) -> None:
    """val2/3, base/novel halves, the long-tailed list and the K600-like zero-shot splits (see module doc)."""
    names = [a.name for a in vocab.ACTIONS]
    for i in (2, 3):  # another seeded draw of `per_class` clips per class from all real clips
        write_list(splits / f"val{i}.txt", kshot(train + val, per_class, seed=i))
    halves = split_classes(len(names), seed=0)
    for half in ("base", "novel"):
        write_labels(out / f"labels_{half}.csv", [names[c] for c in getattr(halves, half)])
    b2n = splits / "base2novel"
    for seed in B2N_SEEDS:
        write_list(b2n / f"fs_base_s{seed}_train.txt", remap(kshot(train, B2N_SHOTS, seed), halves.mapping("base")))
    write_list(b2n / "base_val.txt", remap(val, halves.mapping("base")))
    write_list(b2n / "novel_val.txt", remap(val, halves.mapping("novel")))
    n_max = min(sum(e.label == c for e in train) for c in range(len(names)))
    lt = long_tail(train, n_max=n_max, n_min=LT_N_MIN, seed=0)
    groups = {
        "counts": {str(c): n for c, n in sorted(lt.counts.items())},
        "few_below": LT_FEW_BELOW,
        **lt_groups(lt.counts, few_below=LT_FEW_BELOW),
    }
    for train_list in (splits / "train_lt.txt", splits / "ucf101_lt" / "real" / "train.csv"):
        write_list(train_list, lt.records)
        write_text_atomic(train_list.with_name(train_list.stem + "_groups.json"), json.dumps(groups, indent=1) + "\n")
    write_list(splits / "ucf101_lt" / "real" / "test.csv", val)
    for i in (1, 2, 3):
        classes = sorted(int(c) for c in np.random.default_rng(100 + i).choice(len(names), ZS_CLASSES, replace=False))
        write_labels(out / f"labels_zs{i}.csv", [names[c] for c in classes])
        mapping = {old: new for new, old in enumerate(classes)}
        write_list(splits / "k600" / f"ZS_split{i}_K600_eval.txt", remap(val, mapping))


def _build_synthetic(out: Path, p: DemoPreset, progress: bool, strategy: str) -> dict[str, int]:
    folder = out / "synthetic" / strategy
    rows = make_prompts(
        demo_labels(), strategy, videos_per_class=p.synthetic_per_class, num_envs=p.num_envs, num_chars=p.num_chars
    )
    write_prompts(folder / "prompts.jsonl", rows)
    summary = render_prompts(
        folder / "prompts.jsonl", folder, num_frames=p.num_frames, size=p.size, fps=p.fps, progress=progress
    )
    return {f"synthetic_{strategy}_clips": summary.total_rows}


def _build_unreliable(out: Path, p: DemoPreset, progress: bool) -> dict[str, int]:
    folder = out / "synthetic" / UNRELIABLE
    rows = make_prompts(
        demo_labels(), "ie", videos_per_class=p.synthetic_per_class, num_envs=p.num_envs, num_chars=p.num_chars
    )
    write_prompts(folder / "prompts.jsonl", rows)
    failed = [r.row_id for r in rows if is_unreliable(r.row_id, p.unreliable_rate)]
    write_text_atomic(folder / "unreliable.json", json.dumps({"rate": p.unreliable_rate, "rows": failed}) + "\n")
    renderer = unreliable_renderer(p.unreliable_rate, p.num_frames, p.size)
    summary = render_prompts(folder / "prompts.jsonl", folder, backend=renderer, fps=p.fps, progress=progress)
    return {"synthetic_ie_unreliable_clips": summary.total_rows, "unreliable_rows": len(failed)}


def build_demo(out: str | Path, preset: str = "demo", *, progress: bool = True, workers: int = 1) -> dict:
    """Build (or finish building) the demo dataset under `out`; returns the DONE.json content.

    Args:
        out: output folder.
        preset: "smoke" (seconds; for tests) or "demo" (about a minute on 2 CPU cores).
        progress: show progress bars.
        workers: processes rendering its parts (the real style, each synthetic set, the web split) side by
            side; the clips are the same for any number (each is drawn from its own seed).

    Raises:
        DemoError: unknown preset, or `out` already holds a build with different parameters.
    """
    if preset not in PRESETS:
        raise DemoError(f"unknown demo preset {preset!r}; choose one of {', '.join(PRESETS)}")
    p = PRESETS[preset]
    out = Path(out)
    params = {"preset": preset, **asdict(p), "layout": LAYOUT}
    params["strategies"] = list(p.strategies)
    done_path, plan_path = out / "DONE.json", out / "build.json"
    if done_path.exists():
        done = json.loads(done_path.read_text(encoding="utf-8"))
        if done.get("params") == params:
            return done

    def sizes(build: dict) -> dict:  # an older list layout of the same sizes is completed in place
        return {k: v for k, v in build.items() if k != "layout"}

    if plan_path.exists() and sizes(json.loads(plan_path.read_text(encoding="utf-8"))) != sizes(params):
        raise DemoError(
            f"{out} already holds a demo build with other parameters ({plan_path}); "
            "pass another --out or delete that folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(plan_path, json.dumps(params, indent=2) + "\n")
    start = time.perf_counter()

    labels = demo_labels()
    write_labels(out / "labels.csv", [label.name for label in labels])
    parts = [(_build_web, ())] if p.web_per_class > 0 else []  # the largest part first
    parts += [(_build_real, ()), *((_build_synthetic, (s,)) for s in p.strategies)]
    parts += [(_build_unreliable, ())] if p.unreliable_rate > 0 else []
    counts: dict[str, int] = {}
    if workers > 1:  # the parts write disjoint folders; each process renders one part at a time
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(part, out, p, progress, *args) for part, args in parts]
            for future in futures:
                counts.update(future.result())
    else:
        for part, args in parts:
            counts.update(part(out, p, progress, *args))

    done = {
        "params": params,
        "classes": [label.name for label in labels],
        "counts": counts,
        "seconds": round(time.perf_counter() - start, 2),
    }
    write_text_atomic(done_path, json.dumps(done, indent=2) + "\n")
    return done
