"""One 2D view (axial, coronal or sagittal) of the shared image, following a ViewerState.

The slice is drawn by a vtkImageSliceMapper over the shared vtkImageData: stepping a slice
only changes the mapper's slice number (one texture upload), never copies data. The threshold
overlay is a second layer of the same image with a two-colour lookup table, stacked above the
grey image in a vtkImageStack. The camera is parallel, so pixels keep their true aspect ratio
(anisotropic voxels are not stretched), and placed per ``mprviewer.render.planes``.

A thick slab (``set_slab``) shows the maximum, minimum or mean over the slices whose centres
lie within half its thickness of the current one. The projection is a numpy reduction over
the shared display array into a one-slice image that the grey layer shows instead: stepping a
10 mm MIP on 512x512x300 costs what a plain step does, where vtkImageResliceMapper's
screen-resolution slab cost 5.7 times it on Mesa. With no slab the slice mapper of the shared
image is back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from vtkmodules.util import numpy_support
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkRenderingCore import vtkImageSlice, vtkImageSliceMapper
from vtkmodules.vtkRenderingImage import vtkImageStack

from mprviewer.model.orientation import AXIS_PLANE, PLANE_AXIS
from mprviewer.render import planes
from mprviewer.render.image import ImageStore
from mprviewer.render.lut import threshold_lut, update_threshold_lut
from mprviewer.render.overlays import MARK_COLOR, Crosshair, EdgeLetters, Frame, text_actor

_AXIS_NAME_POS = {0: ("R", "L"), 1: ("A", "P"), 2: ("I", "S")}
SLAB_MODES: tuple[str, ...] = ("max", "min", "mean")
_SLAB_NAMES = {"max": "MIP", "min": "MinIP", "mean": "mean"}


def check_slab(thickness_mm: float, mode: str) -> tuple[float, str]:
    """Validated (thickness in mm, mode); ValueError naming what is wrong."""
    try:
        mm = float(thickness_mm)
    except (TypeError, ValueError):
        raise ValueError(f"slab thickness must be a number of mm, not {thickness_mm!r}") from None
    if not np.isfinite(mm) or mm < 0 or mm > 10000:
        raise ValueError(f"slab thickness must be 0-10000 mm, not {thickness_mm!r}")
    if mode not in SLAB_MODES:
        raise ValueError(f"unknown slab mode {mode!r}; use one of {', '.join(SLAB_MODES)}")
    return mm, mode


def slab_label(thickness_mm: float, mode: str) -> str:
    """'Slab MIP 10 mm' for the corner text; '' without a slab."""
    if thickness_mm <= 0:
        return ""
    return f"Slab {_SLAB_NAMES[mode]} {thickness_mm:g} mm"


def disable_multisampling(plotter: Any) -> None:
    """Turn off MSAA on the plotter's render window (it costs about 4x on Mesa)."""
    ren_win = getattr(plotter, "render_window", None) or getattr(plotter, "ren_win", None)
    if ren_win is not None:
        ren_win.SetMultiSamples(0)


def format_position(axis: int, mm: float) -> str:
    """'S 12.5 mm' style position along a display axis (LPS sign gives the letter)."""
    neg, pos = _AXIS_NAME_POS[axis]
    return f"{pos if mm >= 0 else neg} {abs(mm):.1f} mm"


