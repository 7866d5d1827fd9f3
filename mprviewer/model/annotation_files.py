"""Annotation files: the original tool's JSON and the richer versioned format.

Original (one label per series, slice numbers of the acquired images)::

    {"<series name>": {"Anomaly": "<label>", "Slices": "0-11; 57-59; 112"}}

Full (``"format": "mprviewer-annotations"``, ``"version": 1``): study UID, reader, timestamps,
and per series its UID and name, entries (label, plane, slices as a list and as range text,
SOP instance UIDs and positions for the acquisition plane), point picks and notes. It is
validated against ``schema/annotations-v1.schema.json``. Version 2
(``schema/annotations-v2.schema.json``) adds measurements per series: rulers, circular ROIs
with their statistics and ABC/2 hematoma volumes. A set without measurements is still written
as version 1, so older readers keep reading it; both versions are read.

Exporting to the original format can lose information (several labels, other planes, points,
measurements, notes). ``ExportReport`` says exactly what went into the file and what did not;
nothing is left out without saying so. The rule: per series, the acquisition-plane slices of
the label with the most marked slices are written; every other entry, the points, the
measurements and the notes are listed as not written.

Reading is defensive: a size cap before reading, no NaN/Infinity, no huge numbers, a depth
and size limit, duplicate keys refused, schema validation, and every problem is an
AnnotationError naming the file and the JSON path of the first problem. Reading returns a new
set; merging into what is open happens only after the whole file was understood.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from mprviewer.errors import AnnotationError
from mprviewer.model.annotations import (
    DEFAULT_LABEL,
    AnnotationSet,
    Entry,
    Point,
    SeriesAnnotations,
    SeriesRef,
    new_id,
)
from mprviewer.model.measurements import describe as describe_measurement
from mprviewer.model.measurements import from_json as measurement_from_json
from mprviewer.model.measurements import to_json as measurement_to_json
from mprviewer.model.slice_ranges import (
    SliceBudget,
    normalize_slices,
    parse_runs,
    runs_size,
    to_runs,
)

FORMAT_NAME = "mprviewer-annotations"
FORMAT_VERSION = 1  # written when a set holds no measurements (readable by older versions)
MEASUREMENTS_VERSION = 2  # written when it does
VERSIONS = (FORMAT_VERSION, MEASUREMENTS_VERSION)
FORMATS = ("full", "original")
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 12
MAX_VALUES = 2_000_000
SCHEMA_PATH = Path(__file__).with_name("schema") / "annotations-v1.schema.json"
SCHEMA_V2_PATH = Path(__file__).with_name("schema") / "annotations-v2.schema.json"
MEASUREMENT_KINDS = ("rulers", "rois", "hematomas")


# -- reading JSON safely --------------------------------------------------------------------
def _fail(source: str, problem: str, where: str = "") -> AnnotationError:
    at = f", at {where}" if where else ""
    return AnnotationError(f"{source}{at}: {problem.rstrip('.')}.")


def _read_text(path: Path) -> str:
    try:
        if path.is_dir():
            raise _fail(str(path), "is a folder, not an annotation file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _fail(str(path), f"is {size / 1e6:.0f} MB; annotation files are at most "
                        f"{MAX_FILE_BYTES // (1024 * 1024)} MB, so this is not one")
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _fail(str(path), f"cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise _fail(str(path), "is larger than an annotation file can be")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fail(str(path), f"is not UTF-8 text (byte {exc.start})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _checked_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:30]} is out of range")
    return value


def _checked_int(text: str) -> int:
    if len(text.lstrip("-")) > 15:
        raise ValueError(f"number {text[:30]}... is far too large")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key[:80]!r} appears twice in one object")
        out[key] = value
    return out


def _check_shape(doc: Any) -> None:
    """Refuse documents nested too deeply or holding too many values (before validating)."""
    stack: list[tuple[Any, int, str]] = [(doc, 0, "$")]
    count = 0
    while stack:
        value, depth, where = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise ValueError(f"more than {MAX_VALUES} values; this is not an annotation file")
        if depth > MAX_DEPTH:
            raise ValueError(f"nested more than {MAX_DEPTH} levels deep at {where}")
        if isinstance(value, dict):
            stack.extend((v, depth + 1, f"{where}.{k}") for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(value))


def loads(text: str, source: str = "annotation text") -> Any:
    """Parse JSON text with the limits above; AnnotationError on any problem."""
    try:
        doc = json.loads(
            text,
            parse_constant=_no_constant,
            parse_float=_checked_float,
            parse_int=_checked_int,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        raise _fail(source, f"is not valid JSON ({exc.msg} at line {exc.lineno}, "
                    f"column {exc.colno})") from None
    except RecursionError:
        raise _fail(source, "is nested too deeply to be an annotation file") from None
    except (ValueError, TypeError) as exc:
        raise _fail(source, f"is not usable JSON: {exc}") from None
    try:
        _check_shape(doc)
    except ValueError as exc:
        raise _fail(source, str(exc)) from None
    return doc


def load_json(path: str | Path) -> Any:
    path = Path(path)
    return loads(_read_text(path), str(path))


# -- format detection -------------------------------------------------------------------------
def detect_format(source: str | Path | Mapping[str, Any], name: str | None = None) -> str:
    """``"full"`` or ``"original"`` for a path or an already parsed document.

    ``name`` is what error messages call a parsed document (its file, when it came from one).
    """
    if isinstance(source, (str, Path)):
        return _detect(load_json(source), str(source))
    return _detect(source, name or "annotation document")


def _detect(doc: Any, name: str) -> str:
    if not isinstance(doc, dict):
        raise _fail(name, f"holds a JSON {type(doc).__name__}, but annotations are a JSON "
                    "object", "$")
    if "format" in doc or "version" in doc:
        if doc.get("format") != FORMAT_NAME:
            raise _fail(name, f"has format {str(doc.get('format'))[:60]!r}, expected "
                        f"{FORMAT_NAME!r}", "$.format")
        version = doc.get("version")
        if type(version) is not int or version not in VERSIONS:
            raise _fail(name, f"is version {str(version)[:20]}; this program reads "
                        "versions 1 and 2 (a newer mprviewer may read it)", "$.version")
        return "full"
    for key, value in doc.items():
        if not isinstance(value, dict) or "Slices" not in value:
            raise _fail(
                name,
                "is neither mprviewer annotations nor the original format "
                '{"<series>": {"Anomaly": "<label>", "Slices": "0-11; 57"}}',
                f"$[{json.dumps(key)[:80]}]",
            )
    return "original"


# -- from documents -------------------------------------------------------------------------
@lru_cache(maxsize=2)
def _validator(version: int = FORMAT_VERSION) -> Any:
    import jsonschema

    path = SCHEMA_V2_PATH if version == MEASUREMENTS_VERSION else SCHEMA_PATH
    schema = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _first_schema_error(doc: Any) -> tuple[str, str] | None:
    import jsonschema

    version = doc.get("version") if isinstance(doc, dict) else None
    errors = list(_validator(version if version in VERSIONS else FORMAT_VERSION)
                  .iter_errors(doc))
    if not errors:
        return None
    err = jsonschema.exceptions.best_match(errors)
    message = err.message if len(err.message) <= 200 else err.message[:197] + "..."
    return message, err.json_path


def _slices_of(source: str, value: Any, where: str, budget: SliceBudget) -> list[int]:
    """Slice numbers of a range text or list, counted against the document's ``budget``
    before anything is expanded."""
    try:
        if isinstance(value, str):
            runs = parse_runs(value)
            budget.take(runs_size(runs))
            return [s for low, high in runs for s in range(low, high + 1)]
        if isinstance(value, list):
            budget.take(len(value))
            return normalize_slices(int(v) if isinstance(v, float) and v.is_integer() else v
                                    for v in value)
    except AnnotationError as exc:
        raise _fail(source, str(exc).rstrip("."), where) from None
    raise _fail(source, f"slices must be range text like '0-11; 57', not "
                f"{type(value).__name__}", where)


def _runs_of(source: str, value: Any, where: str) -> list[tuple[int, int]]:
    """The runs of a range text, compared as runs (never expanded)."""
    try:
        return parse_runs(value)
    except AnnotationError as exc:
        raise _fail(source, str(exc).rstrip("."), where) from None


def _from_full(doc: dict[str, Any], source: str, budget: SliceBudget) -> AnnotationSet:
    problem = _first_schema_error(doc)
    if problem is not None:
        raise _fail(source, f"does not follow the annotation format: {problem[0]}", problem[1])
    series: list[SeriesAnnotations] = []
    keys: set[str] = set()
    ids: set[str] = set()
    for i, s in enumerate(doc["series"]):
        where = f"$.series[{i}]"
        entries: list[Entry] = []
        for j, e in enumerate(s["entries"]):
            ew = f"{where}.entries[{j}]"
            slices = _slices_of(source, e["slices"], f"{ew}.slices", budget)
            if "ranges" in e and _runs_of(source, e["ranges"], f"{ew}.ranges") != to_runs(
                slices
            ):
                raise _fail(source, "ranges and slices disagree; fix or remove 'ranges'", ew)
            if len(set(e["slices"])) != len(e["slices"]) and (
                e.get("sop_instance_uids") or e.get("positions")
            ):
                raise _fail(source, "slices repeat while UIDs/positions run parallel to them",
                            f"{ew}.slices")
            order = sorted(range(len(e["slices"])), key=lambda n, e=e: int(e["slices"][n]))
            uids = e.get("sop_instance_uids") or []
            positions = e.get("positions") or []
            for name, lst in (("sop_instance_uids", uids), ("positions", positions)):
                if lst and len(lst) != len(e["slices"]):
                    raise _fail(source, f"{name} has {len(lst)} items but slices has "
                                f"{len(e['slices'])}", f"{ew}.{name}")
            entry_id = e.get("id") or new_id()
            if entry_id in ids:
                entry_id = new_id()
            ids.add(entry_id)
            entry = Entry(
                id=entry_id,
                label=" ".join(e["label"].split()) or DEFAULT_LABEL,
                plane=e["plane"],
                slices=tuple(slices),
                sop_instance_uids=tuple(uids[n] for n in order) if uids else (),
                positions=tuple(None if positions[n] is None else float(positions[n])
                                for n in order) if positions else (),
                note=e.get("note", ""),
                created=e.get("created", ""),
                modified=e.get("modified", ""),
            )
            if not slices:
                continue
            same = next((k for k, x in enumerate(entries)
                         if x.label == entry.label and x.plane == entry.plane), None)
            if same is not None:
                raise _fail(source, f"label {entry.label!r} in the {entry.plane} plane appears "
                            "twice in one series; join the two entries", ew)
            entries.append(entry)
        points: list[Point] = []
        for p in s.get("points", []):
            point_id = p.get("id") or new_id()
            if point_id in ids:
                point_id = new_id()
            ids.add(point_id)
            points.append(Point(
                id=point_id,
                voxel=tuple(int(v) for v in p["voxel"]),  # type: ignore[arg-type]
                lps=tuple(float(v) for v in p["lps"]),  # type: ignore[arg-type]
                value=None if p.get("value") is None else float(p["value"]),
                label=" ".join(p.get("label", DEFAULT_LABEL).split()) or DEFAULT_LABEL,
                note=p.get("note", ""),
                plane=p.get("plane", ""),
                created=p.get("created", ""),
            ))
        measures: dict[str, list[Any]] = {}
        for kind in MEASUREMENT_KINDS:
            measures[kind] = []
            for n, obj in enumerate(s.get(kind, [])):
                item_id = obj.get("id") or new_id()
                if item_id in ids:
                    item_id = new_id()
                ids.add(item_id)
                try:
                    measures[kind].append(measurement_from_json(kind, obj, item_id))
                except AnnotationError as exc:
                    raise _fail(source, str(exc), f"{where}.{kind}[{n}]") from None
        sa = SeriesAnnotations(
            uid=s["uid"],
            name=s["name"],
            acquisition_plane=s.get("acquisition_plane", ""),
            sop_class_uid=s.get("sop_class_uid", ""),
            entries=tuple(entries),
            points=tuple(points),
            note=s.get("note", ""),
            clean=bool(s.get("clean", False)),
            **{k: tuple(v) for k, v in measures.items()},
        )
        if sa.key in keys:
            raise _fail(source, f"series {sa.label!r} appears twice", where)
        keys.add(sa.key)
        series.append(sa)
    return AnnotationSet.from_parts(
        study_uid=doc.get("study_uid", ""),
        reader=doc.get("reader", ""),
        series=series,
        note=doc.get("note", ""),
        created=doc.get("created") or None,
        modified=doc.get("modified") or None,
    )


def _from_original(
    doc: dict[str, Any], source: str, refs: Mapping[str, SeriesRef], budget: SliceBudget
) -> AnnotationSet:
    series: list[SeriesAnnotations] = []
    for name, value in doc.items():
        where = f"$[{json.dumps(name)[:80]}]"
        if not name.strip():
            raise _fail(source, "a series name is empty", where)
        label = value.get("Anomaly", DEFAULT_LABEL)
        if label is None:
            label = DEFAULT_LABEL
        if not isinstance(label, str) or len(label) > 200:
            raise _fail(source, "'Anomaly' must be a label text of at most 200 characters",
                        f"{where}.Anomaly")
        slices = _slices_of(source, value["Slices"], f"{where}.Slices", budget)
        ref = refs.get(name)
        plane = ref.acquisition_plane if ref is not None else "axial"
        entries = ()
        if slices:
            entries = (Entry(id=new_id(), label=" ".join(label.split()) or DEFAULT_LABEL,
                             plane=plane, slices=tuple(slices)),)
        # "Slices": "" is how the original tool records a series read and found clean
        series.append(SeriesAnnotations(
            uid="", name=name, acquisition_plane="", entries=entries, clean=not slices,
        ))
    return AnnotationSet.from_parts(series=series)


def _ref_table(refs: Iterable[SeriesRef] | Mapping[str, SeriesRef] | None) -> list[SeriesRef]:
    if refs is None:
        return []
    if isinstance(refs, Mapping):
        return list(refs.values())
    return list(refs)


def _match_ref(refs: list[SeriesRef], sa: SeriesAnnotations) -> SeriesRef | None:
    for ref in refs:
        if sa.uid and ref.uid == sa.uid:
            return ref
    for ref in refs:
        if sa.name and sa.name in (ref.name, ref.uid) and (not sa.uid or not ref.uid):
            return ref
    return None


def document_to_set(
    doc: Any,
    source: str = "annotation document",
    refs: Iterable[SeriesRef] | Mapping[str, SeriesRef] | None = None,
    allow_unknown_series: bool = False,
) -> tuple[AnnotationSet, list[str]]:
    """A new AnnotationSet from a parsed document, checked against the loaded series ``refs``.

    With refs, every series in the file must be one of them (unless ``allow_unknown_series``)
    and slice numbers are re-derived from stored SOP instance UIDs. All slices of the document
    together are capped (``MPRVIEWER_MAX_ANNOTATION_SLICES``), checked before expanding
    ranges. Returns the set and a report of adjustments.
    """
    fmt = _detect(doc, source)
    ref_list = _ref_table(refs)
    by_name = {r.name: r for r in ref_list if r.name}
    by_name.update({r.uid: r for r in ref_list if r.uid and r.uid not in by_name})
    budget = SliceBudget()  # one total for the whole document
    aset = (_from_full(doc, source, budget) if fmt == "full"
            else _from_original(doc, source, by_name, budget))
    report: list[str] = []
    if ref_list:
        for sa in aset.series:
            ref = _match_ref(ref_list, sa)
            if ref is None:
                if allow_unknown_series:
                    report.append(f"series {sa.label!r} is not in the open study; kept as is.")
                    continue
                known = ", ".join(repr(r.label) for r in ref_list[:6])
                raise _fail(source, f"series {sa.label!r} is not in the open study (it has "
                            f"{known}); open the matching study first")
            report.extend(aset.reconcile(ref))
            fixed = aset.get_series(ref.uid, ref.name)
            for e in fixed.entries if fixed is not None else ():
                size = ref.plane_sizes.get(e.plane)
                if size is not None and e.slices and e.slices[-1] >= size:
                    raise _fail(source, f"series {ref.label!r}: {e.plane} slice {e.slices[-1]} "
                                f"is beyond its {size} slices; the file belongs to other images")
        aset.clear_history()  # reconciling a fresh import is not an edit to undo
    return aset, report


def read_annotation_file(
    path: str | Path,
    refs: Iterable[SeriesRef] | Mapping[str, SeriesRef] | None = None,
    allow_unknown_series: bool = False,
) -> AnnotationSet:
    """Read either format into a new AnnotationSet (see ``document_to_set``)."""
    aset, _report = read_annotation_file_with_report(path, refs, allow_unknown_series)
    return aset


def read_annotation_file_with_report(
    path: str | Path,
    refs: Iterable[SeriesRef] | Mapping[str, SeriesRef] | None = None,
    allow_unknown_series: bool = False,
) -> tuple[AnnotationSet, list[str]]:
    path = Path(path)
    return document_to_set(load_json(path), str(path), refs, allow_unknown_series)


def import_into(
    aset: AnnotationSet,
    path: str | Path,
    refs: Iterable[SeriesRef] | Mapping[str, SeriesRef] | None = None,
    force: bool = False,
) -> str:
    """Read a file and merge it into ``aset`` as one undoable change; ``aset`` is untouched
    when anything is wrong. ``force`` accepts another study's annotations and unknown series."""
    other, report = read_annotation_file_with_report(path, refs, allow_unknown_series=force)
    summary = aset.merge(other, force=force)
    return " ".join([summary, *report])


