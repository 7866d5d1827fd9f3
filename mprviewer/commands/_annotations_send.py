"""``mprviewer annotations send``: store the marks on a PACS as a Key Object Selection document.

FILE is either a KOS (or any DICOM file) already exported, sent as it is, or an annotation JSON
file: then the study it belongs to is opened (``--study SOURCE``, or retrieved from the same
server by the study UID the file records), the marks are matched to its images and a KOS is
built (``mprviewer.io.kos``) and sent. STOW-RS for DICOMweb servers, C-STORE for DIMSE peers.

The ``annotations`` command registers it with ``add_send_parser(actions)`` and dispatches to
``run_send(args)``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

EXAMPLES = """\
examples:
  mprviewer annotations send key-images.dcm --server http://127.0.0.1:8042/dicom-web
  mprviewer annotations send marks.json --server lab          (study fetched from 'lab')
  mprviewer annotations send marks.json --server dimse://PACS@10.0.0.5:104 --study ./CT
  mprviewer annotations send marks.json --server lab --label Nodule --save nodule-kos.dcm

exit codes: 0 stored, 2 usage error, 3 unreadable input or server error (one line on stderr)."""


def add_send_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``send`` action to the ``annotations`` command's sub-parsers."""
    parser = subparsers.add_parser(
        "send",
        help="store the marks on a PACS as a key object document (STOW-RS or C-STORE)",
        description=__doc__.split("\n\n")[1],
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="a KOS .dcm file or an annotation JSON file")
    parser.add_argument("--server", default=os.environ.get("MPRVIEWER_PACS_SERVER"),
                        help="http(s)://host:port/dicom-web, dimse://AET@host:port or a saved "
                        "server name (default: $MPRVIEWER_PACS_SERVER)")
    parser.add_argument("--study", metavar="SOURCE", help="the study the marks belong to "
                        "(folder, zip, URL); default: retrieved from --server")
    parser.add_argument("--label", help="send only the marks with this label")
    parser.add_argument("--reader", default="", help="reader name recorded in the document")
    parser.add_argument("--save", metavar="KOS.dcm", help="also write the document built from "
                        "a JSON file here")
    parser.set_defaults(func=run_send)
    return parser


def _is_dicom(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError as exc:
        from mprviewer.errors import SourceError

        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    return head[128:132] == b"DICM"


def _read_dicom(path: Path) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    from mprviewer.errors import NotDicomError

    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise NotDicomError(f"{path} is not a readable DICOM file: {exc}") from None
    if "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
        raise NotDicomError(f"{path} has no SOPClassUID/SOPInstanceUID; it cannot be stored")
    return ds


def build_kos_from_json(
    path: Path, server: Any, study_source: str | None, label: str | None = None,
    reader: str = "", save: str | None = None,
) -> Any:
    """The KOS dataset for an annotation JSON file, matched against its study's images."""
    import mprviewer
    from mprviewer.errors import AnnotationError
    from mprviewer.io.kos import write_kos
    from mprviewer.model.annotation_files import read_annotation_file
    from mprviewer.model.annotations import SeriesRef

    marks = read_annotation_file(path)
    source: Any = study_source
    if source is None:
        if not marks.study_uid:
            raise AnnotationError(
                f"{path} does not record its study UID; name the study with --study SOURCE"
            )
        from mprviewer.pacs import retrieve_to_cache

        source = str(retrieve_to_cache(server, study_uid=marks.study_uid))
    wanted = {key for sa in marks.series for key in (sa.uid, sa.name) if key}
    study = mprviewer.open_study(source)
    try:
        refs = []
        for series in study.series:
            if series.uid in wanted or series.name in wanted:
                # patient and study attributes from the header (not the display table)
                refs.append(SeriesRef.from_series(series, series.load()))
    finally:
        study.close()
    if not refs:
        raise AnnotationError(
            f"none of the series marked in {path} is in the study {_shown(source)}; name the right "
            "study with --study SOURCE"
        )
    matched = read_annotation_file(path, refs, allow_unknown_series=True)
    return write_kos(matched, refs, save, label=label, reader=reader)


def run_send(args: argparse.Namespace) -> int:
    """Build (if needed) and store the key object document; 0 when the server took it."""
    from mprviewer.pacs import parse_server, send_datasets

    if not args.server:
        print("mprviewer annotations send: --server is required (or set "
              "MPRVIEWER_PACS_SERVER)", file=sys.stderr)
        return 2
    server = parse_server(args.server)
    path = Path(args.file)
    if _is_dicom(path):
        dataset = _read_dicom(path)
    else:
        dataset = build_kos_from_json(path, server, args.study, args.label, args.reader,
                                      args.save)
    send_datasets(server, [dataset])
    count = sum(len(s.get("ReferencedSOPSequence", []))
                for st in dataset.get("CurrentRequestedProcedureEvidenceSequence", [])
                for s in st.get("ReferencedSeriesSequence", []))
    what = f"key object document referencing {count} images" if count else "instance"
    print(f"stored {what} ({dataset.SOPInstanceUID}) on {server.label}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the action on its own, with the exit codes of the ``mprviewer`` command."""
    from mprviewer.errors import MprviewerError

    parser = argparse.ArgumentParser(prog="mprviewer annotations")
    add_send_parser(parser.add_subparsers(dest="action"))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.action != "send":
        parser.print_usage(sys.stderr)
        return 2
    try:
        return run_send(args)
    except MprviewerError as exc:
        print(f"mprviewer: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())


def _shown(source: object) -> object:
    """A study source as messages show it (a URL without its credentials)."""
    from mprviewer.io.remote import url_label

    return url_label(source) if isinstance(source, str) else source
