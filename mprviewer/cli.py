"""The ``mprviewer`` command line.

Each subcommand lives in ``mprviewer.commands.<name>`` with ``add_parser(subparsers)`` and
``run(args) -> int``; only the chosen one is imported, so ``info`` never loads Qt or VTK.
Exit codes: 0 success, 2 usage, 3 input error (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INPUT = 3

COMMANDS: dict[str, str] = {
    "view": "Open the viewer window on a study (the default command).",
    "info": "Print a study's series table, or one series' data table.",
    "screenshot": "Render views of a study to PNG files without a display.",
    "annotations": "Show, convert and send anomaly annotation files.",
    "pacs": "Search, retrieve from and manage PACS and DICOMweb servers.",
    "project": "Labeling projects: worklist, label set, statuses, marks and exports.",
    "serve": "Serve the viewer in a browser, one session per tab.",
}


def _available_commands() -> dict[str, str]:
    found = {}
    for name, summary in COMMANDS.items():
        if importlib.util.find_spec(f"mprviewer.commands.{name}") is not None:
            found[name] = summary
    return found


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``only``, just that subcommand's module is imported."""
    parser = argparse.ArgumentParser(
        prog="mprviewer",
        description="DICOM viewer with axial, coronal, sagittal and 3D views and anomaly "
        "annotations. SOURCE is a folder, a zip, DICOM files, a URL, or the word 'demo'.",
        epilog="Run 'mprviewer COMMAND -h' for a command's options and examples. "
        "With no command, 'view' is assumed: 'mprviewer study.zip' opens the viewer.",
    )
    from mprviewer import __version__

    parser.add_argument("--version", action="version", version=f"mprviewer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in _available_commands().items():
        if only is not None and name != only:
            sub.add_parser(name, help=summary, add_help=False)
            continue
        module = importlib.import_module(f"mprviewer.commands.{name}")
        module.add_parser(sub, name, summary)
    return parser


def _choose_command(argv: list[str]) -> list[str]:
    """Insert the default ``view`` command when the first word is not a command."""
    if not argv:
        return ["view"]
    first = argv[0]
    if first in COMMANDS or first in ("-h", "--help", "--version"):
        return argv
    return ["view", *argv]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code.

    Everything the command writes to the terminal has its control characters escaped
    (``mprviewer.terminal``): names and messages come from files and servers."""
    from mprviewer.terminal import protect_streams

    with protect_streams():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    args_list = _choose_command(list(sys.argv[1:] if argv is None else argv))
    command = args_list[0] if args_list[0] in COMMANDS else None
    parser = build_parser(only=command)
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    module = importlib.import_module(f"mprviewer.commands.{args.command}")
    from mprviewer.errors import MprviewerError
    from mprviewer.io.tempfiles import install_signal_cleanup

    install_signal_cleanup()  # SIGTERM/SIGHUP mid-download leave no temporary folders

    try:
        return int(module.run(args) or 0)
    except MprviewerError as exc:
        from mprviewer.io.remote import strip_credentials

        print(f"mprviewer: {strip_credentials(str(exc))}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as exc:  # a file or folder the command needs cannot be written or read
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"mprviewer: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("mprviewer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
