"""Start-up: fresh processes, timed from the moment they are spawned.

- ``mprviewer screenshot demo -o x.png`` with no display: spawn to the PNG's last write
  (its modification time), and spawn to exit.
- ``mprviewer view demo --timing`` under an Xvfb server started here (so X start-up is not
  counted): the viewer prints ``first 2D frame N s after process start`` on stderr once all
  three 2D views have swapped a frame (it measures from its own process start time in /proc);
  we also note the spawn-to-line time seen from here, then stop the viewer.
- Its peer, alternating with it round by round under the same Xvfb: ``BARE_WINDOW``, a bare
  script that imports PyQt5 and pyvistaqt, puts one pyvistaqt QtInteractor
  (multi_samples=0) in a QMainWindow and shows one vtkImageActor slice (the middle axial one,
  at the series' window) of the same demo volume, read with ``numpy.load`` from a ``.npy``
  saved once from mprviewer's own load of the demo (the cheapest read there is). It reports
  process start (/proc, as the viewer does) to its first swapped frame.

All use a private MPRVIEWER_HOME under the benchmark data folder, so the demo zip is built
once (during an untimed warm-up run) and every timed run starts from the same cache. Python's
bytecode goes to a cache of its own (PYTHONPYCACHEPREFIX under the data folder, written by
the warm-up runs), so no process pays for compiling its modules, as none does once installed.
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
STEPS = re.compile(r"start-up steps \(s after process start\): (.*)$")
TARGET_RATIO = 1.25  # first 2D frame at most this many times the bare window's
SECTION = "## Start-up"

BARE_WINDOW = '''\
"""A bare viewer: one vtkImageActor slice in a pyvistaqt QtInteractor in a QMainWindow.

python bare_window.py VOLUME.npy CENTER WIDTH: prints the seconds from process start (/proc) to
its first swapped frame on stderr, then keeps the window open until it is stopped.
"""
import os
import sys
import time

_LOADED = time.perf_counter()


def since_start():
    try:
        with open("/proc/self/stat") as f:
            started = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as f:
            return float(f.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _LOADED


steps = {"script": since_start()}
import numpy as np
from PyQt5.QtWidgets import QApplication, QMainWindow
from pyvistaqt import QtInteractor
from vtkmodules.util.numpy_support import numpy_to_vtk
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkRenderingCore import vtkImageActor

steps["imports"] = since_start()
app = QApplication(sys.argv[:1])
window = QMainWindow()
view = QtInteractor(window, multi_samples=0, auto_update=False)
window.setCentralWidget(view)
window.resize(1600, 1000)
volume = np.load(sys.argv[1])  # (k, j, i)
image = vtkImageData()
image.SetDimensions(volume.shape[2], volume.shape[1], volume.shape[0])
image.GetPointData().SetScalars(numpy_to_vtk(volume.reshape(-1), deep=False))
k = volume.shape[0] // 2
actor = vtkImageActor()
actor.GetMapper().SetInputData(image)
actor.SetDisplayExtent(0, volume.shape[2] - 1, 0, volume.shape[1] - 1, k, k)
actor.GetProperty().SetColorLevel(float(sys.argv[2]))
actor.GetProperty().SetColorWindow(float(sys.argv[3]))
view.renderer.AddActor(actor)
view.renderer.ResetCamera()
steps["window built"] = since_start()


def first_frame():
    view.frameSwapped.disconnect(first_frame)
    total = since_start()
    steps["window shown"] = shown
    steps["first frame"] = total
    text = ", ".join(f"{name} {at:.2f}" for name, at in steps.items())
    print(f"bare window: start-up steps (s after process start): {text}", file=sys.stderr)
    print(f"bare window: first 2D frame {total:.3f} s after process start", file=sys.stderr,
          flush=True)


view.frameSwapped.connect(first_frame)
window.show()
shown = since_start()
view.render()
sys.exit(app.exec_())
'''


@dataclass
class StartupRow:
    name: str
    seconds: float | None
    note: str = ""
    spread: tuple[float, float] | None = None  # lowest and highest run


@dataclass
class PairedFirstFrame:
    """The viewer's first 2D frame and the bare window's, alternating in one run."""

    viewer: list[float]
    bare: list[float]
    viewer_steps: dict[str, float]  # median seconds after process start per step
    bare_steps: dict[str, float]
    note: str = ""

    @property
    def ratios(self) -> list[float]:
        return [v / b for v, b in zip(self.viewer, self.bare, strict=True) if b > 0]

    @property
    def ratio(self) -> float:
        return median(self.viewer) / median(self.bare)

    @property
    def met(self) -> bool:
        return self.ratio <= TARGET_RATIO


LAST_PAIR: list[PairedFirstFrame] = []  # the pair of the last run_startup, for the report


def _env(home: Path, display: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["MPRVIEWER_HOME"] = str(home)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(home.parent / "pycache")
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


def first_frame_once(home: Path, display: str, timeout: float = 120.0,
                     cmd: list[str] | None = None,
                     steps: list[dict[str, float]] | None = None) -> tuple[float, float]:
    """(first frame as the process reports it, spawn -> that line seen here) in seconds;
    the start-up steps it prints before go into ``steps``."""
    cmd = cmd or [sys.executable, "-m", "mprviewer", "view", "demo", "--timing"]
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
            found = STEPS.search(line)
            if found and steps is not None:
                steps.append(_parse_steps(found.group(1)))
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


def _parse_steps(text: str) -> dict[str, float]:
    """'run 0.30, window shown 1.20' -> {'run': 0.3, 'window shown': 1.2}."""
    steps: dict[str, float] = {}
    for item in text.split(", "):
        name, _, at = item.rpartition(" ")
        try:
            steps[name] = float(at)
        except ValueError:
            continue
    return steps


def _median_steps(runs: list[dict[str, float]]) -> dict[str, float]:
    """Median time of each step over the runs, in the order of the steps' medians."""
    names = {name for run in runs for name in run}
    medians = {name: median([run[name] for run in runs if name in run]) for name in names}
    return dict(sorted(medians.items(), key=lambda item: item[1]))


