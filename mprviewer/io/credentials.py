"""URLs as people see them: without the ``user:password@`` a URL may carry.

One place decides how a URL is shown (titles, recent lists, logs, messages, dialogs), for
every scheme, so a password typed into a URL never reaches a screen or a log. A leaf module:
the download and remote-source code both use it without importing each other.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def is_url(source: Any) -> bool:
    """True for anything that looks like ``scheme://...``."""
    return isinstance(source, str) and "://" in source[:16]


def url_label(source: str) -> str:
    """``source`` as titles, lists, logs and messages show it: without credentials.

    Any scheme (http, https, ftp, dimse, ...) loses a ``user:password@``; a user name alone
    goes too, except in ``dimse://AET@host``, whose AE title is no secret (and is all that
    is kept of ``dimse://AET:password@host``). Anything that is not a URL is returned as is.
    """
    if not is_url(source) or "@" not in source:
        return source
    try:
        parts = urlsplit(source)
    except ValueError:
        return "<invalid URL>"
    if "@" not in parts.netloc:
        return source
    userinfo, host = parts.netloc.rsplit("@", 1)
    if parts.scheme.lower() == "dimse":
        aet = userinfo.split(":", 1)[0]
        netloc = f"{aet}@{host}" if aet else host
    else:
        netloc = host
    return urlunsplit(parts._replace(netloc=netloc))


# scheme://userinfo@ anywhere in a text: the userinfo runs up to the last '@' before the host
_URL_WITH_USER = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s/?#'\"<>]*@[^\s/?#'\"<>@]*")


def strip_credentials(text: str) -> str:
    """``text`` (an error message, a log line) with every URL in it passed through
    :func:`url_label`: the last line of defence for messages that quote a URL."""
    if "@" not in text or "://" not in text:
        return text
    return _URL_WITH_USER.sub(lambda m: url_label(m.group(0)), text)
