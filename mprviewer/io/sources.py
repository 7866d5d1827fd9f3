"""Turn what the user gave (folder, zip, files, "demo") into a flat list of candidate files.

Archives are read in place (members are opened from the zip, never extracted), so a hostile
member name can never write anywhere. Nested zips are opened from memory or a private spooled
temp file. Each candidate keeps a human name like ``study.zip!/CT_1/IM0001`` for messages.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from mprviewer.errors import LoadCancelled, SourceError

JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini", "dicomdir.bak"}
JUNK_DIRS = {"__macosx", ".git", ".svn", ".mprviewer"}
MAX_NESTED_ZIP_DEPTH = 3
# Nested zips up to this size are read into memory; larger ones go to a spooled temp file.
SPOOL_IN_MEMORY = 256 * 1024 * 1024


@dataclass(frozen=True)
class Member:
    """One candidate file of a source.

    ``folder`` identifies the folder (or archive folder) that holds it, for series naming;
    ``path`` is set when the file is a real file on disk, which allows fast direct reads.
    """

    name: str
    folder: str
    size: int
    opener: Callable[[], BinaryIO] = field(repr=False, compare=False)
    path: Path | None = None

    def open(self) -> BinaryIO:
        """A fresh binary stream positioned at the start of the file."""
        return self.opener()

    @property
    def folder_name(self) -> str:
        """The last component of the containing folder ("" at an archive's root)."""
        return PurePosixPath(self.folder.replace("!", "/")).name


@dataclass
class ExpandedSource:
    """The result of expanding a source: members, what was skipped, and how to clean up."""

    label: str
    members: list[Member] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    root_folder: Path | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def close(self) -> None:
        """Release open archives and temporary files."""
        while self._closers:
            closer = self._closers.pop()
            with contextlib.suppress(OSError):
                closer()


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise LoadCancelled("loading was cancelled")


def _is_junk(name: str) -> bool:
    parts = [p.lower() for p in PurePosixPath(name.replace("\\", "/")).parts]
    if not parts:
        return True
    base = parts[-1]
    return (
        base in JUNK_NAMES
        or base.startswith("._")
        or any(p in JUNK_DIRS for p in parts[:-1])
    )


def expand_source(
    source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    cancel: threading.Event | None = None,
) -> ExpandedSource:
    """Expand a folder, zip file, single file, list of files or "demo" into members."""
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text == "demo":
            from mprviewer.io.demo import demo_path

            text = str(demo_path())
        path = Path(text).expanduser()
        if not path.exists():
            raise SourceError(f"{text}: no such file or folder")
        out = ExpandedSource(label=str(path))
        if path.is_dir():
            out.root_folder = path
            _add_folder(out, path, cancel)
        else:
            _add_file(out, path, cancel)
        return out
    paths = [Path(os.fspath(p)).expanduser() for p in source]
    if not paths:
        raise SourceError("no files were given")
    out = ExpandedSource(label=f"{len(paths)} files" if len(paths) > 1 else str(paths[0]))
    for path in paths:
        if not path.exists():
            out.close()
            raise SourceError(f"{path}: no such file or folder")
        if path.is_dir():
            _add_folder(out, path, cancel)
        else:
            _add_file(out, path, cancel)
    return out


def _file_opener(path: Path) -> Callable[[], BinaryIO]:
    return lambda: open(path, "rb")


def _add_folder(out: ExpandedSource, folder: Path, cancel: threading.Event | None) -> None:
    for dirpath, dirnames, filenames in os.walk(folder):
        _check_cancel(cancel)
        dirnames[:] = sorted(d for d in dirnames if d.lower() not in JUNK_DIRS)
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if _is_junk(filename) or (path.is_symlink() and not path.exists()):
                continue
            _add_file(out, path, cancel)


def _add_file(out: ExpandedSource, path: Path, cancel: threading.Event | None) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        out.skipped.append((str(path), f"cannot be read: {exc.strerror or exc}"))
        return
    if _looks_like_zip(path):
        _add_zip_file(out, path, cancel)
        return
    if path.name.upper() == "DICOMDIR" and out.root_folder is None:
        from mprviewer.io.dicomdir import dicomdir_files

        # Opening a DICOMDIR opens what it indexes (files named relative to its folder).
        for indexed in dicomdir_files(path):
            _add_file(out, indexed, cancel)
        return
    out.members.append(
        Member(name=str(path), folder=str(path.parent), size=size, opener=_file_opener(path),
               path=path)
    )


def _looks_like_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    return head in (b"PK\x03\x04", b"PK\x05\x06")


def _add_zip_file(out: ExpandedSource, path: Path, cancel: threading.Event | None) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise SourceError(f"{path}: not a readable zip archive ({exc})") from exc
    out._closers.append(archive.close)
    _add_zip_members(out, archive, str(path), cancel, depth=1)


def _add_zip_members(
    out: ExpandedSource,
    archive: zipfile.ZipFile,
    label: str,
    cancel: threading.Event | None,
    depth: int,
) -> None:
    lock = threading.Lock()  # ZipFile member reads share one file handle
    for info in archive.infolist():
        _check_cancel(cancel)
        if info.is_dir():
            continue
        member_name = f"{label}!/{info.filename}"
        if _is_junk(info.filename):
            continue
        if info.flag_bits & 0x1:
            out.skipped.append((member_name, "encrypted zip member; mprviewer cannot decrypt it"))
            continue
        folder = f"{label}!/{PurePosixPath(info.filename).parent}"
        if _zip_member_is_zip(archive, info, lock):
            if depth >= MAX_NESTED_ZIP_DEPTH:
                out.skipped.append(
                    (member_name, f"zip nested deeper than {MAX_NESTED_ZIP_DEPTH} levels; skipped")
                )
                continue
            try:
                nested = _open_nested_zip(archive, info, lock)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                out.skipped.append((member_name, f"nested zip cannot be read: {exc}"))
                continue
            out._closers.append(nested.close)
            _add_zip_members(out, nested, member_name, cancel, depth + 1)
            continue
        out.members.append(
            Member(
                name=member_name,
                folder=folder,
                size=info.file_size,
                opener=_zip_member_opener(archive, info, lock),
            )
        )


def _zip_member_opener(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, lock: threading.Lock
) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        with lock:
            return io.BytesIO(archive.read(info))

    return opener


def _zip_member_is_zip(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, lock: threading.Lock
) -> bool:
    if info.file_size < 22:
        return False
    if not info.filename.lower().endswith(".zip"):
        with lock, archive.open(info) as fh:
            return fh.read(4) == b"PK\x03\x04"
    return True


def _open_nested_zip(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, lock: threading.Lock
) -> zipfile.ZipFile:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    with lock, archive.open(info) as fh:
        while chunk := fh.read(1 << 20):
            spool.write(chunk)
    spool.seek(0)
    try:
        nested = zipfile.ZipFile(spool)  # type: ignore[arg-type]
    except Exception:
        spool.close()
        raise
    original_close = nested.close

    def close() -> None:
        original_close()
        spool.close()

    nested.close = close  # type: ignore[method-assign]
    return nested


def iter_members(expanded: ExpandedSource) -> Iterator[Member]:
    """The members in a stable order (by name)."""
    return iter(sorted(expanded.members, key=lambda m: m.name))
