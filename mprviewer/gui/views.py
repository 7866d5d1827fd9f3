"""The four view containers: a QtInteractor each, a title bar, a slice slider, and the mouse.

2D views take every mouse and key event away from VTK (an event filter on the interactor)
and translate them into ViewerState calls and camera moves, the way radiology workstations
behave:

- left click/drag: move the other two planes through the point (crosshair);
- wheel, arrow keys, Page Up/Down, Home/End: step slices;
- right drag: window (left/right) and level (up/down);
- middle drag or Shift+left drag: pan; Ctrl+wheel, Ctrl+right drag or +/-: zoom; R: reset;
- Ctrl+left drag: turn the crosshair (oblique reformat; ``mprviewer.gui.oblique_tools``
  takes it before the view);
- double-click or F11 (focused view): maximise and restore.

VTK objects are touched only here on the GUI thread, through the render scenes and pyvista's
camera; the window calls ``close()`` on every view when it closes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from PyQt5.QtCore import QEvent, QObject, QPoint, QSignalBlocker, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QColor, QImage, QKeyEvent, QMouseEvent, QPainter, QWheelEvent
from PyQt5.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QStyle,
    QStyleOptionSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

PLANE_COLORS_HEX = {"axial": "#f24d4d", "coronal": "#59d959", "sagittal": "#f2d940", "3d": "#9ab"}
PLANE_TITLES = {"axial": "Axial", "coronal": "Coronal", "sagittal": "Sagittal", "3d": "3D"}
STEP_KEYS = {
    Qt.Key_Up: 1,
    Qt.Key_Right: 1,
    Qt.Key_Down: -1,
    Qt.Key_Left: -1,
    Qt.Key_PageUp: 10,
    Qt.Key_PageDown: -10,
}


_INTERACTOR_CLASS: Any = None


def interactor_class() -> Any:
    """QtInteractor that renders on the next paint instead of at once.

    pyvistaqt's widget renders the scene again in every paint, so an immediate render
    followed by the paint it schedules costs two frames. Deferring to ``update()`` draws each
    view once per event-loop turn, however many state changes (slice, crosshair, window)
    arrived in that turn.
    """
    global _INTERACTOR_CLASS
    if _INTERACTOR_CLASS is None:
        from pyvistaqt import QtInteractor

        class ViewInteractor(QtInteractor):  # type: ignore[misc, valid-type]
            repaint_scheduler: Any = None  # a RepaintScheduler decides when, if set

            def render(self) -> None:
                if getattr(self, "_closed", False):
                    return
                self._rendered = True
                if self.repaint_scheduler is None:
                    self.update()
                else:
                    self.repaint_scheduler.request(self)

            def render_now(self) -> None:
                """Render synchronously (screenshots of a widget that is not painted)."""
                QtInteractor.render(self)

        _INTERACTOR_CLASS = ViewInteractor
    return _INTERACTOR_CLASS


def make_interactor(parent: QWidget, multi_samples: int = 0) -> Any:
    """A QtInteractor without multisampling, auto-render timer or mesh drops."""
    # off_screen=False: a window needs a live interactor (plane widgets) even when pyvista
    # was told to render off screen (PYVISTA_OFF_SCREEN, used by scripts and tests).
    interactor = interactor_class()(
        parent, off_screen=False, multi_samples=multi_samples, auto_update=False
    )
    interactor.setAcceptDrops(False)  # drops go to the main window (open a study)
    interactor.setFocusPolicy(Qt.StrongFocus)
    interactor.setMinimumSize(120, 120)
    interactor.set_background("black")
    return interactor


def qimage_to_array(image: QImage) -> np.ndarray:
    """An (h, w, 3) uint8 RGB copy of a QImage."""
    image = image.convertToFormat(QImage.Format_RGB888)
    w, h = image.width(), image.height()
    ptr = image.constBits()
    ptr.setsize(image.byteCount())
    rows = np.frombuffer(ptr, dtype=np.uint8).reshape(h, image.bytesPerLine())
    return rows[:, : w * 3].reshape(h, w, 3).copy()


class MarkSlider(QSlider):
    """A slice slider that draws a tick at every marked slice (annotation marks)."""

    MARK_COLOR = QColor(255, 150, 40)

    def __init__(self, orientation: Qt.Orientation, parent: QWidget | None = None) -> None:
        super().__init__(orientation, parent)
        self.marks: list[int] = []
        self.mark_colors: dict[int, QColor] = {}  # slice -> its tick's colour (default orange)

    def set_marks(self, slices: Iterable[int],
                  colors: dict[int, tuple[float, float, float]] | None = None) -> None:
        """Ticks at ``slices``; ``colors`` gives a slice's tick colour (RGB in 0-1)."""
        self.marks = sorted({int(s) for s in slices})
        self.mark_colors = {int(k): QColor.fromRgbF(*rgb) for k, rgb in (colors or {}).items()}
        self.update()

    def paintEvent(self, event: Any) -> None:
        super().paintEvent(event)
        if not self.marks or self.maximum() <= self.minimum():
            return
        option = QStyleOptionSlider()
        self.initStyleOption(option)
        groove = self.style().subControlRect(
            QStyle.CC_Slider, option, QStyle.SC_SliderGroove, self
        )
        handle = self.style().subControlRect(
            QStyle.CC_Slider, option, QStyle.SC_SliderHandle, self
        )
        painter = QPainter(self)
        painter.setPen(self.MARK_COLOR)
        vertical = self.orientation() == Qt.Vertical
        length, room = (
            (groove.height(), handle.height()) if vertical else (groove.width(), handle.width())
        )
        span = length - room
        for value in self.marks:
            painter.setPen(self.mark_colors.get(value, self.MARK_COLOR))
            offset = QStyle.sliderPositionFromValue(
                self.minimum(), self.maximum(), value, span, upsideDown=vertical
            )
            if vertical:
                y = groove.top() + handle.height() // 2 + offset
                painter.drawLine(0, y, self.width(), y)
            else:
                x = groove.left() + handle.width() // 2 + offset
                painter.drawLine(x, 0, x, self.height())
        painter.end()


