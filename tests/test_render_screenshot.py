"""The screenshot API: composition, determinism, letters, inputs, and no Qt on its path."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mprviewer.io.volume import Volume
from mprviewer.render.probe import bright_spot, tile
from mprviewer.render.screenshot import contact_sheet, screenshot

pytestmark = pytest.mark.render


def marker_volume() -> Volume:
    """A soft-tissue block with a bright blob on the patient's left, anterior, superior."""
    arr = np.full((30, 40, 40), -1000, np.int16)
    arr[3:27, 5:35, 5:35] = 40
    arr[20:24, 8:12, 28:32] = 1200  # i 28-31 (left), j 8-11 (anterior), k 20-23 (superior)
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    affine[:3, 3] = (-20.0, -20.0, -30.0)
    return Volume(arr, affine, units="HU", window=(40.0, 400.0), name="block")


SLICES = {"axial": 21, "coronal": 9, "sagittal": 29}


def test_quad_is_the_four_views_composed() -> None:
    vol = marker_volume()
    quad = screenshot(vol, slices=SLICES, size=(480, 360), threshold=500)
    assert quad.shape == (360, 480, 3) and quad.dtype == np.uint8
    for n, view in enumerate(("axial", "coronal", "sagittal")):
        alone = screenshot(vol, view=view, slices=SLICES, size=(240, 180))
        assert np.abs(tile(quad, n).astype(int) - alone).mean() < 1.0, view
    spots = [bright_spot(tile(quad, n), min_level=230) for n in range(3)]
    assert spots[0][0] > 120 and spots[0][1] < 90  # axial: left on the right, anterior up
    assert spots[1][0] > 120 and spots[1][1] < 90  # coronal: left on the right, superior up
    assert spots[2][0] < 120 and spots[2][1] < 90  # sagittal: anterior on the left, superior up
    assert tile(quad, 3).mean() > 15  # the 3D view is drawn


def test_screenshots_are_deterministic() -> None:
    vol = marker_volume()
    first = screenshot(vol, size=(320, 240), threshold=30, camera="left")
    second = screenshot(vol, size=(320, 240), threshold=30, camera="left")
    assert np.array_equal(first, second)


def test_letters_are_drawn_on_the_edges() -> None:
    """Letters are yellow: present at the edge centres of a 2D screenshot."""
    img = screenshot(marker_volume(), view="axial", size=(300, 300)).astype(int)
    yellow = (img[..., 0] > 180) & (img[..., 1] > 150) & (img[..., 2] < 120)
    assert yellow[:30, 130:170].sum() > 10 and yellow[-30:, 130:170].sum() > 10
    assert yellow[130:170, :30].sum() > 10 and yellow[130:170, -30:].sum() > 10


def test_annotations_draw_a_frame_on_marked_slices() -> None:
    vol = marker_volume()
    marks = {"axial": {21: ["nodule"]}}
    marked = screenshot(vol, view="axial", slices=SLICES, size=(200, 200), annotations=marks)
    plain = screenshot(vol, view="axial", slices={"axial": 10}, size=(200, 200), annotations=marks)
    orange = lambda im: (im[..., 0] > 200) & (im[..., 2] < 60) & (im[..., 1] > 100)  # noqa: E731
    assert orange(marked)[:, :4].mean() > 0.5
    assert orange(plain)[:, :4].mean() == 0


def test_bad_inputs_raise_value_errors_that_say_what_to_do() -> None:
    vol = marker_volume()
    with pytest.raises(ValueError, match=r"axial plane has 30 slices, numbered 0-29"):
        screenshot(vol, slices={"axial": 30}, size=(100, 100))
    with pytest.raises(ValueError, match="unknown view"):
        screenshot(vol, view="oblique", size=(100, 100))
    with pytest.raises(ValueError, match="choose one of"):
        screenshot(vol, preset="nope", size=(100, 100))


def test_contact_sheet_tiles_images_in_order() -> None:
    images = [np.full((30, 40, 3), 40 * n, np.uint8) for n in range(1, 6)]
    sheet = contact_sheet(images, columns=3, tile_width=40)
    assert sheet.shape == (2 * 34 + 4, 3 * 44 + 4, 3)
    assert sheet[4 + 15, 4 + 44 + 20, 0] == 80  # second image, first row
    assert sheet[4 + 34 + 15, 4 + 44 + 20, 0] == 200  # fifth image, second row


