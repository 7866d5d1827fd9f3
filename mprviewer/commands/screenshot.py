"""``mprviewer screenshot``: render views of a study to PNG with no display (no Qt, no X)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

from mprviewer.commands._progress import Progress

VIEWS = ("quad", "axial", "coronal", "sagittal", "3d")
CAMERAS = ("anterior", "posterior", "left", "right", "superior", "inferior", "iso")
PLANES = ("axial", "coronal", "sagittal")

EXAMPLES = """examples:
  mprviewer screenshot demo -o demo.png
      axial, coronal, sagittal and 3D of the demo study's largest series, 1600x1200
  mprviewer screenshot study.zip -o lung.png --view axial --slice axial=40 --preset lung
  mprviewer screenshot ./CT --series 1 -o ct.png --window 400 --level 40 --size 800x600
  mprviewer screenshot ./CT -o bone.png --view 3d --threshold 300 --camera anterior
  mprviewer screenshot ./CT -o marks.png --annotations marks.json
  mprviewer screenshot ./CT -o mip.png --view axial --slab 10 --slab-mode max
  mprviewer screenshot study.zip --all-series --out-dir shots/
  mprviewer screenshot study.zip --annotations marks.json --marked-slices --out-dir marked/

Slice numbers are 0-based display-grid indices, as the viewer shows them: axial 0 is the
most inferior slice, coronal 0 the most anterior, sagittal 0 the patient's rightmost.
2D views are radiological: the patient's left on the screen's right (axial, coronal),
anterior on the left (sagittal), superior up, with orientation letters on every edge.
Exit status: 0 success, 2 usage error, 3 input error (unreadable source or annotations).
"""


# -- argument types (argparse turns ValueError/ArgumentTypeError into exit 2) ----------------
def parse_slices(text: str) -> dict[str, int]:
    """'axial=40,coronal=120' -> {'axial': 40, 'coronal': 120}."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"([A-Za-z]+)\s*=\s*(\d+)", part)
        if not match or match.group(1).lower() not in PLANES:
            raise argparse.ArgumentTypeError(
                f"{part!r} is not PLANE=NUMBER with PLANE axial, coronal or sagittal "
                "(e.g. axial=40,coronal=120)"
            )
        out[match.group(1).lower()] = int(match.group(2))
    if not out:
        raise argparse.ArgumentTypeError("give at least one PLANE=NUMBER, e.g. axial=40")
    return out


