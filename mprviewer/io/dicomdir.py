"""DICOMDIR media directories: the files a CD's index points at.

Opening a DICOMDIR opens what it indexes. CDs get copied in ways that break the index
literally: names change case, ISO 9660 version suffixes (";1") appear or vanish, records
point at files that were not copied. Such files are matched leniently; a record that would
leave the DICOMDIR's folder ("..", absolute paths) is ignored; and when the index itself
cannot be read, every file beside it is offered instead, so the images still open.
"""

from __future__ import annotations

import os
from pathlib import Path

from mprviewer.errors import SourceError


def _read(path: Path):  # type: ignore[no-untyped-def]
    import pydicom

    try:
        return pydicom.dcmread(path, force=True)
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


def dicomdir_files(path: Path) -> list[Path]:
    """Paths of the files a DICOMDIR references, relative to its folder.

    Files that are referenced but missing are still returned (the scan reports them as
    unreadable, so the user sees what the CD lacks).
    """
    path = Path(path)
    root = path.parent
    try:
        ids = referenced_ids(path)
    except SourceError:
        fallback = _folder_files(root, path)
        if fallback:
            return fallback
        raise
    files: list[Path] = []
    for parts in ids:
        if any(p in ("..", ".") or p.startswith(("/", "\\")) or ":" in p for p in parts):
            continue  # never leave the medium's folder
        candidate = root.joinpath(*parts)
        if not candidate.exists():
            candidate = _lenient(root, parts) or candidate
        files.append(candidate)
    if not files:
        fallback = _folder_files(root, path)
        if fallback:
            return fallback
        raise SourceError(f"{path}: the DICOMDIR references no files and its folder holds "
                          "none; open the folder that holds the images instead")
    return files


def _variants(name: str) -> set[str]:
    """Forms a name takes on copied CDs: any case, with or without ';1' and a trailing dot."""
    base = name.lower()
    if base.endswith(";1"):
        base = base[:-2]
    base = base.rstrip(".")
    return {base, base + ".", base + ";1", base + ".;1"}


def _lenient(root: Path, parts: list[str]) -> Path | None:
    current = root
    for part in parts:
        wanted = _variants(part)
        try:
            match = next((c for c in sorted(current.iterdir()) if c.name.lower() in wanted),
                         None)
        except OSError:
            return None
        if match is None:
            return None
        current = match
    return current


def _folder_files(root: Path, dicomdir: Path) -> list[Path]:
    """Every file below the DICOMDIR's folder except the index itself (the fallback)."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            candidate = Path(dirpath) / name
            if candidate != dicomdir and name.upper() != "DICOMDIR":
                files.append(candidate)
    return files
