"""Errors from talking to a PACS. Each names the server (never its credentials) and what failed."""

from __future__ import annotations

from mprviewer.errors import DicomError, LoadCancelled, NoImagesError


class PacsError(DicomError):
    """A PACS or DICOMweb server could not be reached, refused a request or answered nonsense."""


class PacsConnectionError(PacsError):
    """Nothing answered: server down, wrong host or port, TLS failure, timeout."""


class PacsAuthError(PacsError):
    """The server wants (other) credentials: HTTP 401/403 or a rejected association."""


class PacsNotFoundError(PacsError):
    """The server has no such study or series (HTTP 404 or an empty answer)."""


class PacsProtocolError(PacsError):
    """The server answered, but not in DICOMweb/DIMSE terms (an HTML page, a broken reply)."""


class PacsNoImagesError(PacsError, NoImagesError):
    """The study or series exists on the server but holds no instances."""


class PacsCancelled(PacsError, LoadCancelled):
    """The user cancelled a search or retrieval; nothing was kept."""
