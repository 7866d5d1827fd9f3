"""Wall time, CPU time and peak resident memory of one call, in this process.

Peak memory: tracemalloc sees only Python's allocator, not what numpy, GDCM, VTK or the JPEG
2000 decoder allocate in C, so we read the kernel's own numbers. Before the call we collect
garbage, hand freed heap pages back to the system (glibc ``malloc_trim``), note VmRSS as the
baseline and reset the process's high-water mark by writing "5" to /proc/self/clear_refs
(Linux 4.0+). After the call, VmHWM minus the baseline is the peak the call added, exact and
without sampling. Where clear_refs cannot be written, a thread samples VmRSS every
millisecond instead (it can miss short spikes; the report says which method ran).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass
class Sample:
    seconds: float
    cpu_seconds: float
    peak_bytes: int  # resident memory above the baseline at the worst moment


def _status_kb(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def _trim_heap() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _can_reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _status_kb("VmHWM") > 0


RESET_PEAK = _STATUS.exists() and _can_reset_peak()
METHOD = (
    "peak RSS above baseline: VmHWM after the call minus VmRSS before it, with the "
    "high-water mark reset through /proc/self/clear_refs just before the call"
    if RESET_PEAK
    else "peak RSS above baseline: a thread sampling /proc/self/status VmRSS every 1 ms"
)


class _Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kb = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak_kb = max(self.peak_kb, _status_kb("VmRSS"))
            time.sleep(0.001)


def measure(fn: Callable[[], Any]) -> tuple[Sample, Any]:
    """Run ``fn()`` once; return its Sample and its result (kept alive until measured)."""
    _trim_heap()
    base_kb = _status_kb("VmRSS")
    sampler = None
    if RESET_PEAK:
        _CLEAR_REFS.write_text("5")
    else:
        sampler = _Sampler()
        sampler.start()
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = fn()
    t1, cpu1 = time.perf_counter(), time.process_time()
    if sampler is not None:
        sampler.stop.set()
        sampler.join()
        peak_kb = max(sampler.peak_kb, _status_kb("VmRSS"))
    else:
        peak_kb = _status_kb("VmHWM")
    return Sample(t1 - t0, cpu1 - cpu0, max(0, peak_kb - base_kb) * 1024), result


def median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return float("nan")
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
