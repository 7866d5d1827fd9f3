"""Screenshots without a display: the viewer's own scenes rendered off screen.

``screenshot(volume, ...)`` returns an RGB array; ``save_screenshot(volume, path, ...)``
writes a PNG. Nothing here imports Qt. The 2D views are the same ``SliceScene`` objects the
viewer shows (radiological convention, orientation letters, slice text, crosshair), and the
3D view is the viewer's ``VolumeScene``.

Example::

    import mprviewer
    from mprviewer.render import save_screenshot

    with mprviewer.open_study("demo") as study:
        volume = study.largest_series().load()
    save_screenshot(volume, "quad.png", preset="lung", slices={"axial": 60}, size=(1200, 900))
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mprviewer.errors import MprviewerError
from mprviewer.model.orientation import PLANES, DisplayGrid
from mprviewer.render.planes import CAMERA_NAMES

VIEWS: tuple[str, ...] = ("quad", "axial", "coronal", "sagittal", "3d")
_LAYOUT: dict[str, tuple[tuple[int, int], tuple[str, ...]]] = {
    "quad": ((2, 2), ("axial", "coronal", "sagittal", "3d")),
    "axial": ((1, 1), ("axial",)),
    "coronal": ((1, 1), ("coronal",)),
    "sagittal": ((1, 1), ("sagittal",)),
    "3d": ((1, 1), ("3d",)),
}
Marks = dict[str, dict[int, list[str]]]


# -- inputs ------------------------------------------------------------------------------
def default_window(volume: Any) -> tuple[float, float]:
    """The file's WindowCenter/Width, else a percentile window of the data."""
    if getattr(volume, "window", None):
        center, width = volume.window
        if width and width > 0:
            return float(center), float(width)
    from mprviewer.model.presets import auto_window

    return auto_window(volume.array)


def resolve_window(
    volume: Any, window: tuple[float, float] | None, preset: str | None
) -> tuple[float, float]:
    """(center, width) from an explicit window, a preset name, or the defaults."""
    if window is not None and preset is not None:
        raise ValueError("give either a window or a preset, not both")
    if window is not None:
        center, width = (float(v) for v in window)
        if width <= 0:
            raise ValueError(f"window width must be positive, not {width:g}")
        return center, width
    if preset is not None:
        from mprviewer.model.presets import resolve_preset

        try:
            return resolve_preset(preset, volume.array)
        except KeyError as exc:
            raise ValueError(str(exc.args[0])) from None
    return default_window(volume)