# -- to documents ---------------------------------------------------------------------------
@dataclass
class ExportReport:
    """What an export wrote, and what the chosen format could not hold."""

    fmt: str
    path: str = ""
    written: list[str] = field(default_factory=list)
    not_written: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.not_written

    def __str__(self) -> str:
        where = f" to {self.path}" if self.path else ""
        lines = [f"Wrote {len(self.written)} series in the {self.fmt} format{where}:"]
        lines += [f"  {w}" for w in self.written] or ["  (nothing marked)"]
        if self.not_written:
            lines.append("Not written (the original format holds one label of acquisition-plane "
                         "slices per series, no points, rulers, ROIs or hematoma volumes; use "
                         "the full format to keep everything):")
            lines += [f"  {n}" for n in self.not_written]
        return "\n".join(lines)


def natural_key(name: str) -> Any:
    """Natural order of series names ("acquisition 8" before "acquisition 12")."""
    return _natural_keygen()(name)


@lru_cache(maxsize=1)
def _natural_keygen() -> Any:
    from natsort import natsort_keygen, ns

    return natsort_keygen(alg=ns.IGNORECASE)


def export_series(
    aset: AnnotationSet,
    study: Iterable[SeriesRef] | None = None,
    include: Iterable[str] | None = None,
) -> list[SeriesAnnotations]:
    """The series an export writes, in natural order of their names.

    ``study``: every series of the open study; those without marks are offered too (written
    as read and clean, the original tool's ``"Slices": ""``). ``include``: names or UIDs to
    write (None: all of them).
    """
    table = {sa.key: sa for sa in aset.series}
    for ref in study or ():
        if AnnotationSet._find_key(table, ref.uid, ref.name) is None:
            sa = SeriesAnnotations(uid=ref.uid, name=ref.name or ref.uid,
                                   acquisition_plane=ref.acquisition_plane,
                                   sop_class_uid=ref.sop_class_uid, clean=True)
            table[sa.key] = sa
    chosen = None if include is None else set(include)
    out = [sa for sa in table.values()
           if chosen is None or sa.name in chosen or (sa.uid and sa.uid in chosen)]
    if chosen is not None:
        known = {x for sa in table.values() for x in (sa.name, sa.uid) if x}
        unknown = sorted(chosen - known, key=natural_key)
        if unknown:
            raise AnnotationError(f"series {unknown[0]!r} is neither marked nor in the study; "
                                  "choose from: " + ", ".join(
                                      repr(sa.label) for sa in table.values())[:300])
    return sorted(out, key=lambda sa: natural_key(sa.label))


