"""The 3D view off screen: outline, planes at the state's slices, threshold opacity, cameras."""

from __future__ import annotations

import numpy as np
import pytest

from mprviewer.io.volume import Volume
from mprviewer.model.orientation import DisplayGrid
from mprviewer.model.state import ViewerState
from mprviewer.render.image import ImageStore
from mprviewer.render.offscreen import offscreen_plotter, pyvista_plotter, render_image
from mprviewer.render.volume_scene import VolumeScene

pytestmark = pytest.mark.render

SIZE = 240


def ramp_ball(n: int = 32) -> Volume:
    """Values rising toward the centre of a ball (0 outside, 500 at the centre), in HU."""
    z, y, x = np.mgrid[:n, :n, :n]
    r = np.sqrt((x - n / 2) ** 2 + (y - n / 2) ** 2 + (z - n / 2) ** 2)
    arr = np.clip(500 * (1 - r / (n * 0.4)), 0, None).astype(np.int16)
    return Volume(arr, np.eye(4), units="HU")


def scene_for(vol: Volume, pyvista: bool = False, **state_kw):
    grid = DisplayGrid.for_volume(vol)
    state = ViewerState(grid, window=(2000.0, 100.0))  # everything below 1950 shows black
    for key, value in state_kw.items():
        getattr(state, f"set_{key}")(value)
    plotter = (pyvista_plotter if pyvista else offscreen_plotter)((SIZE, SIZE))
    return VolumeScene(plotter, ImageStore(vol, grid), state), state, plotter


def near_white(img: np.ndarray) -> np.ndarray:
    return (img.min(axis=2) > 200).astype(bool)


