"""The real window: a 2D slice step and a 3D plane drag in mprviewer's 2x2 window (all four
views shown, the window 1600x1000 under Xvfb) next to a minimal PyQt5 + pyvistaqt viewer of
one vtkImageActor the size of mprviewer's axial view, in one process, blocks alternating. Run
by bench_whole in a subprocess under xvfb-run; prints one JSON line.

A step is: change the slice, let Qt deliver the paints that are due (processEvents), and
drain the GL pipeline of every view that was painted (glFinish). The view being worked in
(the lead) is painted in the step; the views that follow it are painted by the window's
repaint scheduler while the steps go on, and the block ends by painting whatever is still
pending, so every view shows the last step inside the block's time. Each view's own render
time is measured too, as the profile of a step.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def _settle(app, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.005)


def main(folder: str, steps: int, reps: int) -> dict:
    from PyQt5.QtWidgets import QApplication, QMainWindow

    import mprviewer

    app = QApplication.instance() or QApplication([])
    with mprviewer.open_study(folder) as study:
        volume = study.series[0].load()

    from mprviewer.gui.main_window import MainWindow
    from mprviewer.render.volume_scene import PLANE_AXIS

    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
    _settle(app, 1.0)
    window.set_volume(volume)
    _settle(app, 6.0)  # first frames, then the 3D scene
    state = window.state
    interactors = [v.interactor for v in window.views.views.values()]
    n = volume.array.shape[0]
    base = n // 2 - 20

    def finish(views) -> None:
        app.processEvents()
        for view in views:
            view.ren_win.WaitForCompletion()

    grid = window.views
    axial_view = grid.views["axial"].interactor
    view_3d = grid.views["3d"].interactor
    scene_3d = grid.volume_view.scene
    axial_widget = scene_3d._widgets["axial"]
    axial_rep = axial_widget.GetRepresentation()
    follower_paints = {"n": 0}
    real_paint_pending = grid.repaints.paint_pending

    def counting_paint_pending() -> None:
        follower_paints["n"] += 1
        real_paint_pending()

    grid.repaints.paint_pending = counting_paint_pending

    def catch_up() -> None:
        """The end of a block: every view shows the last change."""
        real_paint_pending()
        finish(interactors)

    def ours(i: int) -> None:
        grid.repaints.set_lead(axial_view)  # as a wheel or key in the axial view does
        state.set_slice("axial", base + i % 40)
        finish(interactors)

    def ours_unchanged(_i: int) -> None:
        grid.repaints.set_lead(None)
        for view in interactors:
            view.render()
        finish(interactors)

    def drag_3d(i: int) -> None:
        """One mouse move of a drag on the axial plane in 3D: the widget moves its plane and
        reports it (InteractionEvent), and asks for its view to be drawn."""
        grid.repaints.set_lead(view_3d)  # as the press on the 3D view does
        origin = list(axial_rep.GetOrigin())
        origin[PLANE_AXIS["axial"]] = scene_3d.store.plane_position_mm("axial", base + i % 40)
        axial_rep.SetOrigin(*origin)
        axial_widget.InvokeEvent("InteractionEvent")
        view_3d.render()
        finish(interactors)

    def unchanged_3d(_i: int) -> None:
        grid.repaints.set_lead(view_3d)
        view_3d.render()
        finish(interactors)

    # The minimal viewer: one QtInteractor the size of mprviewer's axial view, one image actor.
    import vtkmodules.vtkRenderingCore as rc
    from pyvistaqt import QtInteractor
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData

    bare_window = QMainWindow()
    bare = QtInteractor(bare_window, multi_samples=0, auto_update=False)
    bare_window.setCentralWidget(bare)
    axial = window.views.views["axial"].interactor
    size = (axial.width(), axial.height())
    bare_window.resize(*size)
    bare_window.show()
    nk, nj, ni = volume.array.shape
    data = vtkImageData()
    data.SetDimensions(ni, nj, nk)
    data.GetPointData().SetScalars(numpy_to_vtk(np.ascontiguousarray(volume.array).ravel(),
                                                deep=False))
    actor = rc.vtkImageActor()
    actor.GetMapper().SetInputData(data)
    actor.GetProperty().SetColorWindow(400)
    actor.GetProperty().SetColorLevel(40)
    bare.renderer.AddActor(actor)
    actor.SetDisplayExtent(0, ni - 1, 0, nj - 1, base, base)
    bare.renderer.ResetCamera()
    _settle(app, 1.0)

    def minimal(i: int) -> None:
        k = base + i % 40
        actor.SetDisplayExtent(0, ni - 1, 0, nj - 1, k, k)
        bare.render()
        finish([bare])

    ways = {"mprviewer 2x2 window, axial step": ours,
            "mprviewer 2x2 window, unchanged re-render of the four views": ours_unchanged,
            "mprviewer 2x2 window, 3D plane drag": drag_3d,
            "mprviewer 2x2 window, unchanged re-render of the 3D view": unchanged_3d,
            "minimal PyQt5 + pyvistaqt vtkImageActor viewer, step": minimal}
    for fn in ways.values():  # warm-up
        for i in range(5):
            fn(i)
        catch_up()
    times: dict[str, list[float]] = {k: [] for k in ways}
    lead_ms: dict[str, list[float]] = {k: [] for k in ways}
    follower_paints_per_block: dict[str, list[int]] = {k: [] for k in ways}
    for rep in range(reps):
        order = list(ways.items()) if rep % 2 == 0 else list(ways.items())[::-1]
        for name, fn in order:
            follower_paints["n"] = 0
            t0 = time.perf_counter()
            for i in range(steps):
                t_step = time.perf_counter()
                fn(i)
                lead_ms[name].append((time.perf_counter() - t_step) * 1000)
            catch_up()
            times[name].append((time.perf_counter() - t0) / steps * 1000)
            follower_paints_per_block[name].append(follower_paints["n"])
    grid.repaints.paint_pending = real_paint_pending
    per_view: dict[str, list[float]] = {}
    for name, view in zip(window.views.views, interactors, strict=True):
        for _ in range(3):
            view.ren_win.Render()
        samples = []
        for _ in range(10):
            t0 = time.perf_counter()
            view.ren_win.Render()
            view.ren_win.WaitForCompletion()
            samples.append((time.perf_counter() - t0) * 1000)
        per_view[name] = samples
    bare_window.close()
    window.close()
    _settle(app, 0.5)
    return {"times_ms": times, "view_size": size,
            "step_ms_median": {k: float(np.median(v)) for k, v in lead_ms.items()},
            "follower_paints_per_block": follower_paints_per_block,
            "quiet_ms": grid.repaints.QUIET_MS, "max_lag_ms": grid.repaints.MAX_LAG_MS,
            "per_view_ms": {k: float(np.median(v)) for k, v in per_view.items()}}


if __name__ == "__main__":
    result = main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
    print("RESULT " + json.dumps(result), flush=True)
    sys.stdout.flush()
