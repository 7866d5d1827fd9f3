"""One tab's page: a trame app over the viewer's session and scenes, in its own process.

The page holds no viewing or marking rules of its own. It binds to a
``mprviewer.session.Session``, the object the desktop window binds to: opening a study,
choosing a series, slices, window, threshold, focus, marks, undo and the range box are calls
on it, and its events become page state. The four views are the ``SliceScene`` and
``VolumeScene`` objects of ``mprviewer.render`` over the session's ``ViewerState``. Loading
goes through ``web.shared`` so tabs that open the same bytes share one read-only copy.

Imported once by the launcher's forkserver (so trame and VTK load once for all tabs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import trame_rca.widgets.rca  # noqa: F401  (imported here so the forkserver preloads it)
from trame.app import get_server
from trame.ui.vuetify3 import SinglePageWithDrawerLayout
from trame.widgets import html, rca
from trame.widgets import vuetify3 as v3

from mprviewer.web.views import VIEW_NAMES, WebView, camera_events_only

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
PLANE_KEYS = {"ArrowUp": 1, "ArrowDown": -1, "PageUp": 10, "PageDown": -10}
ORIGINAL = "original"
FULL = "full"
PREPARE_AFTER_S = 1.5  # read the next study ahead once the reader is at work (as the desktop)


class Page:
    """One reader's page: thin bindings between the browser and a ``Session``.

    Every action is a call on the session (``mprviewer.session.Session``, the object the
    desktop window binds to as well); its events become page state and scene updates.
    """

    def __init__(self, server: Any, config: dict[str, Any]) -> None:
        from mprviewer.model.annotations import DEFAULT_LABEL
        from mprviewer.session import Session
        from mprviewer.web.shared import VolumeCache

        self.server = server
        self.state = server.state
        self.ctrl = server.controller
        self.folder = Path(config["folder"])
        self.cache = VolumeCache(config.get("cache"))
        self.identity: str | None = None
        self.views = {name: WebView(name, interactive_camera=name == "3d") for name in VIEW_NAMES}
        self.store: Any = None
        self.scenes: dict[str, Any] = {}
        self._loading = threading.Event()
        self._task: Any = None  # the open or load running now (a reference keeps it alive)
        self._prepare: Any = None  # the pending read-ahead of the next study
        self.project_folder: str | None = config.get("project")
        self.bound: Any = None  # the SessionWorklist once the reader has typed a name
        # In a project the marks are the label keys' marks in the project's store.
        self.session = Session(annotate=not self.project_folder)
        self.session.series_loader = self._load_series
        s = self.session
        s.volume_changed.connect(self._on_volume)
        s.study_changed.connect(self._on_study)
        s.slice_changed.connect(self._on_slice)
        s.focus_changed.connect(self._on_focus)
        s.marks_changed.connect(self._on_marks_changed)
        s.message.connect(self.report)
        s.camera_changed.connect(self._on_camera)
        self._init_state(DEFAULT_LABEL)
        self._bind()

    # -- page state --------------------------------------------------------------------
    def _init_state(self, label: str) -> None:
        s = self.state
        s.status = "Upload a zip of DICOM series, paste a link, or open the demo."
        s.problem = False
        s.busy = False
        s.url = ""
        s.series_rows = []
        s.series_index = None
        s.meta_rows = []
        s.presets = []
        s.preset = None
        s.threshold = 0.0
        s.threshold_min = 0.0
        s.threshold_max = 1.0
        s.units = ""
        s.threshold_step = 1.0
        s.overlay = False
        s.opacity = False
        s.label = label
        s.labels = [label]
        s.slices_text = ""
        s.focused = "axial"
        s.slice_numbers = {p: 0 for p in ("axial", "coronal", "sagittal")}
        s.marks = []
        s.has_volume = False
        s.unsaved = False
        s.project_mode = bool(self.project_folder)
        s.project_name = Path(self.project_folder).name if self.project_folder else ""
        s.reader_name = ""
        s.reader_set = False
        s.worklist_rows = []
        s.worklist_current = None
        s.progress_text = ""
        s.label_legend = []
        if self.project_folder:
            s.status = "Type your name as a reader to open your worklist."

    def _bind(self) -> None:
        c = self.ctrl
        c.trigger("open_demo")(self.open_demo)
        c.trigger("open_url")(self.open_url)
        c.trigger("open_upload")(self.open_upload)
        c.trigger("upload_failed")(self.report)
        c.trigger("choose_series")(self.choose_series)
        c.trigger("key")(self.key)
        c.trigger("wheel")(self.wheel)
        c.trigger("focus")(self.focus)
        c.trigger("apply_slices")(self.apply_slices)
        c.trigger("export_json")(self.export_json)
        c.trigger("set_reader")(self.set_reader)
        c.trigger("next_study")(self.next_study)
        c.trigger("previous_study")(self.previous_study)
        c.trigger("open_study")(self.open_study)
        c.trigger("set_status")(self.set_status)
        c.trigger("export_csv")(self.export_csv)
        self.state.change("threshold")(self._threshold_from_page)
        self.state.change("overlay")(self._overlay_from_page)
        self.state.change("opacity")(self._opacity_from_page)
        self.state.change("preset")(self._preset_from_page)
        self.state.change("label")(self._label_from_page)

    def report(self, text: str, problem: bool = True) -> None:
        """One line at the top of the page; problems in red."""
        with self.state:
            self.state.status = str(text)
            self.state.problem = bool(problem)

    # -- opening (loads run in a thread, then Session.show on the page's loop) ---------------
    def open_demo(self) -> None:
        self._open_async("demo", "the demo study")

    def open_url(self, url: str) -> None:
        url = str(url or "").strip()
        if not url:
            self.report("Paste an http(s) or Google Drive link to a zip or DICOM file first.")
            return
        from mprviewer.io.remote import is_url, url_label

        if not is_url(url):
            self.report(f"{url[:80]!r} is not an http(s) link.")
            return
        self._open_async(url, url_label(url))

    def open_upload(self, name: str) -> None:
        safe = Path(str(name)).name
        path = self.folder / "uploads" / safe
        if not safe or not path.is_file():
            self.report(f"{safe or 'the upload'}: not received; upload it again.")
            return
        self._open_async(str(path), safe)

    def _open_async(self, source: str, label: str) -> None:
        if self._loading.is_set():
            self.report("Still opening the previous study; wait for it to finish.")
            return
        self._loading.set()
        with self.state:
            self.state.busy = True
            self.state.status = f"Opening {label}…"
            self.state.problem = False
        self._task = asyncio.get_event_loop().create_task(self._open(source, label))

    def _identity(self, source: str) -> str | None:
        """Which bytes a source is, for sharing its series with other sessions."""
        from mprviewer.io.remote import is_url
        from mprviewer.web.shared import source_identity, upload_identity

        if is_url(source):
            return None
        path = Path(source)
        if path.parent == self.folder / "uploads":
            return upload_identity(path)
        return source_identity(source)

    async def _open(self, source: str, label: str) -> None:
        import mprviewer
        from mprviewer.session import LoadResult
        from mprviewer.session.loading import default_series_index

        def scan_and_load() -> tuple[Any, str | None]:
            where = mprviewer.demo_path() if source == "demo" else source
            study = mprviewer.open_study(where)
            try:
                index = default_series_index(study)
                identity = self._identity(where)
                volume = self.cache.load(study.series[index], identity)
                return LoadResult(study, index, volume, source), identity
            except BaseException:
                study.close()
                raise

        result = await self._in_thread(scan_and_load, label)
        if result is not None:
            load, self.identity = result
            self._show(load)

    def _load_series(self, index: int) -> None:
        """The session's ``series_loader``: another series, through the shared cache."""
        study = self.session.study
        if study is None or not 0 <= index < len(study.series) or self._loading.is_set():
            return
        if index == self.session.series_index and self.session.volume is not None:
            return
        from mprviewer.session import LoadResult

        series = study.series[index]
        identity = self.identity
        self._loading.set()
        with self.state:
            self.state.busy = True
            self.state.status = f"Loading {series.name}…"

        async def load() -> None:
            volume = await self._in_thread(lambda: self.cache.load(series, identity), series.name)
            if volume is not None:
                self._show(LoadResult(None, index, volume, of_study=study))

        self._task = asyncio.get_event_loop().create_task(load())

    async def _in_thread(self, job: Any, label: str) -> Any:
        """Run a load off the page's loop; a failure becomes one line on the page."""
        from mprviewer.errors import MprviewerError

        try:
            return await asyncio.get_running_loop().run_in_executor(None, job)
        except MprviewerError as exc:
            self.report(str(exc))
        except Exception as exc:  # never a traceback on the page
            log.exception("opening %s failed", label)
            self.report(f"{label}: cannot be opened ({type(exc).__name__}: {exc})")
        finally:
            self._loading.clear()
            with self.state:
                self.state.busy = False
        return None

    def _show(self, result: Any) -> None:
        try:
            self.session.show(result)
        except Exception as exc:
            log.exception("showing a series failed")
            self.report(f"the series cannot be shown ({type(exc).__name__}: {exc})")

    def choose_series(self, index: int) -> None:
        try:
            self.session.open_series(int(index))
        except (TypeError, ValueError):
            return

    # -- session events -> page ----------------------------------------------------------
    def _on_study(self, study: Any) -> None:
        rows = []
        for index, s in enumerate(study.series):
            k, j, i = s.shape
            rows.append({"index": index, "name": s.name, "modality": s.modality,
                         "size": f"{i}x{j}x{k}", "description": s.description})
        self.state.series_rows = rows

    def _on_volume(self, volume: Any) -> None:
        """Another volume on screen: new scenes over the session's new ViewerState."""
        from mprviewer.model.orientation import PLANES
        from mprviewer.model.presets import preset_names
        from mprviewer.render.image import ImageStore
        from mprviewer.render.slice_scene import SliceScene
        from mprviewer.render.volume_scene import VolumeScene

        session = self.session
        viewer = session.state
        for scene in self.scenes.values():
            scene.close()
        self.scenes.clear()
        store = ImageStore(volume, viewer.grid)
        self.store = store
        for plane in PLANES:
            self.scenes[plane] = SliceScene(self.views[plane], store, viewer, plane)
        self.scenes["3d"] = VolumeScene(self.views["3d"], store, viewer)
        lo, hi = store.scalar_range
        series = session.series
        with self.state:
            s = self.state
            s.has_volume = True
            s.series_index = session.series_index
            s.meta_rows = [{"key": k, "value": v} for k, v in series.metadata.items()]
            s.presets = ["dicom", *preset_names(volume.modality)]
            s.preset = "dicom"
            s.threshold_min, s.threshold_max = lo, hi
            s.threshold_step = 1.0 if store.is_integer else (hi - lo) / 500.0
            s.threshold = viewer.threshold
            s.units = store.units
            s.overlay = viewer.threshold_overlay
            s.opacity = viewer.volume_opacity
            s.focused = viewer.focused_plane
            s.slice_numbers = dict(viewer.slices)
            shape = volume.shape
            warnings = list(volume.warnings)
            s.status = " ".join([f"{series.name}: {shape[2]}x{shape[1]}x{shape[0]} voxels.",
                                 *warnings])
            s.problem = bool(warnings)
        self._refresh_marks()
        self.render_all()

    def _on_slice(self, plane: str, index: int) -> None:
        numbers = dict(self.state.slice_numbers)
        numbers[plane] = int(index)
        self.state.slice_numbers = numbers

    def _on_focus(self, plane: str) -> None:
        self.state.focused = plane
        self._show_slices_text()

    def _on_camera(self, name: str) -> None:
        scene = self.scenes.get("3d")
        if scene is not None:
            scene.set_camera(name)

    # -- page controls -> session --------------------------------------------------------
    def _threshold_from_page(self, threshold: Any, **_: Any) -> None:
        if threshold is not None:
            self.session.set_threshold(float(threshold))

    def _overlay_from_page(self, overlay: Any, **_: Any) -> None:
        self.session.set_threshold_overlay(bool(overlay))

    def _opacity_from_page(self, opacity: Any, **_: Any) -> None:
        self.session.set_volume_opacity(bool(opacity))

    def _preset_from_page(self, preset: Any, **_: Any) -> None:
        volume = self.session.volume
        if volume is None or not preset:
            return
        from mprviewer.model.presets import auto_window, resolve_preset

        try:
            if preset == "dicom":
                window = volume.window if volume.window else auto_window(volume.array)
            else:
                window = resolve_preset(str(preset), volume.array)
        except KeyError as exc:
            self.report(str(exc.args[0]))
            return
        self.session.set_window(*window)

    def _label_from_page(self, label: Any, **_: Any) -> None:
        if label:
            self.session.marks.set_label(str(label))
            self._remember_labels([str(label)])
        self._show_slices_text()

    def _remember_labels(self, names: list[str]) -> None:
        """Labels keep their place in the list once seen, so key N always picks the same."""
        labels = list(self.state.labels or [])
        added = [n for n in dict.fromkeys(names) if n and n not in labels]
        if added:
            self.state.labels = labels + added

    def focus(self, plane: str) -> None:
        if self.session.state is not None and plane in self.session.state.slices:
            self.session.focus(plane)

    def wheel(self, plane: str, steps: int) -> None:
        if self.session.state is not None and plane in self.session.state.slices:
            self.session.focus(plane)
            self.session.step(int(steps), plane)

    def key(self, key: str, shift: bool = False, ctrl: bool = False, code: str = "") -> None:
        """The page's keys: arrows/PageUp/PageDown step the focused view, M marks, Shift+M
        marks the range from the last mark, 1-9 pick a label, Ctrl+Z/Ctrl+Y undo/redo; in a
        project, the desktop worklist's keys (see ``project_key``)."""
        if self.bound is not None and self.project_key(str(key), bool(shift), bool(ctrl),
                                                       str(code or "")):
            return
        session = self.session
        if self.project_folder and key in ("m", "M"):
            self.report("In a project, the keys 1-9 mark the labels.", False)
            return
        if session.state is None:
            return
        if ctrl and key.lower() == "z":
            session.redo() if shift else session.undo()
        elif ctrl and key.lower() == "y":
            session.redo()
        elif key in PLANE_KEYS:
            session.step(PLANE_KEYS[key])
        elif key in ("m", "M"):
            if shift or key == "M":
                session.mark_range_to_here()
            else:
                session.toggle_mark()
        elif len(key) == 1 and key in "123456789":
            labels = list(self.state.labels)
            n = int(key) - 1
            if n < len(labels):
                self.state.label = labels[n]
                self.session.marks.set_label(labels[n])

    def project_key(self, key: str, shift: bool, ctrl: bool, code: str) -> bool:
        """The worklist keys of the desktop: 1-9 toggle that label on the focused view's
        slice, N or Ctrl+Right the next unread study, Ctrl+Left the previous one, Shift+0
        no finding and go on, D done. True when the key was one of them."""
        bound = self.bound
        if ctrl and key == "ArrowRight":
            self.next_study()
        elif ctrl and key == "ArrowLeft":
            self.previous_study()
        elif ctrl:
            return False
        elif len(key) == 1 and key in "123456789":
            bound.toggle_label(int(key))
        elif key in ("n", "N"):
            self.next_study()
        elif key in ("d", "D"):
            self.set_status("done")
        elif key == ")" or (shift and (key == "0" or code == "Digit0")):
            self.set_status("no finding")
        else:
            return False
        return True

    # -- project mode (thin bindings to the session's worklist, as the desktop's) ----------
    def set_reader(self, name: str) -> None:
        """The reader's name, typed once: opens their worklist and the first unread study."""
        from mprviewer.errors import MprviewerError
        from mprviewer.project import Project
        from mprviewer.project.project import check_reader
        from mprviewer.project.worklist import ProjectWorklist
        from mprviewer.session.worklist import SessionWorklist

        if not self.project_folder or self.bound is not None:
            return
        try:
            reader = check_reader(str(name or ""))
            project = Project.open(self.project_folder)
        except MprviewerError as exc:
            self.report(str(exc).replace("(--reader NAME or $MPRVIEWER_READER)", "").strip())
            return
        try:
            worklist = ProjectWorklist(project, reader)
        except MprviewerError as exc:
            project.close()
            self.report(str(exc))
            return
        bound = SessionWorklist(self.session, worklist)
        bound.runner = self._run_job
        bound.marks_changed.connect(self._refresh_marks)
        worklist.changed.connect(self._refresh_worklist)
        worklist.current_changed.connect(lambda _i: self._refresh_worklist())
        self.bound = bound
        with self.state:
            self.state.reader_name = reader
            self.state.reader_set = True
            self.state.label_legend = [
                {"hotkey": lab.hotkey or "", "name": lab.name, "colour": lab.colour,
                 "derived": bool(lab.derived)} for lab in project.label_set.labels]
        self._refresh_worklist()
        self.next_study()

    def _refresh_worklist(self) -> None:
        bound = self.bound
        if bound is None:
            return
        worklist = bound.worklist
        with self.state:
            self.state.worklist_rows = [
                {"index": r["index"], "name": r["name"], "marks": r["marks"],
                 "status": r["status"] + (f": {r['reason']}" if r.get("reason") else ""),
                 "state": r["status"]}
                for r in worklist.rows()]
            self.state.worklist_current = worklist.current
            self.state.progress_text = worklist.progress_text()

    def _in_worklist(self) -> bool:
        if self.bound is None:
            self.report("Type your name as a reader first.")
            return False
        if self._loading.is_set():
            self.report("Still opening the previous study; wait for it to finish.")
            return False
        return True

    def next_study(self) -> None:
        if self._in_worklist():
            self.bound.next_study()

    def previous_study(self) -> None:
        if self._in_worklist():
            self.bound.previous_study()

    def open_study(self, index: int) -> None:
        if self._in_worklist():
            try:
                self.bound.open_index(int(index))
            except Exception as exc:  # an index from an old page, a project error
                self.report(str(exc))

    def set_status(self, status: str) -> None:
        if status in ("done", "no finding") and self._in_worklist():
            self.bound.set_status(status)

    def _run_job(self, job: Any, title: str) -> None:
        """The worklist's ``runner``: a study loads off the page's loop, then is shown; a
        study that fails becomes unreadable (the worklist goes on)."""
        from mprviewer.errors import MprviewerError

        self._loading.set()
        with self.state:
            self.state.busy = True
            self.state.status = f"{title}…"
            self.state.problem = False
        if self._prepare is not None:
            self._prepare.cancel()
            self._prepare = None

        async def run() -> None:
            try:
                result = await asyncio.get_running_loop().run_in_executor(None, job, None, None)
            except Exception as exc:
                if not isinstance(exc, MprviewerError):
                    log.exception("%s failed", title)
                text = str(exc) if isinstance(exc, MprviewerError) else \
                    f"{type(exc).__name__}: {exc}"
                self._loading.clear()
                with self.state:
                    self.state.busy = False
                if self.bound is not None:
                    self.bound.failed(text)
                return
            self._loading.clear()
            with self.state:
                self.state.busy = False
            self._show(result)
            if self.bound is not None:
                self._prepare = asyncio.get_running_loop().call_later(
                    PREPARE_AFTER_S, self.bound.prepare_next)

        self._task = asyncio.get_event_loop().create_task(run())

    def export_csv(self, _fmt: str = "csv") -> dict[str, str] | None:
        """The reader's finished studies as the project's CSV export, for the page to save."""
        from mprviewer.project.exports import csv_text

        if self.bound is None:
            self.report("Type your name as a reader first.")
            return None
        worklist = self.bound.worklist
        text, result = csv_text(worklist.project, worklist.reader)
        notes = " ".join(result.notes)
        self.report(f"CSV of {result.studies} finished studies, {result.rows} rows. {notes}",
                    bool(notes))
        stem = f"{worklist.project.name}-{worklist.reader}"
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)[:80]
        return {"name": f"{safe}.csv", "text": text, "type": "text/csv"}

    def apply_slices(self, text: str) -> None:
        """The range box: the current label's marks in the focused plane become exactly these."""
        from mprviewer.errors import AnnotationError

        if self.session.state is None:
            self.report("Open a study first.")
            return
        try:
            self.session.apply_slices_text(self.session.focused_plane, str(text or ""))
        except AnnotationError as exc:
            self.report(str(exc))

    def export_json(self, fmt: str) -> dict[str, str]:
        """The marks as a file's name and text, for the page to save."""
        from mprviewer.model.annotation_files import to_json_text
        from mprviewer.model.annotations import AnnotationSet

        fmt = FULL if fmt == FULL else ORIGINAL
        aset = self.session.marks.aset or AnnotationSet()
        text = to_json_text(aset, fmt)
        self.state.unsaved = False
        series = self.session.series
        stem = (series.name if series is not None else "annotations") or "annotations"
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)[:60]
        suffix = "" if fmt == ORIGINAL else ".full"
        return {"name": f"{safe}{suffix}.json", "text": text}

    def _on_marks_changed(self, *_: Any) -> None:
        self._refresh_marks()
        aset = self.session.marks.aset
        self.state.unsaved = aset is not None and not aset.is_empty

    def _refresh_marks(self) -> None:
        from mprviewer.model.annotations import DEFAULT_LABEL
        from mprviewer.model.orientation import PLANES
        from mprviewer.render.overlays import label_colors

        session = self.session
        marked = self.bound.marked if self.bound is not None else session.marked
        by_plane = {plane: marked(plane) for plane in PLANES}
        # One colour per label in every view, as in the desktop window.
        colors = label_colors(label for m in by_plane.values() for labels in m.values()
                              for label in labels)
        for plane in PLANES:
            scene = self.scenes.get(plane)
            if scene is not None:
                scene.set_marked(by_plane[plane], colors)
        scene3d = self.scenes.get("3d")
        if scene3d is not None:
            for plane in PLANES:
                scene3d.set_marked(plane, by_plane[plane])
        self.render_all()
        if self.project_folder:
            self._refresh_worklist()
            return
        aset = session.marks.aset
        rows = [] if aset is None else [
            {"series": sa.label, "label": e.label, "plane": e.plane, "slices": e.ranges}
            for sa, e in aset.entries()
        ]
        with self.state:
            self.state.marks = rows
            if aset is not None:
                self._remember_labels([DEFAULT_LABEL, *aset.labels_used()])
        self._show_slices_text()

    def _show_slices_text(self) -> None:
        from mprviewer.model.slice_ranges import format_slices

        marks = self.session.marks
        if marks.aset is None or marks.ref is None:
            return
        ref = marks.ref
        self.state.slices_text = format_slices(marks.aset.slices_for(
            ref.uid, ref.name, self.session.focused_plane, marks.current_label()))

    def render_all(self) -> None:
        for view in self.views.values():
            view.render()

    # -- closing ---------------------------------------------------------------------------
    def close(self) -> None:
        if self.bound is not None:
            project = self.bound.project
            self.bound.close()
            project.close()
        for scene in self.scenes.values():
            scene.close()
        self.scenes.clear()
        self.session.close()
        for view in self.views.values():
            view.close()


