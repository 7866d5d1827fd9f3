"""Turn what the user gave (folder, zip, files, "demo") into a flat list of candidate files.

Archives are read in place: members are streamed from the zip, never extracted, so a
hostile member name (``../../x``, ``/etc/x``, ``C:\\x``) is only a label and can never write
anywhere. Every byte decompressed is counted as it is read, against the caps in
``mprviewer.io.limits`` (total unpacked size per source, expansion ratio per member,
nesting depth, member count), so a zip bomb stops with a ``LimitExceeded`` error after a
few megabytes instead of filling memory or disk. Nested zips, which need random access,
are unpacked into one shared temporary file, never into memory; archives whose members
overlap (a bomb's trick) are refused. Encrypted members, unsupported compression methods,
symbolic links, special files and link loops are skipped with a reason; in a folder,
links are followed only while they stay inside the opened folder. Each candidate keeps a
human name like ``study.zip!/CT_1/IM0001`` for messages.
"""

from __future__ import annotations

import contextlib
import errno
import io
import itertools
import os
import shutil
import stat
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from mprviewer.errors import LoadCancelled, SourceError
from mprviewer.io.contained import resolves_inside
from mprviewer.io.limits import LimitExceeded, Limits, cap_hint, describe_size

JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini", "dicomdir.bak"}
JUNK_DIRS = {"__macosx", ".git", ".svn", ".mprviewer"}
# Kept for callers that read it; the cap itself is Limits.max_zip_depth.
MAX_NESTED_ZIP_DEPTH = Limits.max_zip_depth
READ_CHUNK = 1024 * 1024
READABLE_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
OTHER_METHODS = {6: "implode", 9: "deflate64", 10: "PKWARE imploding", 93: "zstandard",
                 95: "xz", 96: "jpeg", 97: "wavpack", 98: "ppmd", 99: "AES encryption"}
# Magic numbers of archives that are not zip, so the skip reason can say what they are.
OTHER_ARCHIVES = (
    (0, b"\x1f\x8b", "a gzip file"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (0, b"Rar!\x1a\x07", "a RAR archive"),
    (0, b"BZh", "a bzip2 file"),
    (0, b"\xfd7zXZ\x00", "an xz file"),
    (257, b"ustar", "a tar archive"),
)
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
               ValueError)


class DamagedMember(OSError):
    """A zip member's data cannot be decompressed (CRC error, truncated or corrupt stream)."""


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


