"""Who may open a page: a random token in the address (as Jupyter does), or a password.

The token travels as the ``token`` query parameter of the first address; the launcher then
sets it as an HttpOnly cookie so the page's own requests (scripts, websocket) carry it
without showing it again. A password file holds one line; the password is accepted in the
same ``token`` parameter (or typed into the launcher's small login form).
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from mprviewer.errors import SourceError

COOKIE = "mprviewer_token"
MIN_PASSWORD = 8


def new_token() -> str:
    """48 hex digits of randomness: unguessable, and safe in a URL."""
    return secrets.token_hex(24)


def read_password_file(path: str | Path) -> str:
    """The password on the file's first line; a clear error if it is missing or too short."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        why = exc.strerror or exc
        raise SourceError(f"{file}: cannot read the password file ({why})") from None
    except UnicodeDecodeError:
        raise SourceError(f"{file}: the password file is not UTF-8 text") from None
    lines = text.splitlines()
    password = lines[0].strip() if lines else ""
    if len(password) < MIN_PASSWORD:
        raise SourceError(
            f"{file}: the password on its first line must have at least {MIN_PASSWORD} "
            f"characters (it has {len(password)})"
        )
    return password


class Gate:
    """Compares what a request offers with the secret, in constant time."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("an empty secret would let everyone in")
        self._secret = secret.encode("utf-8")

    def accepts(self, offered: str | None) -> bool:
        if not offered:
            return False
        return hmac.compare_digest(offered.encode("utf-8", "replace"), self._secret)