# -- the page layout ---------------------------------------------------------------------
def _testid(name: str) -> list[str]:
    return [f'data-testid="{name}"']


def _project_controls() -> None:
    """Project mode: the reader's name, their worklist, progress, the label keys and moves."""
    with html.Div(v_if="project_mode", classes="mb-2"):
        html.Div("Project {{ project_name }}", classes="text-overline")
        with html.Div(classes="d-flex align-center"):
            v3.VTextField(v_model=("reader_name",), label="Your name (reader)",
                          density="compact", hide_details=True, disabled=("reader_set",),
                          raw_attrs=[*_testid("reader"),
                                     "@keydown.enter=\"trigger('set_reader', [reader_name])\""])
            v3.VBtn("Start", size="small", classes="ml-2", v_if="!reader_set",
                    click="trigger('set_reader', [reader_name])", raw_attrs=_testid("start"))
        with html.Div(v_if="reader_set"):
            html.Div("{{ progress_text }}", classes="text-body-2 mt-2",
                     raw_attrs=_testid("progress"))
            with html.Table(classes="mpr-table mt-1", raw_attrs=_testid("worklist")):
                with html.Tr():
                    for head in ("#", "Study", "Status", "Marks"):
                        html.Th(head)
                with html.Tr(v_for="row in worklist_rows", key="row.index",
                             click="trigger('open_study', [row.index])",
                             classes=("{selected: row.index === worklist_current}",),
                             raw_attrs=[':data-index="row.index"', ':data-status="row.state"']):
                    html.Td("{{ row.index }}")
                    html.Td("{{ row.name }}")
                    html.Td("{{ row.status }}")
                    html.Td("{{ row.marks }}")
            with (html.Div(classes="text-caption mt-1"),
                  html.Span(v_for="lab in label_legend", key="lab.name", classes="mr-2")):
                    html.B("{{ lab.hotkey }} ")
                    html.Span("\u25a0 ", style=("'color:' + lab.colour",))
                    html.Span("{{ lab.name }}{{ lab.derived ? ' (derived)' : '' }}")
            with html.Div(classes="d-flex flex-wrap mt-1"):
                v3.VBtn("Previous", size="small", classes="mr-1 mb-1",
                        click="trigger('previous_study')", raw_attrs=_testid("previous"))
                v3.VBtn("Next unread", size="small", classes="mr-1 mb-1",
                        click="trigger('next_study')", raw_attrs=_testid("next"))
                v3.VBtn("No finding", size="small", classes="mr-1 mb-1",
                        click="trigger('set_status', ['no finding'])",
                        raw_attrs=_testid("no-finding"))
                v3.VBtn("Done", size="small", classes="mr-1 mb-1",
                        click="trigger('set_status', ['done'])", raw_attrs=_testid("done"))
            html.Div("1-9 toggle a label on the focused view's slice, N next unread, "
                     "Ctrl+Left previous, Shift+0 no finding and go on, D done.",
                     classes="text-caption")
            v3.VBtn("Download my CSV", size="small", classes="mt-1",
                    click="window.mprDownload('csv')", raw_attrs=_testid("download-csv"))


