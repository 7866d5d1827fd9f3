"""Private temporary folders that go away when their study is closed, and at exit at the latest.

Downloads land here. Every folder is created with ``tempfile.mkdtemp`` (mode 0700, a
fresh random name), recorded, and removed by the callable handed back or, for anything
still left, by an ``atexit`` hook, so a crash of the viewer's logic never leaves gigabytes
behind in /tmp for the next session.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

PREFIX = "mprviewer-"

_lock = threading.Lock()
_folders: set[Path] = set()
_hook_installed = False


def make_temp_dir(purpose: str = "tmp") -> tuple[Path, Callable[[], None]]:
    """A new private folder and a callable that removes it (safe to call twice)."""
    global _hook_installed
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{purpose}-"))
    with _lock:
        _folders.add(folder)
        if not _hook_installed:
            atexit.register(remove_all)
            _hook_installed = True

    def cleanup() -> None:
        remove(folder)

    return folder, cleanup


def remove(folder: Path) -> None:
    """Remove one registered folder and everything in it."""
    with _lock:
        _folders.discard(folder)
    shutil.rmtree(folder, ignore_errors=True)


def live_folders() -> list[Path]:
    """Folders created and not yet removed (for tests and diagnostics)."""
    with _lock:
        return sorted(_folders)


def remove_all() -> None:
    """Remove every folder still registered (runs at interpreter exit)."""
    with _lock:
        folders = list(_folders)
        _folders.clear()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
