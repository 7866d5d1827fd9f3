"""Reading tools in the viewer: ruler, ROI circle, ABC/2 hematoma volume, thick slab, cine.

``install_measure_tools(window)`` (after ``install_annotations``) adds them to a MainWindow:

- Ruler (D, toolbar): press and drag in a 2D view, or click both ends; the length in mm
  (patient space, ``mprviewer.measure.distance``) is drawn beside it. Several per view.
- ROI (O, toolbar): press at the centre and drag the radius; mean, SD, min, max and area
  (``mprviewer.measure.roi_stats``) are drawn beside the circle.
- Delete (Delete or Backspace) removes the ruler or ROI of the focused view's slice nearest
  the mouse; Ctrl+Z undoes it like any annotation change. Escape leaves the tool.
- Hematoma volume (the Measure tab): ABC/2 from the two longest rulers of an axial slice and
  either a coronal/sagittal ruler or the run of marked axial slices around that slice.
- Thick slab (the Display box; S toggles, [ and ] change the thickness, Shift+S the mode):
  MIP, MinIP or mean over a thickness in mm centred on each 2D view's slice.
- Cine (Space): loops through the focused view's slices at the chosen rate.

Measurements are stored with the marks (``AnnotationSet.add_ruler`` / ``add_roi`` /
``add_hematoma``), so they are autosaved, undone and exported with them. The views are not
changed: an event filter on their interactors, installed after theirs and the annotation
controller's, sees clicks first while a tool is active.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PyQt5.QtCore import QEvent, QObject, QPoint, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import (
    QAction,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mprviewer.errors import MprviewerError
from mprviewer.model import measure
from mprviewer.model.measurements import Hematoma, Roi, Ruler, describe

SLAB_MODES = ("max", "min", "mean")
SLAB_MODE_NAMES = {"max": "MIP (max)", "min": "MinIP (min)", "mean": "Mean"}
SLAB_STEP_MM = 2.0
DEFAULT_SLAB_MM = 10.0
CLICK_PIXELS = 4  # a press and release closer than this is a click (two-click ruler)


def _ruler_text(ruler: Ruler) -> str:
    return f"{ruler.length_mm:.1f} mm"


def _roi_text(roi: Roi) -> str:
    if not roi.stats:
        return f"r {roi.radius_mm:.1f} mm"
    s, units = roi.stats, f" {roi.units}" if roi.units else ""
    return (f"mean {s['mean']:.1f}{units}  SD {s['sd']:.1f}\n"
            f"min {s['min']:g}  max {s['max']:g}\n{s['area_mm2']:.1f} mm²")


class MeasureTools(QObject):
    """The reading tools of one window: tool mode, drawing, slab and cine state."""

    changed = pyqtSignal()  # the measurements on screen changed
    slab_changed = pyqtSignal(float, str)  # thickness mm (0: off), mode
    cine_changed = pyqtSignal(bool)  # playing
    mode_changed = pyqtSignal(str)  # "ruler", "roi" or ""

    def __init__(self, window: Any, annotations: Any) -> None:
        super().__init__(window)
        self.window = window
        self.annotations = annotations
        self.mode = ""
        self.overlays: dict[str, Any] = {}
        self.slab_mm = 0.0
        self.slab_last = DEFAULT_SLAB_MM
        self.slab_mode = "max"
        self.cine_rate = 10.0
        self.last_hematoma: Hematoma | None = None
        self._draft: dict[str, Any] | None = None
        self._mouse: dict[str, QPoint] = {}
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._cine_step)
        self._build_actions()
        window.volume_changed.connect(self._on_volume_changed)
        annotations.changed.connect(self.refresh)
        for view in window.views.slice_views.values():
            view.interactor.installEventFilter(self)
            view.key_pressed.connect(self._on_view_key)
        window.destroyed.connect(self._timer.stop)

    # -- actions ---------------------------------------------------------------------------
    def _action(self, text: str, slot: Any, keys: list[str], tip: str,
                checkable: bool = False) -> QAction:
        action = QAction(text, self.window)
        action.setShortcuts([QKeySequence(k) for k in keys])
        action.setToolTip(f"{tip} ({keys[0]})")
        action.setStatusTip(tip)
        action.setCheckable(checkable)
        action.triggered.connect(lambda _=False: slot())
        self.window.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.act_ruler = self._action("Ruler", lambda: self.toggle_mode("ruler"), ["D"],
                                      "Measure a distance in a 2D view: drag, or click both ends",
                                      checkable=True)
        self.act_roi = self._action("ROI", lambda: self.toggle_mode("roi"), ["O"],
                                    "Circle statistics: press at the centre, drag the radius",
                                    checkable=True)
        # Delete reaches us from the 2D views (key_pressed) only: a window-wide Delete
        # shortcut would make the annotation list's own Delete ambiguous.
        self.act_delete = QAction("Delete Measurement\tDelete", self.window)
        self.act_delete.setStatusTip("Delete the ruler or ROI nearest the mouse on the focused "
                                     "view's slice (Delete in a 2D view)")
        self.act_delete.triggered.connect(lambda _=False: self.delete_nearest())
        self.act_hematoma = self._action(
            "Hematoma Volume (ABC/2)", self.compute_hematoma, ["Shift+H"],
            "ABC/2 from two axial rulers and a coronal/sagittal ruler or the marked slices")
        self.act_slab = self._action("Thick Slab", self.toggle_slab, ["S"],
                                     "Show a thick slab (MIP) in the 2D views, or plain slices")
        self.act_thicker = self._action("Thicker Slab", lambda: self.step_slab(1), ["]"],
                                        "Make the slab thicker")
        self.act_thinner = self._action("Thinner Slab", lambda: self.step_slab(-1), ["["],
                                        "Make the slab thinner")
        self.act_slab_mode = self._action("Next Slab Mode", self.cycle_slab_mode, ["Shift+S"],
                                          "Slab projection: MIP, MinIP, mean")
        self.act_cine = self._action("Cine", self.toggle_cine, ["Space"],
                                     "Loop through the focused view's slices", checkable=True)
        self.act_escape = self._action("Leave Tool", self.leave_tool, ["Escape"],
                                       "Stop drawing and leave the ruler or ROI tool")
        toolbar = getattr(self.window, "toolbar", None)
        if toolbar is not None:
            toolbar.addSeparator()
            for action in (self.act_ruler, self.act_roi, self.act_cine):
                toolbar.addAction(action)
        bar = self.window.menuBar()
        menu = QMenu("&Measure", self.window)
        before = next((a for a in bar.actions() if a.text().replace("&", "") == "Help"), None)
        if before is not None:
            bar.insertMenu(before, menu)  # Help stays last
        else:
            bar.addMenu(menu)
        for action in (self.act_ruler, self.act_roi, self.act_delete, self.act_hematoma):
            menu.addAction(action)
        menu.addSeparator()
        for action in (self.act_slab, self.act_thicker, self.act_thinner, self.act_slab_mode):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.act_cine)
        self.menu = menu

    def _say(self, text: str) -> None:
        status = getattr(self.window, "status", None)
        if status is not None:
            status.showMessage(text, 8000)

    # -- the series on screen --------------------------------------------------------------
    def _series(self) -> Any:
        aset, ref = self.annotations.aset, self.annotations.ref
        if aset is None or ref is None:
            return None
        return aset.get_series(ref.uid, ref.name)

    def measurements(self) -> list[Any]:
        """Rulers, ROIs and hematoma volumes of the series on screen."""
        sa = self._series()
        return list(sa.measurements) if sa is not None else []

    def _on_volume_changed(self, _volume: Any) -> None:
        from mprviewer.render.measure_overlay import MeasureOverlay

        self.stop_cine()
        self._draft = None
        for overlay in self.overlays.values():
            overlay.close()
        self.overlays = {}
        from mprviewer.render.reslice import obliquity_text

        tilt = self.window.state.grid.obliquity_deg if self.window.state is not None else 0.0
        for plane, view in self.window.views.slice_views.items():
            if view.scene is not None:
                # the window shows the acquisition grid (where marks are made): say so
                view.scene.set_extra_info(obliquity_text(tilt, resliced=False))
                self.overlays[plane] = MeasureOverlay(view.scene)
                if self.slab_mm > 0:
                    view.scene.set_slab(self.slab_mm, self.slab_mode)
        self.refresh()

    def refresh(self) -> None:
        """Redraw every view's rulers and ROIs from the stored measurements."""
        from mprviewer.render.measure_overlay import DrawnItem

        state = self.window.state
        if state is None or not self.overlays:
            return
        grid = state.grid
        per_plane: dict[str, list[Any]] = {p: [] for p in self.overlays}
        for m in self.measurements():
            if isinstance(m, Ruler) and m.plane in per_plane:
                per_plane[m.plane].append(DrawnItem(
                    m.id, "ruler", m.slice, tuple(grid.lps_to_display(m.a)),
                    tuple(grid.lps_to_display(m.b)), text=_ruler_text(m)))
            elif isinstance(m, Roi) and m.plane in per_plane:
                per_plane[m.plane].append(DrawnItem(
                    m.id, "roi", m.slice, tuple(grid.lps_to_display(m.center)),
                    radius_mm=m.radius_mm, text=_roi_text(m)))
        for plane, overlay in self.overlays.items():
            overlay.set_items(per_plane[plane])
        self.changed.emit()

    # -- tools -----------------------------------------------------------------------------
    def toggle_mode(self, mode: str) -> None:
        self.set_mode("" if self.mode == mode else mode)

    def set_mode(self, mode: str) -> None:
        """"ruler", "roi" or "" (the usual mouse: cursor, window, pan, zoom)."""
        self.mode = mode
        self._cancel_draft()
        self.act_ruler.setChecked(mode == "ruler")
        self.act_roi.setChecked(mode == "roi")
        if mode == "ruler":
            self._say("Ruler: drag in a 2D view, or click both ends. Escape leaves the tool.")
        elif mode == "roi":
            self._say("ROI: press at the centre and drag the radius. Escape leaves the tool.")
        self.mode_changed.emit(mode)

    def leave_tool(self) -> None:
        self.set_mode("")

    def _cancel_draft(self) -> None:
        if self._draft is not None:
            overlay = self.overlays.get(self._draft["plane"])
            if overlay is not None:
                overlay.set_preview(None)
        self._draft = None

    def _context(self) -> tuple[Any, Any, Any] | None:
        aset, ref, state = self.annotations.aset, self.annotations.ref, self.window.state
        if aset is None or ref is None or state is None:
            self._say("Open a study before measuring.")
            return None
        session = getattr(self.window, "session", None)
        refused = session.marking_refusal() if session is not None else ""
        if refused:
            self._say(f"Not measured: {refused}.")
            return None
        return aset, ref, state

    def add_ruler(self, plane: str, a_xyz: Any, b_xyz: Any) -> Ruler | None:
        """Store a ruler between two display positions of ``plane``'s current slice."""
        ctx = self._context()
        if ctx is None:
            return None
        aset, ref, state = ctx
        grid = state.grid
        a, b = grid.display_to_lps(np.asarray(a_xyz, float)), grid.display_to_lps(
            np.asarray(b_xyz, float))
        try:
            ruler = aset.add_ruler(ref, a, b, plane, state.slices[plane])
        except MprviewerError as exc:
            self._say(str(exc))
            return None
        self._say(f"Ruler {measure.distance(a, b):.1f} mm on {plane} slice {ruler.slice}.")
        return ruler

    def add_roi(self, plane: str, center_xyz: Any, radius_mm: float) -> Roi | None:
        """Store a circle of ``radius_mm`` around a display position, with its statistics."""
        ctx = self._context()
        if ctx is None:
            return None
        aset, ref, state = ctx
        volume = self.window.volume
        center = state.grid.display_to_lps(np.asarray(center_xyz, float))
        try:
            stats = measure.roi_stats(volume, center, radius_mm, plane)
            roi = aset.add_roi(ref, center, radius_mm, plane, state.slices[plane], stats,
                               str(getattr(volume, "units", "") or ""))
        except MprviewerError as exc:
            self._say(str(exc))
            return None
        self._say(f"ROI r {radius_mm:.1f} mm: " + _roi_text(roi).replace("\n", ", "))
        return roi

    def delete_nearest(self, plane: str | None = None) -> bool:
        """Delete the ruler or ROI on the focused view's slice nearest the mouse (else the
        newest there). False when that slice has none."""
        state = self.window.state
        if state is None or self.annotations.aset is None:
            return False
        plane = plane or state.focused_plane
        overlay = self.overlays.get(plane)
        items = overlay.visible_items() if overlay is not None else []
        if not items:
            self._say(f"No ruler or ROI on this {plane} slice to delete.")
            return False
        target = items[-1]
        pos = self._mouse.get(plane)
        view = self.window.views.slice_views[plane]
        if pos is not None and view.scene is not None:
            here = view.scene.pick_point(*view.display_coords(pos))
            if here is not None:
                def gap(it: Any) -> float:
                    if it.kind == "roi":
                        return float(np.linalg.norm(np.subtract(it.a, here)))
                    a, b, p = (np.asarray(v, float) for v in (it.a, it.b, here))
                    t = np.clip(np.dot(p - a, b - a) / max(np.dot(b - a, b - a), 1e-9), 0, 1)
                    return float(np.linalg.norm(a + t * (b - a) - p))

                target = min(items, key=gap)
        self.annotations.aset.delete(target.id)
        self._say(f"Deleted the {'ruler' if target.kind == 'ruler' else 'ROI'} "
                  f"({target.text.splitlines()[0]}). Ctrl+Z brings it back.")
        return True

    def compute_hematoma(self) -> Hematoma | None:
        """ABC/2 from the two longest rulers on the axial slice of the newest axial ruler (A, B)
        and the newest coronal/sagittal ruler or the marked axial run around that slice (C)."""
        ctx = self._context()
        if ctx is None:
            return None
        aset, ref, _state = ctx
        rulers = [m for m in self.measurements() if isinstance(m, Ruler)]
        axial = [r for r in rulers if r.plane == "axial"]
        if not axial:
            self._say("Hematoma volume: draw two rulers (longest diameter and the one across "
                      "it) on the axial slice where the bleed is largest.")
            return None
        on_slice = sorted((r for r in axial if r.slice == axial[-1].slice),
                          key=lambda r: r.length_mm, reverse=True)
        if len(on_slice) < 2:
            self._say(f"Hematoma volume: axial slice {axial[-1].slice} has one ruler; draw the "
                      "diameter across it too.")
            return None
        a, b = on_slice[0], on_slice[1]
        other = [r for r in rulers if r.plane != "axial"]
        slices: tuple[int, int] | None = None
        ids = [a.id, b.id]
        if other:
            c_mm = other[-1].length_mm
            ids.append(other[-1].id)
            how = f"C from the {other[-1].plane} ruler"
        else:
            marked = set(aset.slices_for(ref.uid, ref.name, "axial"))
            if a.slice not in marked:
                self._say("Hematoma volume: give the height C with a coronal or sagittal ruler, "
                          f"or mark the axial slices showing the bleed (slice {a.slice} too).")
                return None
            lo = hi = a.slice
            while lo - 1 in marked:
                lo -= 1
            while hi + 1 in marked:
                hi += 1
            c_mm = measure.slice_range_diameter_mm(self.window.volume, lo, hi, "axial")
            slices = (lo, hi)
            how = f"C from marked axial slices {lo}-{hi}"
        try:
            item = aset.add_hematoma(ref, a.length_mm, b.length_mm, c_mm, slices, ids)
        except MprviewerError as exc:
            self._say(str(exc))
            return None
        self.last_hematoma = item
        u, v = np.subtract(a.b, a.a), np.subtract(b.b, b.a)
        cos = abs(float(np.dot(u, v))) / max(float(np.linalg.norm(u) * np.linalg.norm(v)), 1e-9)
        angle = float(np.degrees(np.arccos(min(cos, 1.0))))
        warn = "" if angle >= 70 else (f" A and B are {angle:.0f}° apart; ABC/2 assumes "
                                       "perpendicular diameters.")
        self._say(f"Hematoma volume (ABC/2): {item.volume_ml:.1f} mL — A {a.length_mm:.1f}, "
                  f"B {b.length_mm:.1f}, C {c_mm:.1f} mm ({how}).{warn}")
        return item

    # -- slab ------------------------------------------------------------------------------
    def set_slab(self, thickness_mm: float, mode: str | None = None) -> None:
        """Slab of ``thickness_mm`` (0: plain slices) in every 2D view."""
        mode = mode or self.slab_mode
        thickness_mm = float(np.clip(thickness_mm, 0.0, 500.0))
        self.slab_mm, self.slab_mode = thickness_mm, mode
        if thickness_mm > 0:
            self.slab_last = thickness_mm
        for view in self.window.views.slice_views.values():
            if view.scene is not None:
                view.scene.set_slab(thickness_mm, mode)
        self.slab_changed.emit(thickness_mm, mode)

    def toggle_slab(self) -> None:
        self.set_slab(0.0 if self.slab_mm > 0 else self.slab_last)

    def step_slab(self, direction: int) -> None:
        self.set_slab(max(0.0, self.slab_mm + direction * SLAB_STEP_MM))

    def cycle_slab_mode(self) -> None:
        mode = SLAB_MODES[(SLAB_MODES.index(self.slab_mode) + 1) % len(SLAB_MODES)]
        self.set_slab(self.slab_mm or self.slab_last, mode)

    # -- cine ------------------------------------------------------------------------------
    def set_cine_rate(self, per_second: float) -> None:
        self.cine_rate = float(np.clip(per_second, 1.0, 60.0))
        if self._timer.isActive():
            self._timer.setInterval(round(1000.0 / self.cine_rate))

    def toggle_cine(self) -> None:
        if self._timer.isActive():
            self.stop_cine()
        elif self.window.state is not None:
            self._timer.start(round(1000.0 / self.cine_rate))
            self.act_cine.setChecked(True)
            self.cine_changed.emit(True)
        else:
            self.act_cine.setChecked(False)

    def stop_cine(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            self.cine_changed.emit(False)
        self.act_cine.setChecked(False)

    @property
    def cine_playing(self) -> bool:
        return self._timer.isActive()

    def _cine_step(self) -> None:
        state = self.window.state
        if state is None:
            self.stop_cine()
            return
        plane = state.focused_plane if state.focused_plane in state.slices else "axial"
        n = state.grid.plane_size(plane)
        self.window.views.lead_plane(plane)  # the playing view is painted first, every step
        state.set_slice(plane, (state.slices[plane] + 1) % n)

    # -- mouse and keys --------------------------------------------------------------------
    def _plane_of(self, obj: QObject) -> str | None:
        for plane, view in self.window.views.slice_views.items():
            if view.interactor is obj:
                return plane
        return None

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind not in (QEvent.MouseButtonPress, QEvent.MouseMove, QEvent.MouseButtonRelease):
            return False
        plane = self._plane_of(obj)
        if plane is None:
            return False
        if kind == QEvent.MouseMove:
            self._mouse[plane] = event.pos()
        if not self.mode or self.window.state is None:
            return False
        view = self.window.views.slice_views[plane]
        if view.scene is None:
            return False
        if kind == QEvent.MouseButtonPress:
            if event.button() != Qt.LeftButton or event.modifiers() & (
                Qt.ShiftModifier | Qt.ControlModifier | Qt.AltModifier
            ):
                return False
            obj.setFocus(Qt.MouseFocusReason)
            self.window.state.set_focus(plane)
            here = view.scene.pick_point(*view.display_coords(event.pos()))
            if here is None:
                self._say("Click inside the image.")
                return True
            draft = self._draft
            if draft is not None and draft["plane"] == plane:
                self._finish(here)  # the second click of a two-click ruler
                return True
            self._cancel_draft()
            self._draft = {"plane": plane, "start": here, "press": event.pos(), "moved": False}
            return True
        draft = self._draft
        if draft is None or draft["plane"] != plane:
            return False
        here = view.scene.pick_point(*view.display_coords(event.pos()))
        if kind == QEvent.MouseMove:
            if here is not None:
                if (event.pos() - draft["press"]).manhattanLength() > CLICK_PIXELS:
                    draft["moved"] = True
                self._preview(here)
            return True
        # release: a drag ends the measurement; a click waits for the second click
        if draft["moved"] and here is not None:
            self._finish(here)
        return True

    def _radius(self, a: Any, b: Any) -> float:
        grid = self.window.state.grid
        return measure.distance(grid.display_to_lps(np.asarray(a, float)),
                                grid.display_to_lps(np.asarray(b, float)))

    def _preview(self, here: Any) -> None:
        from mprviewer.render.measure_overlay import DrawnItem

        draft = self._draft
        assert draft is not None
        plane, start = draft["plane"], draft["start"]
        index = self.window.state.slices[plane]
        if self.mode == "ruler":
            item = DrawnItem("draft", "ruler", index, tuple(start), tuple(here),
                             text=f"{self._radius(start, here):.1f} mm")
        else:
            radius = self._radius(start, here)
            item = DrawnItem("draft", "roi", index, tuple(start), radius_mm=radius,
                             text=f"r {radius:.1f} mm")
        self.overlays[plane].set_preview(item)

    def _finish(self, here: Any) -> None:
        draft = self._draft
        assert draft is not None
        self._cancel_draft()
        plane, start = draft["plane"], draft["start"]
        if self.mode == "ruler":
            self.add_ruler(plane, start, here)
        elif self.mode == "roi":
            radius = self._radius(start, here)
            if radius <= 0:
                self._say("Drag out the ROI's radius from its centre.")
                return
            self.add_roi(plane, start, radius)

    def _on_view_key(self, plane: str, key: int, mods: int) -> None:
        """Keys a 2D view passed on, for when the window's shortcuts did not see them."""
        mods &= int(Qt.ShiftModifier | Qt.ControlModifier | Qt.AltModifier | Qt.MetaModifier)
        plain, shift = 0, int(Qt.ShiftModifier)
        table = {
            (Qt.Key_D, plain): lambda: self.toggle_mode("ruler"),
            (Qt.Key_O, plain): lambda: self.toggle_mode("roi"),
            (Qt.Key_Delete, plain): lambda: self.delete_nearest(plane),
            (Qt.Key_Backspace, plain): lambda: self.delete_nearest(plane),
            (Qt.Key_Escape, plain): self.leave_tool,
            (Qt.Key_S, plain): self.toggle_slab,
            (Qt.Key_S, shift): self.cycle_slab_mode,
            (Qt.Key_BracketRight, plain): lambda: self.step_slab(1),
            (Qt.Key_BracketLeft, plain): lambda: self.step_slab(-1),
            (Qt.Key_Space, plain): self.toggle_cine,
            (Qt.Key_H, shift): self.compute_hematoma,
        }
        action = table.get((key, mods))
        if action is not None:
            action()


# -- widgets ---------------------------------------------------------------------------------
class SlabControls(QWidget):
    """Slab thickness and mode, for the Display box."""

    def __init__(self, tools: MeasureTools, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tools = tools
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Slab", self))
        self.thickness = QDoubleSpinBox(self)
        self.thickness.setRange(0.0, 500.0)
        self.thickness.setSingleStep(SLAB_STEP_MM)
        self.thickness.setDecimals(1)
        self.thickness.setSuffix(" mm")
        self.thickness.setSpecialValueText("off")
        self.thickness.setKeyboardTracking(False)
        self.thickness.setToolTip("Thick-slab thickness in mm, centred on the slice "
                                  "(S toggles, [ and ] change it)")
        self.mode = QComboBox(self)
        for mode in SLAB_MODES:
            self.mode.addItem(SLAB_MODE_NAMES[mode], mode)
        self.mode.setToolTip("Slab projection (Shift+S cycles)")
        layout.addWidget(self.thickness, 1)
        layout.addWidget(self.mode, 1)
        self.thickness.valueChanged.connect(lambda v: tools.set_slab(v, self._mode()))
        self.mode.currentIndexChanged.connect(
            lambda _i: tools.set_slab(tools.slab_mm, self._mode()))
        tools.slab_changed.connect(self._show)

    def _mode(self) -> str:
        return str(self.mode.currentData())

    def _show(self, thickness: float, mode: str) -> None:
        for widget in (self.thickness, self.mode):
            widget.blockSignals(True)
        self.thickness.setValue(thickness)
        self.mode.setCurrentIndex(SLAB_MODES.index(mode))
        for widget in (self.thickness, self.mode):
            widget.blockSignals(False)


class MeasurePanel(QWidget):
    """The Measure tab: tools, the series' measurements, hematoma volume and cine rate."""

    def __init__(self, tools: MeasureTools, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tools = tools
        layout = QVBoxLayout(self)
        buttons = QHBoxLayout()
        for action in (tools.act_ruler, tools.act_roi):
            button = QToolButton(self)
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonTextOnly)
            buttons.addWidget(button)
        self.delete_button = QPushButton("Delete", self)
        self.delete_button.setToolTip("Delete the measurement selected in the list")
        self.delete_button.clicked.connect(self._delete_selected)
        buttons.addWidget(self.delete_button)
        layout.addLayout(buttons)
        self.list = QListWidget(self)
        self.list.setToolTip("Measurements of this series; double-click goes to its slice")
        self.list.itemDoubleClicked.connect(self._go_to)
        layout.addWidget(self.list, 1)
        self.hematoma_button = QPushButton("Hematoma volume (ABC/2)", self)
        self.hematoma_button.setToolTip(tools.act_hematoma.toolTip())
        self.hematoma_button.clicked.connect(tools.compute_hematoma)
        layout.addWidget(self.hematoma_button)
        cine = QHBoxLayout()
        play = QToolButton(self)
        play.setDefaultAction(tools.act_cine)
        cine.addWidget(play)
        cine.addWidget(QLabel("rate", self))
        self.rate = QSpinBox(self)
        self.rate.setRange(1, 60)
        self.rate.setValue(round(tools.cine_rate))
        self.rate.setSuffix(" /s")
        self.rate.valueChanged.connect(tools.set_cine_rate)
        cine.addWidget(self.rate)
        cine.addStretch(1)
        layout.addLayout(cine)
        tools.changed.connect(self.refresh)

    def refresh(self) -> None:
        self.list.clear()
        for m in self.tools.measurements():
            item = QListWidgetItem(describe(m), self.list)
            item.setData(Qt.UserRole, m.id)

    def _selected(self) -> Any:
        item = self.list.currentItem()
        if item is None:
            return None
        wanted = item.data(Qt.UserRole)
        return next((m for m in self.tools.measurements() if m.id == wanted), None)

    def _go_to(self, _item: QListWidgetItem) -> None:
        m = self._selected()
        state = self.tools.window.state
        if m is not None and state is not None and not isinstance(m, Hematoma):
            state.set_focus(m.plane)
            state.set_slice(m.plane, m.slice)

    def _delete_selected(self) -> None:
        m = self._selected()
        aset = self.tools.annotations.aset
        if m is not None and aset is not None:
            aset.delete(m.id)


def install_measure_tools(window: Any) -> MeasureTools:
    """Add the reading tools to a MainWindow that has annotations installed."""
    annotations = getattr(window, "annotations", None)
    if annotations is None:
        from mprviewer.gui.annotation_controller import install_annotations

        annotations = install_annotations(window)
    tools = MeasureTools(window, annotations)
    tools.panel = MeasurePanel(tools, window)
    shown = window.side_tabs.currentIndex()
    window.add_side_panel("Measure", tools.panel, first=False)
    window.side_tabs.setCurrentIndex(shown)  # the annotations stay in front
    tools.slab_controls = SlabControls(tools, window)
    box = window.controls.parentWidget()
    if box is not None and box.layout() is not None:
        box.layout().addWidget(tools.slab_controls)
    window.measure_tools = tools
    return tools
