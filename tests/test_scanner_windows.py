"""The default display window of a series whose files each carry their own window (Siemens
MR writes one fitted to each slice): the volume's window is the one most slices hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import mprviewer
from mprviewer.synthetic.writer import write_series


def _t1_with_edge_windows(folder: Path) -> None:
    """A head whose middle slices say W 1550 L 801 and whose edge slices say W 8 L 4."""
    nk = 9
    array = np.zeros((nk, 32, 32), np.int16)
    yy, xx = np.mgrid[:32, :32]
    head = (yy - 16) ** 2 + (xx - 16) ** 2 < 12 ** 2
    for k in range(nk):
        array[k][head] = 400 + 100 * (xx[head] % 10)  # 400..1300: grey matter to fat

    def per_slice(k: int) -> dict[str, str]:
        edge = k in (0, 1, nk - 1)
        return {"WindowCenter": "4" if edge else "801", "WindowWidth": "8" if edge else "1550"}

    write_series(folder, array, modality="MR", per_slice=per_slice, shuffle=3, seed=5)


def test_window_is_the_median_of_the_slice_windows_not_the_last_file(tmp_path: Path) -> None:
    _t1_with_edge_windows(tmp_path / "t1")
    volume = mprviewer.open_study(tmp_path / "t1").series[0].load()
    assert volume.window == (801.0, 1550.0)


def test_screenshot_default_window_shows_the_head_in_greys(tmp_path: Path) -> None:
    from mprviewer.render.screenshot import default_window, screenshot

    _t1_with_edge_windows(tmp_path / "t1")
    volume = mprviewer.open_study(tmp_path / "t1").series[0].load()
    assert default_window(volume) == (801.0, 1550.0)
    image = screenshot(volume, view="axial", size=(200, 200), crosshair=False)
    grey = image[..., 0].astype(int)
    bright = grey[grey > 20]
    # W 8 L 4 would paint every head voxel white; the median window keeps a range of greys
    assert np.percentile(bright, 90) < 250
    assert np.percentile(bright, 90) - np.percentile(bright, 10) > 40
