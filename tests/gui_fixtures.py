"""GUI test fixtures: a viewer window factory that fails the test on leaks.

Import into a test module with ``from tests.gui_fixtures import make_viewer, qapp  # noqa: F401``.
In the spirit of napari's ``make_napari_viewer``: windows made through the factory are closed
after the test, and the test fails if a top-level window, a worker thread or a VTK plotter
outlives them.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "xcb")

# Qt keeps these application-wide helpers alive on purpose; they are not leaks.
_IGNORED_TOP_LEVEL = {"QTipLabel", "QComboBoxPrivateContainer", "QMenu"}


@pytest.fixture(scope="session")
def qapp() -> Any:
    """The application, created the way ``mprviewer view`` creates it (shared GL contexts)."""
    from mprviewer.gui.app import ensure_app

    return ensure_app()


@pytest.fixture
def make_viewer(qapp: Any, qtbot: Any) -> Iterator[Callable[..., Any]]:
    """``make_viewer(show=True, size=(1000, 760), **window_args)`` -> a MainWindow, closed
    after the test.

    Fails the test when, after closing, a new top-level widget survives, a loader thread is
    still running or a view's VTK render window was not closed.
    """
    from PyQt5.QtCore import QCoreApplication, QEvent, Qt
    from PyQt5.QtWidgets import QApplication

    from mprviewer.gui.main_window import MainWindow
    from mprviewer.gui.worker import running_workers

    before = {id(w) for w in QApplication.topLevelWidgets()}
    windows: list[Any] = []

    def factory(show: bool = True, size: tuple[int, int] = (1000, 760),
                **window_args: Any) -> MainWindow:
        window = MainWindow(**window_args)
        window.setAttribute(Qt.WA_DeleteOnClose)
        window.resize(*size)
        windows.append(window)
        if show:
            window.show()
            qtbot.waitExposed(window)
        return window

    yield factory

    interactors = [v.interactor for w in windows for v in w.views.views.values()]
    for window in windows:
        with contextlib.suppress(RuntimeError):  # already deleted by the test
            window.close()
    for _ in range(3):
        QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
        qapp.processEvents()
    gc.collect()
    problems = []
    threads = running_workers()
    if threads:
        problems.append(f"{len(threads)} worker thread(s) still running")
        for thread in threads:
            thread.wait(5000)
    leaked = [
        w
        for w in QApplication.topLevelWidgets()
        if id(w) not in before and type(w).__name__ not in _IGNORED_TOP_LEVEL
    ]
    if leaked:
        names = ", ".join(f"{type(w).__name__}({w.windowTitle()!r})" for w in leaked)
        problems.append(f"top-level widgets outlived the window: {names}")
        for w in leaked:
            w.close()
            w.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    still_open = [i for i in interactors if not getattr(i, "_closed", True)]
    if still_open:
        problems.append(f"{len(still_open)} VTK render window(s) left open (plotter.close())")
        for interactor in still_open:
            interactor.close()
    if problems:
        pytest.fail("leaks after closing the viewer: " + "; ".join(problems))


# -- data ------------------------------------------------------------------------------
BLOB_VALUE = 500
BLOB_WINDOW = (500.0, 1000.0)  # the blob shows mid grey, the background black


def blob_volume(flip_i: bool = True) -> Any:
    """A small CT-like volume with a cube on the patient's left, anterior and superior side.

    With ``flip_i`` the columns run toward the patient's right (i decreases to the left), so
    a viewer that shows array columns left to right puts the cube on the wrong side.
    Returns the Volume; ``volume.blob_lps`` is the cube centre in LPS mm.
    """
    from mprviewer.io.volume import Volume

    nk, nj, ni = 24, 40, 48
    array = np.zeros((nk, nj, ni), dtype=np.int16)
    # Display side: patient's left = +x, anterior = -y, superior = +z (LPS).
    i_left = slice(4, 14) if flip_i else slice(ni - 14, ni - 4)
    array[14:22, 6:16, i_left] = BLOB_VALUE
    # A dimmer slab lower down: slices differ, so stepping changes the picture.
    array[2:6, 20:34, 18:30] = 250
    affine = np.eye(4)
    affine[:3, 0] = (-1.0, 0.0, 0.0) if flip_i else (1.0, 0.0, 0.0)
    affine[:3, 1] = (0.0, 1.0, 0.0)
    affine[:3, 2] = (0.0, 0.0, 2.0)
    volume = Volume(
        array=array,
        affine=affine,
        name="blob",
        modality="CT",
        units="HU",
        window=BLOB_WINDOW,
        series_uid="1.2.3.4",
        sop_instance_uids=[f"1.2.3.4.{k}" for k in range(nk)],
    )
    centre_ijk = np.array([8.5 if flip_i else ni - 9.5, 10.5, 17.5])
    volume.blob_lps = volume.ijk_to_lps(centre_ijk)  # type: ignore[attr-defined]
    return volume


def grey_mask(image: np.ndarray, lo: int = 90, hi: int = 170) -> np.ndarray:
    """Pixels that are mid grey (the blob), not black, white text or coloured lines."""
    rgb = image.astype(np.int16)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    return (rgb.min(axis=2) >= lo) & (rgb.max(axis=2) <= hi) & (spread < 12)


def central(image: np.ndarray) -> np.ndarray:
    """The middle of a view, away from the corner texts and the edge letters."""
    h, w = image.shape[:2]
    return image[int(h * 0.14) : int(h * 0.86), int(w * 0.08) : int(w * 0.92)]


def blob_pixel(image: np.ndarray) -> tuple[float, float]:
    """(x, y) widget pixel at the centre of the grey cube, found in the central region."""
    h, w = image.shape[:2]
    rows, cols = np.nonzero(grey_mask(central(image)))
    assert rows.size > 50, "the cube is not on screen"
    return cols.mean() + int(w * 0.08), rows.mean() + int(h * 0.14)
