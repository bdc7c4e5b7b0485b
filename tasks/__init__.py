"""Task protocols: the registry, the phase runner, and one module per protocol (imported explicitly)."""

from tasks import anomaly  # noqa: F401  (registers anomaly_ucf_crime)
from tasks import few_shot  # noqa: F401  (registers few_shot_k{2,4,8,16})
from tasks.registry import Phase, TaskSpec, get_task, list_tasks, register_task

__all__ = ["Phase", "TaskSpec", "get_task", "list_tasks", "register_task"]
