"""Autosave of a study's annotations to a sidecar file, and recovery when reopening it.

Where the sidecar lives (``sidecar_path``):

- a study opened from a folder the user can write to: ``<folder>/.mprviewer/annotations-<study
  UID>.json``, so the marks travel with the images;
- anything else (a zip, a URL, a read-only folder or CD, single files, a study retrieved from
  a PACS into the per-user cache):
  ``<data dir>/annotations/<study UID>.json`` in the per-user data folder (``MPRVIEWER_HOME``
  overrides it). Without a study UID the name is a hash of the source.

Every change is saved at once in the full format, atomically: the content goes to a temporary
file in the same folder, which is flushed and fsynced, then renamed over the sidecar, and the
folder is fsynced. Before that, the previous sidecar is copied (atomically too) to
``<sidecar>.bak``. A kill at any moment therefore leaves the sidecar holding either the state
before or after the edit being saved: at most the last edit is lost.

``load_sidecar`` never deletes anything: a sidecar that cannot be read is renamed to
``<sidecar>.corrupt-<time>`` and the ``.bak`` copy, if good, is restored in its place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mprviewer.errors import AnnotationError
from mprviewer.model.annotation_files import (
    atomic_write_text,
    detect_format,
    document_to_set,
    loads,
    to_json_text,
)
from mprviewer.model.annotations import AnnotationSet, SeriesRef
from mprviewer.model.events import Signal

SIDECAR_FOLDER = ".mprviewer"
BACKUP_SUFFIX = ".bak"
STALE_TEMP_SECONDS = 600


def _safe_name(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z._-]", "_", text)[:100].strip("._")


def sidecar_path(source: str | Path | None, study_uid: str, writable_folder: bool) -> Path:
    """Where the autosave file of a study opened from ``source`` lives (see module doc)."""
    key = _safe_name(study_uid or "")
    if not key:
        digest = hashlib.sha256(str(source or "").encode("utf-8", "replace")).hexdigest()[:16]
        key = f"source-{digest}"
    if source is not None and writable_folder and not str(source).startswith(
        ("http://", "https://")
    ):
        folder = Path(source)
        if folder.is_dir():
            return folder / SIDECAR_FOLDER / f"annotations-{key}.json"
    from mprviewer.paths import data_dir_path

    return data_dir_path() / "annotations" / f"{key}.json"  # created by the first save


def folder_is_writable(source: str | Path | None) -> bool:
    """True when ``source`` is a folder where a sidecar can be created and will stay.

    Folders inside the per-user data folder are the program's own caches (studies retrieved
    from a PACS, evicted when the cache is full): marks made there would go with them.
    """
    if source is None:
        return False
    folder = Path(source)
    if not folder.is_dir() or _inside_data_dir(folder):
        return False
    target = folder / SIDECAR_FOLDER
    if target.is_dir():
        return os.access(target, os.W_OK | os.X_OK)
    return os.access(folder, os.W_OK | os.X_OK)


def _inside_data_dir(folder: Path) -> bool:
    from mprviewer.paths import data_dir_path

    try:
        folder.resolve().relative_to(data_dir_path().resolve())
    except ValueError:
        return False
    return True


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + BACKUP_SUFFIX)


def _read_good(path: Path) -> tuple[AnnotationSet | None, str, str]:
    """(set, text, "") if ``path`` is a readable annotation file, else (None, "", why)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, "", f"cannot be read ({exc.strerror or exc})"
    try:
        text = data.decode("utf-8-sig")
        aset, _report = document_to_set(loads(text, str(path)), str(path))
    except UnicodeDecodeError:
        return None, "", "is not UTF-8 text"
    except AnnotationError as exc:
        return None, "", str(exc)
    return aset, text, ""


