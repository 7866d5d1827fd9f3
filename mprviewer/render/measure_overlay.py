"""Rulers and ROI circles drawn over a 2D view, each with its value beside it.

``MeasureOverlay`` belongs to one SliceScene: give it the measurements of the series
(``set_items``) and it draws those lying on the view's current slice, following slice
changes. Positions are display-grid indices (continuous), put in the scene's world through
the shared image, so an acquisition shown on its own grid draws where its voxels are. No Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

from mprviewer.render import planes
from mprviewer.render.overlays import text_actor

RULER_COLOR = (0.3, 0.85, 1.0)
ROI_COLOR = (1.0, 0.45, 0.85)
CIRCLE_SEGMENTS = 72


@dataclass(frozen=True)
class DrawnItem:
    """One thing to draw: ``kind`` "ruler" (points a, b) or "roi" (centre a, radius_mm);
    positions are continuous display indices (x, y, z); ``text`` goes beside it."""

    id: str
    kind: str
    slice: int
    a: tuple[float, float, float]
    b: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius_mm: float = 0.0
    text: str = ""


class MeasureOverlay:
    """World-space lines for rulers and circles, and text actors for their values."""

    def __init__(self, scene: Any) -> None:
        self.scene = scene
        self.renderer = scene.renderer
        self.items: list[DrawnItem] = []
        self.preview: DrawnItem | None = None
        self.actors: dict[str, vtkActor] = {}
        self.polys: dict[str, vtkPolyData] = {}
        for kind, color in (("ruler", RULER_COLOR), ("roi", ROI_COLOR)):
            poly = vtkPolyData()
            mapper = vtkPolyDataMapper()
            mapper.SetInputData(poly)
            actor = vtkActor()
            actor.SetMapper(mapper)
            prop = actor.GetProperty()
            prop.SetColor(*color)
            prop.SetLineWidth(2.0)
            prop.LightingOff()
            actor.PickableOff()
            self.renderer.AddActor(actor)
            self.actors[kind] = actor
            self.polys[kind] = poly
        self.labels: list[Any] = []
        self._drawn_slice = -1
        # Redrawn lazily before a render of another slice: the scene renders on the slice
        # change itself, so no second render is needed.
        self._observer = self.renderer.AddObserver("StartEvent", self._before_render)
        self._closed = False

    # -- geometry -----------------------------------------------------------------------
    def _world(self, xyz: tuple[float, float, float] | np.ndarray, lift: bool = True
               ) -> np.ndarray:
        """World point of a display index, a little toward the camera so lines are on top."""
        store = self.scene.store
        world = store.world_of(xyz)
        axis = self.scene.axis
        index = self.scene.state.slices[self.scene.plane]
        world[axis] = store.plane_position_mm(self.scene.plane, index)
        if lift:
            direction = np.asarray(planes.VIEW_DIRECTION[self.scene.plane])
            world[axis] -= direction[axis] * 0.6 * store.spacing[axis]
        return world

    def _circle(self, item: DrawnItem) -> list[np.ndarray]:
        center = self._world(item.a)
        h, v = self.scene.h_axis, self.scene.v_axis
        out = []
        for t in np.linspace(0.0, 2 * np.pi, CIRCLE_SEGMENTS + 1):
            p = center.copy()
            p[h] += item.radius_mm * np.cos(t)
            p[v] += item.radius_mm * np.sin(t)
            out.append(p)
        return out

    def _shown(self) -> list[DrawnItem]:
        index = self.scene.state.slices[self.scene.plane]
        shown = [it for it in self.items if it.slice == index]
        if self.preview is not None and self.preview.slice == index:
            shown.append(self.preview)
        return shown

    def _rebuild(self) -> None:
        self._drawn_slice = self.scene.state.slices[self.scene.plane]
        for label in self.labels:
            self.renderer.RemoveViewProp(label)
        self.labels = []
        polylines: dict[str, list[list[np.ndarray]]] = {"ruler": [], "roi": []}
        right = planes.screen_axes(self.scene.plane)[0]
        for item in self._shown():
            if item.kind == "ruler":
                a, b = self._world(item.a), self._world(item.b)
                polylines["ruler"].append([a, b])
                # the value beside the end further right on screen, reading away from the line
                anchor = b if np.dot(b - a, right) >= 0 else a
                anchor = anchor + right * 1.5 * self.scene.store.spacing[self.scene.h_axis]
            else:
                polylines["roi"].append(self._circle(item))
                anchor = self._world(item.a) + right * (
                    item.radius_mm + 1.5 * self.scene.store.spacing[self.scene.h_axis])
            if item.text:
                self._add_label(anchor, item.text, RULER_COLOR if item.kind == "ruler"
                                else ROI_COLOR)
        for kind, lines in polylines.items():
            points = vtkPoints()
            cells = vtkCellArray()
            for line in lines:
                cells.InsertNextCell(len(line))
                for p in line:
                    cells.InsertCellPoint(points.InsertNextPoint(*p))
            poly = self.polys[kind]
            poly.SetPoints(points)
            poly.SetLines(cells)
            poly.Modified()

    def _add_label(self, world: np.ndarray, text: str, color: tuple[float, float, float]) -> None:
        actor = text_actor((0.0, 0.0), "left", "center", color=color, bold=True)
        coord = actor.GetPositionCoordinate()
        coord.SetCoordinateSystemToWorld()
        coord.SetValue(*world)
        actor.GetTextProperty().SetFontSize(13)
        actor.SetInput(text)
        self.renderer.AddViewProp(actor)
        self.labels.append(actor)

    # -- public -------------------------------------------------------------------------
    def set_items(self, items: list[DrawnItem]) -> None:
        """The measurements of this plane (any slice); those on the current slice show."""
        self.items = list(items)
        self._rebuild()
        self.scene._request_render()

    def set_preview(self, item: DrawnItem | None) -> None:
        """A measurement being drawn (or None)."""
        self.preview = item
        self._rebuild()
        self.scene._request_render()

    def visible_items(self) -> list[DrawnItem]:
        """What is drawn now (the current slice's measurements)."""
        return [it for it in self._shown() if it is not self.preview]

    def _before_render(self, *_: Any) -> None:
        if self._closed or self._drawn_slice == self.scene.state.slices[self.scene.plane]:
            return
        if self.items or self.labels or self.preview is not None:
            self._rebuild()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.renderer.RemoveObserver(self._observer)
        for actor in self.actors.values():
            self.renderer.RemoveActor(actor)
        for label in self.labels:
            self.renderer.RemoveViewProp(label)
        self.labels = []