def _marks_controls() -> None:
    """Marks of a study opened outside a project: label, range box, downloads."""
    html.Div("Marks ({{ focused }} view)", classes="text-overline mt-2")
    v3.VCombobox(v_model=("label",), items=("labels",), label="Label (keys 1-9)",
                 density="compact", hide_details=True, raw_attrs=_testid("label"))
    with html.Div(classes="d-flex align-center mt-2"):
        v3.VTextField(v_model=("slices_text",), label="Slices, e.g. 0-11; 57-59; 112",
                      density="compact", hide_details=True,
                      raw_attrs=[*_testid("slices"), "@keydown.enter=\""
                                 "trigger('apply_slices', [slices_text])\""])
        v3.VBtn("Apply", size="small", classes="ml-2", raw_attrs=_testid("apply"),
                click="trigger('apply_slices', [slices_text])")
    html.Div("M marks or unmarks the slice, Shift+M marks from the last mark, "
             "arrows and PageUp/PageDown or the wheel scroll, Ctrl+Z undoes.",
             classes="text-caption mt-1")
    with (html.Table(classes="mpr-table mt-2", raw_attrs=_testid("marks")),
          html.Tr(v_for="(m, i) in marks", key="i")):
        html.Td("{{ m.label }}")
        html.Td("{{ m.plane }}")
        html.Td("{{ m.slices }}")
    with html.Div(classes="d-flex mt-2"):
        v3.VBtn("Original JSON", size="small", classes="mr-2",
                click="window.mprDownload('original')",
                raw_attrs=_testid("download-original"))
        v3.VBtn("Full JSON", size="small", click="window.mprDownload('full')",
                raw_attrs=_testid("download-full"))