def _full_document(
    aset: AnnotationSet, series_list: list[SeriesAnnotations]
) -> tuple[dict[str, Any], ExportReport]:
    from mprviewer import __version__

    report = ExportReport("full")
    series = []
    for sa in series_list:
        entries = []
        for e in sa.entries:
            item: dict[str, Any] = {
                "id": e.id, "label": e.label, "plane": e.plane,
                "slices": list(e.slices), "ranges": e.ranges,
            }
            if e.sop_instance_uids:
                item["sop_instance_uids"] = list(e.sop_instance_uids)
            if e.positions:
                item["positions"] = [None if p is None else round(p, 6) for p in e.positions]
            if e.note:
                item["note"] = e.note
            if e.created:
                item["created"] = e.created
            if e.modified:
                item["modified"] = e.modified
            entries.append(item)
        points = []
        for p in sa.points:
            pt: dict[str, Any] = {"id": p.id, "label": p.label, "voxel": list(p.voxel),
                                  "lps": [round(v, 6) for v in p.lps], "value": p.value}
            if p.plane:
                pt["plane"] = p.plane
            if p.note:
                pt["note"] = p.note
            if p.created:
                pt["created"] = p.created
            points.append(pt)
        s: dict[str, Any] = {"uid": sa.uid, "name": sa.name}
        if sa.acquisition_plane:
            s["acquisition_plane"] = sa.acquisition_plane
        if sa.sop_class_uid:
            s["sop_class_uid"] = sa.sop_class_uid
        if sa.note:
            s["note"] = sa.note
        s["entries"] = entries
        s["points"] = points
        for kind in MEASUREMENT_KINDS:
            if getattr(sa, kind):
                s[kind] = [measurement_to_json(m) for m in getattr(sa, kind)]
        if sa.clean and not entries:
            s["clean"] = True
        series.append(s)
        parts = [f"{e.label}, {e.plane} {e.ranges}" for e in sa.entries]
        if sa.points:
            parts.append(f"{len(sa.points)} point{'s' if len(sa.points) > 1 else ''}")
        parts += [describe_measurement(m) for m in sa.measurements]
        if not parts and sa.clean:
            parts.append("no anomaly")
        report.written.append(f"{sa.label}: " + ("; ".join(parts) or "note only"))
    measured = any(sa.measurements for sa in aset.series)
    doc = {
        "format": FORMAT_NAME,
        "version": MEASUREMENTS_VERSION if measured else FORMAT_VERSION,
        "application": f"mprviewer {__version__}",
        "study_uid": aset.study_uid,
        "reader": aset.reader,
        "created": aset.created,
        "modified": aset.modified,
        "note": aset.note,
        "series": series,
    }
    return doc, report


