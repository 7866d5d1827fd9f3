"""Names of files the program writes never come unchecked from data.

A server, an archive or a DICOMDIR decides the UIDs and descriptions that end up in file
and folder names. Before any of them becomes part of a path it goes through here: UIDs must
be DICOM UIDs (digits and dots), and every path built from a name must stay inside the
folder it was built in, so ``../../x`` or ``/abs/x`` from a hostile peer is refused, never
written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mprviewer.errors import DicomError

MAX_UID_LENGTH = 64
_UID_RE = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
_LENIENT_UID_RE = re.compile(r"[0-9]+(?:\.[0-9]+)*")


class UnsafePathError(DicomError):
    """Data asked for a file name outside its folder, or a UID that is not a UID."""


def is_dicom_uid(text: object, *, strict: bool = False) -> bool:
    """True for a DICOM UID: digits and dots, no empty component, at most 64 characters.

    Leading zeros in a component break the standard but are common in old data and harmless
    in a file name, so only ``strict`` refuses them.
    """
    if not isinstance(text, str) or not 0 < len(text) <= MAX_UID_LENGTH:
        return False
    return (_UID_RE if strict else _LENIENT_UID_RE).fullmatch(text) is not None


def checked_uid(text: object, what: str = "UID") -> str:
    """``text`` if it is a DICOM UID, else :class:`UnsafePathError` naming it."""
    if not is_dicom_uid(text):
        raise UnsafePathError(f"{what} {_shown(text)} is not a valid DICOM UID (digits and "
                              f"dots, at most {MAX_UID_LENGTH} characters); refused")
    return str(text)


_quieted = False


def quiet_uid_warnings() -> None:
    """Keep pydicom's own 'Invalid value for VR UI' warnings off the terminal.

    Received UIDs are checked here before they name anything, with a clear error; pydicom's
    warning about the same value, printed first with a source line, only hides that message.
    """
    global _quieted
    if not _quieted:
        import warnings

        warnings.filterwarnings("ignore", message=r".*Invalid value for VR UI",
                                category=UserWarning)
        _quieted = True


def child_path(folder: Path | str, name: str) -> Path:
    """``folder / name``, refusing any name that is not a plain file name inside ``folder``.

    A name with a separator, ``.`` or ``..``, a NUL, or one that resolves (through links
    already on disk) to somewhere outside ``folder`` raises :class:`UnsafePathError`.
    """
    folder = Path(folder)
    if (not isinstance(name, str) or name in ("", ".", "..") or "\x00" in name
            or "/" in name or "\\" in name or (os.altsep and os.altsep in name)):
        raise UnsafePathError(f"the name {_shown(name)} is not a plain file name; refused "
                              f"to write it in {folder}")
    path = folder / name
    base = folder.resolve()
    resolved = path.resolve()
    if resolved.parent != base:
        raise UnsafePathError(f"the name {_shown(name)} leads outside {folder}; refused")
    return path


def _shown(value: object) -> str:
    """A value as an error message shows it: quoted, control characters escaped, short."""
    text = repr(str(value))
    return text if len(text) <= 80 else text[:77] + "...'"
