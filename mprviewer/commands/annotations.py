"""``mprviewer annotations``: show, convert (and, when installed, send) annotation files.

Actions are listed in ``ACTIONS`` (name -> (add its parser, run it)); another action is one
more entry there.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK = 0
EXIT_USAGE = 2

DESCRIPTION = """\
Read, show and convert anomaly annotation files. Two formats are understood and detected
automatically:

  original   {"<series name>": {"Anomaly": "<label>", "Slices": "0-11; 57-59; 112"}}
  full       the versioned mprviewer format ("format": "mprviewer-annotations",
             "version": 1, or 2 with measurements) with study and series UIDs, planes,
             labels, SOP instance UIDs, positions, point picks, rulers, ROIs with their
             statistics, ABC/2 hematoma volumes, notes and timestamps.

Slice numbers are 0-based: axial from inferior, coronal from anterior, sagittal from the
patient's right. The original format holds the slices of the acquired images only."""

EXAMPLES = """\
examples:
  mprviewer annotations show marks.json
  mprviewer annotations convert marks.json marks-full.json --to full
  mprviewer annotations convert marks-full.json for-pipeline.json --to original
  mprviewer annotations convert old.json old.json --to full --force

exit codes: 0 success, 2 usage error, 3 unreadable or invalid input (one line on stderr)."""


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


# -- show -------------------------------------------------------------------------------------
def _add_show(sub: Any) -> None:
    p = sub.add_parser(
        "show",
        help="Print the marks in a file as a table.",
        description="Print the marks of an annotation file (either format) as a table: series, "
        "label, plane, slice ranges and counts, then point picks and notes.",
        epilog="example:\n  mprviewer annotations show marks.json",
        formatter_class=_formatter,
    )
    p.add_argument("file", metavar="FILE", help="annotation JSON file (original or full)")
    p.add_argument("--study", metavar="SOURCE",
                   help="the study the marks belong to (folder, zip, URL): planes are named "
                   "from its images and its unmarked series are listed")


def _study_refs(source: str | None, study_uid: str = "") -> list[Any]:
    """Header references of the series of ``source`` (only ``study_uid``'s when given and
    present), [] without a source."""
    if not source:
        return []
    import mprviewer
    from mprviewer.model.annotations import study_refs

    with mprviewer.open_study(source) as study:
        uid = study_uid if study_uid in study.study_uids else ""
        return study_refs(study.series, uid)


def _clip(text: str, width: int = 48) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    cells = [header, *rows]
    widths = [max(len(r[c]) for r in cells) for c in range(len(header))]
    return ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]


def _run_show(args: argparse.Namespace) -> int:
    from mprviewer.model.annotation_files import (
        detect_format,
        document_to_set,
        export_series,
        load_json,
    )
    from mprviewer.model.measurements import describe as describe_measurement

    doc = load_json(args.file)
    fmt = detect_format(doc, str(args.file))
    refs = _study_refs(args.study, str(doc.get("study_uid", "")) if fmt == "full" else "")
    aset, _report = document_to_set(doc, args.file, refs or None, allow_unknown_series=True)
    out: list[str] = [f"File:     {args.file} ({fmt} format)"]
    if aset.study_uid:
        out.append(f"Study:    {aset.study_uid}")
    if aset.reader:
        out.append(f"Reader:   {_clip(aset.reader)}")
    if fmt == "full":
        out.append(f"Modified: {aset.modified}")
    if aset.note:
        out.append(f"Note:     {_clip(aset.note, 70)}")
    rows = []
    for sa in export_series(aset, refs):
        for e in sa.entries:
            # the original format does not say the plane: "acquired" until the study is known
            plane = e.plane if sa.acquisition_plane else "acquired"
            rows.append([_clip(sa.label, 40), _clip(e.label, 30), plane, _clip(e.ranges, 60),
                         str(len(e.slices))])
        if not sa.entries and sa.clean:
            rows.append([_clip(sa.label, 40), "(no anomaly)", sa.acquisition_plane or "-",
                         '""', "0"])
    out.append("")
    if rows:
        out += _table(["SERIES", "LABEL", "PLANE", "SLICES", "COUNT"], rows)
    else:
        out.append("No slices marked.")
    points = [
        [_clip(sa.label, 40), _clip(p.label, 30), "({}, {}, {})".format(*p.voxel),
         "({:.1f}, {:.1f}, {:.1f})".format(*p.lps), "" if p.value is None else f"{p.value:g}",
         _clip(p.note, 40)]
        for sa, p in aset.points()
    ]
    if points:
        out.append("")
        out += _table(["SERIES", "POINT LABEL", "VOXEL (i, j, k)", "LPS mm", "VALUE", "NOTE"],
                      points)
    measures = [[_clip(sa.label, 40), _clip(describe_measurement(m), 90)]
                for sa, m in aset.measurements()]
    if measures:
        out.append("")
        out += _table(["SERIES", "MEASUREMENT"], measures)
    notes = [[_clip(sa.label, 40), _clip(sa.note, 70)] for sa in aset.series if sa.note]
    notes += [[_clip(sa.label, 40), f"{e.label}: {_clip(e.note, 60)}"]
              for sa, e in aset.entries() if e.note]
    if notes:
        out.append("")
        out += _table(["SERIES", "NOTE"], notes)
    if fmt == "original" and any(not sa.acquisition_plane for sa in aset.series):
        out += ["", "acquired: the original format holds slice numbers of the acquired images; "
                "the plane is known once the study is open (--study SOURCE)."]
    print("\n".join(out))
    return EXIT_OK


