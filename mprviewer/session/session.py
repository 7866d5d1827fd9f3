"""One reader's viewing session: what is open, what is shown, and the actions on it.

The example is napari's ``ViewerModel``: a plain object that holds the state of a viewer and
announces every change through events, with the widgets of any front end as thin bindings
that read from it and call its methods. ``Session`` holds the study and series, the volume on
screen and its :class:`~mprviewer.model.state.ViewerState` (slice of each plane, window and
level, threshold, overlay and volume-rendering switches, focused view), the 3D camera preset,
and the study's marks (:class:`~mprviewer.session.marks.Marks`, with undo and redo).

Events carry plain Python values. The ViewerState is replaced for every volume shown; the
session re-emits its events, so a front end connects once to the session:

==================  ===========================  =========================================
event               arguments                    when
==================  ===========================  =========================================
study_changed       study                        another study is open
volume_changed      volume                       another volume is on screen (new state)
slice_changed       plane, index                 a plane moved to another slice
window_changed      center, width                window / level
threshold_changed   value                        threshold
display_changed     name, on                     "threshold_overlay" / "volume_opacity"
focus_changed       plane                        another view has the focus
camera_changed      name                         a 3D camera preset was asked for
marks_changed       ()                           marks added, removed, undone, or another set
message             text, is_problem             something to tell the reader
==================  ===========================  =========================================

No Qt and no VTK: loading runs where the front end wants it. ``open`` and ``open_series``
load synchronously unless a front end sets ``runner`` (``runner(job, title)`` runs
``job(progress, cancel)`` in the background and hands its result to :meth:`show`).

A worklist (a labeling project's "next study") plugs in through ``worklist``: any object with
``next_source() -> source | None``; :meth:`next_study` opens what it names. No worklist is
built here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from mprviewer.model.events import Signal
from mprviewer.session.loading import (
    LoadResult,
    Source,
    default_threshold,
    load_series,
    load_source,
)

if TYPE_CHECKING:
    from mprviewer.session.marks import Marks

Job = Callable[[Any, Any], LoadResult]  # job(progress, cancel) -> LoadResult
_EVENTS = ("study_changed", "volume_changed", "slice_changed", "window_changed",
           "threshold_changed", "display_changed", "focus_changed", "camera_changed",
           "marks_changed", "message")
_STATE_EVENTS = ("slice_changed", "window_changed", "threshold_changed", "display_changed",
                 "focus_changed")


RESLICED_REFUSED = ("the series is shown resliced onto the patient's axes and its marks "
                    "belong to its acquisition grid: switch to the acquisition grid (G) to mark")


class Worklist(Protocol):
    """What a labeling project offers a session: the next study to read (None: done)."""

    def next_source(self) -> Source | None: ...


class Session:
    """The viewing session of one reader; every front end binds to one of these."""

    def __init__(self, reader: str = "", annotate: bool = True) -> None:
        """``annotate``: keep marks for every study shown (a front end without an annotation
        panel passes False and turns them on later with ``marks.enable()``)."""
        self.study: Any = None
        self.source: Source | None = None
        self.series_index = -1
        self.series: Any = None
        self.volume: Any = None
        self.state: Any = None  # ViewerState of the volume on screen
        self.camera = "reset"
        self.worklist: Worklist | None = None
        self.runner: Callable[[Job, str], None] | None = None
        self.series_loader: Callable[[int], None] | None = None
        self._closed = False
        self.study_changed = Signal()
        self.volume_changed = Signal()
        self.slice_changed = Signal()
        self.window_changed = Signal()
        self.threshold_changed = Signal()
        self.display_changed = Signal()
        self.focus_changed = Signal()
        self.camera_changed = Signal()
        self.message = Signal()
        self.marks_changed = Signal()
        self._reader = reader
        self._marks: Marks | None = None
        from mprviewer.model.reformat import ReformatPlanes

        # Oblique reformat: which way each 2D view's plane faces (orthogonal until a
        # crosshair is turned; back to orthogonal for every volume shown).
        self.reformat = ReformatPlanes()
        # An oblique series may be shown resliced onto the patient's axes ("patient") or on
        # its acquisition grid ("acquisition"); the front end makes the reslice (VTK) and
        # shows it with show_volume(..., display_only=True). Marks belong to the acquired
        # volume and are neither shown nor made on a reslice.
        self.grid_mode = "patient"
        self.display_only = False
        if annotate:
            self.marks.enable()

    @property
    def marks(self) -> Marks:
        """The study's marks and their edits, made on first use: a window shows its first
        frame without importing the annotation model (it loads while the panel is built)."""
        if self._marks is None:
            from mprviewer.session.marks import Marks

            marks = Marks(self, self._reader)
            marks.changed.connect(self.marks_changed.emit)
            marks.message.connect(self.message.emit)
            self._marks = marks
        return self._marks

    # -- opening ---------------------------------------------------------------------------
    def _run(self, job: Job, title: str) -> None:
        if self.runner is not None:
            self.runner(job, title)
        else:
            self.show(job(None, None))

    def open(self, source: Source, series: int | None = None) -> None:
        """Open a study (its largest readable series, or ``series``); the study on screen
        stays until the new one is ready."""
        from mprviewer.io.remote import url_label

        label = url_label(source) if isinstance(source, str) else str(source)
        self._run(lambda progress, cancel: load_source(source, progress, cancel, series),
                  f"Opening {label}")

    def open_series(self, index: int) -> None:
        """Show another series of the open study."""
        if self.series_loader is not None:
            self.series_loader(index)
            return
        if self.study is None or not 0 <= index < len(self.study.series):
            return
        if index == self.series_index and self.volume is not None:
            return
        study = self.study
        self._run(lambda progress, cancel: load_series(study, index, progress, cancel),
                  f"Loading {study.series[index].name}")

    def next_study(self) -> bool:
        """Open the worklist's next study; False (and a message) without a worklist or at its
        end. The place where a labeling project moves the reader on."""
        if self.worklist is None:
            self.message.emit("No worklist is open.", False)
            return False
        source = self.worklist.next_source()
        if source is None:
            self.message.emit("The worklist is done.", False)
            return False
        self.open(source)
        return True

    def show(self, result: LoadResult) -> bool:
        """Put a finished load on screen. False when it came too late: a series of a study
        that another study has replaced since (or the session is closed)."""
        if self._closed:
            if result.study is not None:
                result.study.close()
            return False
        if result.study is not None:
            old = self.study
            self.study, self.source = result.study, result.source
            if old is not None and old is not result.study:
                old.close()
            self.series_index = result.series_index
            self.study_changed.emit(self.study)
        elif result.of_study is not self.study:
            return False
        self.series_index = result.series_index
        self.show_volume(result.volume, self.study.series[result.series_index])
        return True

    def show_volume(self, volume: Any, series: Any = None, display_only: bool = False) -> None:
        """Show ``volume`` (of ``series``): a new ViewerState with the data's window and a
        first threshold; overlay and volume-rendering switches stay as the reader set them.

        ``display_only``: ``volume`` is a resampling of the acquired one (an oblique series
        resliced onto the patient's axes); the marks stay with the acquired volume, are not
        shown on it, and marking is refused until the acquired volume is back."""
        from mprviewer.model.orientation import DisplayGrid
        from mprviewer.model.presets import auto_window
        from mprviewer.model.state import ViewerState

        grid = DisplayGrid.for_volume(volume)
        window = volume.window if volume.window is not None else auto_window(volume.array)
        state = ViewerState(grid, window=window, threshold=default_threshold(volume))
        old = self.state
        if old is not None:
            state.threshold_overlay = old.threshold_overlay
            state.volume_opacity = old.volume_opacity
            for name in _STATE_EVENTS:
                getattr(old, name).disconnect(getattr(self, name).emit)
        for name in _STATE_EVENTS:
            getattr(state, name).connect(getattr(self, name).emit)
        self.volume, self.state = volume, state
        if series is not None:
            self.series = series
        self.display_only = bool(display_only)
        self.reformat.reset()
        if self._marks is not None and not display_only:
            self._marks.follow(volume)  # the marks are right before anyone hears of it
        self.volume_changed.emit(volume)

    def close(self) -> None:
        """The front end closes: marks are kept, files released."""
        if self._closed:
            return
        self._closed = True
        if self._marks is not None:
            self._marks.shutdown()
        if self.study is not None:
            self.study.close()
        if self.state is not None:
            for name in _STATE_EVENTS:
                getattr(self.state, name).disconnect(getattr(self, name).emit)
        self.state = None
        # Front ends' callbacks hold their widgets: let them go with the session.
        marks = self._marks.events() if self._marks is not None else ()
        for signal in (*(getattr(self, name) for name in _EVENTS), *marks):
            signal.clear()

    # -- what is shown ---------------------------------------------------------------------
    @property
    def focused_plane(self) -> str:
        return self.state.focused_plane if self.state is not None else "axial"

    def value_at_ijk(self, ijk: Any) -> float | None:
        """The stored value of voxel (i, j, k) of the volume on screen (None: RGB, outside)."""
        volume = self.volume
        if volume is None or volume.array.ndim != 3:
            return None
        i, j, k = (int(v) for v in ijk)
        shape = volume.array.shape
        if not (0 <= k < shape[0] and 0 <= j < shape[1] and 0 <= i < shape[2]):
            return None
        return float(volume.array[k, j, i])

    # -- slices, window, threshold, switches, focus, camera --------------------------------
    def _plane(self, plane: str | None) -> str:
        from mprviewer.model.orientation import PLANES

        plane = plane or self.focused_plane
        if plane not in PLANES:
            raise ValueError(f"unknown plane {plane!r}; use axial, coronal or sagittal")
        return plane

    def set_slice(self, plane: str, index: int) -> None:
        """Go to slice ``index`` of ``plane`` (clamped to the plane)."""
        if self.state is not None:
            self.state.set_slice(self._plane(plane), index)

    def step(self, delta: int, plane: str | None = None) -> None:
        """Move ``delta`` slices in ``plane`` (default: the focused view)."""
        if self.state is not None:
            self.state.step(self._plane(plane), delta)

    def next_slice(self, plane: str | None = None) -> None:
        self.step(1, plane)

    def previous_slice(self, plane: str | None = None) -> None:
        self.step(-1, plane)

    def first_slice(self, plane: str | None = None) -> None:
        self.set_slice(self._plane(plane), 0)

    def last_slice(self, plane: str | None = None) -> None:
        if self.state is not None:
            plane = self._plane(plane)
            self.state.set_slice(plane, self.state.grid.plane_size(plane) - 1)

    def set_cursor(self, xyz: Any) -> None:
        """Move all three planes through display index (x, y, z) (a click in a 2D view)."""
        if self.state is not None:
            self.state.set_cursor(xyz)

    def set_window(self, center: float, width: float) -> None:
        if self.state is not None:
            self.state.set_window(center, width)

    def set_threshold(self, value: float) -> None:
        if self.state is not None:
            self.state.set_threshold(value)

    def set_threshold_overlay(self, on: bool) -> None:
        if self.state is not None:
            self.state.set_threshold_overlay(on)

    def set_volume_opacity(self, on: bool) -> None:
        if self.state is not None:
            self.state.set_volume_opacity(on)

    def toggle_threshold_overlay(self) -> None:
        if self.state is not None:
            self.state.set_threshold_overlay(not self.state.threshold_overlay)

    def toggle_volume_opacity(self) -> None:
        if self.state is not None:
            self.state.set_volume_opacity(not self.state.volume_opacity)

    def focus(self, plane: str) -> None:
        """Make ``plane``'s view the one that keys and marks act on."""
        if self.state is not None:
            self.state.set_focus(self._plane(plane))

    def set_camera(self, name: str) -> None:
        """Ask for a 3D camera preset ("reset", "anterior", ... as the 3D scene names them);
        each front end's 3D view moves to it."""
        self.camera = name
        self.camera_changed.emit(name)

    # -- oblique -----------------------------------------------------------------------------
    def rotate_crosshair(self, plane: str, degrees: float) -> None:
        """Turn ``plane``'s crosshair by ``degrees`` counter-clockwise on its screen: the
        other two planes tilt about its normal (oblique reformat)."""
        if self.state is not None:
            self.reformat.rotate(self._plane(plane), degrees)

    def reset_oblique(self) -> bool:
        """Make the three planes orthogonal again; True if they were tilted."""
        was = self.reformat.is_oblique
        self.reformat.reset()
        return was

    def marking_refusal(self) -> str:
        """Why marks cannot be made now ('' when they can): tilted planes or a reslice."""
        from mprviewer.model.reformat import MARKING_REFUSED

        if self.reformat.is_oblique:
            return MARKING_REFUSED
        if self.display_only:
            return RESLICED_REFUSED
        return ""

    # -- marks -----------------------------------------------------------------------------
    def marked(self, plane: str) -> dict[int, list[str]]:
        """Slice -> labels shown as marks in ``plane`` of the series on screen (none on a
        reslice, whose slices are not the acquired ones)."""
        if self.display_only:
            return {}
        return self._marks.marked(plane) if self._marks is not None else {}

    def toggle_mark(self, plane: str | None = None) -> bool | None:
        """Mark or unmark the current slice of ``plane`` (default: focused) with the label."""
        return self.marks.toggle_current(plane)

    def mark_range_to_here(self, plane: str | None = None) -> list[int]:
        """Mark every slice from the last mark to the current one."""
        return self.marks.mark_range_to_current(plane)

    def apply_slices_text(self, plane: str, text: str) -> list[int]:
        """Make the label's marks in ``plane`` exactly ``text`` ("0-11; 57-59; 112")."""
        return self.marks.set_slices_text(plane, text)

    def go_to_mark(self, item_id: str) -> bool:
        """Show a mark: its slice in its plane (opening its series first if needed)."""
        return self.marks.jump_to(item_id)

    def undo(self) -> bool:
        return self.marks.undo()

    def redo(self) -> bool:
        return self.marks.redo()
