"""Oblique series and oblique reformat in the window.

- An oblique acquisition (more than 1° off the patient's axes) is shown resliced onto the
  patient's axial, coronal and sagittal planes (``mprviewer.render.reslice``), as 3D Slicer
  does; G, View > Acquisition Grid or the Display box's checkbox switches to its own grid,
  where the marks of acquired images are made. While resliced, marks are not shown and
  marking is refused with a message saying why.
- Ctrl+left drag in a 2D view turns its crosshair: the other two planes tilt with it
  (double-oblique reformat, ``mprviewer.render.oblique``); Shift+O or View > Reset Oblique
  makes them orthogonal again. Marks belong to the orthogonal slices, so marking and
  measuring are refused while a plane is tilted.

The state lives in the session (``session.reformat``, ``session.grid_mode``,
``session.display_only``, ``session.marking_refusal()``); this module binds mouse, keys,
actions and the checkbox to it and makes the reslice (VTK) the session shows.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from PyQt5.QtCore import QEvent, QObject, QPoint, Qt, QTimer
from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import QAction, QCheckBox

log = logging.getLogger(__name__)

GRID_MODES: tuple[str, ...] = ("patient", "acquisition")


class ObliqueTools(QObject):
    """Grid switch (patient axes / acquisition) and crosshair rotation of one window."""

    def __init__(self, window: Any, grid: str = "patient") -> None:
        super().__init__(window)
        if grid not in GRID_MODES:
            raise ValueError(f"unknown grid {grid!r}; use patient or acquisition")
        self.window = window
        self.session = window.session
        self.session.grid_mode = grid
        self.acquired: Any = None  # the volume as acquired (its own grid)
        self.resliced: Any = None  # its reslice onto the patient's axes, when oblique
        self._drag: dict[str, Any] | None = None
        self._3d_scene: Any = None
        from mprviewer.gui.worker import JobRunner

        self.runner = JobRunner(window, show_dialog=True)
        self.runner.finished.connect(self._on_resliced)
        self.runner.failed.connect(self._on_reslice_failed)
        window.installEventFilter(self)
        self._build_actions()
        window.volume_changed.connect(self._on_volume_changed)
        window.first_frame_shown.connect(lambda _s: QTimer.singleShot(200, self._attach_3d))
        for view in window.views.slice_views.values():
            view.interactor.installEventFilter(self)
            view.key_pressed.connect(self._on_view_key)

    # -- actions -----------------------------------------------------------------------
    def _build_actions(self) -> None:
        w = self.window
        self.act_grid = QAction("&Acquisition Grid (oblique series)", w)
        self.act_grid.setCheckable(True)
        self.act_grid.setShortcut(QKeySequence("G"))
        self.act_grid.setStatusTip("Show an oblique series on its own grid, where marks are "
                                   "made, instead of resliced onto the patient's axes (G)")
        self.act_grid.toggled.connect(lambda on: self.set_grid("acquisition" if on else "patient"))
        self.act_reset = QAction("Reset &Oblique Planes", w)
        self.act_reset.setShortcut(QKeySequence("Shift+O"))
        self.act_reset.setStatusTip("Make the 2D planes orthogonal again after Ctrl+drag turned "
                                    "a crosshair (Shift+O)")
        self.act_reset.triggered.connect(lambda _=False: self.reset())
        for action in (self.act_grid, self.act_reset):
            w.addAction(action)
        menu = getattr(w, "view_menu", None)
        if menu is not None:
            menu.addSeparator()
            menu.addAction(self.act_grid)
            menu.addAction(self.act_reset)
        toolbar = getattr(w, "toolbar", None)
        if toolbar is not None:
            toolbar.addAction(self.act_reset)
        self.checkbox = QCheckBox("Oblique series on its acquisition grid (G)", w)
        self.checkbox.setToolTip("Marks are made on the acquisition grid; the patient's axes "
                                 "show an oblique series as 3D Slicer does")
        self.checkbox.toggled.connect(self.act_grid.setChecked)
        self.act_grid.toggled.connect(self.checkbox.setChecked)
        box = w.controls.parentWidget() if getattr(w, "controls", None) is not None else None
        if box is not None and box.layout() is not None:
            box.layout().addWidget(self.checkbox)
        self.act_grid.setChecked(self.grid == "acquisition")
        self._update_enabled()

    def _update_enabled(self) -> None:
        oblique = self.acquired is not None and self._acquired_oblique()
        self.checkbox.setEnabled(oblique)
        self.act_grid.setEnabled(oblique)
        self.act_reset.setEnabled(self.reformat.is_oblique)

    def _acquired_oblique(self) -> bool:
        from mprviewer.render.reslice import is_oblique

        return bool(is_oblique(self.acquired))

    def _say(self, text: str) -> None:
        status = getattr(self.window, "status", None)
        if status is not None:
            status.showMessage(text, 8000)

    # -- state -------------------------------------------------------------------------
    @property
    def reformat(self) -> Any:
        return self.session.reformat

    @property
    def grid(self) -> str:
        return str(self.session.grid_mode)

    def refusal(self) -> str:
        """Why marking is refused now ('' when it is allowed)."""
        return str(self.session.marking_refusal())

    def set_grid(self, grid: str) -> None:
        """'patient' (resliced onto the patient's axes) or 'acquisition' (its own grid)."""
        if grid not in GRID_MODES:
            raise ValueError(f"unknown grid {grid!r}; use patient or acquisition")
        if grid == self.grid:
            return
        self.session.grid_mode = grid
        with _blocked(self.act_grid):
            self.act_grid.setChecked(grid == "acquisition")
        with _blocked(self.checkbox):
            self.checkbox.setChecked(grid == "acquisition")
        if self.acquired is None or not self._acquired_oblique():
            return
        if grid == "acquisition":
            self.window.set_volume(self.acquired)
        else:
            self._show_resliced()

    @property
    def reslicing(self) -> bool:
        """True while the reslice of the series on screen is being made."""
        return self.runner.busy

    def _show_resliced(self) -> None:
        if self.resliced is not None:
            self._put_resliced(self.acquired, self.resliced)
            return
        from mprviewer.render.reslice import patient_aligned

        acquired = self.acquired
        # vtkImageReslice lets go of the GIL: the window stays live (5 s for 512x512x300).
        self.runner.start(lambda _progress, _cancel: (acquired, patient_aligned(acquired)),
                          "Reslicing onto the patient's axes…")
        self._say("Reslicing the oblique series onto the patient's axes…")

    def _on_resliced(self, result: Any) -> None:
        acquired, resliced = result
        if acquired is not self.acquired:
            return  # another series came meanwhile
        self.resliced = resliced
        if self.grid == "patient" and self.window.volume is acquired:
            self._put_resliced(acquired, resliced)

    def _on_reslice_failed(self, exc: BaseException) -> None:
        # Too large to reslice, say: the acquisition grid stays on screen, marks work.
        self._say(f"{exc}" if str(exc) else "The series could not be resliced.")

    def _put_resliced(self, acquired: Any, resliced: Any) -> None:
        if acquired is not self.acquired:
            return
        self.window.timings["set_volume"] = time.perf_counter()
        self.session.show_volume(resliced, display_only=True)


    def _on_volume_changed(self, volume: Any) -> None:
        from mprviewer.render.reslice import obliquity, obliquity_text

        resliced = bool(self.session.display_only)
        if not resliced and volume is not self.acquired:
            self.acquired, self.resliced = volume, None  # another series
        self._3d_scene = None
        for view in self.window.views.slice_views.values():
            if view.scene is not None:
                view.scene.set_reformat(self.reformat)
        degrees = obliquity(self.acquired)
        text = obliquity_text(degrees, resliced)
        for view in self.window.views.slice_views.values():
            if view.scene is not None and text:
                view.scene.set_extra_info(text)
        self._update_enabled()
        if not resliced and self.grid == "patient" and self._acquired_oblique():
            # After every other panel has seen the acquired series (marks reconciled on it).
            QTimer.singleShot(0, self._show_resliced)

    def _attach_3d(self) -> None:
        view = self.window.views.volume_view
        scene = getattr(view, "scene", None)
        if scene is not None and scene is not self._3d_scene and \
                hasattr(scene, "set_reformat"):
            scene.set_reformat(self.reformat)
            self._3d_scene = scene

    # -- rotating ----------------------------------------------------------------------
    def rotate(self, plane: str, degrees: float) -> None:
        """Turn ``plane``'s crosshair by ``degrees`` counter-clockwise; the others tilt."""
        if self.window.state is None:
            return
        self._attach_3d()
        self.session.rotate_crosshair(plane, degrees)
        self._update_enabled()

    def reset(self) -> None:
        """All planes orthogonal again."""
        self._attach_3d()
        was = self.session.reset_oblique()
        self._update_enabled()
        if was:
            self._say("Planes orthogonal again; marking works.")

    def _angle_at(self, view: Any, pos: QPoint) -> float | None:
        from mprviewer.render.oblique import crosshair_point

        scene = view.scene
        if scene is None:
            return None
        cx, cy = scene.world_to_display(crosshair_point(scene.store, scene.state.slices))
        x, y = view.display_coords(pos)
        if (x - cx) ** 2 + (y - cy) ** 2 < 9:
            return None  # too near the centre to have a direction
        return math.degrees(math.atan2(y - cy, x - cx))  # display y is up: counter-clockwise

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if obj is self.window:
            if kind == QEvent.Close:
                self.runner.shutdown()  # no reslice thread outlives the window
            return False
        if kind not in (QEvent.MouseButtonPress, QEvent.MouseMove, QEvent.MouseButtonRelease):
            return False
        view = next((v for v in self.window.views.slice_views.values()
                     if v.interactor is obj), None)
        if view is None or view.scene is None:
            return False
        if kind == QEvent.MouseButtonPress:
            if event.button() == Qt.LeftButton and event.modifiers() == Qt.ControlModifier:
                self._drag = {"plane": view.plane, "angle": self._angle_at(view, event.pos())}
                self.session.focus(view.plane)
                return True
            return False
        if self._drag is None or self._drag["plane"] != view.plane:
            return False
        if kind == QEvent.MouseButtonRelease:
            self._drag = None
            return True
        angle = self._angle_at(view, event.pos())
        last = self._drag["angle"]
        if angle is not None and last is not None:
            delta = (angle - last + 180.0) % 360.0 - 180.0
            self.rotate(view.plane, delta)
        if angle is not None:
            self._drag["angle"] = angle
        return True

    def _on_view_key(self, _plane: str, key: int, mods: int) -> None:
        mods &= int(Qt.ShiftModifier | Qt.ControlModifier | Qt.AltModifier | Qt.MetaModifier)
        if key == Qt.Key_G and mods == 0:
            self.act_grid.toggle()
        elif key == Qt.Key_O and mods == int(Qt.ShiftModifier):
            self.reset()


class _blocked:
    """Block a QObject's signals for the duration of a with-block."""

    def __init__(self, obj: QObject) -> None:
        self.obj = obj

    def __enter__(self) -> None:
        self.was = self.obj.blockSignals(True)

    def __exit__(self, *_: Any) -> None:
        self.obj.blockSignals(self.was)


def install_oblique_tools(window: Any, grid: str = "patient") -> ObliqueTools:
    """Add the grid switch and oblique reformat to a MainWindow (after the annotations)."""
    tools = ObliqueTools(window, grid)
    window.oblique_tools = tools
    return tools
