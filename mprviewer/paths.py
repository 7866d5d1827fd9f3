"""Per-user folders: the demo study cache, annotation sidecars for read-only sources, downloads."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The per-user data folder; ``MPRVIEWER_HOME`` overrides it (tests, portable installs)."""
    override = os.environ.get("MPRVIEWER_HOME")
    if override:
        path = Path(override).expanduser()
    else:
        from platformdirs import user_data_dir

        path = Path(user_data_dir("mprviewer", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def sub_dir(name: str) -> Path:
    """A named folder inside the data folder, created on demand."""
    path = data_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
