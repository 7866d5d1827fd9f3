"""Make docs/oblique-reformat.png: a CT stack acquired 30 degrees oblique, holding a cylinder
along the patient's S axis, shown resliced onto the patient's axes (a circle in the axial
view), with the axial crosshair turned 30 degrees and the coronal one 15 degrees (double-
oblique reformat).

Run under a display (``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python
benchmarks/docs_oblique_screenshot.py [OUT.png]``); the window is built the way
``mprviewer view`` builds it and the planes are turned through the calls Ctrl+drag makes.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np


def tilted_cylinder(folder: Path, tilt_deg: float = 30.0) -> Path:
    """A 64x64x48 stack tilted about the patient's left-right axis, a cylinder of radius
    14 mm along S (1000 HU in air), written as DICOM to ``folder``."""
    from mprviewer.synthetic.writer import write_series

    t = np.radians(tilt_deg)
    rotation = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    shape = (48, 64, 64)
    affine = np.eye(4)
    affine[:3, :3] = rotation
    affine[:3, 3] = -rotation @ ((np.array(shape[::-1]) - 1) / 2.0)
    k, j, i = np.indices(shape)
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel()], 1).astype(float)
    lps = ijk @ affine[:3, :3].T + affine[:3, 3]
    array = np.where((lps[:, 0] ** 2 + lps[:, 1] ** 2) <= 14.0**2, 1000, -1000)
    write_series(folder / "oblique-ct", array.reshape(shape).astype(np.int16), affine=affine,
                 seed=4, window=(40, 1500))
    return folder


def main(out: Path) -> Path:
    os.environ.setdefault("MPRVIEWER_HOME", tempfile.mkdtemp(prefix="mprviewer-docs-"))
    from PyQt5.QtCore import QEventLoop, QTimer

    from mprviewer.gui.annotation_controller import install_annotations
    from mprviewer.gui.app import ensure_app
    from mprviewer.gui.main_window import MainWindow
    from mprviewer.gui.measure_tools import install_measure_tools
    from mprviewer.gui.oblique_tools import install_oblique_tools

    study = tilted_cylinder(Path(tempfile.mkdtemp(prefix="mprviewer-oblique-")))
    app = ensure_app()
    window = MainWindow()
    install_annotations(window)
    install_measure_tools(window)
    tools = install_oblique_tools(window)
    window.resize(1600, 1000)
    window.show()
    loop = QEventLoop()

    def check() -> None:
        if window.is_3d_ready and window.session.display_only:
            loop.quit()
        else:
            QTimer.singleShot(100, check)

    window.open_source(str(study))
    QTimer.singleShot(100, check)
    loop.exec_()
    tools.rotate("axial", 30.0)
    tools.rotate("coronal", 15.0)
    wait = QEventLoop()
    QTimer.singleShot(800, wait.quit)
    wait.exec_()
    saved = window.save_screenshot(out)
    window.close()
    app.processEvents()
    return saved


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/oblique-reformat.png")
    print(main(target))
