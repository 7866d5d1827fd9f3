"""Sources that are not on disk yet: DICOMweb study URLs and plain http(s) downloads.

Each is fetched to local files first (a per-user cache for PACS studies, a private temp
file for downloads) and then expanded like any local source.

io sits below the PACS package, so it cannot import it: ``mprviewer.pacs`` registers its
DICOMweb retrieval here with :func:`register_opener` when it is imported, and
``mprviewer.open_study`` imports it for URLs. Anything no opener claims is downloaded.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mprviewer.errors import SourceError
from mprviewer.io.credentials import is_url, strip_credentials, url_label
from mprviewer.io.sources import ExpandedSource, expand_source

# (url, progress, cancel) -> local folder holding the study, or None when not its kind of URL.
RemoteOpener = Callable[[str, Any, "threading.Event | None"], "Path | None"]
_OPENERS: list[RemoteOpener] = []
__all__ = ["expand_remote", "is_url", "register_opener", "strip_credentials", "url_label"]


def register_opener(opener: RemoteOpener) -> None:
    """Let a package above io fetch URLs of its kind (the PACS cache does DICOMweb studies)."""
    if opener not in _OPENERS:
        _OPENERS.append(opener)


def expand_remote(
    source: Any, progress: Any = None, cancel: threading.Event | None = None
) -> ExpandedSource | None:
    """Fetch a remote source to local files and expand those; None for local sources."""
    if not is_url(source):
        return None
    scheme = source.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise SourceError(f"{url_label(source)}: only http and https URLs can be opened")
    for opener in list(_OPENERS):
        folder = opener(source, progress, cancel)
        if folder is not None:
            expanded = expand_source(folder, cancel=cancel)
            expanded.label = url_label(source)
            return expanded
    if importlib.util.find_spec("mprviewer.io.download") is None:
        raise SourceError(f"{url_label(source)}: opening URLs is not supported in this version")
    from mprviewer.io.download import download

    path, cleanup = download(source, progress=progress, cancel=cancel)
    try:
        expanded = expand_source(path, cancel=cancel)
    except BaseException:
        cleanup()
        raise
    expanded.label = url_label(source)
    expanded._closers.insert(0, cleanup)
    return expanded