class UnzipBudget:
    """Counts the bytes decompressed from a source's archives and enforces the caps.

    Each member is charged for the furthest position ever read from it, so re-reading a
    member (header scan, then pixels) costs nothing twice, while a member whose header
    lies about its size is still stopped by what it actually produces.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.total = 0
        self.declared = 0
        self.members = 0
        self._furthest: dict[str, int] = {}
        self._lock = threading.Lock()

    def declare(self, label: str, infos: list[zipfile.ZipInfo], archive_bytes: int) -> None:
        """Check what an archive's directory claims before anything is read.

        A compressed size is never taken as larger than the archive itself, so a directory
        that overstates it cannot make a bomb's ratio look harmless.
        """
        lim = self.limits
        with self._lock:
            self.members += len(infos)
            self.declared += sum(i.file_size for i in infos)
            members, declared = self.members, self.declared
        if members > lim.max_zip_members:
            raise LimitExceeded(
                f"{label}: holds more than {lim.max_zip_members:.0f} files. "
                f"{cap_hint('max_zip_members')}"
            )
        if declared > lim.max_unzipped_bytes:
            raise LimitExceeded(
                f"{label}: unpacks to {describe_size(declared)}, more than the limit of "
                f"{describe_size(lim.max_unzipped_bytes)}. {cap_hint('max_unzipped_bytes')}"
            )
        for info in infos:
            self._check_ratio(f"{label}!/{info.filename}", info.file_size,
                              min(info.compress_size, archive_bytes), declared_only=True)

    def charge(self, name: str, position: int, compressed: int) -> None:
        """Record that ``name`` has now given ``position`` bytes; raise past a cap."""
        with self._lock:
            before = self._furthest.get(name, 0)
            if position <= before:
                return
            self._furthest[name] = position
            self.total += position - before
            total = self.total
        if total > self.limits.max_unzipped_bytes:
            raise LimitExceeded(
                f"{name}: the archive unpacked to more than "
                f"{describe_size(self.limits.max_unzipped_bytes)} (the limit); stopped. "
                f"{cap_hint('max_unzipped_bytes')}"
            )
        self._check_ratio(name, position, compressed, declared_only=False)

    def _check_ratio(self, name: str, size: int, compressed: int, declared_only: bool) -> None:
        lim = self.limits
        if size <= lim.zip_ratio_min_bytes or size <= lim.max_zip_ratio * max(compressed, 1):
            return
        verb = "claims to expand" if declared_only else "expanded"
        ratio = size / max(compressed, 1)
        raise LimitExceeded(
            f"{name}: {verb} {ratio:.0f} times ({describe_size(compressed)} to "
            f"{'at least ' if not declared_only else ''}{describe_size(size)}), more than the "
            f"limit of {lim.max_zip_ratio:g}; the archive looks like a zip bomb and was not "
            f"unpacked. {cap_hint('max_zip_ratio')}"
        )


class GuardedMember(io.RawIOBase):
    """A seekable read-only stream over one zip member that charges every byte it produces."""

    def __init__(self, inner: zipfile.ZipExtFile, name: str, compressed: int, size: int,
                 budget: UnzipBudget, lock: threading.RLock | None = None) -> None:
        super().__init__()
        self._inner = inner
        self._lock = lock or threading.RLock()
        self.name = name
        self._compressed = compressed
        self._size = size
        self._budget = budget
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def _inner_read(self, n: int) -> bytes:
        try:
            return self._inner.read(n)
        except _ZIP_ERRORS as exc:
            raise DamagedMember(
                errno.EIO, f"damaged data in the zip archive ({exc}); the archive may be "
                f"truncated or corrupt", self.name) from exc

    def read(self, n: int | None = -1) -> bytes:
        want = float("inf") if n is None or n < 0 else n
        parts: list[bytes] = []
        while want > 0:
            chunk = self._inner_read(int(min(want, READ_CHUNK)))
            if not chunk:
                break
            self._pos += len(chunk)
            self._budget.charge(self.name, self._pos, self._compressed)
            parts.append(chunk)
            want -= len(chunk)
        return b"".join(parts)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        target = max(0, target)
        if target < self._pos:
            try:
                self._inner.seek(target)  # re-reads from the start, never past what was charged
            except _ZIP_ERRORS as exc:
                raise DamagedMember(errno.EIO, f"damaged data in the zip archive ({exc})",
                                    self.name) from exc
            self._pos = target
        while self._pos < target:  # forward: read through this stream so it is charged
            if not self.read(min(target - self._pos, READ_CHUNK)):
                break
        return self._pos

    def close(self) -> None:
        if self.closed:
            return
        # zipfile counts open members without a lock; opening and closing under the
        # archive's lock keeps that count right when several threads read members.
        with self._lock, contextlib.suppress(Exception):
            self._inner.close()
        super().close()


@dataclass
class ExpandedSource:
    """The result of expanding a source: members, what was skipped, and how to clean up."""

    label: str
    members: list[Member] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    root_folder: Path | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    limits: Limits = field(default_factory=Limits.from_env, repr=False)
    budget: UnzipBudget | None = field(default=None, repr=False)
    spill: SpillFile | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.budget is None:
            self.budget = UnzipBudget(self.limits)

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
    limits: Limits | None = None,
) -> ExpandedSource:
    """Expand a folder, zip file, single file, list of files or "demo" into members."""
    limits = limits or Limits.from_env()
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text == "demo":
            from mprviewer.synthetic.demo import demo_path

            text = str(demo_path())
        path = Path(text).expanduser()
        if not path.exists() and not path.is_symlink():
            raise SourceError(f"{text}: no such file or folder")
        out = ExpandedSource(label=str(path), limits=limits)
        try:
            if path.is_dir():
                out.root_folder = path
                _add_folder(out, path, cancel)
            else:
                _add_file(out, path, cancel, top_level=True)
        except BaseException:
            out.close()
            raise
        return out
    paths = [Path(os.fspath(p)).expanduser() for p in source]
    if not paths:
        raise SourceError("no files were given")
    out = ExpandedSource(label=f"{len(paths)} files" if len(paths) > 1 else str(paths[0]),
                         limits=limits)
    try:
        for path in paths:
            if not path.exists() and not path.is_symlink():
                raise SourceError(f"{path}: no such file or folder")
            if path.is_dir():
                _add_folder(out, path, cancel)
            else:
                _add_file(out, path, cancel, top_level=len(paths) == 1)
    except BaseException:
        out.close()
        raise
    return out


def _file_opener(path: Path) -> Callable[[], BinaryIO]:
    return lambda: open(path, "rb")


def _outside_problem(path: Path, root: Path) -> str | None:
    """The skip reason for a symbolic link that leads out of the opened folder, or None."""
    if resolves_inside(path, root):
        return None
    return (f"symbolic link to {os.path.realpath(path)}, outside the opened folder "
            f"{root}; not followed")


def _link_problem(path: Path) -> str | None:
    """Why a symbolic link cannot be followed, or None when it leads somewhere real."""
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"symbolic link loop ({path} -> {os.readlink(path)}); not followed"
        if exc.errno == errno.ENOENT:
            return f"broken symbolic link (its target {os.readlink(path)} does not exist)"
        return f"symbolic link cannot be followed: {exc.strerror or exc}"
    return None


def _add_folder(out: ExpandedSource, folder: Path, cancel: threading.Event | None) -> None:
    """Walk a folder, following links to folders once each and never round a loop."""
    try:
        root = folder.stat()
    except OSError as exc:
        raise SourceError(f"{folder}: cannot be read ({exc.strerror or exc})") from exc
    seen: dict[tuple[int, int], str] = {(root.st_dev, root.st_ino): str(folder)}

    def on_error(exc: OSError) -> None:
        out.skipped.append((str(exc.filename or folder),
                            f"folder cannot be read: {exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=on_error, followlinks=True):
        _check_cancel(cancel)
        keep = []
        for name in sorted(dirnames):
            sub = Path(dirpath) / name
            if name.lower() in JUNK_DIRS:
                continue
            try:
                st = sub.stat()
            except OSError as exc:
                out.skipped.append((str(sub), _link_problem(sub) or f"folder cannot be read: "
                                    f"{exc.strerror or exc}"))
                continue
            outside = _outside_problem(sub, folder) if sub.is_symlink() else None
            if outside is not None:
                out.skipped.append((str(sub), outside))
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                target = os.path.realpath(sub)
                inside = os.path.realpath(dirpath) + os.sep
                kind = ("symbolic link loop: it leads back to the enclosing folder "
                        if inside.startswith(target + os.sep) else
                        "symbolic link to a folder that is read already: ")
                out.skipped.append((str(sub), f"{kind}{target}; not followed"))
                continue
            seen[key] = str(sub)
            keep.append(name)
        dirnames[:] = keep
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if _is_junk(filename):
                continue
            if path.is_symlink():
                problem = _link_problem(path) or _outside_problem(path, folder)
                if problem is not None:
                    out.skipped.append((str(path), problem))
                    continue
            _add_file(out, path, cancel, top_level=False)


def _add_file(out: ExpandedSource, path: Path, cancel: threading.Event | None,
              top_level: bool) -> None:
    """Add one file: a zip is opened, a DICOMDIR followed, anything else becomes a member.

    ``top_level`` files are what the user named: a damaged one is an error. Inside a
    folder, the same problem only skips that file.
    """
    problem = _link_problem(path) if path.is_symlink() else None
    try:
        st = path.stat() if problem is None else None
    except OSError as exc:
        problem = f"cannot be read: {exc.strerror or exc}"
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        problem = "not a regular file (a pipe, socket or device); not read"
    if problem is not None:
        if top_level:
            raise SourceError(f"{path}: {problem}")
        out.skipped.append((str(path), problem))
        return
    assert st is not None
    kind = _sniff(path)
    if kind == "zip":
        try:
            _add_zip_file(out, path, cancel)
        except LimitExceeded:
            raise
        except SourceError as exc:
            if top_level:
                raise
            out.skipped.append((str(path), str(exc).removeprefix(f"{path}: ")))
        return
    if kind is not None and kind != "dicom":
        reason = f"{kind}; mprviewer opens zip archives, folders and DICOM files: extract it first"
        if top_level:
            raise SourceError(f"{path}: {reason}")
        out.skipped.append((str(path), reason))
        return
    if path.name.upper() == "DICOMDIR" and out.root_folder is None:
        from mprviewer.io.dicomdir import dicomdir_files

        # Opening a DICOMDIR opens what it indexes (files named relative to its folder).
        for indexed in dicomdir_files(path, out.skipped):
            _add_file(out, indexed, cancel, top_level=False)
        return
    out.members.append(
        Member(name=str(path), folder=str(path.parent), size=st.st_size,
               opener=_file_opener(path), path=path)
    )


def _sniff(path: Path) -> str | None:
    """'zip', 'dicom', a description of another archive format, or None (unknown)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    return sniff_bytes(head)


