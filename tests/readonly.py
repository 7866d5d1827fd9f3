"""A folder nothing can be written to, for tests of a read-only data folder.

Permission bits do it for ordinary users; root passes every permission check, so as root the
folder becomes a read-only tmpfs mount (the test machine runs as root), and where mounting is
not allowed either, a path below a regular file (which no one can create anything in).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from mprviewer.paths import folder_problem


@contextlib.contextmanager
def read_only_folder(path: Path) -> Iterator[Path]:
    """Yields a folder at (or, failing all else, below) ``path`` that cannot be written."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = False
    os.chmod(path, 0o555)
    if not folder_problem(path):  # root: permission bits do not bind
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)],
                              capture_output=True, check=False)
        mounted = done.returncode == 0
    target = path
    if not folder_problem(path):
        blocker = path / "blocker"
        blocker.write_text("a file, not a folder")
        target = blocker / "home"
    assert folder_problem(target), "could not make a read-only folder"
    try:
        yield target
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], check=False)
        os.chmod(path, 0o755)
