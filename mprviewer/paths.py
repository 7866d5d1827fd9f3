"""Per-user folders: the demo study cache, annotation sidecars for read-only sources, downloads.

The data folder may be read-only (a locked-down profile, a full or read-only disk, a wrong
``MPRVIEWER_HOME``). Creating something in it then raises ``DataFolderError``, which names the
folder and what to do; ``data_dir_problem`` says so in advance, for the viewer to warn that
marks cannot be autosaved there.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from mprviewer.errors import DataFolderError


def data_dir_path() -> Path:
    """Where the per-user data folder is (``MPRVIEWER_HOME`` overrides it); not created."""
    override = os.environ.get("MPRVIEWER_HOME")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("mprviewer", appauthor=False))


def _unwritable(path: Path, exc: OSError) -> DataFolderError:
    return DataFolderError(
        f"the per-user data folder cannot be written: {path}: {exc.strerror or exc}; set "
        "MPRVIEWER_HOME to a folder you can write to"
    )


def data_dir() -> Path:
    """The per-user data folder, created on demand (DataFolderError when it cannot be)."""
    path = data_dir_path()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(path, exc) from None
    return path


def sub_dir(name: str) -> Path:
    """A named folder inside the data folder, created on demand (DataFolderError when it
    cannot be)."""
    path = data_dir() / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(path, exc) from None
    return path


def folder_problem(folder: Path) -> str:
    """Why nothing can be saved in ``folder``, or "" when it can.

    Tries a real write in ``folder``, or in its nearest existing parent when it does not exist
    yet (nothing is created): permission bits tell nothing about read-only disks, and root
    passes every permission check."""
    target = Path(folder)
    while not target.exists() and target.parent != target:
        target = target.parent
    try:
        if not target.is_dir():
            raise NotADirectoryError(20, "not a folder", str(target))
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=target)
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)
    except OSError as exc:
        return f"{folder}: {exc.strerror or exc}"
    return ""


def data_dir_problem() -> str:
    """Why the per-user data folder cannot be written, or "" when it can."""
    return folder_problem(data_dir_path())
