"""QApplication set-up and the ``run()`` behind ``mprviewer view``."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from mprviewer.errors import MprviewerError
from mprviewer.gui.startup_timing import mark, seconds_since_process_start, startup_marks

log = logging.getLogger(__name__)

def check_display() -> None:
    """Fail with a clear message instead of Qt's abort when there is no display."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal", "vnc"))
    ):
        raise MprviewerError(
            "no display to open the window on (DISPLAY is not set); run it under a desktop "
            "session or 'xvfb-run', or use 'mprviewer screenshot' to render without a display"
        )


def _dark_palette(app: Any) -> None:
    """A dark theme: images are judged against black, a bright frame around them dazzles."""
    from PyQt5.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    palette = QPalette()
    base, window, text = QColor(30, 30, 30), QColor(45, 45, 48), QColor(220, 220, 220)
    for role, color in (
        (QPalette.Window, window),
        (QPalette.WindowText, text),
        (QPalette.Base, base),
        (QPalette.AlternateBase, QColor(40, 40, 42)),
        (QPalette.ToolTipBase, QColor(60, 60, 64)),
        (QPalette.ToolTipText, text),
        (QPalette.Text, text),
        (QPalette.Button, window),
        (QPalette.ButtonText, text),
        (QPalette.BrightText, QColor(255, 80, 80)),
        (QPalette.Highlight, QColor(50, 110, 180)),
        (QPalette.HighlightedText, QColor(255, 255, 255)),
        (QPalette.Link, QColor(90, 160, 230)),
    ):
        palette.setColor(role, color)
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        palette.setColor(QPalette.Disabled, role, QColor(120, 120, 120))
    app.setPalette(palette)


def _default_gl_format() -> None:
    """Install the GL format the VTK widgets ask for before the shared context exists.

    Each QtInteractor sets this default itself; doing it first keeps the shared context
    compatible with every view (and Qt quiet about formats changing under it).
    """
    from PyQt5.QtGui import QSurfaceFormat

    fmt = QSurfaceFormat()
    fmt.setRenderableType(QSurfaceFormat.OpenGL)
    fmt.setProfile(QSurfaceFormat.CoreProfile)
    fmt.setVersion(3, 2)
    fmt.setSwapBehavior(QSurfaceFormat.DoubleBuffer)
    for setter in (fmt.setRedBufferSize, fmt.setGreenBufferSize, fmt.setBlueBufferSize,
                   fmt.setDepthBufferSize, fmt.setAlphaBufferSize):
        setter(8)
    fmt.setStencilBufferSize(0)
    fmt.setSamples(0)
    QSurfaceFormat.setDefaultFormat(fmt)


def ensure_app() -> Any:
    """The QApplication, created once with the attributes VTK's Qt widgets need."""
    from PyQt5.QtCore import QCoreApplication, Qt
    from PyQt5.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        _default_gl_format()
        QCoreApplication.setAttribute(Qt.AA_ShareOpenGLContexts)
        QCoreApplication.setAttribute(Qt.AA_UseHighDpiPixmaps)
        app = QApplication([sys.argv[0] if sys.argv else "mprviewer"])
        app.setApplicationName("mprviewer")
        app.setOrganizationName("mprviewer")
        _dark_palette(app)
    return app


_QUIET_QT_MESSAGES = (
    # Each VTK widget re-installs the GL format; Mesa returns a newer version than the one
    # asked for, so Qt warns about a difference that does not matter here.
    "Setting a new default format with a different version or profile",
)


