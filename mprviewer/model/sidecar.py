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

Several windows or processes may autosave the same study (two viewers on one study, a
viewer and a script). A save holds an exclusive lock on ``<sidecar>.lock`` (``flock``) while
it re-reads the sidecar: when someone else saved since this writer last read or wrote it,
their changes (slices and points added or removed, notes) are merged into this writer's
marks first, so both keep everything; a writer that cannot get the lock within
``LOCK_TIMEOUT`` seconds reports that it did not save rather than overwrite.

``load_sidecar`` never deletes anything: a sidecar that cannot be read is renamed to
``<sidecar>.corrupt-<time>`` and the ``.bak`` copy, if good, is restored in its place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from collections.abc import Iterable, Iterator
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
LOCK_SUFFIX = ".lock"
LOCK_TIMEOUT = 10.0
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


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + LOCK_SUFFIX)


@contextlib.contextmanager
def locked(path: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the exclusive lock of sidecar ``path`` (its ``.lock`` file, which stays: removing
    it would let two writers lock two different files); ``LOCK_TIMEOUT`` by default."""
    timeout = LOCK_TIMEOUT if timeout is None else timeout
    try:
        import fcntl
    except ImportError:  # no flock on this platform: saves are atomic but not merged
        yield
        return
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AnnotationError(
                        f"annotations were not saved to {path}: another mprviewer has been "
                        f"saving there for {timeout:.0f} s ({lock_path(path).name} is locked)"
                    ) from None
                time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class Autosaver:
    """Saves ``aset`` to ``path`` after every change; failures are reported, never raised
    into the editing code (``failed`` signal with a message, ``last_error``).

    ``base`` and ``base_text`` are the sidecar as this writer last read it; changes that
    another writer saved since are merged into ``aset`` before saving (``merged`` signal with
    a summary)."""

    def __init__(
        self,
        aset: AnnotationSet,
        path: str | Path,
        base: AnnotationSet | None = None,
        base_text: str | None = None,
    ):
        self.aset = aset
        self.path = Path(path)
        self.saved = Signal()
        self.failed = Signal()
        self.merged = Signal()
        self.last_error: str = ""
        self.save_count = 0
        self._base = base if base is not None else AnnotationSet()
        self._base_text = base_text
        self._saving = False
        aset.changed.connect(self.save)

    def save(self) -> bool:
        """Save now; True on success. An empty set creates no file (but empties one)."""
        if self._saving:
            return True  # merging changed the set: the save under way writes it
        if self.aset.is_empty and not self.path.exists():
            return True
        self._saving = True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with locked(self.path):
                summary = self._merge_others()
                text = to_json_text(self.aset, "full")
                save_sidecar(self.path, text)
                self._base, self._base_text = self.aset.snapshot(), text
        except (OSError, AnnotationError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.last_error = (f"annotations could not be saved to {self.path}: "
                               f"{why.rstrip('.')}. Export them to another place.")
            self.failed.emit(self.last_error)
            return False
        finally:
            self._saving = False
        self.last_error = ""
        self.save_count += 1
        if summary:
            self.merged.emit(summary)
        self.saved.emit(str(self.path))
        return True

    def _merge_others(self) -> str:
        """Take in what another writer saved since this one last read or wrote the sidecar
        (under the lock). A damaged sidecar is left to ``save_sidecar`` to keep aside."""
        try:
            text = self.path.read_bytes().decode("utf-8-sig")
        except FileNotFoundError:
            return ""
        except (OSError, UnicodeDecodeError):
            return ""
        if text == self._base_text:
            return ""
        try:
            theirs, _report = document_to_set(loads(text, str(self.path)), str(self.path))
        except AnnotationError:
            return ""
        return self.aset.absorb(self._base, theirs)

    def close(self) -> None:
        """Stop following the set."""
        self.aset.changed.disconnect(self.save)


@dataclass
class SidecarLoad:
    """What ``load_sidecar`` found and did."""

    path: Path
    aset: AnnotationSet | None = None
    text: str | None = None  # the sidecar's content as read
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
        good, text, why = _read_good(path)
        if good is not None:
            result.aset, result.text = good, text
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
            result.aset, result.text = good, text
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
    # what was read, in the numbering every writer of this study uses once reconciled
    base = aset.snapshot() if loaded.aset is not None else None
    saver = Autosaver(aset, path, base=base, base_text=loaded.text)
    if loaded.restored_from is not None or aset.last_change == "reconcile":
        saver.save()
    return aset, saver, loaded
