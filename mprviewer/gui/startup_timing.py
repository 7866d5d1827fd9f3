"""How long the viewer took to start, step by step (``mprviewer view --timing`` and the
start-up benchmark read these), in a module of its own so the window can note its steps
without importing the application's ``run``."""

from __future__ import annotations

import os
import time

_IMPORTED_AT = time.perf_counter()


def seconds_since_process_start() -> float:
    """Wall time since this process started (Linux /proc), else since this module loaded."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / ticks  # field 22 of stat: start time after boot
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - started)
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED_AT


_MARKS: dict[str, float] = {}


def mark(name: str) -> None:
    """Note when the start-up reached ``name`` (the first time only): ``--timing`` prints
    these steps, so a slow start shows where the time went."""
    if name not in _MARKS:
        _MARKS[name] = seconds_since_process_start()


def startup_marks() -> dict[str, float]:
    """Seconds after process start of each step noted by ``mark``, in the order reached."""
    return dict(sorted(_MARKS.items(), key=lambda item: item[1]))
