"""The terminal progress of batch commands (screenshot --all-series, project create/add)."""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    """A bar on a terminal; plain log lines when output is piped or redirected."""

    def __init__(self, total: int, stream: Any = None) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def step(self, message: str) -> None:
        self.done += 1
        if self.tty:
            width = 30
            filled = round(width * self.done / self.total)
            bar = "#" * filled + "-" * (width - filled)
            from mprviewer.terminal import control

            control(self.stream, "\r\033[K")
            self.stream.write(f"[{bar}] {self.done}/{self.total} {message}")
            if self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()
        else:
            print(f"[{self.done}/{self.total}] {message}", flush=True)
