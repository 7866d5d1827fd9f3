"""``mprviewer info``: the series table of a study, or the data table of one series."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXAMPLES = """examples:
  mprviewer info demo                      series table of the built-in demo study
  mprviewer info study.zip --json          the same, machine-readable
  mprviewer info ./CT_folder --series 0    data table of the first series
  mprviewer info study.zip --series 1.2.840.113619.2.55.3.6049...  (a SeriesInstanceUID)
"""


def add_parser(subparsers: Any, name: str, summary: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help=summary,
        description="Scan SOURCE (folder, zip, DICOM files, URL or 'demo') and print its series "
        "table: index, UID, name, description, modality, size, spacing, orientation and "
        "warnings, then the files that were skipped and why.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", nargs="+", metavar="SOURCE",
                        help="folder, zip, DICOM file(s), URL or 'demo'")
    parser.add_argument("--series", metavar="INDEX|UID",
                        help="print the full data table of this series")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _source(args: argparse.Namespace) -> Any:
    return args.source[0] if len(args.source) == 1 else args.source


def series_record(index: int, series: Any) -> dict[str, Any]:
    """The stable JSON form of one row of the series table."""
    k, j, i = series.shape
    return {
        "index": index,
        "uid": series.uid,
        "name": series.name,
        "description": series.description,
        "modality": series.modality,
        "number": series.number,
        "study_uid": series.study_uid,
        "size": [i, j, k],
        "spacing": [round(v, 4) for v in series.spacing],
        "orientation": series.orientation,
        "warnings": series.warnings,
    }


def study_record(study: Any, study_uid: str) -> dict[str, Any]:
    """One study of the source: its UID, patient and date, and its series' indexes."""
    members = study.series_of_study(study_uid)
    # The loader's header facts: these few values need no pydicom for ordinary files.
    header = members[0].frames[0].instance.facts
    return {
        "study_uid": study_uid,
        "patient_name": str(header.get("PatientName", "") or ""),
        "patient_id": str(header.get("PatientID", "") or ""),
        "study_date": str(header.get("StudyDate", "") or ""),
        "description": str(header.get("StudyDescription", "") or "").strip(),
        "series": [study.series.index(s) for s in members],
    }


def run(args: argparse.Namespace) -> int:
    import mprviewer

    progress = _progress_printer() if sys.stderr.isatty() and not args.json else None
    with mprviewer.open_study(_source(args), progress=progress) as study:
        if progress:
            from mprviewer.terminal import control

            control(sys.stderr, "\r\033[K")
        if args.series is not None:
            series = study.find_series(args.series)
            table = series.metadata
            if args.json:
                print(json.dumps({"series": series_record(study.series.index(series), series),
                                  "metadata": table}, indent=2))
            else:
                width = max(len(k) for k in table)
                for key, value in table.items():
                    print(f"{key:<{width}}  {value}")
            return 0
        records = [series_record(n, s) for n, s in enumerate(study.series)]
        if args.json:
            print(json.dumps({
                "source": study.source_label,
                "study_uid": study.uid,
                "studies": [study_record(study, uid) for uid in study.study_uids],
                "series": records,
                "skipped": [{"file": f, "reason": r} for f, r in study.skipped],
            }, indent=2))
            return 0
        _print_table(study.source_label, records, study.skipped)
        if len(study.study_uids) > 1:
            print(f"\n{len(study.study_uids)} studies:")
            for uid in study.study_uids:
                rec = study_record(study, uid)
                who = " ".join(x for x in (rec["patient_name"], rec["patient_id"],
                                           rec["study_date"]) if x)
                print(f"  {uid}  {who}  series " + ", ".join(map(str, rec["series"])))
    return 0


def _print_table(label: str, records: list[dict[str, Any]], skipped: list) -> None:
    print(f"{label}: {len(records)} series")
    header = ("#", "name", "description", "mod", "size", "spacing (mm)", "orientation")
    rows = [
        (str(r["index"]), r["name"], r["description"], r["modality"],
         "x".join(str(v) for v in r["size"]), "x".join(f"{v:g}" for v in r["spacing"]),
         r["orientation"])
        for r in records
    ]
    widths = [max(len(h), *(len(row[n]) for row in rows)) for n, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row, record in zip(rows, records, strict=True):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        print(f"{'':>{widths[0]}}  uid {record['uid']}")
        for warning in record["warnings"]:
            print(f"{'':>{widths[0]}}  warning: {warning}")
    if skipped:
        print(f"\nskipped {len(skipped)} file(s):")
        for name, reason in skipped[:50]:
            print(f"  {name}: {reason}")
        if len(skipped) > 50:
            print(f"  ... and {len(skipped) - 50} more")


def _progress_printer() -> Any:
    from mprviewer.terminal import control

    def report(done: int, total: int) -> None:
        control(sys.stderr, "\r")
        sys.stderr.write(f"scanning {done}/{total} files")
        sys.stderr.flush()

    return report