class ViewContainer(QWidget):
    """A title bar with a maximise button above a QtInteractor; base of 2D and 3D views."""

    maximise_requested = pyqtSignal(str)
    focused = pyqtSignal(str)

    def __init__(self, plane: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # A window of its own: Qt composes and flushes the OpenGL views per native window,
        # so painting this view redraws its own rectangle, not the whole main window.
        self.setAttribute(Qt.WA_DontCreateNativeAncestors)
        self.setAttribute(Qt.WA_NativeWindow)
        self.plane = plane
        self.session: Any = None
        self.state: Any = None  # the session's ViewerState while bound
        self.store: Any = None
        self.scene: Any = None
        self.title = QLabel(self)
        self.title.setTextFormat(Qt.RichText)
        self.info = QLabel("", self)
        self.info.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        self.info.setStyleSheet("color: #bbb;")
        self.max_button = QToolButton(self)
        self.max_button.setText("⤢")
        self.max_button.setAutoRaise(True)
        self.max_button.setToolTip("Maximise / restore this view (double-click the view, or F11)")
        self.max_button.clicked.connect(lambda: self.maximise_requested.emit(self.plane))
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 1, 2, 1)
        bar.addWidget(self.title)
        bar.addWidget(self.info, 1)
        bar.addWidget(self.max_button)
        self.bar = QWidget(self)
        self.bar.setLayout(bar)
        self.bar.setFixedHeight(22)
        self.interactor = make_interactor(self)
        self.body = QHBoxLayout()
        self.body.setContentsMargins(0, 0, 0, 0)
        self.body.setSpacing(0)
        self.body.addWidget(self.interactor, 1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(1, 1, 1, 1)
        outer.setSpacing(0)
        outer.addWidget(self.bar)
        outer.addLayout(self.body, 1)
        self.set_active(False)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)

    @property
    def plotter(self) -> Any:
        return self.interactor

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """A click on the title bar gives the view the keys (without moving the crosshair)."""
        if self.bar.geometry().contains(event.pos()):
            self.interactor.setFocus(Qt.MouseFocusReason)
            if self.state is not None and self.plane in self.state.slices:
                self.session.focus(self.plane)
            event.accept()
            return
        super().mousePressEvent(event)

    def set_active(self, active: bool) -> None:
        """Highlight the focused view's title bar."""
        color = PLANE_COLORS_HEX[self.plane]
        weight = "bold" if active else "normal"
        self.title.setText(
            f"<span style='color:{color}; font-weight:{weight}'>"
            f"{'● ' if active else ''}{PLANE_TITLES[self.plane]}</span>"
        )
        self.bar.setStyleSheet(
            "background:#2b3440;" if active else "background:#1e1e1e;"
        )

    def grab_image(self) -> np.ndarray:
        """What the view shows right now, as an (h, w, 3) RGB array (tests, screenshots)."""
        self.interactor.render()
        return qimage_to_array(self.interactor.grabFramebuffer())

    def render(self) -> None:  # type: ignore[override]
        self.interactor.render()

    def close_view(self) -> None:
        """Release the scene and the render window (window close)."""
        scheduler = getattr(self.interactor, "repaint_scheduler", None)
        if scheduler is not None:
            scheduler.forget(self.interactor)
            self.interactor.repaint_scheduler = None
        self.unbind()
        self.interactor.close()


