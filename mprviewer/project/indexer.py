"""Find the studies of a source from DICOM headers only, and describe them for the store.

A source is a folder holding one study per sub-folder or per zip (or the files of one
study), a zip, a DICOMDIR, or a study on a PACS. Each part of a source (a sub-folder, a zip)
is scanned with the loader's own header scan (``mprviewer.io.scan``, no pixel data); the
instances are grouped by StudyInstanceUID, so a study spread over several sub-folders (one
per series) is one study. What is recorded per series (slice numbers of the acquired images,
SOPInstanceUIDs, frames) uses the loader's geometry and the viewer's display grid, so a
slice number here is the slice number a reader sees.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mprviewer.errors import DicomError, SourceError
from mprviewer.model.annotations import STUDY_ATTRIBUTE_KEYWORDS

JUNK = {".ds_store", "thumbs.db", "desktop.ini", "__macosx", ".git", ".svn", ".mprviewer"}
ZIP_SUFFIXES = (".zip",)


@dataclass
class SeriesRecord:
    """One series as the store keeps it."""

    uid: str
    name: str
    number: int | None
    modality: str
    sop_class_uid: str
    folder: str
    acquisition_plane: str
    plane_sizes: dict[str, int]
    images: list[tuple[int, str, int | None]]  # (slice number, SOPInstanceUID, frame or None)


@dataclass
class StudyRecord:
    """One study found in a source."""

    uid: str
    name: str
    locations: list[str]
    attributes: dict[str, str]
    series: list[SeriesRecord] = field(default_factory=list)

    @property
    def n_images(self) -> int:
        return sum(len(s.images) for s in self.series)


@dataclass
class SourcePlan:
    """What one SOURCE argument is made of."""

    spec: str
    kind: str  # folder, zip, dicomdir, file, pacs
    root: str
    locations: list[str]


def plan_source(spec: str) -> SourcePlan:
    """Split a local SOURCE into the parts scanned one by one (sub-folders, zips)."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder")
    path = path.resolve()
    if path.is_file():
        if path.name.upper() == "DICOMDIR":
            return SourcePlan(spec, "dicomdir", str(path.parent), [str(path)])
        kind = "zip" if path.suffix.lower() in ZIP_SUFFIXES else "file"
        return SourcePlan(spec, kind, str(path.parent), [str(path)])
    if not path.is_dir():
        raise SourceError(f"{spec}: neither a file nor a folder")
    if (path / "DICOMDIR").is_file():
        return SourcePlan(spec, "dicomdir", str(path), [str(path / "DICOMDIR")])
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as exc:
        raise SourceError(f"{spec}: cannot be read ({exc.strerror or exc})") from exc
    parts: list[str] = []
    loose = False
    for entry in entries:
        if entry.name.lower() in JUNK or entry.name.startswith("."):
            continue
        if entry.is_dir() and (Path(entry.path) / "project.json").is_file():
            continue  # a labeling project kept beside its studies is not a study
        if entry.is_dir() or entry.name.lower().endswith(ZIP_SUFFIXES):
            parts.append(entry.path)
        elif entry.is_file():
            loose = True
    if loose or not parts:
        # Files at the top: the folder itself is (one or a few) studies.
        return SourcePlan(spec, "folder", str(path.parent), [str(path)])
    return SourcePlan(spec, "folder", str(path), parts)


def _relative(folder: str, root: str) -> str:
    """A series folder (``/a/b.zip!/CT``) relative to the source's root (``b.zip/CT``)."""
    plain = folder.replace("!/", "/").rstrip("/")
    if plain.endswith("/."):
        plain = plain[:-2]
    try:
        rel = os.path.relpath(plain, root)
    except ValueError:
        rel = plain
    return Path(rel).as_posix()


def _attributes(header: Any) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for keyword in STUDY_ATTRIBUTE_KEYWORDS:
        try:
            value = header.get(keyword)
        except Exception:  # a damaged value: leave it out
            value = None
        if value is not None and str(value) != "":
            attrs[keyword] = str(value)
    return attrs


