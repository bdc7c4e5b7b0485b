"""Progress bars that stay readable in a log file or a pipe: the one tqdm every command-line tool uses.

On a terminal `Progress` is tqdm. Written anywhere else (`2>&1 | tee log`, a SLURM log, a subprocess pipe) a
tqdm bar is one endless line of `\\r`-separated redraws; there `Progress` writes one plain line instead each time
another `line_every` percent is done, and one at the end:

    render 0/1:  31% 10/32 [00:00<00:00, 96.73clip/s]

Kept in `datamodules` because both programs use it (`generation` may import `datamodules`, not the reverse).
"""

from __future__ import annotations

import sys

from tqdm import tqdm


def is_terminal(stream) -> bool:
    """Whether `stream` is an interactive terminal (False for files, pipes and streams without `isatty`)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress(tqdm):
    """tqdm on a terminal; elsewhere a plain line every `line_every` percent of `total` (every `mininterval`,
    default 30 s, without a total) and at the end, never a `\\r`.

    Args:
        line_every: percent of the total between two plain lines when not on a terminal.
        *args, **kwargs: tqdm's.
    """

    def __init__(self, *args, line_every: int = 10, **kwargs):
        self._lines = not is_terminal(kwargs.get("file") or sys.stderr)
        self._line_every = line_every
        self._next_line = line_every  # percent at which the next plain line is due
        self._printed = -1  # `n` of the last plain line
        if self._lines:
            desc = f"{kwargs['desc']}: " if kwargs.get("desc") else ""
            total = kwargs.get("total")
            if total is None and args and hasattr(args[0], "__len__"):
                total = len(args[0])
            counts = (
                "{percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, " if total else "{n_fmt} [{elapsed}, "
            )
            kwargs.setdefault("bar_format", desc + counts + "{rate_fmt}{postfix}]")
            if not total:
                kwargs.setdefault("mininterval", 30.0)
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> None:
        if not self._lines:
            return super().display(msg, pos)
        if self.total:
            percent = 100 * self.n / self.total
            if self.n < self.total and (self.n == 0 or percent < self._next_line):
                return
            self._next_line = (int(percent) // self._line_every + 1) * self._line_every
        elif self.n == 0:
            return
        self._line()

    def _line(self) -> None:
        if self.n != self._printed:
            self.fp.write(self.__str__() + "\n")
            self.fp.flush()
            self._printed = self.n

    def close(self) -> None:
        if self._lines and not self.disable:
            self._line()  # the end, unless just printed
            self.disable = True  # the rest of tqdm's close redraws a terminal line
            self._decr_instances(self)
        super().close()
