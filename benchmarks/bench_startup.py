"""Start-up: fresh processes, timed from the moment they are spawned.

- ``mprviewer screenshot demo -o x.png`` with no display: spawn to the PNG's last write
  (its modification time), and spawn to exit.
- ``mprviewer view demo --timing`` under an Xvfb server started here (so X start-up is not
  counted): the viewer prints ``first 2D frame N s after process start`` on stderr once all
  three 2D views have swapped a frame (it measures from its own process start time in /proc);
  we also note the spawn-to-line time seen from here, then stop the viewer.

Both use a private MPRVIEWER_HOME under the benchmark data folder, so the demo zip is built
once (during an untimed warm-up run) and every timed run starts from the same cache.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench_measure import median

FIRST_FRAME = re.compile(
    r"first 2D frame ([0-9.]+) s after process start|first-frame-ms=([0-9.]+)"
)


@dataclass
class StartupRow:
    name: str
    seconds: float | None
    note: str = ""


def _env(home: Path, display: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["MPRVIEWER_HOME"] = str(home)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    if display is not None:
        env["DISPLAY"] = display
    return env


def _has_command(name: str) -> bool:
    return importlib.util.find_spec(f"mprviewer.commands.{name}") is not None


def screenshot_once(home: Path, out: Path) -> tuple[float, float]:
    """(spawn -> PNG written, spawn -> exit) in seconds for one run."""
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "mprviewer", "screenshot", "demo", "-o", str(out)]
    start_wall = time.time()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=_env(home, None), capture_output=True, text=True, timeout=300)
    exit_s = time.perf_counter() - t0
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"exit {proc.returncode}: {tail[0]}")
    with open(out, "rb") as fh:
        if fh.read(8) != b"\x89PNG\r\n\x1a\n":
            raise RuntimeError(f"{out} is not a PNG")
    return out.stat().st_mtime_ns / 1e9 - start_wall, exit_s


def bench_screenshot(home: Path, reps: int, log=print) -> list[StartupRow]:
    name = "`mprviewer screenshot demo -o x.png`: start to PNG"
    if not _has_command("screenshot"):
        return [StartupRow(name, None, "not measured (no `screenshot` command yet)")]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.png"
        try:
            screenshot_once(home, out)  # warm-up: builds the demo zip into the cache
            runs = [screenshot_once(home, out) for _ in range(reps)]
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            return [StartupRow(name, None, f"not measured (the command failed: {exc})")]
    to_png = median([r[0] for r in runs])
    to_exit = median([r[1] for r in runs])
    log(f"  screenshot: {to_png:.2f} s to PNG, {to_exit:.2f} s to exit")
    return [StartupRow(name, to_png, f"process exit after {to_exit:.2f} s; no display (EGL)")]


class Xvfb:
    """A private X server for the viewer; stopped by its own process id."""

    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        self.proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24",
             "-nolisten", "tcp"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.stop()
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def first_frame_once(home: Path, display: str, timeout: float = 120.0) -> tuple[float, float]:
    """(first frame as the viewer reports it, spawn -> that line seen here) in seconds."""
    cmd = [sys.executable, "-m", "mprviewer", "view", "demo", "--timing"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=_env(home, display), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    reported: float | None = None
    seen = 0.0
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip())
            match = FIRST_FRAME.search(line)
            if match:
                seen = time.perf_counter() - t0
                reported = (float(match.group(1)) if match.group(1)
                            else float(match.group(2)) / 1000.0)
                break
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if reported is None:
        raise RuntimeError("the viewer never reported its first frame; last output: "
                           + (lines[-1] if lines else f"none (exit {proc.returncode})"))
    return reported, seen


def bench_first_frame(home: Path, reps: int, log=print) -> list[StartupRow]:
    name = "`mprviewer view demo`: process start to first 2D frame (Xvfb)"
    if shutil.which("Xvfb") is None:
        return [StartupRow(name, None, "not measured (Xvfb is not installed)")]
    try:
        import PyQt5  # noqa: F401
    except ImportError:
        return [StartupRow(name, None, "not measured (PyQt5 is not installed)")]
    try:
        xvfb = Xvfb()
    except (OSError, RuntimeError) as exc:
        return [StartupRow(name, None, f"not measured (Xvfb failed: {exc})")]
    try:
        first_frame_once(home, xvfb.display)  # warm-up: demo cache, font cache
        runs = [first_frame_once(home, xvfb.display) for _ in range(reps)]
    except (RuntimeError, OSError) as exc:
        return [StartupRow(name, None, f"not measured ({exc})")]
    finally:
        xvfb.stop()
    reported = median([r[0] for r in runs])
    seen = median([r[1] for r in runs])
    log(f"  first frame: {reported:.2f} s (seen from the launcher after {seen:.2f} s)")
    return [StartupRow(name, reported, f"reported by the viewer from its /proc start time; "
                                       f"the launcher saw the line after {seen:.2f} s")]


def run_startup(home: Path, reps: int, log=print) -> list[StartupRow]:
    home.mkdir(parents=True, exist_ok=True)
    return [*bench_screenshot(home, reps, log), *bench_first_frame(home, reps, log)]