def _read_parsable(path: Path) -> str | None:
    """The text of ``path`` if it is complete JSON of an annotation format, else None.

    Cheaper than ``_read_good`` (no schema validation), which matters on every save: the
    file was written atomically by this module, so a complete parse is the check that counts.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
        detect_format(loads(text, str(path)), str(path))
    except (OSError, UnicodeDecodeError, AnnotationError):
        return None
    return text


def save_sidecar(path: Path, text: str) -> None:
    """Keep the current good sidecar as ``.bak``, then replace the sidecar atomically.

    A sidecar damaged since it was loaded is renamed aside, not overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        previous = _read_parsable(path)
        if previous is not None:
            atomic_write_text(backup_path(path), previous)
        else:
            _move_aside(path)
    atomic_write_text(path, text)


class Autosaver:
    """Saves ``aset`` to ``path`` after every change; failures are reported, never raised
    into the editing code (``failed`` signal with a message, ``last_error``)."""

    def __init__(self, aset: AnnotationSet, path: str | Path):
        self.aset = aset
        self.path = Path(path)
        self.saved = Signal()
        self.failed = Signal()
        self.last_error: str = ""
        self.save_count = 0
        aset.changed.connect(self.save)

    def save(self) -> bool:
        """Save now; True on success. An empty set creates no file (but empties one)."""
        if self.aset.is_empty and not self.path.exists():
            return True
        try:
            save_sidecar(self.path, to_json_text(self.aset, "full"))
        except OSError as exc:
            self.last_error = (f"annotations could not be saved to {self.path}: "
                               f"{exc.strerror or exc}. Export them to another place.")
            self.failed.emit(self.last_error)
            return False
        self.last_error = ""
        self.save_count += 1
        self.saved.emit(str(self.path))
        return True

    def close(self) -> None:
        """Stop following the set."""
        self.aset.changed.disconnect(self.save)


@dataclass
class SidecarLoad:
    """What ``load_sidecar`` found and did."""

    path: Path
    aset: AnnotationSet | None = None
    restored_from: Path | None = None
    moved_aside: list[Path] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(self.messages)


def _move_aside(path: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.rename(path, target)
    return target


def _remove_stale_temps(path: Path) -> None:
    """Temporary files of saves that were interrupted long ago (never the sidecar itself)."""
    now = time.time()
    for name in (path.name, backup_path(path).name):
        for tmp in path.parent.glob(f".{name}.*.tmp"):
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime > STALE_TEMP_SECONDS:
                    tmp.unlink()


def load_sidecar(path: str | Path) -> SidecarLoad:
    """Read a sidecar; if it is damaged, keep it aside and restore the last good version.

    ``result.aset`` is None when there was nothing (good) to read.
    """
    path = Path(path)
    result = SidecarLoad(path)
    if path.exists():
        good, _text, why = _read_good(path)
        if good is not None:
            result.aset = good
            _remove_stale_temps(path)
            return result
        aside = _move_aside(path)
        result.moved_aside.append(aside)
        result.messages.append(f"The annotation sidecar {path} was damaged ({why}); it was "
                               f"kept as {aside.name}.")
    backup = backup_path(path)
    if backup.exists():
        good, text, why = _read_good(backup)
        if good is not None:
            atomic_write_text(path, text)
            result.aset = good
            result.restored_from = backup
            result.messages.append(f"The last good version was restored from {backup.name}.")
        else:
            aside = _move_aside(backup)
            result.moved_aside.append(aside)
            result.messages.append(f"The backup {backup} was damaged too ({why}); it was kept "
                                   f"as {aside.name}. Annotations start empty.")
    elif result.moved_aside:
        result.messages.append("No backup was found; annotations start empty.")
    if path.parent.is_dir():
        _remove_stale_temps(path)
    return result


def restore_or_create(
    path: str | Path, study_uid: str = "", refs: Iterable[SeriesRef] = (), reader: str = ""
) -> tuple[AnnotationSet, Autosaver, SidecarLoad]:
    """What the viewer does on opening a study: load (or start) its annotations, re-point the
    marks at the loaded images, and autosave every change from then on."""
    loaded = load_sidecar(path)
    aset = loaded.aset or AnnotationSet(study_uid=study_uid, reader=reader)
    for ref in refs:
        loaded.messages.extend(aset.reconcile(ref))
    aset.clear_history()
    saver = Autosaver(aset, path)
    if loaded.restored_from is not None or aset.last_change == "reconcile":
        saver.save()
    return aset, saver, loaded