def _original_document(
    aset: AnnotationSet, series_list: list[SeriesAnnotations]
) -> tuple[dict[str, Any], ExportReport]:
    report = ExportReport("original")
    doc: dict[str, Any] = {}
    if aset.note:
        report.not_written.append(f"study note: {aset.note[:60]!r}")
    for sa in series_list:
        acq = sa.acquisition_plane or "axial"
        candidates = [e for e in sa.entries if e.plane == acq]
        chosen = max(candidates, key=lambda e: len(e.slices), default=None)
        name = sa.name or sa.uid
        if chosen is not None:
            key = name
            if key in doc:
                key = f"{name} [{sa.uid or len(doc)}]"
                report.written.append(f"{sa.label}: written as {key!r} because another series "
                                      "has the same name")
            doc[key] = {"Anomaly": chosen.label, "Slices": chosen.ranges}
            report.written.append(f"{key}: {chosen.label}, {sa.acquisition_plane or 'acquired'} "
                                  f"slices {chosen.ranges}")
        elif sa.clean and not sa.entries and not sa.points:
            key = name if name not in doc else f"{name} [{sa.uid or len(doc)}]"
            doc[key] = {"Anomaly": "", "Slices": ""}
            report.written.append(f"{key}: no anomaly")
        for e in sa.entries:
            if e is chosen:
                continue
            why = ("another label" if e.plane == acq
                   else f"{e.plane} plane (the original format holds {acq} slices only)")
            report.not_written.append(f"{sa.label}: {e.label}, {e.plane} {e.ranges} - {why}")
        for p in sa.points:
            report.not_written.append(f"{sa.label}: point {p.label} at voxel {p.voxel}")
        for m in sa.measurements:
            report.not_written.append(f"{sa.label}: {describe_measurement(m)}")
        if sa.note:
            report.not_written.append(f"{sa.label}: note {sa.note[:60]!r}")
    return doc, report


