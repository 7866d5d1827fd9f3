"""The main window: four linked views, the side panel, menus, loading and screenshots.

A thin Qt binding of one ``mprviewer.session.Session``: the session holds the study, the
series, the volume on screen and its ``ViewerState``, the camera preset and the marks; the
window's widgets read from it, call its methods and follow its events. Loading runs in a
worker thread and hands the result to ``Session.show``; only a successful load replaces what
is on screen, so a bad file or a cancelled load leaves the previous study open. Other panels
(annotations) plug in through ``add_side_panel`` and follow ``volume_changed``.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from pathlib import Path
from typing import Any

from PyQt5.QtCore import QSize, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QImage, QKeySequence
from PyQt5.QtWidgets import (
    QAction,
    QApplication,
    QDockWidget,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QStyle,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from mprviewer.errors import MprviewerError
from mprviewer.gui import open_dialogs
from mprviewer.gui.open_dialogs import Source
from mprviewer.gui.panels import DataTable, DisplayControls, SeriesTable, TagBrowser
from mprviewer.gui.startup_timing import mark
from mprviewer.gui.statusbar import ViewerStatusBar
from mprviewer.gui.views import ViewGrid, interactor_class
from mprviewer.gui.worker import JobRunner
from mprviewer.session import LoadResult, Session, load_series, load_source
from mprviewer.session.loading import default_series_index, series_by_size

__all__ = ["LoadResult", "MainWindow", "default_series_index", "load_source", "series_by_size"]

log = logging.getLogger(__name__)

KEYS_HELP = """\
<h3>Mouse (2D views)</h3>
<table>
<tr><td><b>Left click / drag</b></td>
<td>move the other two planes to the point (crosshair)</td></tr>
<tr><td><b>Wheel</b></td><td>next / previous slice</td></tr>
<tr><td><b>Right drag</b></td><td>window (left-right) and level (up-down)</td></tr>
<tr><td><b>Middle drag</b>, Shift+left drag</td><td>pan</td></tr>
<tr><td><b>Ctrl+wheel</b>, Ctrl+right drag</td><td>zoom</td></tr>
<tr><td><b>Double-click</b></td><td>maximise / restore the view</td></tr>
<tr><td><b>Ctrl+left drag</b></td>
<td>turn the crosshair: the other two planes tilt with it (oblique reformat)</td></tr>
</table>
<h3>Oblique</h3>
<table>
<tr><td><b>Shift+O</b></td><td>planes orthogonal again (marks need them so)</td></tr>
<tr><td><b>G</b></td>
<td>an oblique series on its acquisition grid (where marks are made) or resliced onto the
patient's axes</td></tr>
</table>
<h3>Keys (focused 2D view)</h3>
<table>
<tr><td><b>Up / Right</b>, <b>Down / Left</b></td><td>next / previous slice</td></tr>
<tr><td><b>Page Up / Page Down</b></td><td>10 slices</td></tr>
<tr><td><b>Home / End</b></td><td>first / last slice</td></tr>
<tr><td><b>+ / -</b>, <b>R</b></td><td>zoom, reset zoom and pan</td></tr>
<tr><td><b>F11</b> or <b>Enter</b></td><td>maximise / restore the view</td></tr>
<tr><td><b>Ctrl+1 ... Ctrl+4</b>, <b>Ctrl+0</b></td>
<td>maximise axial, coronal, sagittal, 3D; back to 2x2</td></tr>
</table>
<h3>Annotations</h3>
<table>
<tr><td><b>M</b></td>
<td>mark the focused view's slice with the current label (again: unmark)</td></tr>
<tr><td><b>Shift+M</b></td><td>mark every slice from the last mark to here</td></tr>
<tr><td><b>Alt+click</b>, Ctrl+Shift+click</td><td>store a point (voxel, mm, value)</td></tr>
<tr><td><b>Ctrl+Z / Ctrl+Shift+Z</b></td><td>undo / redo annotation changes</td></tr>
<tr><td><b>Ctrl+E / Ctrl+I</b></td><td>export / import annotations</td></tr>
</table>
<h3>3D view</h3>
<p>Left drag rotates, right drag or wheel zooms, middle drag pans; drag a plane to move that
slice in every view; R resets the camera.</p>
"""


def _is_dicomweb_study_url(source: str) -> bool:
    """A ``.../studies/<uid>`` URL under a DICOMweb root (read through WADO-RS)."""
    from mprviewer.io.remote import is_url

    if not is_url(source):  # local sources do not need the PACS package imported
        return False
    from mprviewer.pacs.urls import is_dicomweb_study_url

    return is_dicomweb_study_url(source)


def _server_label(url: str) -> str:
    """The DICOMweb root of a study URL, as messages show it (no credentials)."""
    from mprviewer.io.remote import url_label
    from mprviewer.pacs.urls import parse_study_url

    ref = parse_study_url(url)
    return url_label(ref.root if ref is not None else url)


class MainWindow(QMainWindow):
    """The viewer window.

    For other panels (annotations): ``session`` (everything below but ``store`` and ``views``
    reads from it), attributes ``study``, ``series``, ``series_index``, ``volume``, ``store``,
    ``state`` (the ViewerState; ``state.focused_plane``), ``views``;
    signals ``volume_changed(volume)`` after a new volume is on screen (marks are cleared
    then), ``study_changed(study)``, ``slice_key(plane, key, modifiers)`` for keys a 2D view
    does not use; methods ``add_side_panel``, ``add_file_action``, ``set_marked``.
    """

    volume_changed = pyqtSignal(object)
    study_changed = pyqtSignal(object)
    first_frame_shown = pyqtSignal(float)  # seconds from set_volume to the 2D frames
    load_failed = pyqtSignal(str)
    slice_key = pyqtSignal(str, int, int)  # plane, Qt key, modifiers: keys the views left alone
    # (job number, series rows): what a PACS retrieval brings, sent from its worker thread
    remote_series_listed = pyqtSignal(int, object)

    def __init__(
        self, source: Source | None = None, series: int | None = None,
        parent: QWidget | None = None, panels_after_first_frame: bool = False,
    ) -> None:
        """With ``source``, loading starts first, while the views are still being built.

        With ``panels_after_first_frame`` (and a source), the side panel and the 3D view stay
        hidden and the panels empty until the 2D views have shown their first frame: the first
        slice is on screen sooner, and the window is complete a moment later.
        """
        super().__init__(parent)
        self.setWindowTitle("mprviewer")
        self.setAcceptDrops(True)
        self.session = Session(annotate=False)  # marks start with the annotations panel
        self.session.series_loader = self.open_series
        self.store: Any = None  # the render layer's copy of the volume on screen
        self.error_box: QMessageBox | None = None
        self.timings: dict[str, float] = {}
        self._pending_3d = False
        self._frames_waiting: set[str] = set()
        self._closed = False
        self._panels_waiting = bool(source) and panels_after_first_frame

        self.status = ViewerStatusBar(self)
        self.setStatusBar(self.status)
        self.runner = JobRunner(self)
        self.runner.finished.connect(self._on_loaded)
        self.runner.failed.connect(self._on_load_failed)
        self.runner.cancelled.connect(self._on_load_cancelled)
        self._remote_job = 0  # numbers PACS retrievals; a late listing of an old one is dropped
        self._remote_where = ""
        self.remote_series_listed.connect(self._on_remote_series_listed)
        if source:
            # Reading files overlaps with importing VTK and building the views below; the
            # result arrives through the event loop, after the window is complete.
            self.open_source(source, series)
        else:
            self.status.showMessage("Open a study: File > Open, drop a folder or zip here, "
                                    "or File > Open demo study")
        from mprviewer.paths import data_dir_problem

        self.data_folder_problem = data_dir_problem()
        if self.data_folder_problem:  # start anyway: only autosave and the PACS cache need it
            log.warning("data folder not writable: %s", self.data_folder_problem)
            self.status.showMessage(
                f"The data folder cannot be written ({self.data_folder_problem}): marks on "
                "zips, URLs and read-only folders cannot be autosaved; set MPRVIEWER_HOME to "
                "a writable folder.", 30000)

        mark("window: loading started")
        interactor_class()  # pyvistaqt, pyvista's plotting layer and VTK: the longest import
        mark("window: pyvistaqt imported")
        self.views = ViewGrid(self)
        mark("window: views built")
        self.central = QStackedWidget(self)
        self._build_actions()
        self.welcome = self._build_welcome()
        self.central.addWidget(self.welcome)
        self.central.addWidget(self.views)
        # While a study loads, the views set up their GL contexts (not after it arrives).
        self.central.setCurrentWidget(self.views if source else self.welcome)
        self.setCentralWidget(self.central)
        self._build_side_panel()
        self._build_menus()
        self._build_patient_bar()
        self._connect_views()
        session = self.session
        session.study_changed.connect(self._on_study_shown)
        session.volume_changed.connect(self._on_volume_shown)
        session.slice_changed.connect(self._on_slice_changed)
        session.display_changed.connect(self._on_display_changed)
        session.camera_changed.connect(self.views.volume_view.set_camera)
        session.marks_changed.connect(self._show_marks)
        if self._panels_waiting:
            # Hidden widgets are neither laid out nor painted (nor given a GL context) when
            # the window first shows; complete_window shows them after the first 2D frame.
            self.dock.hide()
            self.views.volume_view.hide()
            # the patient bar has its row from the start: filling it moves no view
            self.patient_bar.setVisible(True)
        mark("window: panels built")

    # -- what the session holds --------------------------------------------------------
    @property
    def study(self) -> Any:
        return self.session.study

    @property
    def source(self) -> Source | None:
        return self.session.source

    @property
    def series(self) -> Any:
        return self.session.series

    @property
    def series_index(self) -> int:
        return self.session.series_index

    @property
    def volume(self) -> Any:
        return self.session.volume

    @property
    def state(self) -> Any:
        return self.session.state

    # -- construction ------------------------------------------------------------------
    def _build_patient_bar(self) -> None:
        """Patient and study in a strip that stays above the views (as the original tool
        showed them), dates written as people read them."""
        from PyQt5.QtWidgets import QSizePolicy, QToolBar

        from mprviewer.gui.statusbar import ElidedLabel

        self.patient_label = ElidedLabel(self)
        self.patient_label.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        self.patient_label.setStyleSheet("padding: 2px 8px; font-weight: bold;")
        self.patient_bar = QToolBar("Patient", self)
        self.patient_bar.setObjectName("patient_bar")
        self.patient_bar.setMovable(False)
        self.patient_bar.addWidget(self.patient_label)
        self.patient_bar.setVisible(False)
        self.addToolBarBreak(Qt.TopToolBarArea)  # a row of its own, the width of the window
        self.addToolBar(Qt.TopToolBarArea, self.patient_bar)

    def _show_patient(self, header: Any) -> None:
        from mprviewer.io.metadata import patient_summary

        text = patient_summary(header)
        self.patient_label.set_full_text(text)
        if not self._panels_waiting:
            self.patient_bar.setVisible(bool(text))

    def _build_side_panel(self) -> None:
        self.series_table = SeriesTable(self)
        self.series_table.series_chosen.connect(self.open_series)
        self.controls = DisplayControls(self)
        self.controls.camera_requested.connect(lambda name: self.session.set_camera(name))
        self.data_table = DataTable(self)
        self.tag_browser = TagBrowser(self)
        self.side_tabs = QTabWidget(self)
        self.side_tabs.addTab(self.data_table, "Series data")
        self.side_tabs.addTab(self.tag_browser, "Slice tags")

        series_box = QGroupBox("Series", self)
        QVBoxLayout(series_box).addWidget(self.series_table)
        series_box.layout().setContentsMargins(4, 4, 4, 4)
        display_box = QGroupBox("Display", self)
        QVBoxLayout(display_box).addWidget(self.controls)
        display_box.layout().setContentsMargins(2, 2, 2, 2)

        self.side_splitter = QSplitter(Qt.Vertical, self)
        self.side_splitter.addWidget(series_box)
        self.side_splitter.addWidget(display_box)
        self.side_splitter.addWidget(self.side_tabs)
        self.side_splitter.setStretchFactor(0, 1)
        self.side_splitter.setStretchFactor(1, 0)
        self.side_splitter.setStretchFactor(2, 3)
        self.side_splitter.setSizes([150, 190, 500])
        self.dock = QDockWidget("Study", self)
        self.dock.setObjectName("side-panel")
        # The sections' minimum heights add up to more than a laptop screen has: let the
        # splitter squeeze them instead, so the side panel never makes the window taller than
        # the screen (and its status bar fall off the bottom)
        for section, least in ((series_box, 100), (display_box, 60), (self.side_tabs, 120)):
            section.setMinimumHeight(least)
        self.dock.setWidget(self.side_splitter)
        self.dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetClosable)
        self.dock.setMinimumWidth(330)
        self.addDockWidget(Qt.RightDockWidgetArea, self.dock)
        self.resizeDocks([self.dock], [420], Qt.Horizontal)

    def _build_welcome(self) -> QWidget:
        """What an empty window shows: how to open something (the views replace it)."""
        page = QWidget(self)
        layout = QVBoxLayout(page)
        layout.addStretch(2)
        title = QLabel("<h2>No study open</h2>"
                       "<p>Drop a DICOM folder, zip archive or files anywhere on this window,"
                       "<br>or choose one below. Press F1 for keys and mouse.</p>", page)
        title.setAlignment(Qt.AlignCenter)
        title.setStyleSheet("color: #bbb;")
        layout.addWidget(title)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for action in (self.act_open_folder, self.act_open_files, self.act_open_url,
                       self.act_open_demo):
            button = QToolButton(page)
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
            button.setMinimumHeight(34)
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        layout.addStretch(3)
        return page

    def _action(self, text: str, slot: Any, shortcut: Any = None, icon: Any = None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(lambda _=False: slot())
        self.addAction(action)  # shortcuts work while the menu bar is hidden too
        return action

    def _build_actions(self) -> None:
        self.act_open_folder = self._action(
            "Open &Folder…", self.ask_open_folder, QKeySequence.Open, QStyle.SP_DirOpenIcon,
            "Open a folder of DICOM files (searched recursively)")
        self.act_open_files = self._action(
            "Open &Zip or Files…", self.ask_open_files, "Ctrl+Shift+O", QStyle.SP_FileIcon,
            "Open a zip archive or DICOM files")
        self.act_open_url = self._action(
            "Open &URL…", self.ask_open_url, "Ctrl+L", QStyle.SP_DriveNetIcon,
            "Open a zip or DICOM file from an http(s) address")
        self.act_open_pacs = self._action(
            "Open from &PACS…", self.ask_open_pacs, "Ctrl+Shift+P", QStyle.SP_DriveNetIcon,
            "Search a DICOMweb or DIMSE server and open a study")
        self.act_open_demo = self._action(
            "Open &Demo Study", lambda: self.open_source("demo"), None, QStyle.SP_ComputerIcon,
            "Open the built-in CT phantom")
        self.act_screenshot = self._action(
            "Save &Screenshot…", self.ask_save_screenshot, "Ctrl+Shift+S",
            QStyle.SP_DialogSaveButton, "Save a PNG of the window")
        self.act_quit = self._action("&Quit", self.close, QKeySequence.Quit)
        self.act_grid = self._action("&2×2 Layout", self.views.restore, "Ctrl+0",
                                     tip="Show all four views")
        self.act_max = {
            name: self._action(f"Maximise &{label}", lambda n=name: self.views.maximise(n),
                               f"Ctrl+{n + 1}")
            for n, (name, label) in enumerate(
                (("axial", "Axial"), ("coronal", "Coronal"), ("sagittal", "Sagittal"), ("3d", "3D"))
            )
        }
        self.act_toggle_focused = self._action(
            "Maximise / Restore Focused View", self._toggle_focused, "F11")
        self.act_reset = self._action("&Reset Views", self.reset_views, "Ctrl+R",
                                      tip="Fit every view, reset the 3D camera")
        self.act_overlay = self._action("Threshold &Overlay in 2D", self._toggle_overlay, "Ctrl+T")
        self.act_overlay.setCheckable(True)
        self.act_opacity = self._action("&Volume Rendering in 3D", self._toggle_opacity, "Ctrl+B")
        self.act_opacity.setCheckable(True)
        self.act_keys = self._action(
            "&Keys and Mouse", self.show_keys_help, QKeySequence.HelpContents
        )
        self.act_about = self._action("&About", self.show_about)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for action in (self.act_open_folder, self.act_open_files, self.act_open_url,
                       self.act_open_pacs, self.act_open_demo):
            file_menu.addAction(action)
        self.recent_menu = open_dialogs.RecentMenu(lambda s: self.open_source(s), self)
        file_menu.addMenu(self.recent_menu)
        file_menu.addSeparator()
        self.file_menu = file_menu
        self._file_export_anchor = file_menu.addSeparator()
        file_menu.addAction(self.act_screenshot)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)

        view_menu = bar.addMenu("&View")
        view_menu.addAction(self.act_grid)
        for action in self.act_max.values():
            view_menu.addAction(action)
        view_menu.addAction(self.act_toggle_focused)
        view_menu.addSeparator()
        view_menu.addAction(self.act_reset)
        view_menu.addAction(self.dock.toggleViewAction())
        self.view_menu = view_menu

        display_menu = bar.addMenu("&Display")
        self.preset_menu = display_menu.addMenu("Window &Preset")
        self.preset_menu.aboutToShow.connect(self._fill_preset_menu)
        display_menu.addAction(self.act_overlay)
        display_menu.addAction(self.act_opacity)
        self.display_menu = display_menu

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.act_keys)
        help_menu.addAction(self.act_about)

        tools = self.addToolBar("Main")
        tools.setObjectName("main-toolbar")
        tools.setIconSize(QSize(18, 18))
        tools.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        for action in (self.act_open_folder, self.act_open_files, self.act_open_url):
            tools.addAction(action)
        tools.addSeparator()
        tools.addAction(self.act_grid)
        tools.addAction(self.act_reset)
        tools.addAction(self.act_screenshot)
        self.toolbar = tools

    def _connect_views(self) -> None:
        for view in self.views.slice_views.values():
            view.hovered.connect(self.status.show_voxel)
            view.key_pressed.connect(self.slice_key)

    # -- hooks for other panels --------------------------------------------------------
    def add_side_panel(self, title: str, widget: QWidget, first: bool = True) -> int:
        """Add a tab to the side panel (annotations...); returns its index and shows it."""
        index = self.side_tabs.insertTab(0 if first else self.side_tabs.count(), widget, title)
        self.side_tabs.setCurrentIndex(index)
        return index

    def set_marked(self, plane: str, marked: dict[int, list[str]],
                   colors: dict[str, tuple[float, float, float]] | None = None) -> None:
        """Show annotation marks of ``plane`` (slice -> labels) on its slider and 2D view, and
        as slabs in 3D, one colour per label in every view: ``colors`` (label -> RGB in 0-1),
        or by default the labels on screen, sorted, taking the mark colours in turn. Marks
        are cleared when another volume is shown."""
        from mprviewer.render.overlays import label_colors

        volume_view = self.views.volume_view
        volume_view.set_marked(plane, marked, {} if colors is None else colors)
        if colors is None:
            colors = label_colors(label for m in volume_view.marked.values()
                                  for labels in m.values() for label in labels)
        for name, view in self.views.slice_views.items():
            view.set_marked(marked if name == plane else view.marked, colors)

    def add_file_action(self, action: QAction) -> None:
        """Put an action (import/export) in the File menu, above Save Screenshot."""
        self.file_menu.insertAction(self._file_export_anchor, action)
        self.addAction(action)

    def _show_marks(self) -> None:
        """The session's marks of the series on screen, on the sliders, 2D and 3D views."""
        if self._closed or self.state is None:
            return
        for plane in self.views.slice_views:
            self.set_marked(plane, self.session.marked(plane))

    @property
    def focused_plane(self) -> str:
        return self.session.focused_plane

    # -- opening -----------------------------------------------------------------------
    def ask_open_folder(self) -> None:
        source = open_dialogs.ask_folder(self)
        if source:
            self.open_source(source)

    def ask_open_files(self) -> None:
        source = open_dialogs.ask_files(self)
        if source:
            self.open_source(source)

    def ask_open_pacs(self) -> None:
        from mprviewer.gui.pacs_dialog import open_pacs_dialog

        open_pacs_dialog(self)

    def ask_open_url(self) -> None:
        source = open_dialogs.ask_url(self)
        if source:
            self.open_source(source)

    def open_source(self, source: Source, series: int | None = None) -> None:
        """Load a study in the background; the current one stays until the new one is ready."""
        if series is None and isinstance(source, str) and _is_dicomweb_study_url(source):
            self.open_remote(source)
            return
        self._remote_job += 1  # a listing still coming from an abandoned retrieval is dropped
        label = open_dialogs.source_label(source)
        self.status.new_study()
        self.status.showMessage(f"Opening {label}…")

        def job(progress: Any, cancel: Any) -> LoadResult:
            mark("load: started")
            result = load_source(source, progress, cancel, series)
            mark("load: done")
            return result

        self.runner.start(job, f"Opening {label}")

    def open_remote(
        self, server: Any, study_uid: str | None = None, series_uid: str | None = None,
        listed: list[Any] | None = None,
    ) -> None:
        """Retrieve a study (or series) from a PACS into the cache, then open it.

        ``server`` is a DICOMweb study URL, or a server (spec) with ``study_uid``. The series
        table lists what is coming as soon as the server's metadata is in (``listed`` when the
        caller has it already), then the images arrive with progress and Cancel. On an error
        or a cancel the study on screen stays, and the cache keeps nothing partial.
        """
        self._remote_job += 1
        job_number = self._remote_job
        where = getattr(server, "label", None) or _server_label(str(server))
        self._remote_where = where
        if listed is not None:
            self._on_remote_series_listed(job_number, listed)
        self.status.showMessage(f"Retrieving from {where}…")

        def job(progress: Any, cancel: Any) -> LoadResult:
            from mprviewer.pacs import cached_retrieval, list_retrieval, retrieve_to_cache

            cached = cached_retrieval(server, study_uid=study_uid, series_uid=series_uid)
            if listed is None and cached is None:  # a cached study opens without the server
                rows = list_retrieval(server, study_uid=study_uid, series_uid=series_uid)
                self.remote_series_listed.emit(job_number, rows)
            folder = retrieve_to_cache(
                server, progress, cancel, study_uid=study_uid, series_uid=series_uid)
            # A URL opens through the (now filled) cache, so the study keeps the URL as its name.
            if isinstance(server, str) and study_uid is None:
                return load_source(server, progress, cancel, None)
            result = load_source(str(folder), progress, cancel, None)
            result.study.source_label = f"study {study_uid} on {where}"  # not the cache path
            return result

        self.runner.start(job, f"Retrieving from {where}")

    def _on_remote_series_listed(self, job_number: int, rows: list[Any]) -> None:
        if job_number == self._remote_job and not self._closed:
            images = [r for r in rows if getattr(r, "holds_images", True)]
            self.series_table.show_pending(images, self._remote_where)

    def _restore_series_table(self) -> None:
        """After a failed or cancelled retrieval: the table shows the study on screen again."""
        if self.series_table.pending:
            self.series_table.set_study(self.study, self.series_index)

    def open_series(self, index: int) -> None:
        """Load another series of the open study (double-click in the series table)."""
        if self.study is None or not 0 <= index < len(self.study.series):
            return
        if index == self.series_index and self.volume is not None:
            return
        series = self.study.series[index]
        study = self.study
        self.status.showMessage(f"Loading series {series.name}…")
        self.runner.start(lambda progress, cancel: load_series(study, index, progress, cancel),
                          f"Loading {series.name}")

    def _on_loaded(self, result: LoadResult) -> None:
        mark("volume arrived")
        self.timings["set_volume"] = time.perf_counter()
        self.session.show(result)  # drops a series of a study replaced meanwhile

    def _on_study_shown(self, study: Any) -> None:
        if self.source is not None:
            open_dialogs.remember_source(self.source)
        if not self._panels_waiting:
            self.series_table.set_study(study, self.series_index)
        self.study_changed.emit(study)

    def _on_load_failed(self, exc: BaseException) -> None:
        if self._closed:
            return
        from mprviewer.io.remote import strip_credentials

        if isinstance(exc, MprviewerError):
            message, details = strip_credentials(str(exc)), ""
        else:  # a bug, not a user error: say so and keep the traceback for a report
            message = strip_credentials(
                f"Unexpected error while loading: {type(exc).__name__}: {exc}")
            details = strip_credentials(
                "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        log.warning("load failed: %s", message)
        self.complete_window()
        self._restore_series_table()
        keep = "The previous study stays open." if self.volume is not None else ""
        self.status.showMessage(f"Could not open: {message}", 15000)
        self.show_error("Cannot open", message, keep, details)
        self.load_failed.emit(message)

    def _on_load_cancelled(self) -> None:
        self.complete_window()
        if not self._closed:
            self._restore_series_table()
            self.status.showMessage("Loading cancelled.", 8000)

    def show_error(
        self, title: str, message: str, info: str = "", details: str = ""
    ) -> QMessageBox:
        """A non-blocking error dialog (the event loop keeps running behind it)."""
        if self.error_box is not None:
            self.error_box.close()
        box = QMessageBox(QMessageBox.Warning, title, message, QMessageBox.Ok, self)
        if info:
            box.setInformativeText(info)
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.destroyed.connect(lambda *_: setattr(self, "error_box", None))
        self.error_box = box
        box.open()
        return box

    # -- showing a volume --------------------------------------------------------------
    def set_volume(self, volume: Any, series: Any = None) -> None:
        """Show ``volume``: the 2D views first, the 3D view right after their first frame."""
        self.timings["set_volume"] = time.perf_counter()
        self.session.show_volume(volume, series)

    def _on_volume_shown(self, volume: Any) -> None:
        """Bind the views to the session's new ViewerState."""
        from mprviewer.render.image import ImageStore

        state = self.state
        grid = state.grid
        store = ImageStore(volume, grid)
        self.central.setCurrentWidget(self.views)
        self.views.volume_view.unbind()
        self.views.volume_view.marked_axial = []
        self.views.volume_view.marked = {}
        self.store = store
        for view in self.views.slice_views.values():
            view.bind(self.session, store)
        state.focus_changed.connect(self.views.lead_plane)
        self.controls.bind(self.session, volume)
        if volume.window is None:  # the window came from the data's percentiles
            self.controls.show_preset("auto")
        self.status.set_store(store)
        self.status.set_warnings(volume.warnings)
        self.status.showMessage(self._describe(volume), 10000)
        # whose images these are shows with the first frame
        self._show_patient(getattr(self.series, "header", None) if self.series is not None
                           else None)
        if not self._panels_waiting:
            self._fill_panels(volume)
        self.act_overlay.setChecked(state.threshold_overlay)
        self.act_opacity.setChecked(state.volume_opacity)
        title = volume.name or getattr(self.series, "name", "") or "volume"
        where = self.study.source_label if self.study is not None else ""
        self.setWindowTitle(f"{title} — {where} — mprviewer" if where else f"{title} — mprviewer")
        focus = QApplication.focusWidget()
        if focus is None or not self.views.isAncestorOf(focus):
            # Arrow keys and the wheel work at once, without a first click.
            self.views.slice_views[state.focused_plane].interactor.setFocus(Qt.OtherFocusReason)
        self._show_marks()
        for view in self.views.slice_views.values():
            # lay the title bars out now: the focused view's bold title would otherwise be
            # painted cut ("● Ax") until the event loop gets to the layout, after the 3D scene
            view.bar.layout().activate()
        mark("views bound")
        self._wait_for_2d_frames()
        self.volume_changed.emit(volume)

    def _fill_panels(self, volume: Any) -> None:
        """The series table's warnings, the data table and the tag browser for the volume on
        screen."""
        if self.series_index >= 0:
            self.series_table.set_warnings(self.series_index, volume.warnings)
        metadata = getattr(self.series, "metadata", None) or self._metadata_of(volume)
        self.data_table.set_metadata(metadata)
        self.tag_browser.set_provider(self._slice_header if self.series is not None else None)
        state = self.state
        if state is not None:
            plane = state.grid.acquisition_plane
            self._on_slice_changed(plane, state.slices[plane])

    def complete_window(self) -> None:
        """Show and fill what waited for the first 2D frame: the side panel, the 3D view."""
        if not self._panels_waiting or self._closed:
            return
        self._panels_waiting = False
        if self.study is not None:
            self.series_table.set_study(self.study, self.series_index)
        if self.volume is not None:
            self._fill_panels(self.volume)
        self.patient_bar.setVisible(bool(self.patient_label.full_text))
        self.views.volume_view.setVisible(self.views.maximised in (None, "3d"))
        self.dock.show()
        mark("window complete")

    def _describe(self, volume: Any) -> str:
        nk, nj, ni = volume.shape
        sx, sy, sz = volume.spacing
        name = volume.name or "Volume"
        return f"{name}: {ni} × {nj} × {nk} voxels, {sx:.3g} × {sy:.3g} × {sz:.3g} mm"

    @staticmethod
    def _metadata_of(volume: Any) -> dict[str, str]:
        nk, nj, ni = volume.shape
        return {
            "Series": volume.name,
            "Modality": volume.modality,
            "Size (i × j × k)": f"{ni} × {nj} × {nk}",
            "Spacing (mm)": " × ".join(f"{s:.4g}" for s in volume.spacing),
            "Units": volume.units,
        }

    def _slice_header(self, k: int) -> Any:
        series = self.series
        if series is None or not hasattr(series, "slice_header") or self.session.display_only:
            return None  # a reslice's slices are none of the acquired files
        return series.slice_header(k)  # None for a slice made by resampling

    def _on_slice_changed(self, plane: str, index: int) -> None:
        if self.state is None or plane != self.state.grid.acquisition_plane:
            return
        self.tag_browser.show_slice(self.state.grid.acquisition_k(plane, index))

    def _on_display_changed(self, name: str, value: Any) -> None:
        if name == "threshold_overlay":
            self.act_overlay.setChecked(bool(value))
        elif name == "volume_opacity":
            self.act_opacity.setChecked(bool(value))

    # -- first frame, then 3D ------------------------------------------------------------
    def _wait_for_2d_frames(self) -> None:
        """Build the 3D view only once the three 2D views have shown a frame."""
        self._pending_3d = True
        views = self.views.slice_views
        self._frames_waiting = set(views) if self.isVisible() else set()
        for plane, view in views.items():
            with contextlib.suppress(TypeError):
                view.interactor.frameSwapped.disconnect()
            if plane in self._frames_waiting:
                view.interactor.frameSwapped.connect(
                    lambda p=plane: self._on_frame(p))
            view.render()
            view.interactor.update()
        if not self._frames_waiting:
            QTimer.singleShot(0, self._first_frames_done)
        else:  # a view that never paints (minimised) must not keep the 3D view away
            QTimer.singleShot(3000, self._first_frames_done)

    def _on_frame(self, plane: str) -> None:
        self._frames_waiting.discard(plane)
        with contextlib.suppress(TypeError):
            self.views.slice_views[plane].interactor.frameSwapped.disconnect()
        if not self._frames_waiting:
            self._first_frames_done()

    def _first_frames_done(self) -> None:
        if not self._pending_3d or self._closed:
            return
        self._pending_3d = False
        now = time.perf_counter()
        seconds = now - self.timings.get("set_volume", now)
        self.timings["first_2d_frame"] = now
        log.info("first 2D frames %.3f s after the volume arrived", seconds)
        self.first_frame_shown.emit(seconds)
        QTimer.singleShot(0, self.complete_window)
        # Give Qt a moment to put the 2D frames on screen before the 3D scene is built.
        QTimer.singleShot(30, self._build_3d)

    def _build_3d(self) -> None:
        if self._closed or self.state is None or self.views.volume_view.state is self.state:
            return
        start = time.perf_counter()
        self.views.volume_view.bind(self.state, self.store)
        self.views.volume_view.render()
        self.timings["3d_built"] = time.perf_counter()
        log.info("3D view built in %.3f s", time.perf_counter() - start)

    @property
    def is_3d_ready(self) -> bool:
        return self.state is not None and self.views.volume_view.state is self.state

    # -- commands ----------------------------------------------------------------------
    def set_camera(self, name: str) -> None:
        self.session.set_camera(name)

    def reset_views(self) -> None:
        for view in self.views.slice_views.values():
            view.reset_camera()
        self.session.set_camera("reset")

    def _toggle_focused(self) -> None:
        focused = None
        for name, view in self.views.views.items():
            if view.interactor.hasFocus():
                focused = name
        self.views.toggle_maximised(focused or self.focused_plane)

    def _toggle_overlay(self) -> None:
        self.session.toggle_threshold_overlay()

    def _toggle_opacity(self) -> None:
        self.session.toggle_volume_opacity()

    def _fill_preset_menu(self) -> None:
        self.preset_menu.clear()
        for name in self.controls.preset_names():
            if name != "custom":
                self.preset_menu.addAction(name, lambda n=name: self.controls.apply_preset(n))
        self.preset_menu.setEnabled(self.state is not None)

    def show_keys_help(self) -> None:
        box = QMessageBox(QMessageBox.NoIcon, "Keys and mouse", KEYS_HELP, QMessageBox.Close, self)
        box.setTextFormat(Qt.RichText)
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.open()

    def show_about(self) -> None:
        from mprviewer import __version__

        box = QMessageBox(QMessageBox.Information, "About mprviewer",
                          f"mprviewer {__version__}\nDICOM viewer with axial, coronal, sagittal "
                          "and 3D views and anomaly annotations.", QMessageBox.Close, self)
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.open()

    # -- screenshots -------------------------------------------------------------------
    def grab_screenshot(self) -> QImage:
        """The whole window as it looks now, 3D and 2D views included."""
        self.views.volume_view.settle_now()
        for view in self.views.views.values():
            if view.isVisible():
                view.render()
        self.views.paint_pending()  # the views that follow the lead, now too
        return self.grab().toImage()

    def save_screenshot(self, path: str | Path) -> Path:
        path = Path(path)
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            path = path.with_suffix(".png")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.grab_screenshot().save(str(path)):
            raise MprviewerError(f"{path}: cannot write the screenshot (check the folder)")
        self.status.showMessage(f"Screenshot saved to {path}", 8000)
        return path

    def ask_save_screenshot(self) -> None:
        default = str(Path.home() / "mprviewer.png")
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", default, "PNG (*.png)")
        if path:
            try:
                self.save_screenshot(path)
            except MprviewerError as exc:
                self.show_error("Cannot save screenshot", str(exc))

    # -- drag and drop -----------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if open_dialogs.source_from_mime(event.mimeData()) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        source = open_dialogs.source_from_mime(event.mimeData())
        if source is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_source(source)

    # -- closing -----------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop workers, release render windows and temporary files."""
        if not self._closed:
            self._closed = True
            self.runner.shutdown()
            for view in self.views.slice_views.values():
                with contextlib.suppress(TypeError):
                    view.interactor.frameSwapped.disconnect()
            self.controls.unbind()
            self.views.close_views()
            self.session.close()
        super().closeEvent(event)
