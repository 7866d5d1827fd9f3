"""Private temporary folders that go away when their study is closed, and at exit at the latest.

Downloads land here. Every folder is created with ``tempfile.mkdtemp`` (mode 0700, a
fresh random name), recorded, and removed by the callable handed back or, for anything
still left, by an ``atexit`` hook, so a crash of the viewer's logic never leaves gigabytes
behind in /tmp for the next session. ``install_signal_cleanup`` extends that to SIGTERM and
SIGHUP (a logout, ``kill``, a closed terminal), which skip ``atexit``: the folders are removed
and the process then ends as the signal asks, with the conventional status.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
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


def register(folder: Path) -> None:
    """Track a folder made elsewhere (a PACS retrieval in progress) until ``forget``."""
    global _hook_installed
    with _lock:
        _folders.add(Path(folder))
        if not _hook_installed:
            atexit.register(remove_all)
            _hook_installed = True


def forget(folder: Path) -> None:
    """Stop tracking a folder that has become something to keep (a complete cache entry)."""
    with _lock:
        _folders.discard(Path(folder))


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


_installed_signals: set[int] = set()


def _on_signal(signum: int, frame: object) -> None:
    remove_all()
    remove_all()  # a writer thread may have created a file while the first pass ran
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)  # end as the signal asks: exit status 128 + signum


def install_signal_cleanup() -> None:
    """On SIGTERM or SIGHUP remove every registered folder, then die of that signal.

    Only the main thread can install handlers; elsewhere (and where a handler other than
    the default is already set) this does nothing.
    """
    import threading as _threading

    if _threading.current_thread() is not _threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is None or signum in _installed_signals:
            continue
        if signal.getsignal(signum) not in (signal.SIG_DFL, None):
            continue
        signal.signal(signum, _on_signal)
        _installed_signals.add(signum)
