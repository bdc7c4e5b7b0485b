"""The task registry: every experiment protocol of synthact by name.

A task is a `TaskSpec`: the protocol's phases (what trains the model in each, from which list) and the
real list it is tested on. Names are unique; each registered name has a runnable `tasks/<name>.yaml`,
and the name is also the run's folder under `--task.root`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Phase:
    """One training phase of a protocol."""

    name: str  # run sub-folder and TensorBoard version, e.g. "pretrain"
    source: Literal["real", "synthetic"]  # what trains the model in this phase
    train_list: str | None = None  # real annotation list (relative to data.split_dir) when source == "real"


@dataclass(frozen=True)
class TaskSpec:
    """A protocol: phases run in order, then a test on `test_list`."""

    name: str
    protocol: str  # few_shot | zero_shot | base2novel | long_tail | anomaly
    dataset: str  # the real dataset the protocol is defined on, e.g. hmdb51
    description: str
    phases: tuple[Phase, ...]
    test_list: str  # real annotation list (relative to data.split_dir)
    monitor: str = "val/top1"  # metric that picks the best checkpoint of a validated phase (mode max)


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