# -- convert ----------------------------------------------------------------------------------
def _add_convert(sub: Any) -> None:
    p = sub.add_parser(
        "convert",
        help="Convert a file between the original and the full format.",
        description="Read IN (either format) and write OUT in the chosen format. The original "
        "format holds one label of acquisition-plane slices per series: when a file has more "
        "(other labels, other planes, points, rulers, ROIs, hematoma volumes, notes), the "
        "label with the most slices is written and everything left out is listed, so nothing "
        "is dropped silently.",
        epilog="examples:\n"
        "  mprviewer annotations convert marks.json marks-full.json --to full\n"
        "  mprviewer annotations convert marks-full.json marks.json --to original --force",
        formatter_class=_formatter,
    )
    p.add_argument("input", metavar="IN", help="annotation file to read (original or full)")
    p.add_argument("output", metavar="OUT", help="file to write")
    p.add_argument("--to", choices=("original", "full"), default="full",
                   help="format of OUT (default: full)")
    p.add_argument("--force", action="store_true", help="replace OUT if it already exists")
    p.add_argument("--study", metavar="SOURCE",
                   help="the study the marks belong to: every one of its series is written, "
                   'unmarked ones as read and clean ("Slices": ""), as the original tool did')
    p.add_argument("--series", metavar="NAME", action="append",
                   help="write only this series (name or UID; repeat for several)")
    p.add_argument("--marked-only", action="store_true",
                   help="with --study: leave out the series that have no marks")


def _run_convert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mprviewer.errors import AnnotationError
    from mprviewer.model.annotation_files import (
        detect_format,
        document_to_set,
        load_json,
        write_annotation_file,
    )

    doc = load_json(args.input)
    fmt = detect_format(doc, str(args.input))
    refs = _study_refs(args.study, str(doc.get("study_uid", "")) if fmt == "full" else "")
    aset, _report = document_to_set(doc, args.input, refs or None, allow_unknown_series=True)
    if Path(args.output).exists() and not args.force:
        raise AnnotationError(f"{args.output} already exists; use --force to replace it.")
    study = [] if args.marked_only else refs
    report = write_annotation_file(aset, args.output, fmt=args.to, overwrite=args.force,
                                   study=study, include=args.series)
    print(report)
    if not report.complete:
        n = len(report.not_written)
        print(f"mprviewer: warning: {n} item{'s' if n > 1 else ''} could not be written in the "
              f"{args.to} format (listed above); {args.input} still holds them.",
              file=sys.stderr)
    return EXIT_OK


ACTIONS: dict[str, tuple[Callable[[Any], Any], Callable[[argparse.Namespace], int]]] = {
    "show": (_add_show, _run_show),
    "convert": (_add_convert, _run_convert),
}


def _add_optional_actions() -> None:
    """``send`` (PACS upload) lives in its own module; register it when it is installed."""
    import importlib
    import importlib.util

    if "send" not in ACTIONS and importlib.util.find_spec(
        "mprviewer.commands._annotations_send"
    ) is not None:
        module = importlib.import_module("mprviewer.commands._annotations_send")
        ACTIONS["send"] = (module.add_send_parser, module.run_send)


_add_optional_actions()


def add_parser(subparsers: Any, name: str, summary: str) -> argparse.ArgumentParser:
    """Register ``mprviewer annotations`` and its actions."""
    parser = subparsers.add_parser(
        name, help=summary, description=DESCRIPTION, epilog=EXAMPLES, formatter_class=_formatter
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION",
                                    title="actions (run 'mprviewer annotations ACTION -h')")
    for add, _run in ACTIONS.values():
        add(actions)
    parser.set_defaults(annotations_parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "action", None)
    if action not in ACTIONS:
        parser = getattr(args, "annotations_parser", None)
        if parser is not None:
            parser.print_usage(sys.stderr)
        print("mprviewer annotations: choose an action: " + ", ".join(ACTIONS), file=sys.stderr)
        return EXIT_USAGE
    return ACTIONS[action][1](args)