def sniff_bytes(head: bytes) -> str | None:
    """What the first bytes of a file say it is (see ``_sniff``)."""
    if head[128:132] == b"DICM":
        return "dicom"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    for offset, magic, description in OTHER_ARCHIVES:
        if head[offset : offset + len(magic)] == magic:
            return description
    return None


def _add_zip_file(out: ExpandedSource, path: Path, cancel: threading.Event | None) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise SourceError(
            f"{path}: not a readable zip archive: its table of contents is missing or damaged "
            f"({exc}); the file is probably truncated: copy or download it again"
        ) from exc
    except (OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise SourceError(f"{path}: not a readable zip archive ({exc})") from exc
    out._closers.append(archive.close)
    _add_zip_members(out, archive, str(path), cancel, depth=1,
                     archive_bytes=path.stat().st_size)


def _special_member(info: zipfile.ZipInfo) -> str | None:
    """Why a member is not a plain file (a link, device, ...), from its Unix mode bits."""
    if info.create_system != 3:  # only Unix zips carry file types
        return None
    mode = info.external_attr >> 16
    if not mode:
        return None
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        return "symbolic link inside the archive; links in archives are not followed"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "special file (device, pipe or socket) inside the archive; not read"
    return None


def _add_zip_members(
    out: ExpandedSource,
    archive: zipfile.ZipFile,
    label: str,
    cancel: threading.Event | None,
    depth: int,
    archive_bytes: int,
) -> None:
    assert out.budget is not None
    # Re-entrant: a member stream collected by the garbage collector closes itself (under
    # this lock) at any moment, possibly while this thread is opening another member.
    lock = threading.RLock()
    infos = [i for i in archive.infolist() if not i.is_dir()]
    _check_overlap(label, archive.infolist())
    out.budget.declare(label, infos, archive_bytes)
    for info in infos:
        _check_cancel(cancel)
        member_name = f"{label}!/{info.filename}"
        if _is_junk(info.filename):
            continue
        if info.flag_bits & 0x1:
            out.skipped.append((member_name, "encrypted (password-protected) zip member; "
                                "mprviewer cannot decrypt it: extract the archive with its "
                                "password and open the folder"))
            continue
        if info.compress_type not in READABLE_METHODS:
            method = OTHER_METHODS.get(info.compress_type, "unknown")
            out.skipped.append((member_name, f"compressed with method {info.compress_type} "
                                f"({method}), which mprviewer cannot read; re-create the zip "
                                f"with standard (deflate) compression"))
            continue
        special = _special_member(info)
        if special is not None:
            out.skipped.append((member_name, special))
            continue
        folder = f"{label}!/{PurePosixPath(info.filename).parent}"
        opener = _zip_member_opener(archive, info, lock, member_name, out.budget,
                                    min(info.compress_size, archive_bytes))
        try:
            is_zip = _member_is_zip(info, opener)
        except OSError as exc:
            out.skipped.append((member_name, f"cannot be read: {exc.strerror or exc}"))
            continue
        if is_zip:
            if depth >= out.limits.max_zip_depth:
                out.skipped.append((member_name, f"zip nested more than "
                                    f"{out.limits.max_zip_depth} levels deep; not opened. "
                                    f"{cap_hint('max_zip_depth')}"))
                continue
            compressed = max(min(info.compress_size, archive_bytes), 1)
            if info.file_size > out.limits.max_zip_ratio * compressed:
                # Unpacking means writing it out whole, so the ratio applies at any size:
                # the zips a real study holds are made of compressed images.
                raise LimitExceeded(
                    f"{member_name}: a nested zip that expands {info.file_size / compressed:.0f}"
                    f" times ({describe_size(compressed)} to {describe_size(info.file_size)}),"
                    f" more than the limit of {out.limits.max_zip_ratio:g}; the archive looks "
                    f"like a zip bomb and was not unpacked. {cap_hint('max_zip_ratio')}")
            try:
                nested = _open_nested_zip(out, info, opener, member_name)
            except LimitExceeded:
                raise
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                out.skipped.append((member_name, f"nested zip cannot be read: {exc}"))
                continue
            out._closers.append(nested.close)
            _add_zip_members(out, nested, member_name, cancel, depth + 1,
                             archive_bytes=info.file_size)
            continue
        out.members.append(
            Member(name=member_name, folder=folder, size=info.file_size, opener=opener)
        )


LOCAL_HEADER = 30  # fixed part of a zip member's local header, before its name


def _check_overlap(label: str, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse an archive whose members share or overlap their bytes.

    No zip tool writes such an archive; a bomb does, so that a few kilobytes list hundreds
    of members that each unpack to megabytes. Each member takes at least its local header
    and its compressed data before the next may start.
    """
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for before, after in itertools.pairwise(ordered):
        if after.header_offset < before.header_offset + LOCAL_HEADER + before.compress_size:
            raise LimitExceeded(
                f"{label}: members {before.filename!r} and {after.filename!r} overlap in the "
                f"archive (they share compressed bytes); no zip tool writes that, a zip bomb "
                f"does, so the archive was not unpacked")


def _zip_member_opener(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, lock: threading.RLock, name: str,
    budget: UnzipBudget, compressed: int,
) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        with lock:  # zipfile shares one file handle; reads are locked inside zipfile
            try:
                inner = archive.open(info)
            except _ZIP_ERRORS as exc:
                raise DamagedMember(errno.EIO, f"damaged zip member ({exc})", name) from exc
        return GuardedMember(inner, name, compressed, info.file_size, budget,
                             lock)  # type: ignore[return-value]

    return opener


def _member_is_zip(info: zipfile.ZipInfo, opener: Callable[[], BinaryIO]) -> bool:
    if info.file_size < 22:
        return False
    with opener() as fh:
        head = fh.read(132)
    return head[128:132] != b"DICM" and head[:4] in (b"PK\x03\x04", b"PK\x05\x06")


class SpillFile:
    """One anonymous temporary file that holds every nested zip of a source, back to back.

    Nested zips need random access, so they are unpacked; never into memory, where hundreds
    of them would be kept for as long as the study is open, and never into one open file
    each, which would run out of file handles. Regions are read with ``os.pread`` where
    there is one, so threads reading different nested zips never share a file position.
    """

    def __init__(self, limits: Limits) -> None:
        self._fh = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the source's close()
        self._limits = limits
        self._lock = threading.Lock()
        self.size = 0

    def add(self, source: BinaryIO, size_hint: int, name: str) -> SpillRegion:
        """Copy ``source`` to the end of the file; the region it now occupies."""
        free = shutil.disk_usage(tempfile.gettempdir()).free
        if size_hint + self._limits.min_free_disk_bytes > free:
            raise SourceError(
                f"{name}: not enough free disk space in {tempfile.gettempdir()} to unpack "
                f"this nested zip ({describe_size(size_hint)} needed, {describe_size(free)} "
                f"free); extract it by hand")
        with self._lock:
            start = self.size
            written = 0
            try:
                while chunk := source.read(READ_CHUNK):
                    self._fh.seek(start + written)
                    self._fh.write(chunk)
                    written += len(chunk)
            finally:
                self.size = start + written
                self._fh.flush()
        return SpillRegion(self, start, written, name)

    def read_at(self, offset: int, n: int) -> bytes:
        """``n`` bytes from ``offset``; ``os.pread`` needs no lock where there is one."""
        if hasattr(os, "pread"):
            return os.pread(self._fh.fileno(), n, offset)
        with self._lock:
            self._fh.seek(offset)
            return self._fh.read(n)

    def close(self) -> None:
        self._fh.close()


class SpillRegion(io.RawIOBase):
    """A read-only, seekable view of one nested zip inside the SpillFile."""

    def __init__(self, spill: SpillFile, start: int, length: int, name: str) -> None:
        super().__init__()
        self._spill = spill
        self._start = start
        self._length = length
        self._pos = 0
        self.name = name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, n: int | None = -1) -> bytes:
        left = max(0, self._length - self._pos)
        n = left if n is None or n < 0 else min(n, left)
        data = self._spill.read_at(self._start + self._pos, n) if n else b""
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)


def _open_nested_zip(
    out: ExpandedSource, info: zipfile.ZipInfo, opener: Callable[[], BinaryIO], name: str
) -> zipfile.ZipFile:
    """Unpack a nested zip into the source's spill file (charged to the unzip budget)."""
    if out.spill is None:
        out.spill = SpillFile(out.limits)
        out._closers.insert(0, out.spill.close)  # closed last, after the archives in it
    with opener() as fh:
        region = out.spill.add(fh, info.file_size, name)
    return zipfile.ZipFile(region)  # type: ignore[arg-type]


def iter_members(expanded: ExpandedSource) -> Iterator[Member]:
    """The members in a stable order (by name)."""
    return iter(sorted(expanded.members, key=lambda m: m.name))
