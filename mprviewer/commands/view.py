"""``mprviewer [view] [SOURCE]``: open the viewer window."""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXAMPLES = """\
examples:
  mprviewer                         empty window; open a study from the File menu or drop it
  mprviewer demo                    the built-in CT phantom
  mprviewer view ~/studies/head/    a folder of DICOM files (searched recursively)
  mprviewer study.zip --series 1    a zip archive, second series of the table
  mprviewer a.dcm b.dcm c.dcm       some files of one series
  mprviewer demo --size 1600x1000 --screenshot shot.png
                                    open, save a PNG of the window, quit
  mprviewer view heads/ --reader ann
                                    a labeling project (mprviewer project create): its
                                    worklist, label keys 1-9, N next, D done, Shift+0 no finding
"""


def add_parser(subparsers: Any, name: str, summary: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help=summary,
        description="Open the viewer: axial, coronal and sagittal views plus a 3D view, with "
        "the series table, DICOM data and display controls at the side. SOURCE is a folder, "
        "a zip, DICOM files, an http(s) URL or the word 'demo'; without it the window opens "
        "empty. Press F1 in the window for keys and mouse.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", nargs="*", metavar="SOURCE", help="what to open")
    parser.add_argument(
        "--series", type=int, default=None, metavar="N",
        help="row of the series table to show first (0-based; default: the largest series)",
    )
    parser.add_argument("--size", metavar="WxH", help="window size, for example 1600x1000")
    parser.add_argument(
        "--screenshot", metavar="PNG",
        help="save a PNG of the window once the study is shown, then quit",
    )
    parser.add_argument(
        "--preset", metavar="NAME",
        help="window preset to start with: brain, subdural, stroke, lung, mediastinum, "
        "abdomen, liver, bone (CT), auto, or dicom (the file's own window, the default)",
    )
    parser.add_argument("--threshold", type=float, metavar="VALUE",
                        help="threshold in the data's units (HU for CT)")
    parser.add_argument("--overlay", action="store_true",
                        help="colour the voxels above the threshold in the 2D views")
    parser.add_argument("--volume-rendering", action="store_true",
                        help="show the threshold-opacity volume rendering in the 3D view")
    parser.add_argument("--reader", metavar="NAME",
                        help="with a labeling project folder: whose worklist (default: "
                        "$MPRVIEWER_READER or the login name)")
    parser.add_argument("--adjudicate", action="store_true",
                        help="with a labeling project folder: the studies its readers "
                        "disagree on, every reader's marks side by side, final labels")
    parser.add_argument(
        "--grid", choices=("patient", "acquisition"), default="patient",
        help="an oblique series: resliced onto the patient's planes (patient, the default) or "
        "on its own acquisition grid, where marks are made (acquisition; G in the window)",
    )
    parser.add_argument(
        "--timing", action="store_true",
        help="print the time from start to the first 2D frame, and the start-up steps "
        "before it, on stderr",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    from mprviewer.gui.app import parse_size
    from mprviewer.gui.app import run as run_app

    sources = list(args.source or [])
    source: str | list[str] | None
    if not sources:
        source = None
    elif len(sources) == 1:
        source = sources[0]
    else:
        source = sources
    if args.screenshot and source is None:
        print("mprviewer view: --screenshot needs a SOURCE to show", file=sys.stderr)
        return 2
    if args.series is not None and args.series < 0:
        print("mprviewer view: --series is a 0-based row number, 0 or more", file=sys.stderr)
        return 2
    for item in sources:
        _check_local(item)
    project = sources[0] if len(sources) == 1 and _is_project(sources[0]) else None
    if project is not None:
        if args.series is not None:
            print("mprviewer view: --series does not apply to a project (its worklist "
                  "chooses)", file=sys.stderr)
            return 2
        source = None
    elif args.reader or args.adjudicate:
        print(f"mprviewer view: {'--reader' if args.reader else '--adjudicate'} applies to a "
              "labeling project folder", file=sys.stderr)
        return 2
    preset = args.preset.lower() if args.preset else None
    if preset is not None:
        from mprviewer.model.presets import CT_PRESETS

        if preset not in (*CT_PRESETS, "auto", "dicom", "file"):
            known = ", ".join([*CT_PRESETS, "auto", "dicom"])
            print(f"mprviewer view: unknown --preset {args.preset!r}; choose one of: {known}",
                  file=sys.stderr)
            return 2
    display = {
        "preset": "file" if preset == "dicom" else preset,
        "threshold": args.threshold,
        "overlay": args.overlay,
        "volume_rendering": args.volume_rendering,
    }
    return run_app(
        source,
        series=args.series,
        size=parse_size(args.size),
        screenshot=args.screenshot,
        timing=args.timing,
        display=display,
        project=project,
        reader=args.reader,
        adjudicate=args.adjudicate,
        grid=args.grid,
    )


def _is_project(item: str) -> bool:
    """A labeling project folder (its settings file), checked without importing the store."""
    import json
    from pathlib import Path

    settings = Path(item).expanduser() / "project.json"
    try:
        return json.loads(settings.read_text(encoding="utf-8")).get("format") == (
            "mprviewer-project-folder")
    except (OSError, ValueError, AttributeError):
        return False


def _check_local(item: str) -> None:
    """A path that does not exist is an input error before any window opens."""
    from pathlib import Path

    from mprviewer.errors import SourceError

    if item == "demo" or "://" in item:
        return
    if not Path(item).expanduser().exists():
        raise SourceError(f"{item}: no such file or folder; give a DICOM folder, zip, files, "
                          "an http(s) URL or 'demo'")
