"""Task protocols: the registry, the phase runner, and one module per protocol.

Every module of this package that is not infrastructure (registry, runner, report, metrics, __main__) is a
protocol module and is imported here, so its `register_task` calls run: adding a task is one module (or a
`register_task` in an existing one) plus one `tasks/<name>.yaml`, with no edit here.
"""

import importlib
import pkgutil

from tasks.registry import Phase, Split, TaskSpec, Test, get_task, list_tasks, register_task

_INFRASTRUCTURE = {"registry", "runner", "report", "metrics", "__main__"}
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module not in _INFRASTRUCTURE:
        importlib.import_module(f"tasks.{_module}")

__all__ = ["Phase", "Split", "TaskSpec", "Test", "get_task", "list_tasks", "register_task"]