class SliceView(ViewContainer):
    """One 2D plane: SliceScene + slider, with radiology mouse and keys (see module doc)."""

    hovered = pyqtSignal(str, object)  # plane, display index (x, y, z) or None
    key_pressed = pyqtSignal(str, int, int)  # plane, Qt key, modifiers: keys the view left alone

    WL_PIXELS_PER_RANGE = 600.0  # dragging this many pixels sweeps the whole value range

    def __init__(self, plane: str, parent: QWidget | None = None) -> None:
        super().__init__(plane, parent)
        self.slider = MarkSlider(Qt.Vertical, self)
        self.slider.setToolTip(f"{PLANE_TITLES[plane]} slice")
        self.slider.setFocusPolicy(Qt.NoFocus)
        self.slider.setEnabled(False)
        self.slider.valueChanged.connect(self._on_slider)
        self.body.addWidget(self.slider)
        self.marked: dict[int, list[str]] = {}
        self.label_colors: dict[str, tuple[float, float, float]] = {}  # as the 3D slabs'
        self._drag: dict[str, Any] | None = None
        self._wheel_rest = 0
        self._last_hover = 0.0
        self.interactor.installEventFilter(self)

    # -- binding -----------------------------------------------------------------------
    def bind(self, session: Any, store: Any) -> None:
        """Show ``store`` following the session's state (a new scene on the same interactor);
        the mouse and keys call the session."""
        from mprviewer.render.slice_scene import SliceScene

        self.unbind()
        state = session.state
        self.session, self.state, self.store = session, state, store
        self.scene = SliceScene(self.interactor, store, state, self.plane)
        state.slice_changed.connect(self._on_slice_changed)
        state.focus_changed.connect(self._on_focus_changed)
        with QSignalBlocker(self.slider):
            self.slider.setRange(0, state.grid.plane_size(self.plane) - 1)
            self.slider.setValue(state.slices[self.plane])
        self.slider.setEnabled(True)
        self.set_marked(session.marked(self.plane))
        self._update_info()
        self.set_active(state.focused_plane == self.plane)

    def set_marked(self, marked: dict[int, list[str]],
                   colors: dict[str, tuple[float, float, float]] | None = None) -> None:
        """Marked slices of this plane -> labels: ticks on the slider, frame and badge, in
        the colour of each slice's first label (``colors``: label -> RGB, as in 3D)."""
        self.marked = {int(k): list(v) for k, v in marked.items()}
        if colors is not None:
            self.label_colors = dict(colors)
        colors = self.label_colors
        ticks = {k: colors[v[0]] for k, v in self.marked.items() if v and v[0] in colors}
        self.slider.set_marks(self.marked, ticks)
        if self.scene is not None:
            self.scene.set_marked(self.marked, colors)

    def unbind(self) -> None:
        state, self.state = self.state, None
        if state is not None:
            state.slice_changed.disconnect(self._on_slice_changed)
            state.focus_changed.disconnect(self._on_focus_changed)
        scene, self.scene = self.scene, None
        if scene is not None:
            scene.close()
        self.store = None
        self.slider.setEnabled(False)
        self.info.setText("")

    # -- state -> view -----------------------------------------------------------------
    def _on_slice_changed(self, plane: str, index: int) -> None:
        if plane != self.plane:
            return
        scheduler = self.interactor.repaint_scheduler
        if scheduler is None:
            self._show_slice_number()
        else:  # with the view's picture: a drag in another view moves it later
            scheduler.with_paint(self.interactor, self._show_slice_number)

    def _show_slice_number(self) -> None:
        """The slider and the "n / total" beside the view follow the state."""
        if self.state is None:
            return
        with QSignalBlocker(self.slider):
            self.slider.setValue(self.state.slices[self.plane])
        self._update_info()

    def _on_focus_changed(self, plane: str) -> None:
        self.set_active(plane == self.plane)

    def _update_info(self) -> None:
        if self.state is None:
            return
        index = self.state.slices[self.plane]
        total = self.state.grid.plane_size(self.plane)
        self.info.setText(f"{index} / {total}")

    def _on_slider(self, value: int) -> None:
        if self.state is not None:
            self.session.set_slice(self.plane, value)

    # -- picking -----------------------------------------------------------------------
    def display_coords(self, pos: QPoint) -> tuple[int, int]:
        """VTK display pixel (origin bottom left, device pixels) of a widget position."""
        scale = self.interactor.devicePixelRatioF()
        return (
            round(pos.x() * scale),
            round((self.interactor.height() - pos.y() - 1) * scale),
        )

    def pick(self, pos: QPoint) -> tuple[int, int, int] | None:
        """Display voxel (x, y, z) under a widget position, or None outside the image."""
        if self.scene is None:
            return None
        return self.scene.pick(*self.display_coords(pos))

    # -- events ------------------------------------------------------------------------
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is not self.interactor:
            return False
        kind = event.type()
        if kind == QEvent.MouseButtonDblClick:
            self.maximise_requested.emit(self.plane)
            return True
        if kind == QEvent.MouseButtonPress:
            return self._press(event)
        if kind == QEvent.MouseMove:
            return self._move(event)
        if kind == QEvent.MouseButtonRelease:
            self._drag = None
            return True
        if kind == QEvent.Wheel:
            return self._wheel(event)
        if kind == QEvent.KeyPress:
            return self._key(event)
        if kind == QEvent.FocusIn and self.state is not None:
            self.session.focus(self.plane)
        if kind == QEvent.Leave:
            self.hovered.emit(self.plane, None)
        return False

    def _press(self, event: QMouseEvent) -> bool:
        self.interactor.setFocus(Qt.MouseFocusReason)
        if self.state is None:
            return True
        self.session.focus(self.plane)
        button, mods = event.button(), event.modifiers()
        pos = event.pos()
        if button == Qt.LeftButton and not mods & (Qt.ShiftModifier | Qt.ControlModifier):
            self._drag = {"mode": "cursor"}
            scheduler = self.interactor.repaint_scheduler
            if scheduler is not None:  # moving the crosshair is done for the other views
                scheduler.set_lead(None)
            self._move_cursor(pos)
        elif button == Qt.MiddleButton or (button == Qt.LeftButton and mods & Qt.ShiftModifier):
            self._drag = {"mode": "pan", "last": pos}
        elif (button == Qt.RightButton and mods & Qt.ControlModifier) or (
            button == Qt.LeftButton and mods & Qt.ControlModifier
        ):
            self._drag = {"mode": "zoom", "last": pos}
        elif button == Qt.RightButton:
            self._drag = {
                "mode": "window",
                "start": pos,
                "window": (self.state.window_center, self.state.window_width),
            }
        return True

    def _move(self, event: QMouseEvent) -> bool:
        pos = event.pos()
        drag = self._drag
        if drag is None or not event.buttons():
            now = time.monotonic()
            if now - self._last_hover > 0.02:  # ~50 status updates a second at most
                self._last_hover = now
                self.hovered.emit(self.plane, self.pick(pos))
            return True
        mode = drag["mode"]
        if mode == "cursor":
            self._move_cursor(pos)
        elif mode == "window":
            self._drag_window(drag, pos)
        elif mode == "pan":
            self._pan(pos.x() - drag["last"].x(), pos.y() - drag["last"].y())
            drag["last"] = pos
        elif mode == "zoom":
            dy = pos.y() - drag["last"].y()
            self.zoom(1.01 ** (-dy))
            drag["last"] = pos
        return True

    def _move_cursor(self, pos: QPoint) -> None:
        xyz = self.pick(pos)
        if xyz is not None and self.state is not None:
            self.session.set_cursor(xyz)
            self.hovered.emit(self.plane, xyz)

    def _drag_window(self, drag: dict[str, Any], pos: QPoint) -> None:
        lo, hi = self.store.scalar_range if self.store is not None else (0.0, 1.0)
        per_pixel = (hi - lo) / self.WL_PIXELS_PER_RANGE
        center0, width0 = drag["window"]
        dx = pos.x() - drag["start"].x()
        dy = pos.y() - drag["start"].y()
        width = max(1e-3 * (hi - lo), width0 + dx * per_pixel)
        center = center0 + dy * per_pixel
        if self.store is not None and self.store.is_integer:
            center, width = round(center), max(1, round(width))
        self.session.set_window(center, width)

    def _wheel(self, event: QWheelEvent) -> bool:
        if self.state is None:
            return True
        delta = event.angleDelta().y()
        if event.modifiers() & Qt.ControlModifier:
            self.zoom(1.1 ** (delta / 120.0))
            return True
        self._wheel_rest += delta
        steps = int(self._wheel_rest / 120)
        if steps:
            self._wheel_rest -= steps * 120
            self.session.step(steps, self.plane)
            # the mouse now points at a voxel of the new slice: the read-out follows it
            self.hovered.emit(self.plane, self.pick(event.pos()))
        return True

    def _key(self, event: QKeyEvent) -> bool:
        key, mods = event.key(), event.modifiers()
        # Ctrl+Left/Right belong to the window (a worklist's previous/next study).
        ctrl_side = bool(mods & Qt.ControlModifier) and key in (Qt.Key_Left, Qt.Key_Right)
        if self.state is not None and key in STEP_KEYS and not ctrl_side:
            self.session.step(STEP_KEYS[key], self.plane)
        elif self.state is not None and key == Qt.Key_Home:
            self.session.first_slice(self.plane)
        elif self.state is not None and key == Qt.Key_End:
            self.session.last_slice(self.plane)
        elif key in (Qt.Key_Plus, Qt.Key_Equal):
            self.zoom(1.2)
        elif key == Qt.Key_Minus:
            self.zoom(1 / 1.2)
        elif key == Qt.Key_R and not mods & Qt.ControlModifier:
            self.reset_camera()
        elif key in (Qt.Key_F11, Qt.Key_Return, Qt.Key_Enter):
            self.maximise_requested.emit(self.plane)
        else:
            # Keep pyvista's own key bindings (q quits, w wireframe...) out of a 2D view.
            self.key_pressed.emit(self.plane, int(key), int(mods))
        return True

    # -- camera ------------------------------------------------------------------------
    def zoom(self, factor: float) -> None:
        if self.scene is None:
            return
        self.interactor.camera.zoom(factor)
        self.interactor.render()

    def _pan(self, dx: int, dy: int) -> None:
        if self.scene is None:
            return
        camera = self.interactor.camera
        height = max(1, self.interactor.height())
        per_pixel = 2.0 * camera.parallel_scale / height
        position = np.asarray(camera.position)
        focal = np.asarray(camera.focal_point)
        up = np.asarray(camera.up, dtype=float)
        up /= np.linalg.norm(up)
        forward = focal - position
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, up)
        shift = (-dx * right + dy * up) * per_pixel
        camera.position = tuple(position + shift)
        camera.focal_point = tuple(focal + shift)
        self.interactor.render()

    def reset_camera(self) -> None:
        if self.scene is not None:
            self.scene.reset_camera()
            self.interactor.render()


