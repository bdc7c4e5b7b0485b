"""The task registry: every experiment protocol of synthact by name.

A task is a `TaskSpec`: the protocol's phases (what trains the model in each, from which list and in
which label space) and the real lists it is tested on. A protocol with several splits or seeds lists them
as `Split`s: each trains its own phases (after the task's shared phases) and runs its own tests, so one
command runs e.g. zero-shot val1/val2/val3 or base-to-novel seeds 1-3. Names are unique; each registered
name has a runnable `tasks/<name>.yaml`, and the name is also the run's folder under `--task.root`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Phase:
    """One training phase of a protocol."""

    name: str  # run sub-folder and TensorBoard version, e.g. "pretrain"
    source: Literal["real", "synthetic", "mixed"]  # what trains the model in this phase
    train_list: str | None = None  # real annotation list (relative to data.split_dir) when source == "real"
    labels: str | None = None  # label set (a key of data.label_files, e.g. "base"); None: data.label_file


@dataclass(frozen=True)
class Test:
    """One test of a split: a real list in a label space; its metrics are reported under `group`."""

    name: str  # folder under the split's test/ folder and TensorBoard version
    test_list: str  # real annotation list (relative to data.split_dir)
    labels: str | None = None  # label set, as Phase.labels
    group: str = "test"  # metric prefix in the summary: test, base, novel


@dataclass(frozen=True)
class Split:
    """One split or seed: phases run after the task's shared phases (from their weights), then tests.

    Mean +- population std of each summary metric is taken over the splits of a task."""

    name: str  # run sub-folder ("" for a task with one split), e.g. "s1", "split2", "val3"
    phases: tuple[Phase, ...]
    tests: tuple[Test, ...]


@dataclass(frozen=True)
class TaskSpec:
    """A protocol: shared phases run in order, then each split's phases and tests (default: one test on
    `test_list` in the main label space)."""

    name: str
    protocol: str  # few_shot | zero_shot | base2novel | long_tail | anomaly
    dataset: str  # the real dataset the protocol is defined on, e.g. hmdb51
    description: str
    phases: tuple[Phase, ...]
    test_list: str  # real annotation list (relative to data.split_dir)
    monitor: str = "val/top1"  # metric that picks the best checkpoint of a validated phase (mode max)
    splits: tuple[Split, ...] = ()  # several splits / seeds; empty: one split testing test_list
    shots: int | None = None  # few-shot K (the report's column)
    # k400: starts from a Kinetics-400-trained model (zero-shot), unless --task.from_clip
    start: Literal["clip", "k400"] = "clip"
    # The protocol's own test metrics from the per-class accuracies, e.g. long-tail's head/tail/few means:
    # (spec, split, per_class, datamodule) -> {"test/head": ...}. Lives in the protocol's module.
    class_metrics: Callable[[TaskSpec, Split, list, Any], dict[str, float]] | None = None

    def plan(self) -> tuple[Split, ...]:
        """The splits to run: `splits`, or a single unnamed one testing `test_list`."""
        return self.splits or (Split("", (), (Test("test", self.test_list),)),)


_TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> TaskSpec:
    """Add a task; a second task with the same name is an error."""
    if spec.name in _TASKS:
        raise ValueError(f"task {spec.name!r} is already registered")
    _TASKS[spec.name] = spec
    return spec


def get_task(name: str) -> TaskSpec:
    """The registered task called `name`."""
    if name not in _TASKS:
        raise KeyError(f"unknown task {name!r}; registered tasks: {', '.join(list_tasks())}")
    return _TASKS[name]


def list_tasks() -> list[str]:
    """Names of all registered tasks, sorted."""
    return sorted(_TASKS)
