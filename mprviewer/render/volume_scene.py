"""The 3D view: three orthogonal textured planes, outline, orientation marker, opacity rendering.

The planes are vtkImageSliceMapper slices of the shared image (window/level applied through
one shared image property), so moving a plane is a texture upload, not a copy. The threshold
opacity volume rendering is expensive (seconds to its first frame on a large CT with CPU
OpenGL), so it is built only when ``state.volume_opacity`` is first switched on; while the
camera moves it renders at a reduced image resolution (see ``_build_volume``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from vtkmodules.vtkCommonDataModel import vtkPlane
from vtkmodules.vtkFiltersCore import vtkAppendPolyData
from vtkmodules.vtkFiltersSources import vtkCubeSource, vtkOutlineSource
from vtkmodules.vtkRenderingCore import (
    vtkActor,
    vtkImageProperty,
    vtkImageSlice,
    vtkImageSliceMapper,
    vtkPolyDataMapper,
    vtkVolume,
)

from mprviewer.model.orientation import AXIS_PLANE, PLANE_AXIS, PLANES
from mprviewer.render import planes
from mprviewer.render.image import ImageStore
from mprviewer.render.lut import update_volume_property, volume_property
from mprviewer.render.overlays import LABEL_COLORS, OrientationMarker, text_actor
from mprviewer.render.planes import CAMERA_NAMES, CAMERAS

INTERACTIVE_RATE = 15.0  # frames/s asked of the renderer while something moves
STILL_RATE = 0.0001  # VTK's still rate: full quality
MAX_VOLUME_VOXELS = 12_000_000  # above this, volume rendering reads a strided copy


class VolumeScene:
    """The 3D view in the plotter's active renderer, following a ViewerState."""

    def __init__(self, plotter: Any, store: ImageStore, state: Any) -> None:
        self.plotter = plotter
        self.renderer = plotter.renderer
        self.store = store
        self.state = state
        self._closed = False
        self.renderer.SetBackground(0.08, 0.08, 0.1)

        self.image_property = vtkImageProperty()
        self.image_property.SetInterpolationTypeToLinear()
        self._apply_window()
        self.plane_slices: dict[str, vtkImageSlice] = {}
        self._mappers: dict[str, vtkImageSliceMapper] = {}
        for plane in PLANES:
            mapper = vtkImageSliceMapper()
            mapper.SetInputData(store.image)
            mapper.SetOrientation(PLANE_AXIS[plane])
            mapper.SliceFacesCameraOff()
            mapper.SliceAtFocalPointOff()
            mapper.SetSliceNumber(state.slices[plane])
            image_slice = vtkImageSlice()
            image_slice.SetMapper(mapper)
            image_slice.SetProperty(self.image_property)
            self.renderer.AddViewProp(image_slice)
            self.plane_slices[plane] = image_slice
            self._mappers[plane] = mapper

        self.outline_actor = self._make_outline()
        self.renderer.AddViewProp(self.outline_actor)
        self.marker = OrientationMarker(self.renderer)
        self.info_text = text_actor((0.012, 0.985), "left", "top")
        self.info_text.GetTextProperty().SetFontSize(13)
        self.renderer.AddViewProp(self.info_text)
        self._update_text()

        self.volume: vtkVolume | None = None
        self.volume_stride = 1
        self._volume_property = None
        self._marks_actors: list[vtkActor] = []
        self._marks: dict[str, dict[int, list[str]]] = {}
        self._label_order: list[str] = []
        self._label_colors: dict[str, tuple[float, float, float]] = {}  # given colours
        self._widgets: dict[str, Any] = {}
        self.reformat: Any = None  # a ReformatPlanes once set_reformat is called
        self._oblique_mappers: dict[str, Any] = {}

        state.slice_changed.connect(self._on_slice)
        state.window_changed.connect(self._on_window)
        state.threshold_changed.connect(self._on_threshold)
        state.display_changed.connect(self._on_display)
        if state.volume_opacity:
            self._show_volume(True)
        self.set_camera("iso", render=False)

    # -- building ----------------------------------------------------------------------
    def _make_outline(self) -> vtkActor:
        source = vtkOutlineSource()
        source.SetBounds(*self._edge_bounds())
        mapper = vtkPolyDataMapper()
        mapper.SetInputConnection(source.GetOutputPort())
        actor = vtkActor()
        actor.SetMapper(mapper)
        actor.GetProperty().SetColor(0.9, 0.9, 0.9)
        actor.GetProperty().SetLineWidth(2.0)
        actor.GetProperty().LightingOff()
        actor.PickableOff()
        return actor

    def _edge_bounds(self) -> list[float]:
        """Bounds of the voxels' outer faces (not just their centres)."""
        b = list(self.store.bounds)
        for d in range(3):
            half = 0.5 * self.store.spacing[d]
            b[2 * d] -= half
            b[2 * d + 1] += half
        return b

    def _build_volume(self) -> None:
        """The threshold-opacity volume, built on first use (seconds on a large CT).

        The CPU ray caster is used on purpose: on Mesa without a GPU it is several times
        faster than the OpenGL ray caster, and with AutoAdjustSampleDistances it lowers its
        image sampling while the interactor asks for a high update rate (camera moving),
        then renders at full resolution when the render window is still.
        """
        from vtkmodules.vtkRenderingVolume import vtkFixedPointVolumeRayCastMapper

        self._volume_property = volume_property(
            self.state.threshold, self.store.scalar_range, self._window()
        )
        mapper = vtkFixedPointVolumeRayCastMapper()
        mapper.SetInputData(self._volume_image())
        mapper.SetBlendModeToComposite()
        mapper.AutoAdjustSampleDistancesOn()
        mapper.SetInteractiveSampleDistance(2.0 * min(self.store.spacing) * self.volume_stride)
        volume = vtkVolume()
        volume.SetMapper(mapper)
        volume.SetProperty(self._volume_property)
        volume.PickableOff()
        volume.VisibilityOff()
        self.renderer.AddViewProp(volume)
        self.volume = volume

    def _volume_image(self) -> Any:
        """The image the ray caster reads: the shared one, or a strided copy of a big volume.

        Shading needs gradients of every voxel on the first frame (about 10 s for a
        512x512x300 CT on two cores); at half resolution in each axis it is 8x less work,
        and the slice planes still show every voxel.
        """
        from vtkmodules.util import numpy_support
        from vtkmodules.vtkCommonDataModel import vtkImageData

        stride = 1
        while int(np.prod(self.store.shape)) / stride**3 > MAX_VOLUME_VOXELS:
            stride += 1
        self.volume_stride = stride
        if stride == 1:
            return self.store.image
        sub = np.ascontiguousarray(self.store.array[::stride, ::stride, ::stride])
        image = vtkImageData()
        image.SetDimensions(sub.shape[2], sub.shape[1], sub.shape[0])
        image.SetSpacing(*(s * stride for s in self.store.spacing))
        image.SetOrigin(*self.store.origin)
        image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(sub.reshape(-1), deep=True))
        return image

    # -- state callbacks ---------------------------------------------------------------
    def _window(self) -> tuple[float, float]:
        return self.state.window_center, self.state.window_width

    def _apply_window(self) -> None:
        if self.store.is_rgb:
            self.image_property.SetColorWindow(255.0)
            self.image_property.SetColorLevel(127.5)
        else:
            self.image_property.SetColorWindow(self.state.window_width)
            self.image_property.SetColorLevel(self.state.window_center)

    def _on_slice(self, plane: str, index: int) -> None:
        self._mappers[plane].SetSliceNumber(index)
        if self.reformat is not None and self.reformat.is_oblique:
            self._follow_reformat()
            return
        widget = self._widgets.get(plane)
        if widget is not None:
            origin = list(widget.GetRepresentation().GetOrigin())
            origin[PLANE_AXIS[plane]] = self.store.plane_position_mm(plane, index)
            widget.GetRepresentation().SetOrigin(*origin)
        self._request_render()

    # -- oblique reformat ----------------------------------------------------------------
    def set_reformat(self, reformat: Any) -> None:
        """Follow a ``ReformatPlanes``: tilted planes are cut by a vtkImageResliceMapper
        through the crosshair, and their plane widgets turn with them."""
        if self.reformat is not None:
            self.reformat.changed.disconnect(self._follow_reformat)
        self.reformat = reformat
        reformat.changed.connect(self._follow_reformat)
        self._follow_reformat()

    def plane_normal(self, plane: str) -> tuple[float, ...]:
        """Normal of ``plane`` as drawn in 3D (its widget's, or the axis)."""
        if self.reformat is not None:
            return tuple(float(v) for v in self.reformat.normal(plane))
        normal = [0.0, 0.0, 0.0]
        normal[PLANE_AXIS[plane]] = 1.0
        return tuple(normal)

    def _follow_reformat(self) -> None:
        if self._closed or self.reformat is None:
            return
        from vtkmodules.vtkRenderingImage import vtkImageResliceMapper

        from mprviewer.render.oblique import crosshair_point

        center = crosshair_point(self.store, self.state.slices)
        for plane in PLANES:
            tilted = self.reformat.is_tilted(plane)
            normal = self.reformat.normal(plane)
            mapper = self._oblique_mappers.get(plane)
            if tilted and mapper is None:
                mapper = vtkImageResliceMapper()
                mapper.SetInputData(self.store.image)
                mapper.SliceFacesCameraOff()
                mapper.SliceAtFocalPointOff()
                mapper.SetSlicePlane(vtkPlane())
                self._oblique_mappers[plane] = mapper
            if tilted:
                mapper.GetSlicePlane().SetOrigin(*center)
                mapper.GetSlicePlane().SetNormal(*normal)
                mapper.Modified()
            self.plane_slices[plane].SetMapper(mapper if tilted else self._mappers[plane])
            widget = self._widgets.get(plane)
            if widget is not None:
                rep = widget.GetRepresentation()
                axis = PLANE_AXIS[plane]
                rep.SetNormalToXAxis(axis == 0 and not tilted)
                rep.SetNormalToYAxis(axis == 1 and not tilted)
                rep.SetNormalToZAxis(axis == 2 and not tilted)
                rep.SetNormal(*(normal if tilted else self.plane_normal_axis(plane)))
                rep.SetOrigin(*center)
        self._request_render()

    @staticmethod
    def plane_normal_axis(plane: str) -> tuple[float, float, float]:
        normal = [0.0, 0.0, 0.0]
        normal[PLANE_AXIS[plane]] = 1.0
        return tuple(normal)  # type: ignore[return-value]

    def _on_window(self, center: float, width: float) -> None:
        self._apply_window()
        self._request_render()

    def _update_text(self) -> None:
        text = "3D"
        if self.state.volume_opacity and not self.store.is_rgb:
            units = f" {self.store.units}" if self.store.units else ""
            text += f"\nopaque from {self.state.threshold:g}{units}"
        self.info_text.SetInput(text)

    def _on_threshold(self, value: float) -> None:
        self._update_text()
        if self._volume_property is not None:
            update_volume_property(
                self._volume_property, value, self.store.scalar_range, self._window()
            )
            if self.state.volume_opacity:
                self._request_render()

    def _on_display(self, name: str, value: Any) -> None:
        if name == "volume_opacity":
            self._show_volume(bool(value))
            self._update_text()
            self._request_render()

    def _show_volume(self, on: bool) -> None:
        if self.store.is_rgb:
            return  # colour data: the planes show it; opacity needs a scalar
        if on and self.volume is None:
            self._build_volume()
        if self.volume is not None:
            self.volume.SetVisibility(on)

    def set_interacting(self, on: bool) -> None:
        """Fast, coarser volume frames while a control is dragged (as the interactor does
        for the camera); full quality again when it is released."""
        ren_win = self.renderer.GetRenderWindow()
        if ren_win is not None:
            ren_win.SetDesiredUpdateRate(INTERACTIVE_RATE if on else STILL_RATE)

    def _request_render(self) -> None:
        if not self._closed:
            self.plotter.render()

    # -- public ------------------------------------------------------------------------
    def set_camera(self, name: str, render: bool = True) -> None:
        """Look from a patient direction ('anterior', 'left', ... 'iso'), or 'reset'."""
        key = "iso" if name == "reset" else name
        if key not in CAMERAS:
            raise ValueError(f"unknown camera {name!r}; choose one of: {', '.join(CAMERA_NAMES)}")
        direction, up = CAMERAS[key]
        b = self._edge_bounds()
        center = np.array([(b[0] + b[1]) / 2, (b[2] + b[3]) / 2, (b[4] + b[5]) / 2])
        cam = self.renderer.GetActiveCamera()
        cam.ParallelProjectionOff()
        cam.SetFocalPoint(*center)
        cam.SetPosition(*(center + np.asarray(direction) / np.linalg.norm(direction) * 500.0))
        cam.SetViewUp(*up)
        cam.OrthogonalizeViewUp()
        self.renderer.ResetCamera(*b)
        cam.Zoom(1.15)
        self.renderer.ResetCameraClippingRange()
        if hasattr(cam, "is_set"):
            cam.is_set = True
        if render:
            self._request_render()

    def set_marked_axial(self, slices: list[int] | set[int]) -> None:
        """Translucent slabs at marked axial slices (one label); see ``set_marked``."""
        self.set_marked("axial", {int(s): [""] for s in slices})

    def set_marked(self, plane: str, marked: Mapping[int, Sequence[str]],
                   labels: Sequence[str] | None = None,
                   colors: Mapping[str, tuple[float, float, float]] | None = None) -> None:
        """Translucent slabs across the volume at the marked slices of ``plane`` (slice ->
        labels), one colour per label; ``labels`` orders the labels for their colours (default:
        the labels on screen, sorted), so a label keeps its colour across planes; ``colors``
        gives labels their colours outright (a reader's colour in adjudication)."""
        self._marks[plane] = {int(k): list(v) for k, v in marked.items()}
        if labels is not None:
            self._label_order = list(labels)
        if colors is not None:
            self._label_colors = dict(colors)
        self._build_marks()
        self._request_render()

    def _build_marks(self) -> None:
        for actor in self._marks_actors:
            self.renderer.RemoveViewProp(actor)
        self._marks_actors = []
        on_screen = {label for m in self._marks.values() for ls in m.values() for label in ls}
        order = [x for x in self._label_order if x in on_screen]
        order += sorted(on_screen - set(order))
        colors = {label: self._label_colors.get(label, LABEL_COLORS[n % len(LABEL_COLORS)])
                  for n, label in enumerate(order)}
        b = self._edge_bounds()
        for label in order:
            append = vtkAppendPolyData()
            for plane, marked in self._marks.items():
                axis = PLANE_AXIS[plane]
                half = self.store.spacing[axis] / 2
                for index in sorted(marked):
                    if label not in marked[index] or not 0 <= index < self.store.shape[axis]:
                        continue
                    at = self.store.plane_position_mm(plane, index)
                    bounds = list(b)
                    bounds[2 * axis], bounds[2 * axis + 1] = at - half, at + half
                    cube = vtkCubeSource()
                    cube.SetBounds(*bounds)
                    cube.Update()
                    append.AddInputData(cube.GetOutput())
            if append.GetNumberOfInputConnections(0) == 0:
                continue
            mapper = vtkPolyDataMapper()
            mapper.SetInputConnection(append.GetOutputPort())
            actor = vtkActor()
            actor.SetMapper(mapper)
            actor.GetProperty().SetColor(*colors[label])
            actor.GetProperty().SetOpacity(0.3)
            actor.PickableOff()
            self.renderer.AddViewProp(actor)
            self._marks_actors.append(actor)

    def enable_plane_widgets(self) -> None:
        """Draggable planes (interactive views only): dragging one calls state.set_slice."""
        if self._widgets:
            return
        from vtkmodules.vtkInteractionWidgets import (
            vtkImplicitPlaneRepresentation,
            vtkImplicitPlaneWidget2,
        )

        iren = getattr(self.plotter, "iren", None)
        interactor = getattr(iren, "interactor", iren)
        if interactor is None:
            raise RuntimeError("plane widgets need an interactive plotter")
        bounds = self._edge_bounds()
        for plane in PLANES:
            axis = PLANE_AXIS[plane]
            rep = vtkImplicitPlaneRepresentation()
            rep.SetPlaceFactor(1.0)
            rep.PlaceWidget(bounds)
            normal = [0.0, 0.0, 0.0]
            normal[axis] = 1.0
            rep.SetNormal(*normal)
            origin = [(bounds[2 * d] + bounds[2 * d + 1]) / 2 for d in range(3)]
            origin[axis] = self.store.plane_position_mm(plane, self.state.slices[plane])
            rep.SetOrigin(*origin)
            rep.SetNormalToXAxis(axis == 0)
            rep.SetNormalToYAxis(axis == 1)
            rep.SetNormalToZAxis(axis == 2)
            rep.OutlineTranslationOff()
            rep.ScaleEnabledOff()
            rep.SetDrawOutline(False)
            rep.GetPlaneProperty().SetOpacity(0.04)
            rep.GetSelectedPlaneProperty().SetOpacity(0.15)
            rep.GetEdgesProperty().SetColor(*planes.PLANE_COLORS[plane])
            rep.SetTubing(False)
            rep.SetDrawPlane(True)
            widget = vtkImplicitPlaneWidget2()
            widget.SetInteractor(interactor)
            widget.SetRepresentation(rep)
            widget.SetCurrentRenderer(self.renderer)
            widget.AddObserver("InteractionEvent", self._widget_moved)
            widget.On()
            self._widgets[plane] = widget
        if self.reformat is not None and self.reformat.is_oblique:
            self._follow_reformat()

    def _widget_moved(self, widget: Any, _event: str) -> None:
        for plane, candidate in self._widgets.items():
            if candidate is widget:
                plane_fn = vtkPlane()
                widget.GetRepresentation().GetPlane(plane_fn)
                self.move_plane_to(plane, plane_fn.GetOrigin()[PLANE_AXIS[plane]])
                if self.reformat is not None and self.reformat.is_oblique:
                    self._follow_reformat()  # a tilted plane keeps the reformat's normal

    def move_plane_to(self, plane: str, mm: float) -> None:
        """Set ``plane``'s slice to the one nearest a world coordinate along its axis."""
        axis = PLANE_AXIS[plane]
        index = round((mm - self.store.origin[axis]) / self.store.spacing[axis])
        self.state.set_slice(plane, index)

    def close(self) -> None:
        """Detach from the state, switch widgets off and remove every prop."""
        if self._closed:
            return
        self._closed = True
        for signal, callback in (
            (self.state.slice_changed, self._on_slice),
            (self.state.window_changed, self._on_window),
            (self.state.threshold_changed, self._on_threshold),
            (self.state.display_changed, self._on_display),
        ):
            signal.disconnect(callback)
        if self.reformat is not None:
            self.reformat.changed.disconnect(self._follow_reformat)
        for widget in self._widgets.values():
            widget.Off()
        self._widgets.clear()
        self.marker.remove()
        props = [*self.plane_slices.values(), self.info_text, self.outline_actor,
                 *self._marks_actors]
        props.append(self.volume)
        for prop in props:
            if prop is not None:
                self.renderer.RemoveViewProp(prop)


__all__ = ["AXIS_PLANE", "CAMERA_NAMES", "VolumeScene"]