def changed(img: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Pixels the volume rendering changed, outside the marker's and the text's corners."""
    out = np.abs(img.astype(int) - reference.astype(int)).max(axis=2) > 30
    out[: int(SIZE * 0.18), : int(SIZE * 0.6)] = False
    out[-int(SIZE * 0.3) :, : int(SIZE * 0.3)] = False
    return out


def test_outline_frames_the_volume() -> None:
    scene, _, plotter = scene_for(ramp_ball())
    with_outline = near_white(render_image(plotter))
    scene.outline_actor.VisibilityOff()
    without = near_white(render_image(plotter))
    plotter.close()
    rows, cols = np.nonzero(with_outline & ~without)
    assert rows.size > 300  # twelve edges of lines
    # the box spans most of the view in both directions
    assert cols.max() - cols.min() > SIZE * 0.5 and rows.max() - rows.min() > SIZE * 0.5


def test_lower_threshold_gives_more_opaque_pixels() -> None:
    _scene, state, plotter = scene_for(ramp_ball(), threshold=400.0)
    plain = render_image(plotter)
    state.set_volume_opacity(True)
    high = changed(render_image(plotter), plain).sum()
    state.set_threshold(100.0)
    low = changed(render_image(plotter), plain).sum()
    state.set_volume_opacity(False)
    off = changed(render_image(plotter), plain).sum()
    plotter.close()
    assert off == 0
    assert high > 50
    assert low > 1.5 * high


def test_planes_follow_the_state_and_window() -> None:
    vol = ramp_ball()
    vol.array[:] = 0
    vol.array[5] = 1000  # one bright axial slab (inferior)
    _scene, state, plotter = scene_for(vol)
    state.set_window(500.0, 1000.0)
    state.set_slice("axial", 5)
    on_slab = (render_image(plotter).mean(axis=2) > 200).sum()
    state.set_slice("axial", 20)
    off_slab = (render_image(plotter).mean(axis=2) > 200).sum()
    state.set_window(5000.0, 100.0)  # the slab is now black
    state.set_slice("axial", 5)
    dark = (render_image(plotter).mean(axis=2) > 200).sum()
    plotter.close()
    assert on_slab > 3 * max(off_slab, dark, 1)


def test_anterior_camera_shows_patient_left_on_the_right() -> None:
    vol = ramp_ball()
    vol.array[:] = 0
    # x large = patient's left, y small = anterior, z large = superior
    vol.array[22:28, 5:10, 24:30] = 500
    scene, state, plotter = scene_for(vol, threshold=200.0)
    found = {}
    for camera in ("anterior", "left"):
        scene.set_camera(camera)
        state.set_volume_opacity(False)
        plain = render_image(plotter)
        state.set_volume_opacity(True)
        found[camera] = np.nonzero(changed(render_image(plotter), plain))
    (rows, cols), (_, cols_l) = found["anterior"], found["left"]
    plotter.close()
    assert cols.size and np.median(cols) > SIZE / 2 and np.median(rows) < SIZE / 2
    # seen from the patient's left, anterior is on the screen's left
    assert cols_l.size and np.median(cols_l) < SIZE * 0.4


def test_plane_widget_drag_sets_the_slice_and_follows_it() -> None:
    """On a pyvista plotter with an interactor, as in the viewer."""
    scene, state, plotter = scene_for(ramp_ball(), pyvista=True)
    scene.enable_plane_widgets()
    widget = scene._widgets["axial"]
    rep = widget.GetRepresentation()
    origin = list(rep.GetOrigin())
    origin[2] = 7.2  # mm; spacing 1 and origin 0, so slice 7
    rep.SetOrigin(*origin)
    widget.InvokeEvent("InteractionEvent")
    assert state.slices["axial"] == 7
    state.set_slice("coronal", 3)
    assert scene._widgets["coronal"].GetRepresentation().GetOrigin()[1] == pytest.approx(3.0)
    image = render_image(plotter)  # the scene renders in a pyvista window too
    assert image.shape == (SIZE, SIZE, 3) and image.max() > 200
    scene.close()
    plotter.close()


def test_marked_axial_slabs_are_drawn() -> None:
    scene, _, plotter = scene_for(ramp_ball())
    before = render_image(plotter).astype(int)
    scene.set_marked_axial([4, 20])
    after = render_image(plotter).astype(int)
    plotter.close()
    orange = lambda im: (im[..., 0] - im[..., 2] > 60) & (im[..., 1] > 40)  # noqa: E731
    assert orange(after).sum() > orange(before).sum() + 200


def test_coronal_and_sagittal_marks_show_as_slabs_coloured_per_label() -> None:
    from mprviewer.render.overlays import LABEL_COLORS

    def share(image: np.ndarray, colour: tuple[float, float, float]) -> int:
        """Pixels whose hue is that of a translucent slab of ``colour`` over the scene."""
        rgb = image.astype(float)
        target = np.asarray(colour) - np.mean(colour)
        tint = rgb - rgb.mean(axis=2, keepdims=True)
        norm = np.linalg.norm(tint, axis=2) * np.linalg.norm(target)
        cos = (tint @ target) / np.where(norm > 0, norm, 1)
        return int(((cos > 0.95) & (np.linalg.norm(tint, axis=2) > 25)).sum())

    orange, blue = LABEL_COLORS[0], LABEL_COLORS[1]
    scene, _, plotter = scene_for(ramp_ball())
    before = render_image(plotter)
    scene.set_marked("coronal", {10: ["Bleed"]})
    coronal_only = render_image(plotter)
    assert share(coronal_only, orange) > share(before, orange) + 200
    scene.set_marked("sagittal", {5: ["Nodule"], 6: ["Nodule"]})
    both = render_image(plotter)
    assert share(both, blue) > share(before, blue) + 200  # the second label: its own colour
    assert share(both, orange) > share(before, orange) + 200
    scene.set_marked("coronal", {})
    scene.set_marked("sagittal", {})
    cleared = render_image(plotter)
    plotter.close()
    assert share(cleared, orange) < share(before, orange) + 50
    assert share(cleared, blue) < share(before, blue) + 50