def save_demo_volume(home: Path) -> tuple[Path, float, float]:
    """The demo series mprviewer shows first, as a .npy for the bare window (built once,
    untimed, with the demo zip), and its window (center, width)."""
    out = home.parent / "demo-volume.npy"
    script = (
        "import sys, numpy as np\n"
        "from mprviewer.session import load_source\n"
        "v = load_source('demo', None, None).volume\n"
        "np.save(sys.argv[1], np.ascontiguousarray(v.array))\n"
        "c, w = v.window or (40.0, 400.0)\n"
        "print(c, w)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(out)], env=_env(home, None),
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"saving the demo volume failed: {tail[0]}")
    center, width = (float(v) for v in proc.stdout.split()[-2:])
    return out, center, width


VIEWER_NAME = "`mprviewer view demo`: process start to first 2D frame (Xvfb)"
BARE_NAME = ("bare PyQt5 + pyvistaqt + vtkImageActor window (one slice of the demo volume "
             "from a .npy): process start to first frame (Xvfb)")


def bench_first_frame(home: Path, reps: int, log=print) -> list[StartupRow]:
    """The viewer's first 2D frame and the bare window's, alternating round by round."""
    name = VIEWER_NAME
    if shutil.which("Xvfb") is None:
        return [StartupRow(name, None, "not measured (Xvfb is not installed)")]
    try:
        import PyQt5  # noqa: F401
    except ImportError:
        return [StartupRow(name, None, "not measured (PyQt5 is not installed)")]
    try:
        npy, center, width = save_demo_volume(home)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return [StartupRow(name, None, f"not measured ({exc})")]
    bare_script = home.parent / "bare_window.py"
    bare_script.write_text(BARE_WINDOW)
    bare_cmd = [sys.executable, str(bare_script), str(npy), str(center), str(width)]
    try:
        xvfb = Xvfb()
    except (OSError, RuntimeError) as exc:
        return [StartupRow(name, None, f"not measured (Xvfb failed: {exc})")]
    viewer: list[tuple[float, float]] = []
    bare: list[tuple[float, float]] = []
    viewer_steps: list[dict[str, float]] = []
    bare_steps: list[dict[str, float]] = []
    try:
        first_frame_once(home, xvfb.display)  # warm-up: demo cache, font and bytecode caches
        first_frame_once(home, xvfb.display, cmd=bare_cmd)
        for n in range(reps):
            order = ("viewer", "bare") if n % 2 == 0 else ("bare", "viewer")
            for who in order:
                if who == "viewer":
                    viewer.append(first_frame_once(home, xvfb.display, steps=viewer_steps))
                else:
                    bare.append(first_frame_once(home, xvfb.display, cmd=bare_cmd,
                                                 steps=bare_steps))
            log(f"  round {n + 1}: viewer {viewer[-1][0]:.2f} s, bare window "
                f"{bare[-1][0]:.2f} s")
    except (RuntimeError, OSError) as exc:
        return [StartupRow(name, None, f"not measured ({exc})")]
    finally:
        xvfb.stop()
    pair = PairedFirstFrame([r[0] for r in viewer], [r[0] for r in bare],
                            _median_steps(viewer_steps), _median_steps(bare_steps),
                            note=f"window {center:g}/{width:g}")
    LAST_PAIR[:] = [pair]
    seen = median([r[1] for r in viewer])
    log(f"  first frame: viewer {median(pair.viewer):.2f} s, bare window "
        f"{median(pair.bare):.2f} s, {pair.ratio:.2f}x")
    return [
        StartupRow(name, median(pair.viewer),
                   "reported by the viewer from its /proc start time once the three 2D views "
                   f"have swapped a frame; the launcher saw the line after {seen:.2f} s",
                   spread=(min(pair.viewer), max(pair.viewer))),
        StartupRow(BARE_NAME, median(pair.bare),
                   "reported by the script from its /proc start time at its first swapped "
                   "frame; one QtInteractor (multi_samples=0), window 1600x1000",
                   spread=(min(pair.bare), max(pair.bare))),
    ]