def test_no_qt_is_imported_on_the_screenshot_path() -> None:
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        import mprviewer.render
        from mprviewer.io.volume import Volume
        vol = Volume(np.zeros((8, 8, 8), np.int16), np.eye(4), units="HU")
        img = mprviewer.render.screenshot(vol, size=(120, 90))
        assert img.shape == (90, 120, 3)
        qt = sorted(m for m in sys.modules if m.split(".")[0] in ("PyQt5", "pyvistaqt", "qtpy"))
        print("QT:", qt)
        """
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "DISPLAY"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "QT: []" in out.stdout
    assert "X server" not in out.stderr and out.stderr.strip() == ""


def test_crosshair_can_be_left_out() -> None:
    vol = marker_volume()
    with_lines = screenshot(vol, view="axial", size=(200, 200)).astype(int)
    without = screenshot(vol, view="axial", size=(200, 200), crosshair=False).astype(int)

    def green(im: np.ndarray) -> int:  # the coronal line's colour
        return int(((im[..., 1] - im[..., 0] > 60) & (im[..., 1] - im[..., 2] > 60)).sum())

    assert green(with_lines) > 100 and green(without) == 0


def test_rgb_volumes_are_shown_in_colour() -> None:
    arr = np.zeros((10, 20, 20, 3), np.uint8)
    arr[4:7, 8:12, 14:18] = (255, 0, 0)  # red, on the patient's left (large i)
    vol = Volume(arr, np.eye(4), name="rgb")
    img = screenshot(vol, slices={"axial": 5}, size=(400, 400)).astype(int)  # 3D is skipped
    axial = tile(img, 0)
    red = (axial[..., 0] > 200) & (axial[..., 1] < 60) & (axial[..., 2] < 60)
    rows, cols = np.nonzero(red)
    assert rows.size > 50 and np.median(cols) > 100


def test_views_of_a_layout_are_parted_by_grey_seams() -> None:
    from mprviewer.render.screenshot import SEAM_COLOUR

    vol = marker_volume()
    quad = screenshot(vol, slices=SLICES, size=(480, 360), threshold=500)
    grey = np.all(quad == SEAM_COLOUR, axis=2)
    assert grey[:, 239:241].all() and grey[179:181, :].all()
    alone = screenshot(vol, view="axial", slices=SLICES, size=(480, 360))
    assert not np.all(alone[:, 239:241] == SEAM_COLOUR, axis=2).all()


def test_marked_slice_images_render_each_image_once_and_show_its_slice(monkeypatch) -> None:
    """A batch renders one frame per image (the slice change itself does not render), and
    each image is the slice it is named for (the same as a single screenshot of it)."""
    from mprviewer.render import offscreen
    from mprviewer.render import screenshot as module

    renders = []

    real_plotter = offscreen.offscreen_plotter

    def counting_plotter(*args, **kwargs):
        plotter = real_plotter(*args, **kwargs)
        plotter.render_window.AddObserver("StartEvent", lambda *_: renders.append(1))
        return plotter

    monkeypatch.setattr(offscreen, "offscreen_plotter", counting_plotter)
    vol = marker_volume()
    marks = {"axial": {5: ["a"], 21: ["b"], 25: ["c"]}}
    images = list(module.marked_slice_images(vol, marks, size=(160, 160)))
    assert [(plane, index) for plane, index, _ in images] == [
        ("axial", 5), ("axial", 21), ("axial", 25)]
    assert 3 <= len(renders) <= 4  # one per image (and at most one while building the view)
    for _, index, image in images:
        alone = screenshot(vol, view="axial", slices={"axial": index}, size=(160, 160),
                           annotations=marks)
        assert np.abs(alone.astype(int) - image).mean() < 1.0, index


def test_png_files_hold_the_image(tmp_path) -> None:
    from PIL import Image

    from mprviewer.render.screenshot import write_png

    image = screenshot(marker_volume(), view="axial", size=(120, 100))
    path = write_png(image, tmp_path / "sub" / "x.png")
    np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), image)
