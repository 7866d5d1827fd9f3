"""``mprviewer pacs``: search a PACS or DICOMweb server, retrieve studies, manage saved servers."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

EXAMPLES = """examples:
  mprviewer pacs search --server http://127.0.0.1:8042/dicom-web --patient doe --modality CT
  mprviewer pacs search --server dimse://ORTHANC@pacs.local:4242 --date 20240101-20241231 --json
  mprviewer pacs search --server lab --study 1.2.840.1234 --series     (the series of a study)
  mprviewer pacs retrieve --server lab --study 1.2.840.1234           (prints the local folder)
  mprviewer pacs servers add lab http://127.0.0.1:8042/dicom-web --user alice
  mprviewer pacs servers list
  mprviewer pacs cache --clear

A server is a DICOMweb root (http(s)://host:port/dicom-web), a DIMSE peer
(dimse://AET@host:port, our AE title is MPRVIEWER unless ?calling=MYAET is added) or the
name of a saved server. Credentials: MPRVIEWER_PACS_USER + MPRVIEWER_PACS_PASSWORD, or
MPRVIEWER_PACS_TOKEN (bearer), or saved with the server; --user asks for the password.
"""

ENV_SERVER = "MPRVIEWER_PACS_SERVER"


def add_parser(subparsers: Any, name: str, summary: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help=summary,
        description="Search a PACS (DICOMweb QIDO-RS or DIMSE C-FIND), retrieve a study into "
        "the local cache (WADO-RS or C-GET), and manage saved servers and the cache.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="pacs_action", metavar="ACTION")

    def server_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--server", default=os.environ.get(ENV_SERVER),
                       help="server URL, dimse://AET@host:port or saved name "
                       f"(default: ${ENV_SERVER})")
        p.add_argument("--user", help="user name for HTTP basic authentication; the password "
                       "comes from MPRVIEWER_PACS_PASSWORD or is asked for")

    search = actions.add_parser("search", help="find studies (or the series of one study)",
                                epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    server_option(search)
    search.add_argument("--patient", metavar="NAME", help="patient name; 'doe' finds DOE^JOHN "
                        "(wildcards * and ? allowed)")
    search.add_argument("--patient-id", metavar="ID")
    search.add_argument("--modality", metavar="MOD", help="e.g. CT, MR")
    search.add_argument("--date", metavar="RANGE", help="study date YYYYMMDD or range "
                        "YYYYMMDD-YYYYMMDD (either end may be left out)")
    search.add_argument("--accession", metavar="N")
    search.add_argument("--study", metavar="UID", help="this StudyInstanceUID only")
    search.add_argument("--series", action="store_true", help="also list each study's series")
    search.add_argument("--limit", type=int, metavar="N", help="at most N studies")
    search.add_argument("--json", action="store_true", help="machine-readable output")

    retrieve = actions.add_parser("retrieve", help="fetch a study or series into the cache and "
                                  "print its folder", epilog=EXAMPLES,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    server_option(retrieve)
    retrieve.add_argument("--study", metavar="UID", required=True)
    retrieve.add_argument("--series", metavar="UID")
    retrieve.add_argument("--refresh", action="store_true", help="fetch again even if cached")

    servers = actions.add_parser("servers", help="list, add or remove saved servers")
    server_actions = servers.add_subparsers(dest="servers_action", metavar="list|add|remove")
    server_actions.add_parser("list", help="saved servers (credentials are never shown)")
    add = server_actions.add_parser("add", help="save (or replace) a server under a name")
    add.add_argument("name")
    add.add_argument("address", help="http(s)://host:port/dicom-web or dimse://AET@host:port")
    add.add_argument("--user", help="user name (the password is asked for, or read from stdin "
                     "with --password-stdin)")
    add.add_argument("--password-stdin", action="store_true")
    add.add_argument("--token-stdin", action="store_true", help="read a bearer token from stdin")
    add.add_argument("--no-verify", action="store_true", help="do not check the TLS certificate")
    remove = server_actions.add_parser("remove", help="forget a saved server")
    remove.add_argument("name")

    cache = actions.add_parser("cache", help="show the cache of retrieved studies")
    cache.add_argument("--clear", action="store_true", help="remove every cached study")
    parser.set_defaults(pacs_parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "pacs_action", None)
    if action is None:
        args.pacs_parser.print_help(sys.stderr)
        return 2
    if action == "servers":
        return _servers(args)
    if action == "cache":
        return _cache(args)
    if not args.server:
        print(f"mprviewer pacs {action}: --server is required (or set {ENV_SERVER})",
              file=sys.stderr)
        return 2
    server = _server(args)
    if action == "search":
        return _search(args, server)
    return _retrieve(args, server)


# --- credentials -------------------------------------------------------------------------------


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _server(args: argparse.Namespace) -> Any:
    from mprviewer.pacs import PacsError, parse_server

    server = parse_server(args.server)
    if args.user:
        password = os.environ.get("MPRVIEWER_PACS_PASSWORD")
        if not password:
            if not _interactive():
                raise PacsError(f"no password for user {args.user}: set MPRVIEWER_PACS_PASSWORD")
            import getpass

            password = getpass.getpass(f"Password for {args.user} at {server.address}: ")
        server = server.with_credentials(username=args.user, password=password)
    return server


def _with_login(server: Any, call: Callable[[Any], T]) -> T:
    """Run ``call(server)``; on HTTP 401 at a terminal, ask for credentials once and retry."""
    from mprviewer.pacs import PacsAuthError

    try:
        return call(server)
    except PacsAuthError as exc:
        if server.kind != "dicomweb" or "401" not in str(exc) or not _interactive():
            raise
        import getpass

        print(f"{server.label} asks for a user name and password.", file=sys.stderr)
        # On stderr, like getpass: stdout may be a file (--json > studies.json).
        print(f"User [{server.username or ''}]: ", end="", file=sys.stderr, flush=True)
        user = sys.stdin.readline().strip() or server.username or ""
        password = getpass.getpass("Password: ")
        return call(server.with_credentials(username=user, password=password))


# --- search ------------------------------------------------------------------------------------


def _search(args: argparse.Namespace, server: Any) -> int:
    from mprviewer.pacs import StudyQuery, search_series, search_studies

    query = StudyQuery(
        patient_name=args.patient, patient_id=args.patient_id, modality=args.modality,
        date=args.date, accession=args.accession, study_uid=args.study, limit=args.limit,
    )
    studies = _with_login(server, lambda s: search_studies(s, query))
    series: dict[str, list[Any]] = {}
    if args.series:
        for study in studies:
            series[study.study_uid] = _with_login(
                server, lambda s, uid=study.study_uid: search_series(s, uid))
    if args.json:
        records = []
        for study in studies:
            record = study.as_dict()
            if args.series:
                record["series"] = [s.as_dict() for s in series[study.study_uid]]
            records.append(record)
        json.dump(records, sys.stdout, indent=2)
        print()
        return 0
    if not studies:
        print(f"no studies on {server.label} match", file=sys.stderr)
        return 0
    print(_studies_table(studies, series))
    return 0


def _table(headers: list[str], rows: list[list[str]], indent: str = "") -> list[str]:
    widths = [max(len(h), *(len(r[n]) for r in rows)) if rows else len(h)
              for n, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return indent + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def _fmt_date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 else value


def _studies_table(studies: list[Any], series: dict[str, list[Any]]) -> str:
    headers = ["Date", "Patient", "Patient ID", "Accession", "Modalities", "Series", "Images",
               "Description", "Study UID"]
    lines: list[str] = []
    rows = [[_fmt_date(s.date), s.patient_name, s.patient_id, s.accession, "/".join(s.modalities),
             "" if s.num_series is None else str(s.num_series),
             "" if s.num_instances is None else str(s.num_instances),
             s.description, s.study_uid] for s in studies]
    if not series:
        return "\n".join(_table(headers, rows))
    table = _table(headers, rows)
    lines.append(table[0])
    for study, row_line in zip(studies, table[1:], strict=True):
        lines.append(row_line)
        rows2 = [["" if s.number is None else str(s.number), s.modality,
                  "" if s.num_instances is None else str(s.num_instances), s.description,
                  s.series_uid] for s in series.get(study.study_uid, [])]
        lines.extend(_table(["#", "Modality", "Images", "Series description", "Series UID"],
                            rows2, indent="    "))
    return "\n".join(lines)


# --- retrieve ----------------------------------------------------------------------------------


def _retrieve(args: argparse.Namespace, server: Any) -> int:
    from mprviewer.pacs import retrieve_to_cache

    progress = _progress_printer() if sys.stderr.isatty() else None
    try:
        folder = _with_login(server, lambda s: retrieve_to_cache(
            s, progress=progress, study_uid=args.study, series_uid=args.series,
            refresh=args.refresh))
    finally:
        if progress is not None:
            print(file=sys.stderr)
    print(folder)
    return 0


def _progress_printer() -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        from mprviewer.terminal import control

        control(sys.stderr, "\r")
        print(f"retrieving: {done}/{total} instances", end="", file=sys.stderr, flush=True)

    return show


# --- saved servers and cache -------------------------------------------------------------------


def _servers(args: argparse.Namespace) -> int:
    from mprviewer.pacs import servers as saved

    action = args.servers_action or "list"
    if action == "list":
        rows = []
        for s in saved.saved_servers():
            secret = "token" if s.token else ("password" if s.password else "")
            rows.append([s.name, s.address, s.username or "", secret])
        if not rows:
            print(f"no saved servers ({saved.config_path()})", file=sys.stderr)
            return 0
        print("\n".join(_table(["Name", "Address", "User", "Secret saved"], rows)))
        return 0
    if action == "remove":
        if not saved.remove_saved_server(args.name):
            from mprviewer.pacs import PacsError

            raise PacsError(f"there is no saved server named '{args.name}'")
        print(f"removed {args.name}", file=sys.stderr)
        return 0
    server = saved.parse_server(args.address, name=args.name, use_env=False)
    password = token = None
    if args.token_stdin:
        token = sys.stdin.readline().strip() or None
    elif args.user and args.password_stdin:
        password = sys.stdin.readline().rstrip("\n") or None
    elif args.user and _interactive():
        import getpass

        password = getpass.getpass(f"Password for {args.user} (empty: ask each time): ") or None
    server = server.with_credentials(username=args.user, password=password, token=token)
    if args.no_verify:
        from dataclasses import replace

        server = replace(server, verify=False)
    path = saved.save_server(server)
    print(f"saved {server.label} in {path}", file=sys.stderr)
    return 0


def _cache(args: argparse.Namespace) -> int:
    from mprviewer.pacs import cache

    if args.clear:
        cache.clear()
    entries = cache.entries()
    total = sum(e.size for e in entries)
    print(f"{cache.cache_root()}: {len(entries)} retrieved studies/series, "
          f"{total / 2**20:.1f} MiB of {cache.limit_bytes() / 2**20:.0f} MiB")
    for entry in reversed(entries):
        info = entry.info
        what = info.get("series_uid") or info.get("study_uid", "?")
        label = info.get("label", "")
        print(f"  {entry.path.name}  {entry.size / 2**20:8.1f} MiB  {label}  {what}")
    return 0
