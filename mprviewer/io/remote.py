"""Sources that are not on disk yet (URLs, PACS). Each returns None when a source isn't theirs."""

from __future__ import annotations

import threading
from typing import Any

from mprviewer.errors import SourceError
from mprviewer.io.sources import ExpandedSource


def is_url(source: Any) -> bool:
    return isinstance(source, str) and "://" in source[:16]


def expand_remote(
    source: Any, progress: Any = None, cancel: threading.Event | None = None
) -> ExpandedSource | None:
    """Fetch a remote source to local files and expand those; None for local sources."""
    if not is_url(source):
        return None
    scheme = source.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise SourceError(f"{source}: only http and https URLs can be opened")
    raise SourceError(f"{source}: opening URLs is not supported yet")