def parse_size(text: str) -> tuple[int, int]:
    """'1600x1200' -> (1600, 1200)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1600x1200")
    w, h = int(match.group(1)), int(match.group(2))
    if not (16 <= w <= 16384 and 16 <= h <= 16384):
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be 16-16384 pixels")
    return w, h


def add_parser(subparsers: Any, name: str, summary: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help=summary,
        description="Render the viewer's views of one series of SOURCE (folder, zip, DICOM "
        "files, URL or 'demo') to PNG, off screen: no display, X server, GPU or Qt needed. "
        "By default: the largest series, all four views (axial, coronal / sagittal, 3D), "
        "centre slices, the file's window.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "source", nargs="+", metavar="SOURCE", help="folder, zip, DICOM file(s), URL or 'demo'"
    )
    out = parser.add_argument_group("output")
    out.add_argument("-o", "--output", metavar="OUT.png", help="the PNG to write")
    out.add_argument(
        "--out-dir", metavar="DIR", help="folder for --all-series and --marked-slices images"
    )
    out.add_argument(
        "--all-series",
        action="store_true",
        help="one image per series, named INDEX_NAME.png in --out-dir; a series that "
        "cannot be read is reported and skipped (exit status 3 at the end)",
    )
    out.add_argument(
        "--marked-slices",
        action="store_true",
        help="one image per slice marked in --annotations, plus contact_sheet.png",
    )
    out.add_argument(
        "--size",
        type=parse_size,
        default=(1600, 1200),
        metavar="WxH",
        help="image size in pixels (default 1600x1200)",
    )
    what = parser.add_argument_group("what to show")
    what.add_argument(
        "--series",
        metavar="INDEX|UID",
        help="series by table index (see 'mprviewer info'), UID or name; "
        "default: the largest stack",
    )
    what.add_argument("--view", choices=VIEWS, default="quad", help="default quad (all four)")
    what.add_argument(
        "--slice",
        type=parse_slices,
        metavar="PLANE=N[,PLANE=N]",
        help="slice numbers, e.g. axial=40,coronal=120 (default: centre)",
    )
    what.add_argument("--window", type=float, metavar="W", help="window width (data units)")
    what.add_argument("--level", type=float, metavar="L", help="window level/centre")
    what.add_argument(
        "--preset",
        metavar="NAME",
        help="window preset: brain, subdural, stroke, lung, mediastinum, "
        "abdomen, liver, bone, or auto (percentiles)",
    )
    what.add_argument(
        "--threshold",
        type=float,
        metavar="T",
        help="opacity threshold in data units (HU for CT; default 150 for CT)",
    )
    what.add_argument(
        "--opacity",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="threshold-opacity volume rendering in the 3D view (default on)",
    )
    what.add_argument(
        "--overlay",
        action="store_true",
        help="colour voxels at or above --threshold in the 2D views",
    )
    what.add_argument(
        "--crosshair",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="lines where the other planes cut each 2D view (default on)",
    )
    what.add_argument("--camera", choices=CAMERAS, default="iso", help="3D camera (default iso)")
    what.add_argument(
        "--slab",
        type=float,
        default=0.0,
        metavar="MM",
        help="thick slab: project MM millimetres centred on each 2D view's slice (default 0, "
        "a plain slice)",
    )
    what.add_argument(
        "--slab-mode",
        choices=("max", "min", "mean"),
        default="max",
        help="slab projection: max (MIP), min (MinIP) or mean (default max)",
    )
    what.add_argument(
        "--grid",
        choices=("auto", "patient", "acquisition"),
        default="auto",
        help="an oblique series: resliced onto the patient's planes (patient) or on its own "
        "acquisition grid, where marks are made (acquisition); auto (default) is patient, or "
        "acquisition with --annotations",
    )
    what.add_argument(
        "--annotations",
        metavar="FILE",
        help="annotation JSON (either format): frames and badges on marked slices",
    )
    return parser


# -- running ----------------------------------------------------------------------------------
def _usage(message: str) -> int:
    print(f"mprviewer screenshot: error: {message}", file=sys.stderr)
    return 2


def _check_args(args: argparse.Namespace) -> str | None:
    """The usage problem with these arguments, or None."""
    batch = args.all_series or args.marked_slices
    if batch and not args.out_dir:
        return "--all-series and --marked-slices write several files: give --out-dir DIR"
    if not batch and not args.output:
        return "give -o OUT.png (or --all-series/--marked-slices with --out-dir DIR)"
    if batch and args.output:
        return "-o names one file; with --all-series or --marked-slices use --out-dir only"
    if args.marked_slices and not args.annotations:
        return "--marked-slices needs --annotations FILE (the marks to render)"
    if args.preset and (args.window is not None or args.level is not None):
        return "give either --preset or --window/--level, not both"
    if args.window is not None and args.window <= 0:
        return f"--window must be positive, not {args.window:g}"
    if args.all_series and args.series is not None:
        return "--all-series renders every series; leave out --series"
    if args.grid == "patient" and args.annotations:
        return ("--annotations draws marks on the acquisition grid, where they were made; "
                "leave out --grid patient")
    if not 0 <= args.slab <= 10000:
        return f"--slab must be 0-10000 mm, not {args.slab:g}"
    return None


def _window(args: argparse.Namespace, volume: Any) -> tuple[float, float] | None:
    if args.window is None and args.level is None:
        return None
    from mprviewer.render.screenshot import default_window

    center, width = default_window(volume)
    return (
        args.level if args.level is not None else center,
        args.window if args.window is not None else width,
    )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "series"


def _options(args: argparse.Namespace, volume: Any) -> dict[str, Any]:
    return {
        "window": _window(args, volume),
        "preset": args.preset,
        "threshold": args.threshold,
        "overlay": args.overlay,
        "crosshair": args.crosshair,
        "slab": args.slab,
        "slab_mode": args.slab_mode,
    }


def _grid_option(args: argparse.Namespace) -> dict[str, Any]:
    return {} if args.grid == "auto" else {"acquisition_grid": args.grid == "acquisition"}


def _marks(args: argparse.Namespace, volume: Any, series: Any) -> dict[str, dict[int, list[str]]]:
    if not args.annotations:
        return {}
    from mprviewer.model.orientation import DisplayGrid
    from mprviewer.render.screenshot import resolve_marks

    if not volume.name:
        volume.name = series.name
    return resolve_marks(Path(args.annotations), volume, DisplayGrid.for_volume(volume))


def _render_one(args: argparse.Namespace, volume: Any, series: Any, path: Path) -> Path:
    from mprviewer.render.screenshot import save_screenshot

    return save_screenshot(
        volume,
        path,
        view=args.view,
        slices=args.slice,
        opacity=args.opacity,
        size=args.size,
        annotations=_marks(args, volume, series) or None,
        camera=args.camera,
        **_grid_option(args),
        **_options(args, volume),
    )


def _render_marked(
    args: argparse.Namespace, volume: Any, series: Any, out_dir: Path, prefix: str
) -> list[Path]:
    from mprviewer.render.screenshot import contact_sheet, marked_slice_images, write_png

    marks = _marks(args, volume, series)
    count = sum(len(v) for v in marks.values())
    if count == 0:
        print(f"{series.name}: no marked slices in {args.annotations}", flush=True)
        return []
    progress = Progress(count + 1)
    written, images = [], []
    for plane, index, image in marked_slice_images(
        volume, marks, size=args.size, **_options(args, volume)
    ):
        path = write_png(image, out_dir / f"{prefix}{plane}_{index:04d}.png")
        written.append(path)
        images.append(image)
        progress.step(f"wrote {path}")
    sheet = write_png(contact_sheet(images), out_dir / f"{prefix}contact_sheet.png")
    progress.step(f"wrote {sheet}")
    return [*written, sheet]


def run(args: argparse.Namespace) -> int:
    problem = _check_args(args)
    if problem:
        return _usage(problem)
    import mprviewer
    from mprviewer.errors import MprviewerError
    from mprviewer.render.offscreen import prepare_offscreen

    prepare_offscreen()
    source = args.source[0] if len(args.source) == 1 else args.source
    started = time.perf_counter()
    with mprviewer.open_study(source) as study:
        if args.all_series:
            chosen = list(enumerate(study.series))
        else:
            series = (
                study.find_series(args.series)
                if args.series is not None
                else study.largest_series()
            )
            chosen = [(study.series.index(series), series)]
        out_dir = Path(args.out_dir) if args.out_dir else None
        progress = Progress(len(chosen)) if args.all_series and not args.marked_slices else None
        failed = 0
        for index, series in chosen:
            try:
                volume = series.load()
            except MprviewerError as exc:
                if not args.all_series:
                    raise
                failed += 1  # keep going: one bad series should not stop a batch
                print(f"mprviewer: series {index} {series.name}: {exc}", file=sys.stderr)
                continue
            try:
                if args.marked_slices:
                    assert out_dir is not None
                    prefix = f"{index}_{_safe(series.name)}_" if args.all_series else ""
                    _render_marked(args, volume, series, out_dir, prefix)
                elif out_dir is not None:
                    path = _render_one(
                        args, volume, series, out_dir / f"{index}_{_safe(series.name)}.png"
                    )
                    if progress:
                        progress.step(f"wrote {path}")
                else:
                    path = _render_one(args, volume, series, Path(args.output))
                    w, h = args.size
                    print(
                        f"wrote {path} ({w}x{h}, series {index} {series.name}, "
                        f"{time.perf_counter() - started:.1f} s)"
                    )
            except ValueError as exc:  # a slice out of range, an unknown preset
                return _usage(str(exc))
    return 3 if failed else 0
