"""What rendering a label list costs with each generator: clips, GPU-hours and wall-clock on N GPUs.

The cost of a clip is the generator's s/clip at its recommended settings (`generation.t2v.GENERATORS`): measured
by this project where we have it, else the model card's documented figure (device named), else "not measured".
GPU-hours = clips x s/clip / 3600 on the device that s/clip comes from; wall-clock = GPU-hours / N GPUs (one
pipeline per GPU, `--num_shards N` or Ray, no other overhead assumed).
"""

from __future__ import annotations

from dataclasses import dataclass

from generation.t2v import GENERATORS, get_generator

# The paper's protocols at 128 clips per class (README table).
DATASETS = {"HMDB-51": 51, "UCF-101": 101, "K600": 600}


@dataclass
class PlanRow:
    """The cost of one generator for one label list."""

    generator: str
    resolution: str  # WxH x frames
    clips: int
    seconds_per_clip: float | None
    source: str  # measured / documented (device) / not measured
    gpu_hours: float | None
    wall_hours: float | None


def plan_cost(
    generator: str | None = None,
    labels: str | None = None,
    classes: int | None = None,
    videos_per_class: int = 128,
    gpus: int = 1,
) -> list[PlanRow]:
    """Clips, GPU-hours and wall-clock of rendering `videos_per_class` clips for every class.

    Args:
        generator: one of the registered generators; default: every one.
        labels: label CSV (`id,name` lines) whose classes are rendered.
        classes: number of classes instead of --labels (e.g. 600 for Kinetics-600).
        videos_per_class: clips per class (the paper: 128).
        gpus: GPUs rendering in parallel, one pipeline each.
    """
    if (labels is None) == (classes is None):
        raise ValueError("plan: give --labels FILE or --classes N (one of them)")
    if gpus < 1 or videos_per_class < 1:
        raise ValueError(f"plan: --gpus {gpus} and --videos_per_class {videos_per_class} must be >= 1")
    if labels is not None:
        from generation.prompts import labels_from_csv

        classes = len(labels_from_csv(labels))
    clips = classes * videos_per_class
    rows = []
    for g in [get_generator(generator)] if generator else GENERATORS.values():
        hours = None if g.seconds_per_clip is None else clips * g.seconds_per_clip / 3600
        rows.append(
            PlanRow(
                generator=g.name,
                resolution=f"{g.width}x{g.height}x{g.frames}",
                clips=clips,
                seconds_per_clip=g.seconds_per_clip,
                source=g.seconds_source,
                gpu_hours=hours,
                wall_hours=None if hours is None else hours / gpus,
            )
        )
    return rows


def print_plan(rows: list[PlanRow]) -> None:
    def num(x: float | None, fmt: str) -> str:
        return "not measured" if x is None else format(x, fmt)

    print(f"{'generator':<17}{'WxHxT':<15}{'clips':>8}{'s/clip':>14}{'GPU-hours':>14}{'wall-clock h':>14}  s/clip from")
    for r in rows:
        print(
            f"{r.generator:<17}{r.resolution:<15}{r.clips:>8}{num(r.seconds_per_clip, '.1f'):>14}"
            f"{num(r.gpu_hours, '.1f'):>14}{num(r.wall_hours, '.1f'):>14}  {r.source}"
        )
