"""2D annotations drawn over a view: edge letters, slice text, crosshair, marked-slice frame.

Text sizes follow the viewport's height (updated before each render), so the same scene
reads well in a small quad screenshot and in a maximised window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from vtkmodules.vtkCommonCore import vtkPoints, vtkUnsignedCharArray
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkRenderingCore import (
    vtkActor,
    vtkActor2D,
    vtkCoordinate,
    vtkPolyDataMapper,
    vtkPolyDataMapper2D,
    vtkRenderer,
    vtkTextActor,
)

MARK_COLOR = (1.0, 0.6, 0.0)
# Colours of the labels in use, in order: the first is the usual mark orange; the others are
# far apart in hue and from the grey images and the white outline.
LABEL_COLORS: tuple[tuple[float, float, float], ...] = (
    MARK_COLOR,
    (0.2, 0.6, 1.0),
    (0.9, 0.2, 0.7),
    (0.3, 0.85, 0.3),
    (1.0, 0.25, 0.2),
    (0.6, 0.4, 1.0),
    (0.0, 0.8, 0.8),
    (0.85, 0.85, 0.1),
)


def label_colors(labels: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """A colour per label, given in order by the sorted labels (repeating after eight)."""
    ordered = sorted(set(labels))
    return {label: LABEL_COLORS[n % len(LABEL_COLORS)] for n, label in enumerate(ordered)}


def text_actor(
    position: tuple[float, float],
    halign: str = "left",
    valign: str = "bottom",
    color: tuple[float, float, float] = (1.0, 1.0, 1.0),
    bold: bool = False,
) -> vtkTextActor:
    """A text actor anchored at a normalized-viewport position."""
    actor = vtkTextActor()
    actor.GetPositionCoordinate().SetCoordinateSystemToNormalizedViewport()
    actor.GetPositionCoordinate().SetValue(*position)
    prop = actor.GetTextProperty()
    prop.SetColor(*color)
    prop.SetBold(bold)
    prop.SetShadow(True)
    prop.SetFontFamilyToArial()
    {
        "left": prop.SetJustificationToLeft,
        "center": prop.SetJustificationToCentered,
        "right": prop.SetJustificationToRight,
    }[halign]()
    {
        "bottom": prop.SetVerticalJustificationToBottom,
        "center": prop.SetVerticalJustificationToCentered,
        "top": prop.SetVerticalJustificationToTop,
    }[valign]()
    actor.PickableOff()
    return actor


class EdgeLetters:
    """Orientation letters centred on the four edges of a viewport."""

    _ANCHORS: ClassVar[dict[str, tuple[tuple[float, float], str, str]]] = {
        "left": ((0.012, 0.5), "left", "center"),
        "right": ((0.988, 0.5), "right", "center"),
        "top": ((0.5, 0.985), "center", "top"),
        "bottom": ((0.5, 0.015), "center", "bottom"),
    }

    def __init__(self, renderer: vtkRenderer, letters: dict[str, str]) -> None:
        self.actors: dict[str, vtkTextActor] = {}
        for edge, (pos, h, v) in self._ANCHORS.items():
            actor = text_actor(pos, h, v, color=(1.0, 0.85, 0.3), bold=True)
            actor.SetInput(letters[edge])
            renderer.AddViewProp(actor)
            self.actors[edge] = actor

    def set_font_size(self, size: int) -> None:
        for actor in self.actors.values():
            actor.GetTextProperty().SetFontSize(size)

    def remove(self, renderer: vtkRenderer) -> None:
        for actor in self.actors.values():
            renderer.RemoveViewProp(actor)


class Crosshair:
    """Two world-space line segments showing where the other planes cut this one."""

    def __init__(self, renderer: vtkRenderer) -> None:
        self.points = vtkPoints()
        self.points.SetNumberOfPoints(4)
        lines = vtkCellArray()
        for a, b in ((0, 1), (2, 3)):
            lines.InsertNextCell(2)
            lines.InsertCellPoint(a)
            lines.InsertCellPoint(b)
        self.colors = vtkUnsignedCharArray()
        self.colors.SetNumberOfComponents(3)
        self.colors.SetNumberOfTuples(2)
        self.poly = vtkPolyData()
        self.poly.SetPoints(self.points)
        self.poly.SetLines(lines)
        self.poly.GetCellData().SetScalars(self.colors)
        mapper = vtkPolyDataMapper()
        mapper.SetInputData(self.poly)
        mapper.SetColorModeToDirectScalars()
        self.actor = vtkActor()
        self.actor.SetMapper(mapper)
        self.actor.GetProperty().SetLineWidth(1.0)
        # Opaque on purpose: a translucent prop adds a translucent pass to every frame.
        self.actor.GetProperty().LightingOff()
        self.actor.PickableOff()
        renderer.AddActor(self.actor)

    def set_lines(
        self,
        segments: Sequence[tuple[Sequence[float], Sequence[float]]],
        colors: Sequence[tuple[float, float, float]],
    ) -> None:
        for n, (a, b) in enumerate(segments):
            self.points.SetPoint(2 * n, *a)
            self.points.SetPoint(2 * n + 1, *b)
        for n, c in enumerate(colors):
            self.colors.SetTuple3(n, *(round(255 * v) for v in c))
        self.points.Modified()
        self.colors.Modified()
        self.poly.Modified()


class Frame:
    """A coloured rectangle just inside the viewport's border (marks a marked slice)."""

    def __init__(self, renderer: vtkRenderer, color: tuple[float, float, float] = MARK_COLOR):
        pts = vtkPoints()
        inset = 0.004
        far = 1.0 - inset
        for x, y in ((inset, inset), (far, inset), (far, far), (inset, far)):
            pts.InsertNextPoint(x, y, 0.0)
        cells = vtkCellArray()
        cells.InsertNextCell(5)
        for i in (0, 1, 2, 3, 0):
            cells.InsertCellPoint(i)
        poly = vtkPolyData()
        poly.SetPoints(pts)
        poly.SetLines(cells)
        coord = vtkCoordinate()
        coord.SetCoordinateSystemToNormalizedViewport()
        mapper = vtkPolyDataMapper2D()
        mapper.SetInputData(poly)
        mapper.SetTransformCoordinate(coord)
        self.actor = vtkActor2D()
        self.actor.SetMapper(mapper)
        self.actor.GetProperty().SetColor(*color)
        self.actor.GetProperty().SetLineWidth(4.0)
        self.actor.PickableOff()
        self.actor.VisibilityOff()
        renderer.AddViewProp(self.actor)

    def set_visible(self, on: bool) -> None:
        self.actor.SetVisibility(bool(on))

    def set_color(self, color: tuple[float, float, float]) -> None:
        self.actor.GetProperty().SetColor(*color)