class SliceScene:
    """The 2D view of ``plane`` in the plotter's active renderer (subplot)."""

    def __init__(self, plotter: Any, store: ImageStore, state: Any, plane: str) -> None:
        if plane not in PLANE_AXIS:
            raise ValueError(f"unknown plane {plane!r}; use axial, coronal or sagittal")
        self.plotter = plotter
        self.renderer = plotter.renderer
        self.store = store
        self.state = state
        self.plane = plane
        self.axis = PLANE_AXIS[plane]
        self.h_axis, self.v_axis = planes.screen_display_axes(plane)
        self._marked: dict[int, list[str]] = {}
        self._label_colors: dict[str, tuple[float, float, float]] = {}
        self._fit: tuple[tuple[int, int], float, tuple[float, ...]] | None = None
        self._closed = False
        self.slab_mm = 0.0
        self.slab_mode = "max"
        self._slab_mapper: Any = None
        self._slab_image: Any = None
        self._slab_buffer: np.ndarray | None = None
        self._slab_scalars: Any = None
        self.oblique: Any = None  # an ObliqueSlice once set_reformat gives the view its frames
        disable_multisampling(plotter)
        self.renderer.SetBackground(0.0, 0.0, 0.0)

        self.stack = vtkImageStack()
        self.image_slice, self.mapper = self._make_layer()
        prop = self.image_slice.GetProperty()
        if store.is_rgb:
            prop.SetColorWindow(255.0)
            prop.SetColorLevel(127.5)
        else:
            prop.SetColorWindow(state.window_width)
            prop.SetColorLevel(state.window_center)
        self.stack.AddImage(self.image_slice)
        self.stack.SetActiveLayer(0)
        self.overlay_slice: vtkImageSlice | None = None
        self._overlay_lut = None
        self.renderer.AddViewProp(self.stack)

        self.letters = EdgeLetters(self.renderer, planes.edge_letters(plane))
        self.info_text = text_actor((0.012, 0.985), "left", "top")
        self.window_text = text_actor((0.012, 0.015), "left", "bottom", color=(0.85, 0.85, 0.85))
        self.badge_text = text_actor((0.988, 0.985), "right", "top", color=MARK_COLOR, bold=True)
        for actor in (self.info_text, self.window_text, self.badge_text):
            self.renderer.AddViewProp(actor)
        self.frame = Frame(self.renderer)
        self.crosshair = Crosshair(self.renderer)
        self._font_for_height = -1

        self._observer = self.renderer.AddObserver("StartEvent", self._before_render)
        state.slice_changed.connect(self._on_slice)
        state.window_changed.connect(self._on_window)
        state.threshold_changed.connect(self._on_threshold)
        state.display_changed.connect(self._on_display)

        self._apply_slice()
        self._update_window_text()
        if state.threshold_overlay:
            self._show_overlay(True)
        self._update_crosshair()
        self.reset_camera()

    # -- building ----------------------------------------------------------------------
    def _make_layer(self) -> tuple[vtkImageSlice, vtkImageSliceMapper]:
        mapper = vtkImageSliceMapper()
        mapper.SetInputData(self.store.image)
        mapper.SetOrientation(self.axis)
        mapper.SliceFacesCameraOff()
        mapper.SliceAtFocalPointOff()
        mapper.BorderOn()  # draw edge voxels whole, so the image spans its true extent
        mapper.SetSliceNumber(self.state.slices[self.plane])
        image_slice = vtkImageSlice()
        image_slice.SetMapper(mapper)
        image_slice.GetProperty().SetInterpolationTypeToLinear()
        image_slice.PickableOff()
        return image_slice, mapper

    def _show_overlay(self, on: bool) -> None:
        if self.store.is_rgb:
            return
        if on and self.overlay_slice is None:
            self.overlay_slice, self._overlay_mapper = self._make_layer()
            if self.is_tilted:  # the tilted plane's cut, as the image's
                self.overlay_slice.SetMapper(self.oblique.overlay_mapper)
            self._overlay_lut = threshold_lut(self.state.threshold, self.store.is_integer)
            prop = self.overlay_slice.GetProperty()
            prop.SetLookupTable(self._overlay_lut)
            prop.UseLookupTableScalarRangeOn()
            prop.SetInterpolationTypeToNearest()
            prop.SetLayerNumber(1)
            self.stack.AddImage(self.overlay_slice)
        if self.overlay_slice is not None:
            self.overlay_slice.SetVisibility(bool(on))
        self._update_window_text()

    # -- state callbacks ---------------------------------------------------------------
    def _on_slice(self, plane: str, index: int) -> None:
        if plane == self.plane:
            self._apply_slice()
        if self.oblique is not None and self.oblique.reformat.is_oblique:
            self.oblique.apply()  # the tilted planes pass through the moved crosshair
        self._update_crosshair()
        # Another plane's slice shows here only as a crosshair line: with the lines hidden
        # the picture is unchanged, and the view is not drawn again.
        if plane == self.plane or self.crosshair.actor.GetVisibility():
            self._request_render()

    def _on_window(self, center: float, width: float) -> None:
        if not self.store.is_rgb:
            prop = self.image_slice.GetProperty()
            prop.SetColorWindow(width)
            prop.SetColorLevel(center)
        self._update_window_text()
        self._request_render()

    def _on_threshold(self, value: float) -> None:
        if self._overlay_lut is not None:
            update_threshold_lut(self._overlay_lut, value, self.store.is_integer)
        self._update_window_text()
        if self.state.threshold_overlay:
            self._request_render()

    def _on_display(self, name: str, value: Any) -> None:
        if name == "threshold_overlay":
            self._show_overlay(bool(value))
            self._request_render()

    # -- updates -----------------------------------------------------------------------
    def _apply_slice(self) -> None:
        index = self.state.slices[self.plane]
        self.mapper.SetSliceNumber(index)
        if self.overlay_slice is not None:
            self._overlay_mapper.SetSliceNumber(index)
        n = self.store.shape[self.axis]
        mm = self.store.plane_position_mm(self.plane, index)
        if self.slab_mm > 0 and not self.is_tilted:  # a tilted slab is the reslice mapper's
            self._update_slab(index)
        if self.is_tilted:
            tilt = self.oblique.reformat.tilt_deg(self.plane)
            lines = [f"{self.plane.capitalize()} oblique {tilt:.0f}°", "marks on orthogonal"]
        else:
            lines = [f"{self.plane.capitalize()} {index} / {n}", format_position(self.axis, mm)]
        lines += [t for t in (slab_label(self.slab_mm, self.slab_mode), self.extra_info) if t]
        self.info_text.SetInput("\n".join(lines))
        labels = None if self.is_tilted else self._marked.get(index)
        self.badge_text.SetInput(("Marked: " + ", ".join(labels)) if labels else "")
        self.frame.set_visible(bool(labels))
        if labels:  # the first label's colour, as its slab in 3D
            color = self._label_colors.get(labels[0], MARK_COLOR)
            self.frame.set_color(color)
            self.badge_text.GetTextProperty().SetColor(*color)

    def _update_window_text(self) -> None:
        units = f" {self.store.units}" if self.store.units else ""
        if self.store.is_rgb:
            text = "RGB"
        else:
            text = f"W {self.state.window_width:g}  L {self.state.window_center:g}"
            if self.state.threshold_overlay:
                text += f"\n>= {self.state.threshold:g}{units}"
        self.window_text.SetInput(text)

    def _update_crosshair(self) -> None:
        if self.oblique is not None and self.oblique.reformat.is_oblique:
            self.crosshair.set_lines(*self.oblique.crosshair_segments())
            return
        store = self.store
        pos = [
            store.plane_position_mm(AXIS_PLANE[d], self.state.slices[AXIS_PLANE[d]])
            for d in range(3)
        ]
        direction = np.asarray(planes.VIEW_DIRECTION[self.plane])
        # Half a voxel toward the camera, so the lines are drawn over the image.
        pos[self.axis] -= direction[self.axis] * 0.5 * store.spacing[self.axis]
        b = store.bounds
        segments, colors = [], []
        for cut_axis, run_axis in ((self.h_axis, self.v_axis), (self.v_axis, self.h_axis)):
            half = 0.5 * store.spacing[run_axis]
            a = list(pos)
            c = list(pos)
            a[run_axis] = b[2 * run_axis] - half
            c[run_axis] = b[2 * run_axis + 1] + half
            segments.append((a, c))
            colors.append(planes.PLANE_COLORS[AXIS_PLANE[cut_axis]])
        self.crosshair.set_lines(segments, colors)

    def _request_render(self) -> None:
        if not self._closed:
            self.plotter.render()

    def _before_render(self, *_: Any) -> None:
        width, height = self.renderer.GetSize()
        if height != self._font_for_height and height > 0:
            self._font_for_height = height
            big = int(np.clip(round(height * 0.045), 9, 22))
            small = int(np.clip(round(height * 0.036), 8, 16))
            self.letters.set_font_size(big)
            for actor in (self.info_text, self.window_text, self.badge_text):
                actor.GetTextProperty().SetFontSize(small)
        # Refit after a resize unless the user has zoomed or panned since the last fit.
        if self._fit is not None and self._fit[0] != (width, height) and width > 0:
            cam = self.renderer.GetActiveCamera()
            if (cam.GetParallelScale(), cam.GetFocalPoint()) == self._fit[1:]:
                self.reset_camera()

    # -- public ------------------------------------------------------------------------
    extra_info = ""  # another line for the corner text (e.g. obliquity), set by the owner

    def set_slab(self, thickness_mm: float, mode: str = "max") -> None:
        """Show a slab of ``thickness_mm`` centred on the slice as its maximum, minimum or
        mean intensity (``mode``: max, min, mean); 0 shows the plain slice."""
        thickness_mm, mode = check_slab(thickness_mm, mode)
        if mode != self.slab_mode:
            self._slab_buffer = None  # mean is float, max/min keep the data's type
        self.slab_mm, self.slab_mode = thickness_mm, mode
        if self.is_tilted:
            self.oblique.apply()  # the reslice mapper makes the tilted slab itself
        else:
            self.image_slice.SetMapper(self.mapper if thickness_mm <= 0 else self._slab_layer())
        self._apply_slice()
        self._request_render()

    def slab_range(self, index: int) -> tuple[int, int]:
        """First and last slice (inclusive) whose centres lie within half the slab's
        thickness of slice ``index``."""
        half = int(np.floor(self.slab_mm / 2.0 / self.store.spacing[self.axis] + 1e-6))
        n = self.store.shape[self.axis]
        return max(index - half, 0), min(index + half, n - 1)

    def _slab_layer(self) -> Any:
        if self._slab_mapper is None:
            self._slab_image = vtkImageData()
            self._slab_mapper = vtkImageSliceMapper()
            self._slab_mapper.SetInputData(self._slab_image)
            self._slab_mapper.SetOrientation(self.axis)
            self._slab_mapper.SliceFacesCameraOff()
            self._slab_mapper.SliceAtFocalPointOff()
            self._slab_mapper.BorderOn()
            self._slab_mapper.SetSliceNumber(0)
        return self._slab_mapper

    def _update_slab(self, index: int) -> None:
        """Project the slab around slice ``index`` into the one-slice slab image."""
        lo, hi = self.slab_range(index)
        numpy_axis = 2 - self.axis  # the display array is [z, y, x(, c)]
        taken = [slice(None)] * self.store.array.ndim
        taken[numpy_axis] = slice(lo, hi + 1)
        block = self.store.array[tuple(taken)]
        if self.slab_mode == "max":
            projected = block.max(axis=numpy_axis)
        elif self.slab_mode == "min":
            projected = block.min(axis=numpy_axis)
        else:
            projected = block.mean(axis=numpy_axis, dtype=np.float32)
        projected = np.expand_dims(projected, numpy_axis)
        image = self._slab_image
        if self._slab_buffer is None or self._slab_buffer.shape != projected.shape:
            self._slab_buffer = np.ascontiguousarray(projected)
            dims = list(self.store.shape)
            dims[self.axis] = 1
            image.SetDimensions(*dims)
            image.SetSpacing(*self.store.spacing)
            comps = self.store.components
            buffer = self._slab_buffer
            flat = buffer.reshape(-1, comps) if comps > 1 else buffer.reshape(-1)
            scalars = numpy_support.numpy_to_vtk(flat, deep=False)
            scalars.SetName("values")
            image.GetPointData().SetScalars(scalars)
            self._slab_scalars = scalars  # keeps the buffer alive with the VTK array
        else:
            self._slab_buffer[...] = projected
            image.GetPointData().GetScalars().Modified()
        origin = list(self.store.origin)
        origin[self.axis] = self.store.plane_position_mm(self.plane, index)
        image.SetOrigin(*origin)
        image.Modified()

    def set_extra_info(self, text: str) -> None:
        """A line under the slice position in the corner text ('' for none)."""
        self.extra_info = str(text)
        self._apply_slice()

    def set_marked(self, marked: dict[int, list[str]],
                   colors: dict[str, tuple[float, float, float]] | None = None) -> None:
        """Slices of this plane that carry marks -> their labels; shows a frame and a badge,
        in the colour of the slice's first label (``colors``: label -> RGB, as in 3D; the
        mark orange for a label without one)."""
        self._marked = {int(k): list(v) for k, v in marked.items()}
        if colors is not None:
            self._label_colors = dict(colors)
        self._apply_slice()
        self._request_render()

    def set_crosshair_visible(self, on: bool) -> None:
        """Show or hide the lines where the other two planes cut this one."""
        self.crosshair.actor.SetVisibility(bool(on))
        self._request_render()

    # -- oblique reformat ----------------------------------------------------------------
    @property
    def is_tilted(self) -> bool:
        """True while this view shows a tilted plane (oblique reformat)."""
        return self.oblique is not None and self.oblique.active

    def set_reformat(self, reformat: Any) -> None:
        """Follow a ``ReformatPlanes``: this view's plane tilts with its frame."""
        from mprviewer.render.oblique import ObliqueSlice

        if self.oblique is not None:
            self.oblique.reformat.changed.disconnect(self._on_reformat)
        self.oblique = ObliqueSlice(self, reformat)
        reformat.changed.connect(self._on_reformat)
        self._on_reformat()

    def _on_reformat(self) -> None:
        if self._closed or self.oblique is None:
            return
        self.oblique.apply()
        self._apply_slice()
        self._update_crosshair()
        self._request_render()

    def reset_camera(self) -> None:
        """Radiological camera, the whole slice fitted to the viewport."""
        if self.is_tilted:
            self.oblique.place_camera()
            cam = self.renderer.GetActiveCamera()
            self._fit = (tuple(self.renderer.GetSize()), cam.GetParallelScale(),
                         cam.GetFocalPoint())
            return
        store = self.store
        b = store.bounds
        lo = np.array([b[0], b[2], b[4]]) - 0.5 * np.asarray(store.spacing)
        hi = np.array([b[1], b[3], b[5]]) + 0.5 * np.asarray(store.spacing)
        center = (lo + hi) / 2.0
        center[self.axis] = store.plane_position_mm(self.plane, self.state.slices[self.plane])
        direction = np.asarray(planes.VIEW_DIRECTION[self.plane])
        distance = float(np.linalg.norm(hi - lo)) + 100.0
        cam = self.renderer.GetActiveCamera()
        cam.ParallelProjectionOn()
        cam.SetFocalPoint(*center)
        cam.SetPosition(*(center - direction * distance))
        cam.SetViewUp(*planes.VIEW_UP[self.plane])
        width_mm = hi[self.h_axis] - lo[self.h_axis]
        height_mm = hi[self.v_axis] - lo[self.v_axis]
        w, h = self.renderer.GetSize()
        aspect = (w / h) if w > 0 and h > 0 else 1.0
        margin = 1.1  # room for the edge letters
        cam.SetParallelScale(margin * max(height_mm / 2.0, width_mm / 2.0 / aspect))
        cam.SetClippingRange(distance * 0.5, distance * 1.5)
        if hasattr(cam, "is_set"):
            cam.is_set = True  # keep pyvista from replacing it on the first render
        self._fit = ((w, h), cam.GetParallelScale(), cam.GetFocalPoint())

    def world_to_display(
        self, world: np.ndarray | tuple[float, float, float]
    ) -> tuple[float, float]:
        """Window pixel (origin bottom-left, VTK display coordinates) of a world point."""
        self.renderer.SetWorldPoint(*world, 1.0)
        self.renderer.WorldToDisplay()
        x, y, _ = self.renderer.GetDisplayPoint()
        return float(x), float(y)

    def voxel_to_display(self, xyz: tuple[float, float, float]) -> tuple[float, float]:
        """Window pixel of a display voxel's centre (the inverse of ``pick``)."""
        return self.world_to_display(self.store.world_of(xyz))

    def pick(self, display_x: float, display_y: float) -> tuple[int, int, int] | None:
        """Display voxel (x, y, z) under a window pixel (VTK display coordinates, origin
        bottom-left, as ``interactor.GetEventPosition()``), or None outside the image."""
        if self.is_tilted:
            world = self.oblique.pick_world(display_x, display_y)
            if world is None:
                return None
            voxel = tuple(round(v) for v in self.store.index_of(world))
            return voxel if self.store.contains(voxel) else None  # type: ignore[return-value]
        index = self.pick_point(display_x, display_y)
        if index is None:
            return None
        voxel = tuple(round(v) for v in index)
        return voxel if self.store.contains(voxel) else None  # type: ignore[return-value]

    def pick_point(self, display_x: float, display_y: float) -> np.ndarray | None:
        """Continuous display index (x, y, z) under a window pixel on the current slice (for
        rulers and ROIs, which need more than the nearest voxel), or None outside the image."""
        self.renderer.SetDisplayPoint(float(display_x), float(display_y), 0.0)
        self.renderer.DisplayToWorld()
        wx, wy, wz, ww = self.renderer.GetWorldPoint()
        if ww == 0:
            return None
        index = self.store.index_of((wx / ww, wy / ww, wz / ww))
        index[self.axis] = self.state.slices[self.plane]
        if any(not -0.5 <= index[d] <= self.store.shape[d] - 0.5 for d in range(3)):
            return None
        return index

    def close(self) -> None:
        """Detach from the state and remove every prop from the renderer."""
        if self._closed:
            return
        self._closed = True
        if self.oblique is not None:
            self.oblique.reformat.changed.disconnect(self._on_reformat)
        self.state.slice_changed.disconnect(self._on_slice)
        self.state.window_changed.disconnect(self._on_window)
        self.state.threshold_changed.disconnect(self._on_threshold)
        self.state.display_changed.disconnect(self._on_display)
        self.renderer.RemoveObserver(self._observer)
        self.renderer.RemoveViewProp(self.stack)
        self.letters.remove(self.renderer)
        for actor in (self.info_text, self.window_text, self.badge_text, self.frame.actor):
            self.renderer.RemoveViewProp(actor)
        self.renderer.RemoveActor(self.crosshair.actor)
