"""Oblique reformat (the double-oblique MPR of 3D Slicer and Horos) for the three 2D views.

``ReformatPlanes`` holds, for each of the axial, coronal and sagittal views, a frame of three
world directions: the screen's right, the screen's up and the view direction (the plane's
normal, from the camera into the scene). Rotating the crosshair in one view by an angle
turns the other two frames about that view's normal, so the three planes stay mutually
perpendicular while the view rotated in keeps its own picture (only its crosshair lines
turn). ``reset`` makes all three orthogonal again. The class is plain numpy with a list of
listeners, so a session model or a front end can own it without VTK or Qt.

``ObliqueSlice`` gives one ``SliceScene`` its tilted plane: a vtkImageResliceMapper cutting
the same vtkImageData with a vtkPlane through the crosshair point, in the scene's own
vtkImageSlice (so window, level and the image property stay shared), with the camera, the
orientation letters and the crosshair lines following the frame.

Marks stay defined on the orthogonal grid: while any plane is tilted a view is ``oblique``
and the front end refuses to mark (see ``MARKING_REFUSED``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mprviewer.model.orientation import AXIS_PLANE

PLANES: tuple[str, ...] = ("axial", "coronal", "sagittal")
TILT_EPS_DEG = 0.05
"""Frames closer than this to their orthogonal position count as not tilted."""
LETTER_MIN = 0.2
"""A patient direction enters an oblique edge's letters when its share passes this."""
MARKING_REFUSED = ("the planes are tilted (oblique reformat) and marks belong to the "
                   "orthogonal slices: press Reset oblique (O) first")

_LETTER = {(0, 1): "L", (0, -1): "R", (1, 1): "P", (1, -1): "A", (2, 1): "S", (2, -1): "I"}


def _base_frame(plane: str) -> np.ndarray:
    from mprviewer.render import planes

    right, up = planes.screen_axes(plane)
    normal = np.asarray(planes.VIEW_DIRECTION[plane], dtype=np.float64)
    return np.column_stack([right, up, normal]).astype(np.float64)


def rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    """3x3 right-handed rotation by ``degrees`` about the unit vector ``axis``."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    t = np.radians(degrees)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.eye(3) + np.sin(t) * k + (1.0 - np.cos(t)) * (k @ k)


def oblique_letters(direction: np.ndarray | tuple[float, float, float]) -> str:
    """Patient letters of a world direction, strongest first ('L', 'LP', 'SLA').

    A direction along an axis gives one letter, as on an orthogonal view; a tilted one gives
    every axis whose component passes ``LETTER_MIN`` (Horos and Slicer write it the same
    way), so 'LP' reads "left and somewhat posterior".
    """
    v = np.asarray(direction, dtype=np.float64)
    v = v / np.linalg.norm(v)
    order = np.argsort(-np.abs(v))
    out = [_LETTER[(int(d), 1 if v[d] > 0 else -1)] for d in order if abs(v[d]) >= LETTER_MIN]
    return "".join(out) or _LETTER[(int(order[0]), 1 if v[order[0]] > 0 else -1)]


class ReformatPlanes:
    """Orientation of the three 2D views' planes; orthogonal until a crosshair is rotated."""

    def __init__(self) -> None:
        self._frames = {p: _base_frame(p) for p in PLANES}
        self._listeners: list[Callable[[], None]] = []

    # -- listening ---------------------------------------------------------------------
    def connect(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every change of any frame."""
        self._listeners.append(callback)

    def disconnect(self, callback: Callable[[], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _changed(self) -> None:
        for callback in list(self._listeners):
            callback()

    # -- facts -------------------------------------------------------------------------
    def frame(self, plane: str) -> np.ndarray:
        """3x3 array whose columns are the world directions of the view's right, up and
        normal (view direction)."""
        return self._frames[plane].copy()

    def normal(self, plane: str) -> np.ndarray:
        return self._frames[plane][:, 2].copy()

    def right(self, plane: str) -> np.ndarray:
        return self._frames[plane][:, 0].copy()

    def up(self, plane: str) -> np.ndarray:
        return self._frames[plane][:, 1].copy()

    def tilt_deg(self, plane: str) -> float:
        """Angle between the plane's frame and its orthogonal one (0 when not tilted)."""
        r = self._frames[plane] @ _base_frame(plane).T
        cos = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
        return float(np.degrees(np.arccos(cos)))

    def is_tilted(self, plane: str) -> bool:
        return self.tilt_deg(plane) > TILT_EPS_DEG

    @property
    def is_oblique(self) -> bool:
        """True when any plane is tilted: marking is refused then."""
        return any(self.is_tilted(p) for p in PLANES)

    def edge_letters(self, plane: str) -> dict[str, str]:
        """Letters for the left, right, top and bottom edges of the plane's view."""
        right, up = self.right(plane), self.up(plane)
        return {"left": oblique_letters(-right), "right": oblique_letters(right),
                "top": oblique_letters(up), "bottom": oblique_letters(-up)}

    # -- actions -----------------------------------------------------------------------
    def rotate(self, plane: str, degrees: float) -> None:
        """Turn the crosshair of ``plane``'s view by ``degrees`` counter-clockwise on the
        screen: the two other planes turn about this plane's normal."""
        if plane not in PLANES:
            raise ValueError(f"unknown plane {plane!r}; use axial, coronal or sagittal")
        degrees = float(degrees)
        if not np.isfinite(degrees) or degrees == 0.0:
            return
        # Counter-clockwise as seen by the camera, which looks along the normal.
        turn = rotation(-self._frames[plane][:, 2], degrees)
        for other in PLANES:
            if other != plane:
                self._frames[other] = turn @ self._frames[other]
        self._changed()

    def reset(self) -> None:
        """All three planes orthogonal again."""
        if not self.is_oblique:
            return
        self._frames = {p: _base_frame(p) for p in PLANES}
        self._changed()


def crosshair_point(store: Any, slices: dict[str, int]) -> np.ndarray:
    """World point where the three planes meet (the crosshair)."""
    return np.array([store.plane_position_mm(AXIS_PLANE[d], slices[AXIS_PLANE[d]])
                     for d in range(3)], dtype=np.float64)


class ObliqueSlice:
    """Shows one ``SliceScene`` on its tilted plane of a ``ReformatPlanes``."""

    def __init__(self, scene: Any, reformat: ReformatPlanes) -> None:
        from vtkmodules.vtkCommonDataModel import vtkPlane
        from vtkmodules.vtkRenderingImage import vtkImageResliceMapper

        self.scene = scene
        self.reformat = reformat
        self.plane_fn = vtkPlane()
        self.mapper = vtkImageResliceMapper()
        self.mapper.SetInputData(scene.store.image)
        self.mapper.SetSlicePlane(self.plane_fn)
        self.mapper.SliceFacesCameraOff()
        self.mapper.SliceAtFocalPointOff()
        self.mapper.BorderOn()
        self.mapper.ResampleToScreenPixelsOn()
        self.active = False

    @property
    def tilted(self) -> bool:
        return self.reformat.is_tilted(self.scene.plane)

    def center(self) -> np.ndarray:
        return crosshair_point(self.scene.store, self.scene.state.slices)

    def apply(self) -> None:
        """Follow the frames and the crosshair point: mapper, camera, letters, slab."""
        scene, plane = self.scene, self.scene.plane
        tilted = self.tilted
        center = self.center()
        self.plane_fn.SetOrigin(*center)
        self.plane_fn.SetNormal(*self.reformat.normal(plane))
        if scene.slab_mm > 0:
            self.mapper.SetSlabThickness(scene.slab_mm)
            getattr(self.mapper, f"SetSlabTypeTo{scene.slab_mode.capitalize()}")()
        else:
            self.mapper.SetSlabThickness(0.0)
        self.mapper.Modified()
        was = self.active
        self.active = tilted
        if tilted and not was:
            scene.image_slice.SetMapper(self.mapper)
            if scene.overlay_slice is not None:
                scene.overlay_slice.SetVisibility(False)
        elif was and not tilted:
            scene.image_slice.SetMapper(scene.mapper if scene.slab_mm <= 0
                                        else scene._slab_layer())
            if scene.overlay_slice is not None:
                scene.overlay_slice.SetVisibility(bool(scene.state.threshold_overlay))
        letters = self.reformat.edge_letters(plane)
        for edge, actor in scene.letters.actors.items():
            actor.SetInput(letters[edge])
        if tilted != was:
            scene.reset_camera()
        elif tilted:
            self.place_camera(keep_zoom=True)

    def place_camera(self, keep_zoom: bool = False) -> None:
        """Camera looking along the tilted normal through the crosshair, the volume fitted."""
        scene = self.scene
        plane = scene.plane
        cam = scene.renderer.GetActiveCamera()
        normal, up, right = (self.reformat.normal(plane), self.reformat.up(plane),
                             self.reformat.right(plane))
        b = scene.store.bounds
        half = 0.5 * np.asarray(scene.store.spacing)
        lo = np.array([b[0], b[2], b[4]]) - half
        hi = np.array([b[1], b[3], b[5]]) + half
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                            for z in (lo[2], hi[2])])
        mid = (lo + hi) / 2.0
        center = self.center()
        if keep_zoom:
            focal = np.asarray(cam.GetFocalPoint())
            focal = focal - np.dot(focal - center, normal) * normal
        else:
            focal = mid - np.dot(mid - center, normal) * normal
        distance = float(np.linalg.norm(hi - lo)) + 100.0
        cam.ParallelProjectionOn()
        cam.SetFocalPoint(*focal)
        cam.SetPosition(*(focal - normal * distance))
        cam.SetViewUp(*up)
        if not keep_zoom:
            xs, ys = (corners - mid) @ right, (corners - mid) @ up
            w, h = scene.renderer.GetSize()
            aspect = (w / h) if w > 0 and h > 0 else 1.0
            cam.SetParallelScale(1.1 * max(ys.max(), xs.max() / aspect))
        cam.SetClippingRange(distance * 0.5, distance * 1.5)
        if hasattr(cam, "is_set"):
            cam.is_set = True

    def crosshair_segments(self) -> tuple[list[Any], list[Any]]:
        """Where the two other (possibly tilted) planes cut this view, as world segments."""
        from mprviewer.render import planes

        scene = self.scene
        plane = scene.plane
        center = self.center()
        n = self.reformat.normal(plane)
        center = center - n * 0.5 * float(np.min(scene.store.spacing))  # drawn over the image
        b = scene.store.bounds
        reach = 0.5 * float(np.linalg.norm([b[1] - b[0], b[3] - b[2], b[5] - b[4]])) + 1.0
        segments, colors = [], []
        for other in PLANES:
            if other == plane:
                continue
            d = np.cross(n, self.reformat.normal(other))
            d = d / np.linalg.norm(d)
            segments.append((tuple(center - d * reach), tuple(center + d * reach)))
            colors.append(planes.PLANE_COLORS[other])
        return segments, colors

    def pick_world(self, display_x: float, display_y: float) -> np.ndarray | None:
        """World point on the tilted plane under a window pixel."""
        renderer = self.scene.renderer
        renderer.SetDisplayPoint(float(display_x), float(display_y), 0.0)
        renderer.DisplayToWorld()
        wx, wy, wz, ww = renderer.GetWorldPoint()
        if ww == 0:
            return None
        p = np.array([wx / ww, wy / ww, wz / ww])
        n = self.reformat.normal(self.scene.plane)
        return p - np.dot(p - self.center(), n) * n


__all__ = ["MARKING_REFUSED", "ObliqueSlice", "ReformatPlanes", "crosshair_point",
           "oblique_letters", "rotation"]
