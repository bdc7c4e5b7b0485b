"""Task protocols: the registry, the phase runner, and one module per protocol (imported explicitly)."""

from tasks import anomaly  # noqa: F401  (registers anomaly_ucf_crime)
from tasks import base2novel  # noqa: F401  (registers base2novel_{ucf101,hmdb51})
from tasks import few_shot  # noqa: F401  (registers few_shot_k{2,4,8,16}, few_shot_ucf101_k*, loss ablation)
from tasks import long_tail  # noqa: F401  (registers long_tail_{ucf101,hmdb51})
from tasks import zero_shot  # noqa: F401  (registers zero_shot_{ucf101,hmdb51,k600})
from tasks.registry import Phase, Split, TaskSpec, Test, get_task, list_tasks, register_task

__all__ = ["Phase", "Split", "TaskSpec", "Test", "get_task", "list_tasks", "register_task"]