def build_document(
    aset: AnnotationSet,
    fmt: str = "full",
    study: Iterable[SeriesRef] | None = None,
    include: Iterable[str] | None = None,
) -> tuple[dict[str, Any], ExportReport]:
    """The JSON document for ``fmt`` ("full" or "original") and the report of what it holds;
    ``study`` and ``include`` choose the series as ``export_series`` says."""
    if fmt in FORMATS:
        series_list = export_series(aset, study, include)
        if fmt == "full":
            return _full_document(aset, series_list)
        return _original_document(aset, series_list)
    raise AnnotationError(f"unknown annotation format {fmt!r}: use 'full' or 'original'.")


_FLAT_LIST = re.compile(r"\[[^\[\]{}]*\]")


def dumps(doc: Any) -> str:
    """Indented JSON with lists of plain values on one line (readable slice lists)."""
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    # JSON strings never hold a raw newline, so only layout whitespace is joined here
    flat = _FLAT_LIST.sub(lambda m: re.sub(r"\s*\n\s*", " ", m.group(0))
                          .replace("[ ", "[").replace(" ]", "]"), text)
    if flat != text and json.loads(flat) != doc:
        flat = text  # a bracket inside a string confused the layout: keep plain indentation
    return flat + "\n"


def to_json_text(aset: AnnotationSet, fmt: str = "full", **choice: Any) -> str:
    """The file content an export would write (for previews)."""
    doc, _report = build_document(aset, fmt, **choice)
    return dumps(doc)