def _quiet_qt_messages() -> None:
    """Print Qt's messages as usual, minus the known-harmless ones above."""
    from PyQt5.QtCore import qInstallMessageHandler

    def handler(_kind: Any, _context: Any, message: str) -> None:
        if not any(text in message for text in _QUIET_QT_MESSAGES):
            print(message, file=sys.stderr)

    qInstallMessageHandler(handler)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'1600x1000' -> (1600, 1000)."""
    if not text:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise MprviewerError(f"--size {text!r}: use WIDTHxHEIGHT, for example 1600x1000") from exc
    if w < 400 or h < 300:
        raise MprviewerError(f"--size {text!r}: the window needs at least 400x300 pixels")
    return w, h


def apply_display_options(window: Any, display: dict[str, Any]) -> None:
    """Command-line display choices (preset, threshold, overlay, volume rendering)."""
    session = window.session
    if session.state is None:
        return
    if display.get("preset"):
        window.controls.apply_preset(display["preset"])
    if display.get("threshold") is not None:
        session.set_threshold(display["threshold"])
    if display.get("overlay"):
        session.set_threshold_overlay(True)
    if display.get("volume_rendering"):
        session.set_volume_opacity(True)


FRAME_ALLOWANCE = (16, 48)  # window frame and title bar when the window manager has not said


def fit_to_screen(window: Any, available: Any) -> None:
    """Size a new window to at most 1600x1000 and to the screen's free area including the
    frame the window manager adds, so the status bar is on screen; place it at the top left."""
    frame = window.frameGeometry()
    inner = window.geometry()
    extra_w = frame.width() - inner.width() or FRAME_ALLOWANCE[0]
    extra_h = frame.height() - inner.height() or FRAME_ALLOWANCE[1]
    width = max(320, min(1600, available.width() - extra_w))
    height = max(240, min(1000, available.height() - extra_h))
    window.resize(width, height)
    window.move(available.topLeft())


def run(
    source: Any = None,
    series: int | None = None,
    size: tuple[int, int] | None = None,
    screenshot: str | Path | None = None,
    timing: bool = False,
    display: dict[str, Any] | None = None,
    project: str | None = None,
    reader: str | None = None,
    adjudicate: bool = False,
    grid: str = "patient",
) -> int:
    """Open the window (on ``source`` when given) and run the event loop; returns the exit code.

    With ``project`` (a labeling project folder) the window shows its worklist and opens the
    first study ``reader`` has not finished; marks then go to the project.

    With ``screenshot``, the window saves a PNG once the study is shown and quits (exit 3 if
    the study cannot be opened). ``grid``: an oblique series is shown resliced onto the
    patient's axes ("patient") or on its own acquisition grid ("acquisition").
    """
    mark("run")
    check_display()
    _quiet_qt_messages()
    app = ensure_app()
    mark("qt application")
    from PyQt5.QtCore import Qt, QTimer

    from mprviewer.gui.main_window import MainWindow

    mark("window module imported")
    window = MainWindow(source or None, series, panels_after_first_frame=True)
    mark("window built")
    window.setAttribute(Qt.WA_DeleteOnClose)
    if project is not None and adjudicate:
        from mprviewer.gui.adjudication_panel import install_adjudication

        install_adjudication(window, project, reader)  # every reader's marks, final labels
    elif project is not None:
        from mprviewer.gui.worklist_panel import install_worklist

        install_worklist(window, project, reader)  # worklist panel, label keys, statuses
    else:
        from mprviewer.gui.annotation_controller import install_annotations
        from mprviewer.gui.measure_tools import install_measure_tools
        from mprviewer.gui.worklist_panel import install_open_project_action

        install_annotations(window)  # annotations panel, keys, File menu entries, autosave
        install_measure_tools(window)  # ruler, ROI, hematoma volume, thick slab, cine
        install_open_project_action(window)
    from mprviewer.gui.oblique_tools import install_oblique_tools

    install_oblique_tools(window, grid)  # patient axes / acquisition grid, oblique reformat
    mark("tools installed")
    if size is not None:
        window.resize(*size)
    else:
        fit_to_screen(window, app.primaryScreen().availableGeometry())
    outcome: dict[str, int] = {"code": 0}

    def report_first_frame(seconds: float) -> None:
        if "process_to_first_frame" in window.timings:
            return  # a later volume (an oblique series' reslice, another series)
        total = seconds_since_process_start()
        window.timings["process_to_first_frame"] = total
        mark("first 2D frame")
        if timing:
            steps = ", ".join(f"{name} {at:.2f}" for name, at in startup_marks().items())
            print(f"mprviewer: start-up steps (s after process start): {steps}",
                  file=sys.stderr)
            print(
                f"mprviewer: volume read {total - seconds:.2f} s, first 2D frame "
                f"{total:.2f} s after process start",
                file=sys.stderr,
            )

    window.first_frame_shown.connect(report_first_frame)
    if display:
        applied = {"done": False}

        def apply_display(_volume: Any) -> None:
            if not applied["done"]:
                applied["done"] = True
                apply_display_options(window, display)

        window.volume_changed.connect(apply_display)

    if screenshot is not None:
        target = Path(screenshot)

        def take_when_3d_ready(_seconds: float) -> None:
            def attempt(tries: int = 0) -> None:
                if not window.is_3d_ready and tries < 100:
                    QTimer.singleShot(100, lambda: attempt(tries + 1))
                    return
                QTimer.singleShot(300, finish)

            attempt()

        def finish() -> None:
            tools = getattr(window, "oblique_tools", None)
            if outcome.get("shot") or not window.is_3d_ready or (tools and tools.reslicing):
                return  # taken already, or another volume (a reslice) is on its way
            outcome["shot"] = 1
            saved = window.save_screenshot(target)
            print(f"mprviewer: wrote {saved}", file=sys.stderr)
            window.close()

        def fail(message: str) -> None:
            print(f"mprviewer: {message}", file=sys.stderr)
            outcome["code"] = 3
            window.close()

        window.first_frame_shown.connect(take_when_3d_ready)
        window.load_failed.connect(fail)
        window.runner.cancelled.connect(lambda: fail("loading was cancelled"))

    window.show()
    mark("window shown")
    # Python runs its signal handlers (SIGTERM/SIGHUP: remove temporary folders) only when it
    # gets control; a timer hands it control while the Qt event loop waits.
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(500)
    app.exec_()
    return outcome["code"]
