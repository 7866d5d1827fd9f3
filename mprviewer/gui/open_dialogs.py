"""Ways to choose a study: folder, zip or files, URL, recent items and drag and drop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PyQt5.QtCore import QMimeData, QSettings
from PyQt5.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMenu, QWidget

MAX_RECENT = 10
_RECENT_KEY = "recent/sources"

Source = str | list[str]


def settings() -> QSettings:
    """The application's settings, kept in the per-user data folder (MPRVIEWER_HOME in tests)."""
    from mprviewer.paths import data_dir_path

    return QSettings(str(data_dir_path() / "settings.ini"), QSettings.IniFormat)


def source_label(source: Source) -> str:
    """A short human name for a source (menu entries, window title)."""
    if isinstance(source, list):
        if len(source) == 1:
            return source[0]
        return f"{len(source)} files in {Path(source[0]).parent}"
    from mprviewer.io.remote import url_label

    return url_label(source)


# -- recent items ----------------------------------------------------------------------
def recent_sources() -> list[Source]:
    """Most recent first; a multi-file source is stored as a list."""
    import json

    raw = settings().value(_RECENT_KEY, "[]")
    try:
        items = json.loads(raw if isinstance(raw, str) else "[]")
    except ValueError:
        return []
    return [i for i in items if isinstance(i, (str, list))][:MAX_RECENT]


def remember_source(source: Source) -> None:
    """Put ``source`` at the top of the recent list (the demo is not worth remembering)."""
    import json

    if source == "demo":
        return
    if isinstance(source, str):  # a password in a URL is not kept in the settings file
        from mprviewer.io.remote import url_label

        source = url_label(source)
    items = [s for s in recent_sources() if s != source]
    items.insert(0, source)
    store = settings()
    store.setValue(_RECENT_KEY, json.dumps(items[:MAX_RECENT]))
    store.sync()


def clear_recent() -> None:
    store = settings()
    store.remove(_RECENT_KEY)
    store.sync()


class RecentMenu(QMenu):
    """File > Recent: rebuilt each time it opens, so it always shows the latest list."""

    def __init__(self, open_source: Callable[[Source], Any], parent: QWidget | None = None) -> None:
        super().__init__("Open &Recent", parent)
        self._open_source = open_source
        self.aboutToShow.connect(self.rebuild)
        self.rebuild()

    def rebuild(self) -> None:
        self.clear()
        items = recent_sources()
        for number, source in enumerate(items, start=1):
            label = source_label(source)
            if len(label) > 70:
                label = "…" + label[-69:]
            action = self.addAction(f"&{number % 10}  {label}")
            action.triggered.connect(lambda _=False, s=source: self._open_source(s))
        if not items:
            self.addAction("No recent studies").setEnabled(False)
        self.addSeparator()
        self.addAction("Clear list", self._clear)

    def _clear(self) -> None:
        clear_recent()
        self.rebuild()


# -- dialogs ---------------------------------------------------------------------------
def start_dir() -> str:
    """Where the open dialogs start: the folder that holds the last study (beside it, so the
    next case of a dataset is one click away), else the home folder."""
    recent = recent_sources()
    if recent:
        first = recent[0][0] if isinstance(recent[0], list) else recent[0]
        path = Path(first)
        if path.exists():
            return str(path.resolve().parent)
    return str(Path.home())



def ask_folder(parent: QWidget | None) -> str | None:
    """A folder holding DICOM files (searched recursively by the loader)."""
    path = QFileDialog.getExistingDirectory(parent, "Open DICOM folder", start_dir())
    return path or None


def ask_files(parent: QWidget | None) -> Source | None:
    """One zip or one or more DICOM files."""
    paths, _ = QFileDialog.getOpenFileNames(
        parent,
        "Open zip archive or DICOM files",
        start_dir(),
        "DICOM studies (*.zip *.dcm *.DCM *.ima *.IMA);;Zip archives (*.zip);;All files (*)",
    )
    if not paths:
        return None
    return paths[0] if len(paths) == 1 else list(paths)


def ask_url(parent: QWidget | None) -> str | None:
    """An http(s) address of a zip or a DICOMweb series."""
    text, ok = QInputDialog.getText(
        parent,
        "Open URL",
        "Address of a zip archive or DICOM file (http or https):",
        QLineEdit.Normal,
        "https://",
    )
    text = text.strip()
    if not ok or not text or text in ("http://", "https://"):
        return None
    return text


# -- drag and drop ---------------------------------------------------------------------
def source_from_paths(paths: Sequence[str]) -> Source | None:
    """What dropping these paths means: one folder/zip/file, or several files as one study."""
    existing = [p for p in paths if p and Path(p).exists()]
    if not existing:
        return None
    if len(existing) == 1:
        return existing[0]
    return list(existing)


def source_from_mime(mime: QMimeData) -> Source | None:
    """The source carried by a drag: local files, folders, zips, or one http(s) URL."""
    if not mime.hasUrls():
        text = mime.text().strip() if mime.hasText() else ""
        return text if text.startswith(("http://", "https://")) else None
    urls = mime.urls()
    local = [u.toLocalFile() for u in urls if u.isLocalFile()]
    if local:
        return source_from_paths(local)
    remote = [u.toString() for u in urls if u.scheme() in ("http", "https")]
    return remote[0] if remote else None
