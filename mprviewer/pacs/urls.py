"""Recognise DICOMweb study and series URLs, so ``open_study(url)`` can read them via WADO-RS.

``http(s)://host[:port]/<root>/studies/<StudyInstanceUID>[/series/<SeriesInstanceUID>]``: the part
before ``/studies/`` is the DICOMweb root. Anything else over http(s) is an ordinary download.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

_UID = r"[0-9]+(?:\.[0-9]+)*"
_PATH_RE = re.compile(
    rf"^(?P<root>.*?)/studies/(?P<study>{_UID})(?:/series/(?P<series>{_UID}))?/?$"
)


@dataclass(frozen=True)
class StudyUrl:
    """A study (or one of its series) on a DICOMweb server."""

    root: str  # the DICOMweb root, credentials included if the URL had them
    study_uid: str
    series_uid: str | None = None


def parse_study_url(url: str) -> StudyUrl | None:
    """The root and UIDs of a DICOMweb study/series URL, or None if it is not one."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    match = _PATH_RE.match(parts.path)
    if match is None or len(match["study"]) > 64 or len(match["series"] or "") > 64:
        return None
    root = urlunsplit((parts.scheme, parts.netloc, match["root"], "", ""))
    return StudyUrl(root=root, study_uid=match["study"], series_uid=match["series"])


def is_dicomweb_study_url(url: object) -> bool:
    """True for ``.../studies/<uid>`` (optionally ``/series/<uid>``) http(s) URLs."""
    return isinstance(url, str) and parse_study_url(url) is not None


def study_url(root: str, study_uid: str, series_uid: str | None = None) -> str:
    """The URL of a study or series under a DICOMweb root (inverse of :func:`parse_study_url`)."""
    url = f"{root.rstrip('/')}/studies/{study_uid}"
    return f"{url}/series/{series_uid}" if series_uid else url