def build_ui(server: Any, page: Page) -> None:
    """The controls on the left, the four views in a 2x2 grid (as on the desktop)."""
    server.enable_module({
        "serve": {"mprviewer_static": str(STATIC)},
        "scripts": ["mprviewer_static/page.js"],
        "styles": ["mprviewer_static/page.css"],
    })
    with SinglePageWithDrawerLayout(server, full_height=True) as layout:
        layout.title.set_text("mprviewer")
        layout.footer.hide()
        with layout.toolbar:
            v3.VSpacer()
            v3.VProgressLinear(v_show="busy", indeterminate=True, absolute=True, location="bottom")
            html.Div("{{ status }}", classes="mpr-status text-body-2 mr-4",
                     style=("problem ? 'color:#ff8a80' : ''",), raw_attrs=_testid("status"))
        with layout.drawer as drawer:
            drawer.width = 380
            with html.Div(classes="pa-3 mpr-controls"):
                _project_controls()
                html.Div("Open", classes="text-overline", v_if="!project_mode")
                html.Input(v_if="!project_mode", type="file",
                           accept=".zip,application/zip,.dcm,application/dicom",
                           classes="mpr-file", raw_attrs=_testid("upload"))
                with html.Div(classes="d-flex align-center mt-2", v_if="!project_mode"):
                    v3.VTextField(v_model=("url",), label="Link (http(s) or Google Drive)",
                                  density="compact", hide_details=True,
                                  raw_attrs=[*_testid("url"),
                                             "@keydown.enter=\"trigger('open_url', [url])\""])
                    v3.VBtn("Open", size="small", classes="ml-2",
                            click="trigger('open_url', [url])")
                v3.VBtn("Demo study", size="small", classes="mt-2", block=True,
                        v_if="!project_mode",
                        click="trigger('open_demo')", raw_attrs=_testid("demo"))
                html.Div("Series", classes="text-overline mt-3")
                with html.Table(classes="mpr-table", raw_attrs=_testid("series")):
                    with html.Tr():
                        for head in ("#", "Name", "Mod.", "Size"):
                            html.Th(head)
                    with html.Tr(v_for="row in series_rows", key="row.index",
                                 click="trigger('choose_series', [row.index])",
                                 classes=("{selected: row.index === series_index}",),
                                 raw_attrs=[':data-index="row.index"']):
                        html.Td("{{ row.index }}")
                        html.Td("{{ row.name }}", title=("row.description",))
                        html.Td("{{ row.modality }}")
                        html.Td("{{ row.size }}")
                html.Div("Display", classes="text-overline mt-3")
                v3.VSelect(v_model=("preset",), items=("presets",), label="Window",
                           density="compact", hide_details=True, disabled=("!has_volume",),
                           raw_attrs=_testid("preset"))
                html.Div("Threshold {{ Number(threshold).toPrecision(4) * 1 }} {{ units }}"
                         " (2D overlay, 3D opacity)", classes="text-caption mt-2")
                v3.VSlider(v_model_number=("threshold",), min=("threshold_min",),
                           max=("threshold_max",), step=("threshold_step",),
                           density="compact", hide_details=True,
                           thumb_label=True, disabled=("!has_volume",),
                           raw_attrs=_testid("threshold"))
                with html.Div(classes="d-flex"):
                    v3.VCheckbox(v_model=("overlay",), label="2D overlay", density="compact",
                                 hide_details=True, raw_attrs=_testid("overlay"))
                    v3.VCheckbox(v_model=("opacity",), label="3D opacity", density="compact",
                                 hide_details=True, raw_attrs=_testid("opacity"))
                with html.Div(v_if="!project_mode"):
                    _marks_controls()
                html.Div("Patient and series", classes="text-overline mt-3")
                with (html.Table(classes="mpr-table", raw_attrs=_testid("metadata")),
                      html.Tr(v_for="row in meta_rows", key="row.key")):
                    html.Td("{{ row.key }}")
                    html.Td("{{ row.value }}")
        with layout.content, html.Div(classes="mpr-grid"):
            for name in VIEW_NAMES:
                plane = name if name != "3d" else ""
                with html.Div(
                    classes=(f"{{'mpr-view': true, focused: focused === '{name}'}}",),
                    raw_attrs=[*_testid(f"view-{name}"), f'data-plane="{plane}"'],
                ):
                    area = rca.RemoteControlledArea(
                        name=f"view_{name.replace('3d', 'volume')}", display="image",
                        style="width:100%;height:100%;",
                    )
                    if plane:  # the slice number as text, for screen readers and tests
                        html.Span(f"{{{{ slice_numbers.{plane} }}}}", classes="mpr-readout",
                                  raw_attrs=[*_testid(f"slice-{plane}"), 'aria-live="polite"'])
                    view = page.views[name]
                    handler = area.create_view_handler(
                        view.render_window, encoder="jpeg", target_fps=60,
                        interactive_quality=85, still_quality=85,
                    )
                    camera_events_only(handler)
                    view.handler = handler


