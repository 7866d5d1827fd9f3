"""Oblique reformat state without a display: turning one view's crosshair tilts the other two
planes about its normal, keeps the three perpendicular, names the tilted edges, and the
session refuses marks while tilted or while a reslice is on screen."""

from __future__ import annotations

import numpy as np
import pytest

from mprviewer.io.volume import Volume
from mprviewer.model.reformat import BASE_FRAMES, ReformatPlanes, oblique_letters
from mprviewer.session import Session


def test_base_frames_are_the_views_cameras() -> None:
    from mprviewer.render import planes

    for plane, (right, up, normal) in BASE_FRAMES.items():
        r, u = planes.screen_axes(plane)
        assert np.allclose(r, right) and np.allclose(u, up)
        assert np.allclose(planes.VIEW_DIRECTION[plane], normal)


def test_turning_the_sagittal_crosshair_tilts_axial_and_coronal_about_left_right() -> None:
    rf = ReformatPlanes()
    heard: list[int] = []
    rf.changed.connect(lambda: heard.append(1))
    rf.rotate("sagittal", 20.0)
    assert heard == [1]
    sagittal = rf.normal("sagittal")
    assert np.allclose(sagittal, (-1, 0, 0)) and not rf.is_tilted("sagittal")
    for plane in ("axial", "coronal"):
        assert rf.tilt_deg(plane) == pytest.approx(20.0)
        assert abs(np.dot(rf.normal(plane), sagittal)) < 1e-12
    assert abs(np.dot(rf.normal("axial"), rf.normal("coronal"))) < 1e-12
    # The sagittal camera looks toward the patient's right with anterior on the left:
    # counter-clockwise there lifts the posterior end of the axial plane, so its normal
    # leans from S toward A.
    axial = rf.normal("axial")
    assert axial[1] == pytest.approx(-np.sin(np.radians(20.0)))
    assert rf.edge_letters("axial")["top"] == "AI"
    rf.reset()
    assert not rf.is_oblique and heard == [1, 1]
    assert rf.edge_letters("axial") == {"left": "R", "right": "L", "top": "A", "bottom": "P"}


def test_oblique_letters_name_each_strong_component_strongest_first() -> None:
    assert oblique_letters((1.0, 0.0, 0.0)) == "L"
    assert oblique_letters((0.2, -0.9, 0.05)) == "AL"
    assert oblique_letters((-0.6, 0.6, 0.52)) in ("RPS", "PRS")


def test_session_refuses_marks_while_tilted_or_resliced() -> None:
    session = Session(annotate=False)
    volume = Volume(np.zeros((4, 5, 6), np.int16), np.eye(4), units="HU")
    session.show_volume(volume)
    assert session.marking_refusal() == ""
    session.rotate_crosshair("axial", 30.0)
    assert "tilted" in session.marking_refusal()
    session.show_volume(volume, display_only=True)  # every new volume starts orthogonal
    assert not session.reformat.is_oblique
    assert "acquisition grid" in session.marking_refusal()
    assert session.marked("axial") == {}
    session.show_volume(volume)
    assert session.marking_refusal() == "" and session.reset_oblique() is False


@pytest.mark.render
def test_a_tilted_plane_cuts_through_the_crosshair_and_takes_a_slab_along_its_normal() -> None:
    """A bright voxel 5 mm off the tilted axial plane (along its normal) is not on the plain
    tilted slice and shows in a 12 mm MIP of it; on the plane itself it shows plainly."""
    from mprviewer.model.orientation import PLANES, DisplayGrid
    from mprviewer.model.state import ViewerState
    from mprviewer.render.image import ImageStore
    from mprviewer.render.offscreen import offscreen_plotter, render_image
    from mprviewer.render.probe import grey_mask
    from mprviewer.render.slice_scene import SliceScene

    affine = np.eye(4)
    affine[:3, 3] = (-20.0, -20.0, -20.0)
    volume = Volume(np.zeros((41, 41, 41), np.int16), affine, units="HU")
    rf = ReformatPlanes()
    rf.rotate("sagittal", 30.0)
    off = np.round(rf.normal("axial") * 5.0).astype(int)  # whole voxels, about 5 mm off
    i, j, k = np.array([20, 20, 20]) + off
    volume.array[k - 1:k + 2, j - 1:j + 2, i - 1:i + 2] = 1000

    def bright(slab_mm: float, shift: bool = False) -> int:
        grid = DisplayGrid.for_volume(volume)
        state = ViewerState(grid, window=(500.0, 1000.0))
        state.set_cursor((i, j, k) if shift else (20, 20, 20))
        store = ImageStore(volume, grid)
        plotter = offscreen_plotter((600, 200), shape=(1, 3))
        scenes = {}
        for n, plane in enumerate(PLANES):
            plotter.subplot(0, n)
            scenes[plane] = SliceScene(plotter, store, state, plane)
            scenes[plane].set_reformat(rf)
        scenes["axial"].set_slab(slab_mm, "max")
        assert scenes["axial"].is_tilted
        tile = render_image(plotter)[40:-30, 30:170]  # the axial view, clear of text
        plotter.close()
        return int(grey_mask(tile, 150).sum())

    assert bright(0.0) == 0
    assert bright(12.0) > 4
    assert bright(0.0, shift=True) > 4
