"""DICOMDIR media directories: the files a CD's index points at."""

from __future__ import annotations

from pathlib import Path

from mprviewer.errors import SourceError


def dicomdir_files(path: Path) -> list[Path]:
    """Paths of the image files a DICOMDIR references, relative to its folder."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise SourceError(f"{path}: not a readable DICOMDIR ({exc})") from exc
    root = path.parent
    files: list[Path] = []
    for record in ds.get("DirectoryRecordSequence", []):
        parts = record.get("ReferencedFileID")
        if not parts:
            continue
        if isinstance(parts, str):
            parts = [parts]
        candidate = root.joinpath(*[str(p) for p in parts])
        if not candidate.exists():
            # CDs are often copied with changed case; match case-insensitively.
            candidate = _case_insensitive(root, [str(p) for p in parts]) or candidate
        files.append(candidate)
    if not files:
        raise SourceError(f"{path}: the DICOMDIR references no files")
    return files


def _case_insensitive(root: Path, parts: list[str]) -> Path | None:
    current = root
    for part in parts:
        try:
            match = next((c for c in current.iterdir() if c.name.lower() == part.lower()), None)
        except OSError:
            return None
        if match is None:
            return None
        current = match
    return current
