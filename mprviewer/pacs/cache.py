"""The per-user cache of retrieved studies, so reopening is instant and works offline.

Layout under ``mprviewer.paths.sub_dir("pacs-cache")``::

    <key>/            one retrieved study or series: only .dcm files (what the loader opens)
    <key>.json        what it is: server address, UIDs, file count, size, retrieval time
    .partial-<pid>-*  a retrieval in progress

A retrieval writes into a ``.partial-*`` folder and renames it to ``<key>`` only once every file is
in, so a ``<key>`` folder is always complete: a failed, cancelled or killed retrieval leaves no
entry (stale partial folders are removed later). The folder's modification time is its last use;
past the size cap the least recently used entries are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mprviewer.io import tempfiles

DEFAULT_LIMIT_MB = 4096
ENV_LIMIT_MB = "MPRVIEWER_PACS_CACHE_MB"
PARTIAL_PREFIX = ".partial-"
_STALE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class CacheEntry:
    path: Path
    size: int  # bytes
    last_used: float  # epoch seconds
    info: dict


def cache_root() -> Path:
    from mprviewer.paths import sub_dir

    return sub_dir("pacs-cache")


def limit_bytes() -> int:
    """The size cap: ``MPRVIEWER_PACS_CACHE_MB``, else ``cache_mb`` in pacs.json, else 4 GiB."""
    value = os.environ.get(ENV_LIMIT_MB)
    if not value:
        try:
            from mprviewer.pacs.servers import load_config

            value = load_config().get("cache_mb")
        except Exception:  # a broken settings file must not stop reading the cache
            value = None
    try:
        megabytes = float(value) if value not in (None, "") else DEFAULT_LIMIT_MB
    except (TypeError, ValueError):
        megabytes = DEFAULT_LIMIT_MB
    return max(0, int(megabytes * 1024 * 1024))


def entry_key(server_key: str, study_uid: str, series_uid: str | None = None) -> str:
    """A file-name-safe key for one study (or series) of one server."""
    digest = hashlib.sha256(f"{server_key}\n{study_uid}\n{series_uid or ''}".encode()).hexdigest()
    return digest[:24]


def lookup(server_key: str, study_uid: str, series_uid: str | None = None) -> Path | None:
    """The cached folder for this study/series, marked as just used, or None."""
    path = cache_root() / entry_key(server_key, study_uid, series_uid)
    if not path.is_dir():
        return None
    with contextlib.suppress(OSError):
        os.utime(path)
    return path


def _folder_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


@dataclass
class PendingEntry:
    """A retrieval being written: fill ``folder``; ``path`` is the entry once committed."""

    folder: Path
    path: Path | None = None


@contextlib.contextmanager
def writing(
    server_key: str, study_uid: str, series_uid: str | None = None, info: dict | None = None
) -> Iterator[PendingEntry]:
    """Yield an empty folder to fill; on success it becomes the cache entry, else it vanishes."""
    root = cache_root()
    clean_partials()
    tmp = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{os.getpid()}-", dir=root))
    tempfiles.register(tmp)  # removed on SIGTERM/SIGHUP and at exit, like a download
    pending = PendingEntry(folder=tmp)
    try:
        try:
            yield pending
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            pending.path = _commit(tmp, server_key, study_uid, series_uid, info or {})
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        tempfiles.forget(tmp)


def _commit(tmp: Path, server_key: str, study_uid: str, series_uid: str | None, info: dict) -> Path:
    root = cache_root()
    key = entry_key(server_key, study_uid, series_uid)
    final = root / key
    size = _folder_size(tmp)
    manifest = {
        **info,
        "server": server_key,
        "study_uid": study_uid,
        "series_uid": series_uid,
        "files": sum(1 for p in tmp.rglob("*") if p.is_file()),
        "size": size,
        "retrieved": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (root / f"{key}.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    if final.exists():  # someone else cached it meanwhile: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        try:
            os.replace(tmp, final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not final.exists():
                raise
    os.utime(final)
    evict(keep=final)
    return final


def entries() -> list[CacheEntry]:
    """Complete cache entries, least recently used first."""
    found = []
    for path in cache_root().iterdir():
        if not path.is_dir() or path.name.startswith("."):
            continue
        info: dict = {}
        with contextlib.suppress(OSError, ValueError):
            info = json.loads((path.parent / f"{path.name}.json").read_text(encoding="utf-8"))
        size = info.get("size") if isinstance(info.get("size"), int) else _folder_size(path)
        try:
            last_used = path.stat().st_mtime
        except OSError:
            continue
        found.append(CacheEntry(path=path, size=int(size), last_used=last_used, info=info))
    found.sort(key=lambda e: (e.last_used, e.path.name))
    return found


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    (path.parent / f"{path.name}.json").unlink(missing_ok=True)


def evict(limit: int | None = None, keep: Path | None = None) -> list[Path]:
    """Remove least recently used entries until the cache fits ``limit`` bytes."""
    limit = limit_bytes() if limit is None else limit
    current = entries()
    total = sum(e.size for e in current)
    removed = []
    for entry in current:
        if total <= limit:
            break
        if keep is not None and entry.path == keep:
            continue
        remove(entry.path)
        total -= entry.size
        removed.append(entry.path)
    for manifest in cache_root().glob("*.json"):  # manifests whose folder is gone
        if not (manifest.parent / manifest.stem).is_dir():
            manifest.unlink(missing_ok=True)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_partials() -> None:
    """Remove partial folders left by retrievals that died (their process is gone or old)."""
    now = time.time()
    for path in cache_root().glob(f"{PARTIAL_PREFIX}*"):
        try:
            pid = int(path.name[len(PARTIAL_PREFIX) :].split("-", 1)[0])
        except ValueError:
            pid = -1
        try:
            age = now - path.stat().st_mtime
        except OSError:
            continue
        if pid <= 0 or not _pid_alive(pid) or age > _STALE_SECONDS:
            shutil.rmtree(path, ignore_errors=True)


def clear() -> None:
    """Empty the cache (complete entries; running retrievals keep their partial folders)."""
    for entry in entries():
        remove(entry.path)
