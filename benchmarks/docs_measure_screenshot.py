"""Make docs/measure-tools.png: the viewer on the demo study with two rulers across the lung
lesion, an ROI in it, a hematoma-style ABC/2 volume and a 10 mm slab MIP in the 2D views.

Run under a display (``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python
benchmarks/docs_measure_screenshot.py [OUT.png]``); the window is built the way ``mprviewer view``
builds it, and the measurements are placed through the same calls the mouse makes.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np


def main(out: Path) -> Path:
    os.environ.setdefault("MPRVIEWER_HOME", tempfile.mkdtemp(prefix="mprviewer-docs-"))
    from PyQt5.QtCore import QEventLoop, QTimer

    from mprviewer.gui.annotation_controller import install_annotations
    from mprviewer.gui.app import ensure_app
    from mprviewer.gui.main_window import MainWindow
    from mprviewer.gui.measure_tools import install_measure_tools
    from mprviewer.synthetic.phantom import lesion_center_mm, lesion_radius_mm

    app = ensure_app()
    window = MainWindow()
    install_annotations(window)
    tools = install_measure_tools(window)
    window.resize(1600, 1000)
    window.show()
    loop = QEventLoop()
    window.volume_changed.connect(lambda _v: loop.quit())
    window.open_source("demo")
    loop.exec_()
    volume, state = window.volume, window.state
    grid = state.grid
    # The lesion's centre in LPS: the phantom's field of view is centred on the volume.
    nk, nj, ni = volume.shape
    middle = volume.ijk_to_lps(((ni - 1) / 2, (nj - 1) / 2, (nk - 1) / 2))
    centre = middle + lesion_center_mm(volume.shape, volume.spacing[::-1])
    radius = lesion_radius_mm(volume.shape, volume.spacing[::-1])
    c = np.rint(grid.lps_to_display(centre))
    state.set_cursor(c)
    state.set_focus("axial")
    window.controls.apply_preset("lung")
    step = radius / grid.spacing[0]
    z = c[2]
    for degrees in (30.0, 120.0):  # two perpendicular diameters, off the crosshair lines
        t = np.radians(degrees)
        dx, dy = step * np.cos(t), -step * np.sin(t)
        tools.add_ruler("axial", (c[0] - dx, c[1] - dy, z), (c[0] + dx, c[1] + dy, z))
    height = radius / grid.spacing[2]
    state.set_slice("coronal", int(c[1]))
    tools.add_ruler("coronal", (c[0], c[1], c[2] - height), (c[0], c[1], c[2] + height))
    tools.add_roi("axial", c, radius * 0.5)
    tools.compute_hematoma()
    tools.set_slab(10.0, "max")
    window.side_tabs.setCurrentWidget(tools.panel)
    # the axial view zoomed on the lesion, as a reader would look at it
    view = window.views.slice_views["axial"]
    for _ in range(5):
        app.processEvents()
    view.reset_camera()
    camera = view.interactor.renderer.GetActiveCamera()
    focal, position = np.array(camera.GetFocalPoint()), np.array(camera.GetPosition())
    world = view.scene.store.world_of(c)
    shift = np.array([world[0] - focal[0], world[1] - focal[1], 0.0])
    camera.SetFocalPoint(*(focal + shift))
    camera.SetPosition(*(position + shift))
    view.zoom(4.0)
    for _ in range(20):
        app.processEvents()
    wait = QEventLoop()
    QTimer.singleShot(1500, wait.quit)
    wait.exec_()
    path = window.save_screenshot(out)
    window.close()
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/measure-tools.png")
    print(main(target))