def export_report(aset: AnnotationSet, fmt: str = "full", **choice: Any) -> ExportReport:
    """What an export in ``fmt`` would write and leave out (to show before saving)."""
    return build_document(aset, fmt, **choice)[1]


# -- writing --------------------------------------------------------------------------------
def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not possible on every platform or file system
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    """The process umask (read without changing it where /proc says it)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` so that ``path`` holds either the old or the new content, never a mix:
    temp file in the same folder, flush, fsync, rename over, fsync the folder.

    The file gets the mode any new file gets (0666 less the umask), not the temp file's 0600,
    so that a colleague or a pipeline allowed by the umask can read an export."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def write_annotation_file(
    aset: AnnotationSet,
    path: str | Path,
    fmt: str = "full",
    overwrite: bool = False,
    study: Iterable[SeriesRef] | None = None,
    include: Iterable[str] | None = None,
) -> ExportReport:
    """Export ``aset`` to ``path`` atomically and return what was (not) written.

    An existing file is replaced only with ``overwrite=True``. ``study`` (every series of
    the open study) and ``include`` (the names to write) choose the series.
    """
    path = Path(path)
    doc, report = build_document(aset, fmt, study=study, include=include)
    report.path = str(path)
    if path.is_dir():
        raise AnnotationError(f"{path} is a folder; give a file name for the annotations.")
    if path.exists() and not overwrite:
        raise AnnotationError(
            f"{path} already exists; choose another name or allow overwriting it."
        )
    try:
        atomic_write_text(path, dumps(doc))
    except OSError as exc:
        raise AnnotationError(f"cannot write {path}: {exc.strerror or exc}; choose a folder "
                              "you can write to.") from None
    return report