def run_startup(home: Path, reps: int, log=print) -> list[StartupRow]:
    home.mkdir(parents=True, exist_ok=True)
    LAST_PAIR.clear()
    return [*bench_screenshot(home, reps, log), *bench_first_frame(home, reps, log)]


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _step_gaps(steps: dict[str, float]) -> str:
    """'run 0.30 (+0.30), ...': each step's time after start and since the one before."""
    out, before = [], 0.0
    for name, at in steps.items():
        out.append(f"{name} {at:.2f} (+{at - before:.2f})")
        before = at
    return ", ".join(out)


WHY_MISSED = (
    "Both processes import PyQt5 and pyvistaqt (which brings pyvista's plotting layer and "
    "matplotlib.pyplot: most of the bare window's time). The viewer also reads the demo, in a "
    "worker thread while the main thread imports pyvistaqt and builds the views, but both are "
    "Python holding the GIL, so they take turns on one core instead of using the second. "
    "Measured in fresh processes with cached bytecode (three runs each): the demo read alone "
    "(zip directory, both series' 256 headers without pydicom, the 128 frames shown) takes "
    "0.32 s and `import pyvistaqt` alone 0.73-0.84 s; run side by side in two threads the "
    "read ends at 0.71-0.90 s and the import at 1.11-1.25 s, and one after the other the "
    "import ends at 1.03-1.12 s. The viewer also builds three 2D views, the panels and the "
    "tools before the window shows (the bare window builds one view), and its first frame "
    "draws three views; the side panel and the 3D view are shown, filled and rendered only "
    "after the first 2D frame. Closing the gap would take reading in a second process (the "
    "study, not only its pixels, handed back) and a window that imports less than pyvistaqt "
    "for its 2D views."
)


def _threads(steps: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """The viewer's steps split into its main thread's and its loading thread's."""
    main = {k: v for k, v in steps.items() if not k.startswith("load:")}
    loading = {k: v for k, v in steps.items() if k.startswith("load:")}
    return main, loading


def render_section(rows: list[StartupRow], command: str = "") -> list[str]:
    """The Start-up section of BENCHMARKS.md: the table, the paired target and its why."""
    from bench_report import load_average

    out = [SECTION, ""]
    if command:
        out += [f"Produced by `{command}` on {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; load "
                f"average at the end: {load_average()}. Fresh processes; the viewer and the "
                "bare window alternate round by round under one Xvfb at 1600x1000 after one "
                "untimed warm-up each; medians, with the lowest and highest run. Bytecode is "
                "cached for every process (as after an install).", ""]
    out += ["| what | median (s) | range (s) | note |", "|---|---:|---:|---|"]
    for row in rows:
        spread = f"{row.spread[0]:.2f}-{row.spread[1]:.2f}" if row.spread else ""
        out.append(f"| {row.name} | {_seconds(row.seconds)} | {spread} | {row.note} |")
    out.append("")
    pair = LAST_PAIR[0] if LAST_PAIR else None
    if pair is not None:
        main, loading = _threads(pair.viewer_steps)
        ratios = pair.ratios
        verdict = "**met**" if pair.met else "**not met**"
        out += [
            f"Target: the viewer's first 2D frame at most {TARGET_RATIO:g}x the bare "
            f"window's, paired in one run. Measured: **{pair.ratio:.2f}x** (ratio of the "
            f"medians; per round {min(ratios):.2f}x-{max(ratios):.2f}x): {verdict}.",
            "",
            "Where the time goes (median seconds after process start, and since the step "
            "before):",
            "",
            f"- viewer, main thread: {_step_gaps(main)}",
            f"- viewer, loading thread: {_step_gaps(loading)}",
            f"- bare window: {_step_gaps(pair.bare_steps)}",
            "",
        ]
        if not pair.met:
            over = median(pair.viewer) - TARGET_RATIO * median(pair.bare)
            figures = ""
            if "load: started" in loading and "load: done" in loading:
                figures = (f" In this run the loading thread took "
                           f"{loading['load: done'] - loading['load: started']:.2f} s.")
            out += [f"Why it is missed (by {over:.2f} s): {WHY_MISSED}{figures}", ""]
    return out


def update_section(path: Path, lines: list[str]) -> None:
    """Put the Start-up section in place of the old one in ``path`` (before the targets if
    there is none), leaving every other section as it is."""
    path = Path(path)
    old = path.read_text().splitlines() if path.exists() else []
    if SECTION in old:
        start = old.index(SECTION)
        end = next((n for n in range(start + 1, len(old)) if old[n].startswith("## ")),
                   len(old))
        old[start:end] = lines
    else:
        at = next((n for n, line in enumerate(old) if line == "## Targets"), len(old))
        old[at:at] = lines
    path.write_text("\n".join(old) + "\n")
