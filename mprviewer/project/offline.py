"""The local queue that keeps a reader's changes while the shared database is unreachable.

Each change is the event rows it would have inserted, with their event ids already chosen,
appended to ``offline-queue.jsonl`` in the project folder (one JSON line per change, fsync'd,
under a file lock so several processes of the same folder can share it). When the database
answers again the rows are sent in order with "insert unless that event id is stored"; only
then are they removed from the file. So a change is never lost (it is on disk before the
call returns) and never doubled (a resend after a half-finished send stores nothing new).
Rows the database refuses (the study was reassigned meanwhile, the readings were closed)
are moved to ``offline-conflicts.jsonl`` and shown, not dropped.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

QUEUE_FILE = "offline-queue.jsonl"
CONFLICTS_FILE = "offline-conflicts.jsonl"
LOCK_FILE = ".offline-queue.lock"


class OfflineQueue:
    """Changes waiting for the database, on disk in the project folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / QUEUE_FILE
        self.conflicts_path = self.folder / CONFLICTS_FILE

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
            except ImportError:  # no fcntl (Windows): one process per folder
                pass
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def put(self, rows: list[dict[str, Any]]) -> None:
        """Keep one change (its event rows) until it is sent."""
        line = json.dumps(rows, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._locked(), open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def pending(self) -> list[list[dict[str, Any]]]:
        """The changes not sent yet, oldest first."""
        return _read(self.path)

    def conflicts(self) -> list[list[dict[str, Any]]]:
        """Changes the database refused when they were sent."""
        return _read(self.conflicts_path)

    def __len__(self) -> int:
        return len(self.pending())

    def send(self, deliver: Any, refused: Any) -> int:
        """Send every queued change with ``deliver(rows)`` in order, under the lock; a change
        for which ``refused(exc)`` is true goes to the conflicts file. Stops at the first
        other failure (the database went away again) and keeps the rest. Returns the number
        of changes sent."""
        sent = 0
        with self._locked():
            changes = _read(self.path)
            if not changes:
                return 0
            done = 0
            try:
                for rows in changes:
                    try:
                        deliver(rows)
                    except Exception as exc:
                        if not refused(exc):
                            raise
                        with open(self.conflicts_path, "a", encoding="utf-8") as fh:
                            fh.write(json.dumps(rows, ensure_ascii=False) + "\n")
                            fh.flush()
                            os.fsync(fh.fileno())
                    else:
                        sent += 1
                    done += 1
            finally:
                _rewrite(self.path, changes[done:])
        return sent


def _read(path: Path) -> list[list[dict[str, Any]]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except ValueError:  # a line cut short by a crash mid-write: it was never confirmed
            continue
    return out


def _rewrite(path: Path, changes: list[list[dict[str, Any]]]) -> None:
    from mprviewer.project.common import atomic_write_text

    if not changes:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    atomic_write_text(path, "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in changes))