class VolumeView(ViewContainer):
    """The 3D view: VolumeScene with plane widgets; the mouse rotates (VTK trackball)."""

    SETTLE_MS = 250  # full-quality volume frame this long after the last change

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("3d", parent)
        self.interactor.installEventFilter(self)
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(self.SETTLE_MS)
        self._settle.timeout.connect(self._settled)
        self.marked_axial: list[int] = []
        self.marked: dict[str, dict[int, list[str]]] = {}
        self.label_colors: dict[str, tuple[float, float, float]] = {}  # given colours

    def set_marked_axial(self, slices: Iterable[int]) -> None:
        """Translucent slabs at marked axial slices (kept for when the scene is built)."""
        self.set_marked("axial", {int(s): [""] for s in slices})

    def set_marked(self, plane: str, marked: dict[int, list[str]],
                   colors: dict[str, tuple[float, float, float]] | None = None) -> None:
        """Translucent slabs at the marked slices of any plane, coloured per label (kept for
        when the scene is built); ``colors`` gives labels their colours outright."""
        self.marked[plane] = {int(k): list(v) for k, v in marked.items()}
        if colors is not None:
            self.label_colors = dict(colors)
        if plane == "axial":
            self.marked_axial = sorted(self.marked[plane])
        if self.scene is not None:
            self.scene.set_marked(plane, self.marked[plane], colors=self.label_colors)

    def bind(self, state: Any, store: Any) -> None:
        try:
            from mprviewer.render.volume_scene import VolumeScene
        except ImportError:  # a build without the 3D scene still shows the 2D views
            self.info.setText("3D view not available")
            return
        self.unbind()
        self.state, self.store = state, store
        self.scene = VolumeScene(self.interactor, store, state)
        self.scene.enable_plane_widgets()
        for plane, marked in self.marked.items():
            if marked:
                self.scene.set_marked(plane, marked, colors=self.label_colors)
        for signal in self._busy_signals(state):
            signal.connect(self._changing)
        self.info.setText("drag the planes; left-drag rotates")

    def unbind(self) -> None:
        self._settle.stop()
        state, scene, self.scene = self.state, self.scene, None
        if state is not None:
            for signal in self._busy_signals(state):
                signal.disconnect(self._changing)
        if scene is not None:
            scene.close()
        self.state = self.store = None
        self.info.setText("")

    @staticmethod
    def _busy_signals(state: Any) -> tuple[Any, ...]:
        return (state.slice_changed, state.window_changed, state.threshold_changed,
                state.display_changed)

    def _changing(self, *_: Any) -> None:
        """Scrolling or dragging a control: coarse volume frames until it stops."""
        if self.scene is None or not self.state.volume_opacity:
            return
        if not self._settle.isActive():
            self.scene.set_interacting(True)
        self._settle.start()

    def settle_now(self) -> None:
        """Full-quality frame at once (before a screenshot)."""
        if self._settle.isActive():
            self._settle.stop()
            self._settled()

    def _settled(self) -> None:
        if self.scene is not None:
            self.scene.set_interacting(False)
            self.interactor.render()

    def set_camera(self, name: str) -> None:
        if self.scene is not None:
            self.scene.set_camera(name)
            self.interactor.render()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is not self.interactor:
            return False
        kind = event.type()
        if kind == QEvent.MouseButtonDblClick:
            self.maximise_requested.emit(self.plane)
            return True
        if kind == QEvent.MouseButtonPress:
            self.focused.emit(self.plane)
            self.set_active(True)
        if kind == QEvent.FocusOut:
            self.set_active(False)
        if kind == QEvent.KeyPress:
            key = event.key()
            if key == Qt.Key_R:
                self.set_camera("reset")
            elif key in (Qt.Key_F11, Qt.Key_Return, Qt.Key_Enter):
                self.maximise_requested.emit(self.plane)
            return True  # no pyvista key bindings (q would close the render window)
        return False


