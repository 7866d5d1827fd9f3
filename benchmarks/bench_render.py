"""Interaction timings off screen (EGL, no X server): each change next to its floor.

The floor of a change is an unchanged re-render of the same view: what a frame costs when
nothing has to be updated. After every frame we wait for the GL pipeline to finish
(``WaitForCompletion``, a glFinish), so queued work is not carried into the next frame's
time. Rows whose scene class is not available are reported as not measured.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench_measure import median

from mprviewer.render.offscreen import prepare_offscreen

prepare_offscreen()


@dataclass
class Row:
    name: str
    ms: float | None  # median ms per frame
    floor_name: str | None = None
    floor_ms: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ms is None or not self.floor_ms:
            return None
        return self.ms / self.floor_ms


def _per_frame_ms(step: Callable[[int], None], finish: Callable[[], None], frames: int) -> float:
    t0 = time.perf_counter()
    for n in range(frames):
        step(n)
        finish()
    return (time.perf_counter() - t0) * 1000.0 / frames


def _alternate(change: Callable[[int], None], floor: Callable[[int], None],
               finish: Callable[[], None], frames: int, reps: int,
               warmup: int = 3) -> tuple[float, float]:
    """Median ms per frame of ``change`` and ``floor``, in alternating blocks."""
    for fn in (change, floor):  # warm-up: first texture uploads, shader compiles
        _per_frame_ms(fn, finish, warmup)
    changes, floors = [], []
    for rep in range(reps):
        order = [(change, changes), (floor, floors)]
        for fn, out in order if rep % 2 == 0 else order[::-1]:
            out.append(_per_frame_ms(fn, finish, frames))
    return median(changes), median(floors)


def _slice_stepper(state: Any, plane: str, n: int,
                   after: Callable[[], None]) -> Callable[[int], None]:
    """A step that moves ``plane`` one slice on every call (a sweep back and forth), so each
    call is a real change; the scenes re-render themselves on ``slice_changed``."""
    counter = itertools.count(1)
    lo, span = n // 4, max(2, n // 2)

    def step(_i: int) -> None:
        c = next(counter) % (2 * span)
        state.set_slice(plane, lo + (c if c < span else 2 * span - c))
        after()

    return step


def _plotter(size: tuple[int, int]) -> Any:
    """An off-screen pyvista Plotter (with an interactor, like the viewer's QtInteractor,
    no multisampling) when the render package offers one, else its bare plotter."""
    from mprviewer.render import offscreen

    make = getattr(offscreen, "pyvista_plotter", None) or offscreen.offscreen_plotter
    return make(size)


def _first_frame(plotter: Any) -> None:
    show = getattr(plotter, "show", None)
    if show is not None:
        show(auto_close=False)  # a pyvista Plotter renders nothing before its first show()
    else:
        plotter.render()


def _grab(plotter: Any) -> Any:
    """The rendered view as an (h, w, 3) int array."""
    from mprviewer.render.offscreen import render_image

    return render_image(plotter).astype(int)


def _finisher(plotter: Any) -> Callable[[], None]:
    window = plotter.render_window
    return window.WaitForCompletion


def renderer_string() -> str:
    """The OpenGL renderer and version (Mesa llvmpipe here) as VTK reports them."""
    import pyvista

    info = pyvista.GPUInfo()
    return f"{info.renderer}; OpenGL {info.version}; {info.vendor}"


def bench_slice_step(volume: Any, size: tuple[int, int], frames: int, reps: int) -> Row:
    from mprviewer.model.orientation import DisplayGrid
    from mprviewer.model.state import ViewerState
    from mprviewer.render.image import ImageStore
    from mprviewer.render.slice_scene import SliceScene

    grid = DisplayGrid.for_volume(volume)
    store = ImageStore(volume, grid)
    state = ViewerState(grid, window=(40.0, 400.0))
    plotter = _plotter(size)
    scene = SliceScene(plotter, store, state, "axial")
    try:
        _first_frame(plotter)
        step = _slice_stepper(state, "axial", grid.plane_size("axial"), lambda: None)

        ms, floor_ms = _alternate(step, lambda _i: plotter.render(), _finisher(plotter),
                                  frames, reps)
    finally:
        scene.close()
        plotter.close()
    return Row("2D slice step (set slice + render), axial", ms,
               "unchanged re-render of the 2D view", floor_ms)


def bench_slab_step(volume: Any, size: tuple[int, int], frames: int, reps: int,
                    slab_mm: float = 10.0) -> Row:
    """Stepping with a thick-slab MIP against the plain 2D step, in alternating blocks (two
    views of their own, so each block pays only for its own kind of step)."""
    from mprviewer.model.orientation import DisplayGrid
    from mprviewer.model.state import ViewerState
    from mprviewer.render.image import ImageStore
    from mprviewer.render.slice_scene import SliceScene

    grid = DisplayGrid.for_volume(volume)
    store = ImageStore(volume, grid)
    n = grid.plane_size("axial")
    made: list[tuple[Any, Any, Any]] = []
    try:
        for slab in (slab_mm, 0.0):
            state = ViewerState(grid, window=(40.0, 400.0))
            plotter = _plotter(size)
            scene = SliceScene(plotter, store, state, "axial")
            scene.set_slab(slab, "max")
            made.append((state, plotter, scene))
            _first_frame(plotter)
        (slab_state, slab_plotter, _), (plain_state, plain_plotter, _) = made
        finishers = [_finisher(slab_plotter), _finisher(plain_plotter)]

        def finish() -> None:
            for f in finishers:
                f()

        ms, floor_ms = _alternate(_slice_stepper(slab_state, "axial", n, lambda: None),
                                  _slice_stepper(plain_state, "axial", n, lambda: None),
                                  finish, frames, reps)
    finally:
        for _state, plotter, scene in made:
            scene.close()
            plotter.close()
    return Row(f"2D slice step with a {slab_mm:g} mm MIP slab, axial", ms,
               "plain 2D slice step", floor_ms)


def bench_3d(volume: Any, size: tuple[int, int], frames: int, reps: int) -> list[Row]:
    """Plane move in the 3D view, and the volume rendering at full and interactive quality."""
    try:
        from mprviewer.render.volume_scene import VolumeScene
    except ImportError as exc:
        why = f"not measured (mprviewer.render.volume_scene not available: {exc})"
        return [Row("3D plane move (planes + outline)", None, note=why),
                Row("volume rendering, full resolution", None, note=why),
                Row("volume rendering, interactive resolution", None, note=why)]
    from mprviewer.model.orientation import DisplayGrid
    from mprviewer.model.state import ViewerState
    from mprviewer.render.image import ImageStore

    grid = DisplayGrid.for_volume(volume)
    store = ImageStore(volume, grid)
    state = ViewerState(grid, window=(40.0, 400.0), threshold=150.0)
    plotter = _plotter(size)
    scene = VolumeScene(plotter, store, state)
    rows: list[Row] = []
    finish = _finisher(plotter)
    try:
        _first_frame(plotter)
        render = plotter.render
        move = _slice_stepper(state, "axial", grid.plane_size("axial"), lambda: None)

        ms, floor_ms = _alternate(move, lambda _i: render(), finish, frames, reps)
        rows.append(Row("3D plane move (planes + outline)", ms,
                        "unchanged re-render of the 3D view", floor_ms))
        rows.extend(_volume_rows(plotter, scene, state, finish, frames, reps))
    finally:
        scene.close()
        plotter.close()
    return rows


def _volume_rows(plotter: Any, scene: Any, state: Any, finish: Callable[[], None],
                 frames: int, reps: int) -> list[Row]:
    """Threshold-opacity volume rendering, the camera turning a little every frame.

    Full versus interactive quality is chosen the way a VTK interactor chooses it: the
    render window's desired update rate is raised while the mouse is down (15 frames/s,
    vtkRenderWindowInteractor's default) and dropped when it is released.
    """
    without = _grab(plotter)
    state.set_volume_opacity(True)
    drawn = int((abs(_grab(plotter) - without).sum(axis=-1) > 30).sum())
    camera = plotter.renderer.GetActiveCamera()
    window = plotter.render_window
    still_rate = window.GetDesiredUpdateRate()

    def orbit(_i: int) -> None:
        camera.Azimuth(2.0)
        plotter.render()

    rows = []
    # A full-quality frame of a large CT takes seconds on CPU OpenGL: one frame per block.
    for label, rate, n in (("full resolution", 0.0001, 1),
                           ("interactive resolution", 15.0, max(2, frames // 4))):
        window.SetDesiredUpdateRate(rate)
        plotter.render()  # first frame at this quality: shader compile, texture upload
        ms, floor_ms = _alternate(orbit, lambda _i: plotter.render(), finish, n, reps,
                                  warmup=1)
        rows.append(Row(f"volume rendering, {label} (camera orbit)", ms,
                        "unchanged re-render, same view", floor_ms,
                        note=f"desired update rate {rate:g}/s; the volume changes {drawn} "
                             "pixels of the view (checked before timing)"))
    window.SetDesiredUpdateRate(still_rate)
    state.set_volume_opacity(False)
    return rows


def run_interaction(volume: Any, size: tuple[int, int], frames: int, reps: int,
                    log=print) -> list[Row]:
    rows = [bench_slice_step(volume, size, frames, reps)]
    log(f"  {rows[-1].name}: {rows[-1].ms:.1f} ms (floor {rows[-1].floor_ms:.1f} ms)")
    rows.append(bench_slab_step(volume, size, frames, reps))
    log(f"  {rows[-1].name}: {rows[-1].ms:.1f} ms (plain step {rows[-1].floor_ms:.1f} ms)")
    for row in bench_3d(volume, size, frames, reps):
        rows.append(row)
        log(f"  {row.name}: " + (f"{row.ms:.1f} ms (floor {row.floor_ms:.1f} ms)"
                                 if row.ms is not None else row.note))
    return rows