def series_record(series: Any, root: str) -> SeriesRecord:
    """The store's view of a loader Series: slice numbers as the viewer numbers them."""
    from mprviewer.model.orientation import DisplayGrid

    first = series.frames[0].instance
    folder = _relative(first.member.folder, root)
    try:
        geometry = series.geometry
        grid = DisplayGrid.from_affine(geometry.affine, geometry.shape)
        plane = grid.acquisition_plane
        sizes = {p: int(grid.plane_size(p)) for p in ("axial", "coronal", "sagittal")}
        images = []
        for k, frame in enumerate(geometry.slice_frames):
            if frame is None:
                continue
            multi = frame.instance.frames > 1 or frame.tile is not None
            images.append((grid.plane_index_of_k(k), frame.instance.sop_uid,
                           frame.frame + 1 if multi else None))
    except DicomError:
        # No usable geometry (the viewer refuses to load it too): keep the images in order.
        plane = "axial"
        frames = series.frames
        sizes = {"axial": len(frames), "coronal": 0, "sagittal": 0}
        images = [(n, f.instance.sop_uid, f.frame + 1 if f.instance.frames > 1 else None)
                  for n, f in enumerate(frames)]
    images.sort()
    return SeriesRecord(
        uid=series.uid, name=series.name, number=series.number, modality=series.modality,
        sop_class_uid=first.sop_class_uid, folder=folder, acquisition_plane=plane,
        plane_sizes=sizes, images=images)


def _study_name(locations: list[str], root: str, attributes: dict[str, str]) -> str:
    """The study's folder (or zip) relative to its source; its description as a fallback."""
    where = [str(Path(loc).parent) if Path(loc).name.upper() == "DICOMDIR" else loc
             for loc in locations]
    common = where[0] if len(where) == 1 else os.path.commonpath(where)
    rel = _relative(common, root)
    if rel in ("", "."):
        rel = Path(common).name
    return rel or attributes.get("StudyDescription", "") or attributes.get("PatientID",
                                                                           "") or "study"


def scan_source(
    plan: SourcePlan,
    step: Callable[[str], None] | None = None,
    known: Callable[[str], bool] | None = None,
) -> tuple[list[StudyRecord], list[str]]:
    """The studies of a local source and the problems met (one line each, never fatal).

    ``step(message)`` is called once per part scanned; ``known(uid)`` says which studies are
    already in the project (they are counted, not scanned into records again).
    """
    from mprviewer.io.scan import scan_members
    from mprviewer.io.series import group_series
    from mprviewer.io.sources import expand_source

    by_study: dict[str, list[Any]] = defaultdict(list)
    where: dict[str, list[str]] = defaultdict(list)
    problems: list[str] = []
    for location in plan.locations:
        label = _relative(location, plan.root) if location != plan.root else location
        try:
            expanded = expand_source(location)
        except DicomError as exc:
            problems.append(f"{label}: {exc}")
            if step:
                step(f"{label}: skipped")
            continue
        try:
            instances, _skipped = scan_members(expanded.members)
        except DicomError as exc:
            problems.append(f"{label}: {exc}")
            instances = []
        finally:
            expanded.close()
        found: dict[str, int] = defaultdict(int)
        for inst in instances:
            uid = inst.study_uid or f"(no StudyInstanceUID in {label})"
            by_study[uid].append(inst)
            found[uid] += 1
        for uid in found:
            if location not in where[uid]:
                where[uid].append(location)
        if not found:
            problems.append(f"{label}: no DICOM images found")
        if step:
            n = len(found)
            step(f"{label}: {n} stud{'y' if n == 1 else 'ies'}, {sum(found.values())} images")
    records: list[StudyRecord] = []
    for uid, instances in by_study.items():
        if uid.startswith("(no StudyInstanceUID"):
            problems.append(f"{uid[1:-1]}: {len(instances)} images skipped")
            continue
        if known is not None and known(uid):
            continue
        series_list, _more = group_series(instances)
        if not series_list:
            problems.append(f"study {uid}: no image series")
            continue
        attrs = _attributes(series_list[0].header)
        locations = where[uid]
        record = StudyRecord(uid=uid, name=_study_name(locations, plan.root, attrs),
                             locations=locations, attributes=attrs)
        record.series = [series_record(s, plan.root) for s in series_list]
        records.append(record)
    records.sort(key=lambda r: (r.locations[0], r.name, r.uid))
    return records, problems


def json_list(values: Iterable[str]) -> str:
    return json.dumps(list(values))