def default_threshold(volume: Any) -> float:
    """150 HU for CT (bone and contrast), else the 90th percentile of the data."""
    if str(getattr(volume, "units", "")).upper() == "HU":
        return 150.0
    flat = np.asarray(volume.array).reshape(-1)
    sample = flat[:: max(1, flat.size // 1_000_000)]
    return float(np.percentile(sample, 90))


def check_slices(grid: DisplayGrid, slices: Mapping[str, int] | None) -> dict[str, int]:
    """Validated {plane: index}; a bad plane or an index out of range raises ValueError."""
    out: dict[str, int] = {}
    for plane, index in (slices or {}).items():
        if plane not in PLANES:
            raise ValueError(f"unknown plane {plane!r} in slices; use axial, coronal or sagittal")
        n = grid.plane_size(plane)
        if not 0 <= int(index) < n:
            raise ValueError(
                f"{plane} slice {index} is out of range: the {plane} plane has "
                f"{n} slices, numbered 0-{n - 1}"
            )
        out[plane] = int(index)
    return out


def resolve_marks(annotations: Any, volume: Any, grid: DisplayGrid) -> Marks:
    """{plane: {slice: [labels]}} from a file path, an AnnotationSet or a plain mapping."""
    if annotations is None:
        return {}
    if isinstance(annotations, (str, Path)):
        from mprviewer.model.annotation_files import read_annotation_file
        from mprviewer.model.annotations import SeriesRef

        ref = SeriesRef.from_volume(volume, grid)
        annotations = read_annotation_file(annotations, refs=[ref], allow_unknown_series=True)
    if hasattr(annotations, "marked_labels"):
        uid, name = str(volume.series_uid or ""), str(volume.name or "")
        return {p: dict(annotations.marked_labels(uid, name, p)) for p in PLANES}
    return {p: {int(k): list(v) for k, v in dict(annotations.get(p, {})).items()} for p in PLANES}


# -- rendering ---------------------------------------------------------------------------
SEAM_COLOUR = (70, 70, 70)
SEAM_WIDTH = 2


def draw_seams(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Grey lines between the views of a layout, so that one view's orientation letters
    cannot be read as the next view's; ``image`` is changed in place and returned."""
    height, width = image.shape[:2]
    rows, columns = shape
    half = SEAM_WIDTH // 2
    for r in range(1, rows):
        y = round(height * r / rows)
        image[max(0, y - half) : y - half + SEAM_WIDTH] = SEAM_COLOUR
    for c in range(1, columns):
        x = round(width * c / columns)
        image[:, max(0, x - half) : x - half + SEAM_WIDTH] = SEAM_COLOUR
    return image


class _Shot:
    """Store, state and plotter for one layout; kept open to render several slices fast."""

    def __init__(
        self,
        volume: Any,
        view: str,
        window: tuple[float, float] | None,
        preset: str | None,
        threshold: float | None,
        opacity: bool,
        size: tuple[int, int],
        marks: Marks,
        camera: str,
        overlay: bool,
        slices: Mapping[str, int] | None,
        grid: DisplayGrid | None = None,
        crosshair: bool = True,
        slab: float = 0.0,
        slab_mode: str = "max",
        info: str = "",
    ) -> None:
        from mprviewer.model.state import ViewerState
        from mprviewer.render.image import ImageStore
        from mprviewer.render.offscreen import offscreen_plotter
        from mprviewer.render.overlays import label_colors
        from mprviewer.render.slice_scene import SliceScene
        from mprviewer.render.volume_scene import VolumeScene

        if view not in _LAYOUT:
            raise ValueError(f"unknown view {view!r}; choose one of: {', '.join(VIEWS)}")
        from mprviewer.render.slice_scene import check_slab

        check_slab(slab, slab_mode)
        if camera not in CAMERA_NAMES:
            raise ValueError(f"unknown camera {camera!r}; choose one of: {', '.join(CAMERA_NAMES)}")
        width, height = (int(v) for v in size)
        if not (16 <= width <= 16384 and 16 <= height <= 16384):
            raise ValueError(f"image size {width}x{height} is outside 16-16384 pixels")
        grid = grid if grid is not None else DisplayGrid.for_volume(volume)
        checked = check_slices(grid, slices)
        shape, names = _LAYOUT[view]
        thr = default_threshold(volume) if threshold is None else float(threshold)
        self.state = ViewerState(grid, window=resolve_window(volume, window, preset), threshold=thr)
        for plane, index in checked.items():
            self.state.set_slice(plane, index)
        self.state.set_threshold_overlay(bool(overlay))
        self.state.set_volume_opacity(bool(opacity) and "3d" in names)
        self.store = ImageStore(volume, grid)
        self.shape = shape
        self.plotter = offscreen_plotter((width, height), shape=shape)
        self.scenes: list[Any] = []
        colors = label_colors(label for m in marks.values() if m
                              for labels in m.values() for label in labels)
        for n, name in enumerate(names):
            self.plotter.subplot(*divmod(n, shape[1]))
            if name == "3d":
                scene = VolumeScene(self.plotter, self.store, self.state)
                scene.set_camera(camera, render=False)
                for plane in PLANES:
                    if marks.get(plane):
                        scene.set_marked(plane, marks[plane])
            else:
                scene = SliceScene(self.plotter, self.store, self.state, name)
                scene.crosshair.actor.SetVisibility(bool(crosshair))
                if slab:
                    scene.set_slab(slab, slab_mode)
                if info:
                    scene.set_extra_info(info)
                if marks.get(name):
                    scene.set_marked(marks[name], colors)
            self.scenes.append(scene)

    def image(self) -> np.ndarray:
        from mprviewer.render.offscreen import render_image

        image = np.array(render_image(self.plotter)[..., :3])
        return draw_seams(image, self.shape)


    def close(self) -> None:
        for scene in self.scenes:
            scene.close()
        self.plotter.close()


def screenshot(
    volume: Any,
    view: str = "quad",
    slices: Mapping[str, int] | None = None,
    window: tuple[float, float] | None = None,
    preset: str | None = None,
    threshold: float | None = None,
    opacity: bool = True,
    size: tuple[int, int] = (1600, 1200),
    annotations: Any = None,
    camera: str = "iso",
    overlay: bool = False,
    crosshair: bool = True,
    slab: float = 0.0,
    slab_mode: str = "max",
    acquisition_grid: bool | None = None,
) -> np.ndarray:
    """Render views of a Volume off screen; returns an (height, width, 3) uint8 RGB array.

    ``view``: "quad" (axial, coronal / sagittal, 3D in a 2x2 grid) or one view.
    ``slices``: {plane: index} on the display grid (default: the centre).
    ``window``: (center, width) in data units, or ``preset`` ("lung", "bone", "auto", ...);
    default the file's window. ``threshold``: the 3D opacity cut (and 2D overlay when
    ``overlay``), default 150 HU for CT. ``opacity``: show the threshold-opacity volume in 3D.
    ``annotations``: an annotation file path, an AnnotationSet, or {plane: {slice: [labels]}},
    drawn as frames/badges on marked slices and slabs in 3D. ``camera``: 3D camera preset.
    ``crosshair``: draw where the other planes cut each 2D view.
    ``slab``: thickness in mm of a slab centred on each 2D view's slice, shown as its
    ``slab_mode`` ("max" = MIP, "min" = MinIP, "mean") intensity; 0 shows plain slices.
    ``acquisition_grid``: an oblique acquisition (more than 1° off the patient's axes) is
    shown resliced onto the patient's planes unless this is True; None (the default) means
    resliced, except with ``annotations``, whose marks belong to the acquisition grid.
    The corner text of an oblique series says "oblique N°" either way.
    """
    from mprviewer.io.geometry_checks import check_affine
    from mprviewer.render.offscreen import prepare_offscreen
    from mprviewer.render.reslice import OBLIQUE_DEG, obliquity, obliquity_text

    check_affine(volume.affine, str(getattr(volume, "name", "") or "volume"))
    prepare_offscreen()
    degrees = obliquity(volume)
    use_acquisition = annotations is not None if acquisition_grid is None else acquisition_grid
    resliced = degrees > OBLIQUE_DEG and not use_acquisition
    if resliced and annotations is not None:
        raise ValueError(
            f"the series is {degrees:.0f}° oblique and its marks belong to its acquisition "
            "grid; show them with acquisition_grid=True"
        )
    marks = resolve_marks(annotations, volume, DisplayGrid.for_volume(volume))
    if resliced:
        from mprviewer.render.reslice import patient_aligned

        volume = patient_aligned(volume)
    grid = DisplayGrid.for_volume(volume)
    shot = _Shot(
        volume,
        view,
        window,
        preset,
        threshold,
        opacity,
        size,
        marks,
        camera,
        overlay,
        slices,
        grid,
        crosshair,
        slab,
        slab_mode,
        obliquity_text(degrees, resliced),
    )
    try:
        return shot.image()
    finally:
        shot.close()


PNG_LEVEL = 1


def write_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an RGB array as PNG (creating the folder); returns the path.

    zlib level 1 through imagecodecs: about 4x faster than Pillow's default level 6 on a
    screenshot, for files about 5% larger (what a batch of screenshots waits for).
    """
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.write_bytes(encode_png(image))
    except OSError as exc:
        raise MprviewerError(
            f"cannot write {path}: {exc.strerror or exc}; choose a writable path"
        ) from None
    return path


def encode_png(image: np.ndarray, level: int = PNG_LEVEL) -> bytes:
    """PNG bytes of an RGB (or greyscale) uint8 array."""
    image = np.ascontiguousarray(image)
    try:
        import imagecodecs

        if imagecodecs.PNG.available:
            return bytes(imagecodecs.png_encode(image, level=level))
    except ImportError:
        pass
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def save_screenshot(volume: Any, path: str | Path, **kwargs: Any) -> Path:
    """``screenshot(volume, **kwargs)`` written to ``path`` as PNG; returns the path."""
    return write_png(screenshot(volume, **kwargs), path)


def marked_slice_images(
    volume: Any,
    marks: Marks,
    size: tuple[int, int] = (800, 800),
    **kwargs: Any,
) -> Iterator[tuple[str, int, np.ndarray]]:
    """(plane, slice, image) for every marked slice, one plotter per plane stepped through.

    Always on the acquisition grid, where the marks were made (an oblique series says so in
    the corner text)."""
    from mprviewer.io.geometry_checks import check_affine
    from mprviewer.render.offscreen import prepare_offscreen
    from mprviewer.render.reslice import obliquity, obliquity_text

    check_affine(volume.affine, str(getattr(volume, "name", "") or "volume"))
    prepare_offscreen()
    grid = DisplayGrid.for_volume(volume)
    info = obliquity_text(obliquity(volume), resliced=False)
    for plane in PLANES:
        indices = sorted(i for i in marks.get(plane, {}) if 0 <= i < grid.plane_size(plane))
        if not indices:
            continue
        shot = _Shot(
            volume,
            plane,
            kwargs.get("window"),
            kwargs.get("preset"),
            kwargs.get("threshold"),
            False,
            size,
            marks,
            "iso",
            kwargs.get("overlay", False),
            {plane: indices[0]},
            grid,
            kwargs.get("crosshair", True),
            kwargs.get("slab", 0.0),
            kwargs.get("slab_mode", "max"),
            info,
        )
        try:
            for index in indices:
                with shot.plotter.renders_held():  # image() renders once, after the change
                    shot.state.set_slice(plane, index)
                yield plane, index, shot.image()
        finally:
            shot.close()


def contact_sheet(images: list[np.ndarray], columns: int = 4, tile_width: int = 400) -> np.ndarray:
    """Thumbnails in a grid (row by row), on black, with a thin gap between them."""
    from PIL import Image

    if not images:
        raise ValueError("no images for a contact sheet")
    columns = max(1, min(columns, len(images)))
    h0, w0 = images[0].shape[:2]
    tile_h = max(1, round(tile_width * h0 / w0))
    gap = 4
    rows = (len(images) + columns - 1) // columns
    sheet = np.zeros((rows * (tile_h + gap) + gap, columns * (tile_width + gap) + gap, 3), np.uint8)
    for n, img in enumerate(images):
        thumb = np.asarray(Image.fromarray(img).resize((tile_width, tile_h), Image.LANCZOS))
        r, c = divmod(n, columns)
        y, x = gap + r * (tile_h + gap), gap + c * (tile_width + gap)
        sheet[y : y + tile_h, x : x + tile_width] = thumb[..., :3]
    return sheet


class _CallableModule(types.ModuleType):
    """Lets ``mprviewer.render.screenshot(volume)`` work after this module is imported
    (importing the submodule replaces the package attribute of the same name)."""

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return screenshot(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
