"""The target a session process runs; kept light so the launcher can name it cheaply."""

from __future__ import annotations

from typing import Any


def session_main(conn: Any, config: dict[str, Any]) -> None:
    """Run one tab's trame page until the launcher stops it (imports trame and VTK)."""
    from mprviewer.web.app import run_session

    run_session(conn, config)
