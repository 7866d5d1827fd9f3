"""``mprviewer serve [SOURCE]``: the viewer and labeling in a browser, one session per tab."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from typing import Any

EXAMPLES = """\
examples:
  mprviewer serve                      an empty page: readers upload a zip or open a link
  mprviewer serve demo                 every new tab opens the built-in CT phantom
  mprviewer serve ~/studies/chest.zip --port 9000
  mprviewer serve ~/projects/heads      a labeling project: each reader types a name and
                                       works through the worklist
  mprviewer serve --host 0.0.0.0 --password-file ~/.mprviewer-password
                                       reachable from other machines, with a password
                                       (put a TLS reverse proxy in front: see the README)
"""


def add_parser(subparsers: Any, name: str, summary: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help=summary,
        description="Serve the viewer as a web page. Each browser tab gets its own session "
        "(its own process: slices, threshold and marks are never shared). The address "
        "printed carries a random access token; without it every page and websocket is "
        "refused. It listens on 127.0.0.1 unless --host says otherwise.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", nargs="?", metavar="SOURCE",
                        help="a folder, zip, URL or 'demo' that every new tab opens, or a "
                        "labeling project's folder (each tab reads its worklist)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any)")
    parser.add_argument(
        "--password-file", metavar="FILE",
        help="use the password on this file's first line instead of a random token",
    )
    parser.add_argument(
        "--idle-timeout", type=float, default=30.0, metavar="MINUTES",
        help="end a tab's session after this many minutes without an action (default 30)",
    )
    parser.add_argument(
        "--max-sessions", type=int, default=16, metavar="N",
        help="most sessions open at once; each holds its series in memory (default 16)",
    )
    parser.add_argument("--close-grace", type=float, default=20.0, help=argparse.SUPPRESS)
    return parser


def _check(args: argparse.Namespace) -> None:
    from mprviewer.errors import SourceError

    if not 0 <= args.port <= 65535:
        raise SourceError(f"--port {args.port}: a port is a number from 0 to 65535")
    if args.idle_timeout <= 0:
        raise SourceError(f"--idle-timeout {args.idle_timeout:g}: give a positive number "
                          "of minutes")
    if args.max_sessions < 1:
        raise SourceError(f"--max-sessions {args.max_sessions}: at least 1")
    if args.source and args.source != "demo":
        from pathlib import Path

        from mprviewer.io.remote import is_url

        if not is_url(args.source) and not Path(args.source).exists():
            raise SourceError(f"{args.source}: no such file or folder")


def _project(source: str | None) -> str | None:
    """The folder of a labeling project, opened once here so a broken one is named now."""
    if not source or source == "demo":
        return None
    from pathlib import Path

    from mprviewer.project import Project
    from mprviewer.project.project import FOLDER_FILE

    if not (Path(source).expanduser() / FOLDER_FILE).is_file():
        return None  # a damaged project's settings file is named by Project.open below
    Project.open(source).close()
    return str(Path(source).expanduser().resolve())


def _shown_host(host: str) -> str:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if ip.is_unspecified:
        return "127.0.0.1" if ip.version == 4 else "[::1]"
    return f"[{host}]" if ip.version == 6 else host


def run(args: argparse.Namespace) -> int:
    from mprviewer.io.limits import Limits
    from mprviewer.web.auth import new_token, read_password_file
    from mprviewer.web.launcher import ServeSettings, serve

    _check(args)
    password = read_password_file(args.password_file) if args.password_file else None
    project = _project(args.source)
    settings = ServeSettings(
        host=args.host,
        port=args.port,
        secret=password or new_token(),
        password=password is not None,
        source=None if project else args.source,
        project=project,
        idle_timeout=args.idle_timeout * 60.0,
        close_grace=max(1.0, args.close_grace),
        max_sessions=args.max_sessions,
        max_upload_bytes=Limits.from_env().max_download_bytes,
    )

    def ready(launcher: Any) -> None:
        port = launcher.bound_port or settings.port
        base = f"http://{_shown_host(settings.host)}:{port}/"
        if settings.password:
            print(f"mprviewer is serving at {base} (password from {args.password_file})",
                  flush=True)
        else:
            print(f"mprviewer is serving at {base}?token={settings.secret}", flush=True)
        print("Press Ctrl+C to stop.", file=sys.stderr, flush=True)

    try:
        asyncio.run(serve(settings, ready))
    except KeyboardInterrupt:
        print("mprviewer: stopped", file=sys.stderr)
    except OSError as exc:
        from mprviewer.errors import SourceError

        raise SourceError(f"cannot listen on {args.host}:{args.port} "
                          f"({exc.strerror or exc})") from None
    return 0