def _watch_launcher(pid: int) -> None:
    """End this session if the launcher vanished (killed without stopping its sessions)."""
    if pid <= 0:
        return

    def watch() -> None:
        import time

        while True:
            time.sleep(1.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="launcher-watch", daemon=True).start()


def _private_home(folder: Path) -> None:
    """A data folder of this session's own: the marks' autosave files (sidecars) of uploads,
    links and the demo go there, so two tabs on the same study never share or overwrite
    them. The demo cache is the user's (a link), generated once for all."""
    from mprviewer.paths import data_dir

    shared_demo = data_dir() / "demo"
    shared_demo.mkdir(parents=True, exist_ok=True)
    home = folder / "home"
    home.mkdir(exist_ok=True)
    with contextlib.suppress(FileExistsError):
        (home / "demo").symlink_to(shared_demo, target_is_directory=True)
    os.environ["MPRVIEWER_HOME"] = str(home)


def run_session(conn: Any, config: dict[str, Any]) -> None:
    """Entry of a session process: build the page, tell the launcher the port, serve."""
    os.environ["WSLINK_WS_COMPRESS"] = "0"  # loopback to the launcher: no deflate
    sys.argv = [
        "mprviewer-session", "--server", "--host", "127.0.0.1", "--port", "0",
        "--authKey", str(config["secret"]), "--timeout", "0",
    ]
    logging.basicConfig(level=logging.WARNING)
    _private_home(Path(config["folder"]))
    try:
        server = get_server(name=None, client_type="vue3")
        page = Page(server, config)
        build_ui(server, page)
    except Exception as exc:
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
        raise

    _watch_launcher(int(config.get("launcher_pid") or 0))

    @server.controller.add("on_client_connected")
    def _connected(**_: Any) -> None:
        # A frame pushed before the page subscribed to the image stream is lost, and
        # nothing would push another until something changes: send fresh ones.
        loop = asyncio.get_event_loop()
        for delay in (0.3, 1.0, 2.5):
            loop.call_later(delay, page.render_all)

    @server.controller.add("on_server_ready")
    def _ready(**_: Any) -> None:
        conn.send({"port": server.port})
        conn.close()
        source = config.get("source")
        if source:
            page._open_async(str(source), Path(str(source)).name or str(source))

    try:
        server.start(open_browser=False, show_connection_info=False, disable_logging=True)
    finally:
        with contextlib.suppress(Exception):
            page.close()