class ViewGrid(QWidget):
    """Axial, coronal / sagittal, 3D in a 2x2 grid; any one can fill the grid and come back."""

    ORDER = ("axial", "coronal", "sagittal", "3d")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.views: dict[str, ViewContainer] = {
            "axial": SliceView("axial", self),
            "coronal": SliceView("coronal", self),
            "sagittal": SliceView("sagittal", self),
            "3d": VolumeView(self),
        }
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        for n, name in enumerate(self.ORDER):
            layout.addWidget(self.views[name], n // 2, n % 2)
        from mprviewer.gui.repaint import RepaintScheduler

        self.repaints = RepaintScheduler(self)
        for view in self.views.values():
            view.maximise_requested.connect(self.toggle_maximised)
            view.interactor.repaint_scheduler = self.repaints
            view.interactor.installEventFilter(self)
        self.maximised: str | None = None
        self.setStyleSheet("ViewGrid { background: #444; }")

    @property
    def slice_views(self) -> dict[str, SliceView]:
        return {p: v for p, v in self.views.items() if isinstance(v, SliceView)}

    @property
    def volume_view(self) -> VolumeView:
        return self.views["3d"]  # type: ignore[return-value]

    _LEAD_EVENTS = (QEvent.MouseButtonPress, QEvent.Wheel, QEvent.KeyPress)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """The view the reader presses, scrolls or types in is painted first."""
        if event.type() in self._LEAD_EVENTS:
            self.repaints.set_lead(obj)
        return False

    def lead_plane(self, plane: str) -> None:
        """The focused plane leads (focus moved by a key or a title-bar click)."""
        view = self.views.get(plane)
        if view is not None:
            self.repaints.set_lead(view.interactor)

    def paint_pending(self) -> None:
        """Bring every view up to date now (screenshots, grabs)."""
        self.repaints.paint_pending()

    def toggle_maximised(self, name: str) -> None:
        if self.maximised == name:
            self.restore()
        else:
            self.maximise(name)

    def maximise(self, name: str) -> None:
        for other, view in self.views.items():
            view.setVisible(other == name)
        self.maximised = name
        self.views[name].interactor.setFocus(Qt.OtherFocusReason)

    def restore(self) -> None:
        for view in self.views.values():
            view.setVisible(True)
        self.maximised = None

    def close_views(self) -> None:
        for view in self.views.values():
            view.close_view()
