"""Series decoded once per server and mapped read-only by every session that opens them.

Sessions are separate processes, so they cannot share Python objects; they share files. The
first session to load a series writes its voxels as a ``.npy`` file (plus the volume's
facts as JSON) into the server's cache folder, then maps it read-only like every later
session: the operating system keeps one copy in its page cache however many tabs show it,
and a later tab skips decoding. A series is only shared between sessions that opened the
same bytes: the same file or folder (path, size and modification time) or an upload with
the same SHA-256, never on the strength of UIDs a file could copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def source_identity(source: str) -> str | None:
    """What makes a local source the same bytes again; None for anything else (URLs)."""
    path = Path(source)
    try:
        stat = path.stat()
    except OSError:
        return None
    if not path.is_dir():
        return f"path:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    # A folder is the same bytes when every file in it is: its own modification time says
    # only that an entry came or went (an autosave, a writability probe), not what changed.
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != ".mprviewer")  # our own sidecars
        for name in sorted(files):
            try:
                info = os.stat(os.path.join(folder, name))
            except OSError:
                continue
            rel = os.path.relpath(os.path.join(folder, name), path)
            digest.update(f"{rel}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return f"folder:{path.resolve()}:{digest.hexdigest()}"


def upload_identity(path: Path) -> str | None:
    """The SHA-256 the launcher wrote for an upload it received (in the session folder's
    ``digests``, beside ``uploads``, where no upload can land)."""
    try:
        digest = (path.parent.parent / "digests" / path.name).read_text().strip()
    except OSError:
        return None
    return f"sha256:{digest}" if len(digest) == 64 else None


class VolumeCache:
    """Load a series through the server's shared cache (see the module docstring)."""

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder else None

    def _paths(self, identity: str, series: Any) -> tuple[Path, Path]:
        key = hashlib.sha256(
            json.dumps([identity, series.uid, series.name, list(series.shape)]).encode()
        ).hexdigest()[:32]
        assert self.folder is not None
        return self.folder / f"{key}.npy", self.folder / f"{key}.json"

    def load(self, series: Any, identity: str | None) -> Any:
        """The series' Volume: mapped from the cache, or decoded (and then cached)."""
        if self.folder is None or identity is None:
            return series.load()
        data, facts = self._paths(identity, series)
        if data.exists() and facts.exists():
            with contextlib.suppress(OSError, ValueError, KeyError):
                return _read(data, facts)
        volume = series.load()
        try:
            _write(volume, data, facts)
            return _read(data, facts)
        except (OSError, ValueError, KeyError):
            return volume  # no room to share: this session keeps its own copy


def _write(volume: Any, data: Path, facts: Path) -> None:
    data.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "affine": np.asarray(volume.affine).tolist(),
        "warnings": list(volume.warnings),
        "series_uid": volume.series_uid,
        "study_uid": volume.study_uid,
        "name": volume.name,
        "modality": volume.modality,
        "units": volume.units,
        "window": list(volume.window) if volume.window else None,
        "sop_instance_uids": list(volume.sop_instance_uids),
        "sop_class_uid": volume.sop_class_uid,
        "slice_positions": None if volume.slice_positions is None
        else np.asarray(volume.slice_positions).tolist(),
    }
    for target, write in ((data, lambda f: np.save(f, np.ascontiguousarray(volume.array))),
                          (facts, lambda f: f.write(json.dumps(meta).encode()))):
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _read(data: Path, facts: Path) -> Any:
    from mprviewer.io.volume import Volume

    meta = json.loads(facts.read_text())
    array = np.load(data, mmap_mode="r")
    return Volume(
        array=array,
        affine=np.asarray(meta["affine"]),
        warnings=list(meta["warnings"]),
        series_uid=meta["series_uid"],
        study_uid=meta["study_uid"],
        name=meta["name"],
        modality=meta["modality"],
        units=meta["units"],
        window=tuple(meta["window"]) if meta["window"] else None,
        sop_instance_uids=list(meta["sop_instance_uids"]),
        sop_class_uid=meta["sop_class_uid"],
        slice_positions=None if meta["slice_positions"] is None
        else np.asarray(meta["slice_positions"]),
    )
