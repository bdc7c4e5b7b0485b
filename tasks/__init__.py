"""Task protocols: the registry, the phase runner, and one module per protocol.

Each protocol module is imported here, explicitly, so its `register_task` calls run when `tasks` is
imported (a registration never depends on some other import having happened). Adding a protocol: one
module, one line below, one `tasks/<name>.yaml` per task.
"""

from tasks import anomaly, base2novel, demo_protocol, few_shot, long_tail, supervised, zero_shot  # noqa: F401 - registers
from tasks.registry import Phase, Split, TaskSpec, Test, get_task, list_tasks, register_task

__all__ = ["Phase", "Split", "TaskSpec", "Test", "get_task", "list_tasks", "register_task"]