class OrientationMarker:
    """Patient axes (L, P, S) in a corner of a 3D view, turning with its camera.

    A small renderer in the layer above, its camera copied from the main one before each
    render: works in any render window, with or without an interactor.
    """

    def __init__(self, renderer: vtkRenderer, fraction: float = 0.26) -> None:
        from vtkmodules.vtkRenderingAnnotation import vtkAxesActor

        self.main = renderer
        self.fraction = fraction
        self.renderer = vtkRenderer()
        self.renderer.SetLayer(1)
        self.renderer.InteractiveOff()
        axes = vtkAxesActor()
        axes.SetXAxisLabelText("L")
        axes.SetYAxisLabelText("P")
        axes.SetZAxisLabelText("S")
        axes.SetShaftTypeToCylinder()
        axes.SetCylinderRadius(0.03)
        for caption in (
            axes.GetXAxisCaptionActor2D(),
            axes.GetYAxisCaptionActor2D(),
            axes.GetZAxisCaptionActor2D(),
        ):
            text = caption.GetCaptionTextProperty()
            text.SetColor(1.0, 1.0, 1.0)
            text.BoldOn()
            text.ItalicOff()
            text.ShadowOn()
        self.axes = axes
        self.renderer.AddViewProp(axes)
        ren_win = renderer.GetRenderWindow()
        if ren_win.GetNumberOfLayers() < 2:
            ren_win.SetNumberOfLayers(2)
        ren_win.AddRenderer(self.renderer)
        self._observer = renderer.AddObserver("StartEvent", self._sync)

    def _sync(self, *_: object) -> None:
        x0, y0, x1, y1 = self.main.GetViewport()
        side = min(x1 - x0, y1 - y0) * self.fraction
        self.renderer.SetViewport(x0, y0, x0 + side, y0 + side)
        src = self.main.GetActiveCamera()
        cam = self.renderer.GetActiveCamera()
        fx, fy, fz = src.GetFocalPoint()
        px, py, pz = src.GetPosition()
        dx, dy, dz = px - fx, py - fy, pz - fz
        norm = max((dx * dx + dy * dy + dz * dz) ** 0.5, 1e-9)
        cam.SetFocalPoint(0.0, 0.0, 0.0)
        cam.SetPosition(dx / norm * 5.0, dy / norm * 5.0, dz / norm * 5.0)
        cam.SetViewUp(*src.GetViewUp())
        self.renderer.ResetCamera()

    def remove(self) -> None:
        self.main.RemoveObserver(self._observer)
        ren_win = self.main.GetRenderWindow()
        if ren_win is not None:
            ren_win.RemoveRenderer(self.renderer)
