"""DICOMDIR media directories: the files a CD's index points at.

Opening a DICOMDIR opens what it indexes. CDs get copied in ways that break the index
literally: names change case, ISO 9660 version suffixes (";1") appear or vanish, records
point at files that were not copied. Such files are matched leniently, with one listing
per folder (an index of thousands of records costs one pass); a record that would leave the
DICOMDIR's folder ("..", absolute paths, a symbolic link out of it) is skipped with its
reason; and when the index itself cannot be read (damaged, or past the header cap), every
file beside it is offered instead, so the images still open.
"""

from __future__ import annotations

import os
from pathlib import Path

from mprviewer.errors import SourceError
from mprviewer.io.bounded import BoundedHeader, HeaderTooLong
from mprviewer.io.contained import resolves_inside
from mprviewer.io.limits import Limits, cap_hint, describe_size


def _read(path: Path):  # type: ignore[no-untyped-def]
    """The index, read within the header cap (a DICOMDIR is all header)."""
    import pydicom

    cap = Limits.from_env().max_header_bytes
    try:
        size = path.stat().st_size
        if size > cap:
            raise HeaderTooLong(f"{describe_size(size)}, more than the header limit of "
                                f"{describe_size(cap)}. {cap_hint('max_header_bytes')}")
        with open(path, "rb") as fh:
            return pydicom.dcmread(BoundedHeader(fh, cap, str(path)), force=True)
    except Exception as exc:  # pydicom raises many kinds on a damaged index
        raise SourceError(f"{path}: not a readable DICOMDIR ({exc})") from exc


def referenced_ids(path: Path) -> list[list[str]]:
    """ReferencedFileID components of every record in use, in index order, without repeats."""
    ds = _read(path)
    records = ds.get("DirectoryRecordSequence")
    if records is None:
        raise SourceError(f"{path}: not a DICOMDIR (no DirectoryRecordSequence)")
    seen: set[tuple[str, ...]] = set()
    found: list[list[str]] = []
    for record in records:
        if record.get("RecordInUseFlag", 0xFFFF) == 0:
            continue  # deleted record
        parts = record.get("ReferencedFileID")
        if not parts:
            continue
        if isinstance(parts, str):
            parts = parts.replace("/", "\\").split("\\")
        clean = [str(p).strip() for p in parts if str(p).strip()]
        key = tuple(clean)
        if clean and key not in seen:
            seen.add(key)
            found.append(clean)
    return found


def dicomdir_files(path: Path, skipped: list[tuple[str, str]] | None = None) -> list[Path]:
    """Paths of the files a DICOMDIR references, relative to its folder.

    Files that are referenced but missing are still returned (the scan reports them as
    unreadable, so the user sees what the CD lacks). A record that leaves the DICOMDIR's
    folder, by its name ("..", an absolute path) or through a symbolic link, is not
    returned: its reason goes to ``skipped`` when given. Names are matched leniently with
    one listing per folder, so an index of many thousands of records costs one pass.
    """
    path = Path(path)
    root = path.parent
    try:
        ids = referenced_ids(path)
    except SourceError:
        fallback = _folder_files(root, path, skipped)
        if fallback:
            return fallback
        raise
    files: list[Path] = []
    listings: dict[Path, dict[str, Path] | None] = {}
    for parts in ids:
        shown = "\\".join(parts)
        if any(p in ("..", ".") or p.startswith(("/", "\\")) or ":" in p or "\x00" in p
               for p in parts):
            if skipped is not None:
                skipped.append((f"{path}!/{shown}", "DICOMDIR record points outside the "
                                "medium's folder; not read"))
            continue  # never leave the medium's folder
        candidate = root.joinpath(*parts)
        if not candidate.exists():
            candidate = _lenient(root, parts, listings) or candidate
        if not resolves_inside(candidate, root):
            if skipped is not None:
                skipped.append((str(candidate), "DICOMDIR record leads through a symbolic "
                                f"link to {os.path.realpath(candidate)}, outside the "
                                "medium's folder; not read"))
            continue
        files.append(candidate)
    if not files:
        fallback = _folder_files(root, path, skipped)
        if fallback:
            return fallback
        raise SourceError(f"{path}: the DICOMDIR references no files and its folder holds "
                          "none; open the folder that holds the images instead")
    return files


def _base(name: str) -> str:
    """A name as copied CDs spell it in any form: lower case, no ';1', no trailing dot."""
    base = name.lower()
    if base.endswith(";1"):
        base = base[:-2]
    return base.rstrip(".")


def _listing(folder: Path, listings: dict[Path, dict[str, Path] | None]
             ) -> dict[str, Path] | None:
    """A folder's entries by ``_base`` name (the first in sorted order wins), read once."""
    if folder not in listings:
        try:
            entries: dict[str, Path] = {}
            for child in sorted(folder.iterdir()):
                entries.setdefault(_base(child.name), child)
            listings[folder] = entries
        except OSError:
            listings[folder] = None
    return listings[folder]


def _lenient(root: Path, parts: list[str],
             listings: dict[Path, dict[str, Path] | None]) -> Path | None:
    current = root
    for part in parts:
        entries = _listing(current, listings)
        match = entries.get(_base(part)) if entries is not None else None
        if match is None:
            return None
        current = match
    return current


def _folder_files(root: Path, dicomdir: Path,
                  skipped: list[tuple[str, str]] | None = None) -> list[Path]:
    """Every file below the DICOMDIR's folder except the index itself (the fallback);
    symbolic links that lead out of the folder are left out."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            candidate = Path(dirpath) / name
            if candidate == dicomdir or name.upper() == "DICOMDIR":
                continue
            if not resolves_inside(candidate, root):
                if skipped is not None:
                    skipped.append((str(candidate), "symbolic link to "
                                    f"{os.path.realpath(candidate)}, outside the medium's "
                                    "folder; not followed"))
                continue
            files.append(candidate)
    return files
