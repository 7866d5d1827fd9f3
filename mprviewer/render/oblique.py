"""Oblique reformat (the double-oblique MPR of 3D Slicer and Horos) drawn in the 2D views.

The state, ``ReformatPlanes`` (which way each view's plane faces), is Qt- and VTK-free in
``mprviewer.model.reformat`` and owned by the session. ``ObliqueSlice`` gives one
``SliceScene`` its tilted plane: a vtkImageResliceMapper cutting the same vtkImageData with a
vtkPlane through the crosshair point, in the scene's own vtkImageSlice (so window, level and
the image property stay shared), with the camera, the orientation letters and the crosshair
lines following the frame. Marks stay defined on the orthogonal grid (``MARKING_REFUSED``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mprviewer.model.orientation import AXIS_PLANE
from mprviewer.model.reformat import (
    MARKING_REFUSED,
    PLANES,
    ReformatPlanes,
    oblique_letters,
    rotation,
)


def crosshair_point(store: Any, slices: dict[str, int]) -> np.ndarray:
    """World point where the three planes meet (the crosshair)."""
    return np.array([store.plane_position_mm(AXIS_PLANE[d], slices[AXIS_PLANE[d]])
                     for d in range(3)], dtype=np.float64)


class ObliqueSlice:
    """Shows one ``SliceScene`` on its tilted plane of a ``ReformatPlanes``."""

    def __init__(self, scene: Any, reformat: ReformatPlanes) -> None:
        from vtkmodules.vtkCommonDataModel import vtkPlane

        self.scene = scene
        self.reformat = reformat
        self.plane_fn = vtkPlane()
        self.mapper = self._cut_of(scene.store.image)
        # The threshold overlay cuts the same plane (nearest neighbour, in its own layer).
        self.overlay_mapper = self._cut_of(scene.store.image)
        self.active = False

    def _cut_of(self, image: Any) -> Any:
        """A reslice mapper drawing ``image`` where this view's tilted plane cuts it."""
        from vtkmodules.vtkRenderingImage import vtkImageResliceMapper

        mapper = vtkImageResliceMapper()
        mapper.SetInputData(image)
        mapper.SetSlicePlane(self.plane_fn)
        mapper.SliceFacesCameraOff()
        mapper.SliceAtFocalPointOff()
        mapper.BorderOn()
        mapper.ResampleToScreenPixelsOn()
        return mapper

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
        for mapper in (self.mapper, self.overlay_mapper):
            if scene.slab_mm > 0:
                mapper.SetSlabThickness(scene.slab_mm)
                getattr(mapper, f"SetSlabTypeTo{scene.slab_mode.capitalize()}")()
            else:
                mapper.SetSlabThickness(0.0)
            mapper.Modified()
        was = self.active
        self.active = tilted
        if tilted and not was:
            scene.image_slice.SetMapper(self.mapper)
            if scene.overlay_slice is not None:
                scene.overlay_slice.SetMapper(self.overlay_mapper)
        elif was and not tilted:
            scene.image_slice.SetMapper(scene.mapper if scene.slab_mm <= 0
                                        else scene._slab_layer())
            if scene.overlay_slice is not None:
                scene.overlay_slice.SetMapper(scene._overlay_mapper)
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
