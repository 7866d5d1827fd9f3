"""Dataset exports of a labeling project.

- ``csv``: the RSNA 2019 haemorrhage layout, ``ID,Label`` then ``ID_<SOPInstanceUID>_<key>,0|1``
  for every acquired image of every series of every study the reader finished (done or no
  finding) and every label of the set; a multi-frame image is ``<SOPInstanceUID>-<frame>``.
  Derived labels (``any``) are 1 where any other label is. Marks that an image row cannot
  hold (other planes, free-text labels, slices with no acquired image) are counted in the
  notes.
- ``original``: the original tool's ``{"<series folder>": {"Anomaly": label, "Slices":
  "0-3; 9"}}`` over the whole project, keyed by each series folder relative to its source.
- ``full``: ``"format": "mprviewer-project"`` version 1 (``schema/project-v1.schema.json``):
  label set, studies with statuses per reader, current marks and the event log.
- ``sr``: one DICOM Comprehensive 3D SR per finished study (TID 1500 measurement report, one
  measurement group per marked image holding a qualitative evaluation per label), through
  highdicom.

Only finished studies go into csv, original and sr: an unread study is absent, a "no finding"
study is all zeros. Nothing is written when a check fails (unknown reader, collision).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mprviewer.errors import ProjectError
from mprviewer.model.slice_ranges import format_slices
from mprviewer.project import store as db
from mprviewer.project.common import FINISHED, application, atomic_write_text, now

# The Project and its StudyInfo rows are passed in (typed Any: this module sits below
# project.py, which imports it on demand).
Project = Any
StudyInfo = Any

FORMATS = ("csv", "original", "full", "sr")
FULL_FORMAT = "mprviewer-project"
FULL_VERSION = 1
PRIVATE_SCHEME = "99MPRVIEWER"


@dataclass
class ExportResult:
    """What an export wrote and what it could not hold (``notes``, one line each)."""

    fmt: str
    path: str
    reader: str | None
    studies: int = 0
    rows: int = 0
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        what = {"csv": f"{self.rows} rows", "original": f"{self.rows} series",
                "full": f"{self.rows} events", "sr": f"{len(self.files)} reports"}[self.fmt]
        who = f" by {self.reader}" if self.reader else ""
        return (f"wrote {self.path}: {self.fmt}, {self.studies} studies{who}, {what}")


def choose_reader(project: Project, reader: str | None, required: bool = True) -> str | None:
    """The reader whose work is exported: the one given, or the project's only reader."""
    readers = project.readers()
    if reader is not None:
        name = " ".join(reader.split())
        if name not in readers:
            known = ", ".join(readers) if readers else "nobody has recorded anything yet"
            raise ProjectError(f"no reader {name!r} in {project.name} (readers: {known})")
        return name
    if len(readers) > 1 and required:
        raise ProjectError(f"{project.name} has several readers ({', '.join(readers)}): "
                           "choose one with --reader NAME")
    return readers[0] if len(readers) == 1 else None


def finished_studies(project: Project, reader: str | None) -> list[StudyInfo]:
    if reader is None:
        return []
    statuses = project.statuses()
    return [s for s in project.studies()
            if statuses.get(s.id, {}).get(reader, ("unread", ""))[0] in FINISHED]


def _prepare_out(out: str | os.PathLike[str], overwrite: bool, folder: bool = False) -> Path:
    path = Path(out).expanduser()
    if folder:
        if path.exists() and not path.is_dir():
            raise ProjectError(f"{out}: exists and is not a folder (the sr export writes one "
                               "file per study into a folder)")
        if path.is_dir() and any(path.iterdir()) and not overwrite:
            raise ProjectError(f"{out}: the folder is not empty; give a new folder or allow "
                               "overwriting (--force)")
        return path
    if path.is_dir():
        raise ProjectError(f"{out}: is a folder; give a file name")
    if path.exists() and not overwrite:
        raise ProjectError(f"{out}: exists already; choose another name or allow overwriting "
                           "(--force)")
    if not path.parent.is_dir():
        raise ProjectError(f"{out}: the folder {path.parent} does not exist")
    return path


def _write_text(path: Path, text: str) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise ProjectError(f"cannot write {path}: {exc.strerror or exc}") from None


def export(project: Project, fmt: str, out: str | os.PathLike[str], reader: str | None = None,
           overwrite: bool = False) -> ExportResult:
    """Export in ``fmt`` to ``out`` (a file; a folder for ``sr``)."""
    if fmt not in FORMATS:
        raise ProjectError(f"unknown export format {fmt!r}: use {', '.join(FORMATS)}")
    if fmt == "full":
        who = choose_reader(project, reader, required=False) if reader is not None else None
        path = _prepare_out(out, overwrite)
        doc, result = full_document(project, who)
        _write_text(path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        result.path = str(path)
        return result
    who = choose_reader(project, reader)
    if fmt == "sr":
        path = _prepare_out(out, overwrite, folder=True)
        return write_sr(project, who, path)
    path = _prepare_out(out, overwrite)
    if fmt == "csv":
        text, result = csv_text(project, who)
    else:
        doc, result = original_document(project, who)
        text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    _write_text(path, text)
    result.path = str(path)
    return result


# -- per-image labels -----------------------------------------------------------------------
def _ensure_indexed(project: Project, studies: list[StudyInfo]) -> None:
    """PACS studies finished before their images were indexed are indexed now."""
    with project.store.read() as conn:
        indexed = {r[0] for r in conn.execute(select(db.series.c.study_id).distinct())}
    for info in studies:
        if info.id not in indexed and info.kind == "pacs":
            project.index_study(info)


def _image_rows(project: Project, study_ids: set[int]) -> list[Any]:
    """(study position, series id, series position, slice, sop, frame, plane, sop class,
    series uid) of every image of these studies, in worklist order."""
    i, s, st = db.images.c, db.series.c, db.studies.c
    q = (select(st.id, s.id, s.position, i.slice, i.sop_uid, i.frame, s.acquisition_plane,
                s.sop_class_uid, s.series_uid)
         .join(db.series, s.id == i.series_id).join(db.studies, st.id == s.study_id)
         .order_by(st.position, s.position, i.slice, i.id))
    with project.store.read() as conn:
        rows = conn.execute(q).all()
    return [r for r in rows if r[0] in study_ids]


@dataclass
class _Labels:
    """A reader's marks on finished studies, as image-level labels plus what does not fit."""

    by_slice: dict[int, dict[int, set[str]]]  # series id -> slice -> label keys
    other_plane: int = 0  # marked slices in a plane other than the acquisition plane
    free_text: int = 0  # marked slices with a label outside the set
    no_image: int = 0  # marked acquisition-plane slices with no acquired image


def _labels(project: Project, reader: str, study_ids: set[int],
            planes: dict[int, str]) -> _Labels:
    keys = set(project.label_set.keys)
    with project.store.read() as conn:
        marks = project._marks_in(conn, reader=reader)
    out = _Labels(by_slice=defaultdict(lambda: defaultdict(set)))
    for (study_id, _r, series_id, label, plane), slices in marks.items():
        if study_id not in study_ids:
            continue
        if plane != planes.get(series_id):
            out.other_plane += len(slices)
            continue
        if label not in keys:
            out.free_text += len(slices)
            continue
        for sl in slices:
            out.by_slice[series_id][sl].add(label)
    return out


def _notes(labels: _Labels, where: str) -> list[str]:
    notes = []
    if labels.other_plane:
        notes.append(f"{labels.other_plane} marked slices in planes other than the "
                     f"acquisition plane are not in the {where} (kept in the full export)")
    if labels.free_text:
        notes.append(f"{labels.free_text} marked slices with free-text labels outside the "
                     f"label set are not in the {where} (kept in the full export)")
    if labels.no_image:
        notes.append(f"{labels.no_image} marked slices fall between acquired images (a gap "
                     f"in the series) and are not in the {where}")
    return notes


def _plane_map(project: Project) -> dict[int, str]:
    with project.store.read() as conn:
        return {r[0]: r[1] for r in conn.execute(
            select(db.series.c.id, db.series.c.acquisition_plane))}


def csv_text(project: Project, reader: str | None) -> tuple[str, ExportResult]:
    """The RSNA-layout CSV of the reader's finished studies."""
    result = ExportResult("csv", "", reader)
    finished = finished_studies(project, reader)
    _ensure_indexed(project, finished)
    study_ids = {s.id for s in finished}
    label_set = project.label_set
    plain = [lab.key for lab in label_set.markable]
    derived = {lab.key for lab in label_set.derived}
    keys = label_set.keys
    planes = _plane_map(project)
    labels = _labels(project, reader, study_ids, planes) if reader else _Labels({})
    lines = ["ID,Label"]
    seen: dict[int, set[int]] = defaultdict(set)
    empty: set[str] = set()
    for _st, series_id, _pos, sl, sop, frame, _plane, _cls, _uid in _image_rows(project,
                                                                                study_ids):
        marked = labels.by_slice.get(series_id, {}).get(sl, empty)
        seen[series_id].add(sl)
        ident = sop if frame is None else f"{sop}-{frame}"
        positive = bool(marked) and any(k in marked for k in plain)
        for key in keys:
            value = (key in marked) or (key in derived and positive)
            lines.append(f"ID_{ident}_{key},{1 if value else 0}")
    for series_id, slices in labels.by_slice.items():
        labels.no_image += len(set(slices) - seen.get(series_id, set()))
    result.studies = len(finished)
    result.rows = len(lines) - 1
    result.notes = _notes(labels, "CSV")
    return "\n".join(lines) + "\n", result


# -- original -------------------------------------------------------------------------------
def original_document(project: Project, reader: str | None) -> tuple[dict[str, Any],
                                                                     ExportResult]:
    """The original tool's JSON over the reader's finished studies, keyed by series folder."""
    result = ExportResult("original", "", reader)
    finished = finished_studies(project, reader)
    study_ids = {s.id for s in finished}
    planes = _plane_map(project)
    labels = _labels(project, reader, study_ids, planes) if reader else _Labels({})
    label_set = project.label_set
    derived = label_set.derived[0].key if label_set.derived else None
    with project.store.read() as conn:
        series_rows = {r[0]: r for r in conn.execute(
            select(db.series.c.id, db.series.c.folder, db.series.c.name, db.series.c.study_id))}
    names = {s.id: f"study {s.index} ({s.name})" for s in finished}
    doc: dict[str, Any] = {}
    owner: dict[str, str] = {}
    not_written = 0
    order = {s.id: s.index for s in finished}
    chosen = sorted(labels.by_slice.items(),
                    key=lambda kv: (order.get(series_rows[kv[0]][3], 0), kv[0]))
    for series_id, slices in chosen:
        _sid, folder, name, study_id = series_rows[series_id]
        per_label: dict[str, set[int]] = defaultdict(set)
        for sl, keys in slices.items():
            for key in keys:
                per_label[key].add(sl)
        if not per_label:
            continue
        if len(per_label) == 1:
            label, marked = next(iter(per_label.items()))
        elif derived is not None:
            label, marked = derived, set().union(*per_label.values())
            not_written += len(per_label)
        else:
            label, marked = max(per_label.items(), key=lambda kv: (len(kv[1]), kv[0]))
            not_written += len(per_label) - 1
        who = f"series {name!r} of {names.get(study_id, study_id)}"
        if folder in owner:
            raise ProjectError(
                f"two series have the same folder {folder!r} relative to their source, so the "
                f"original format cannot tell them apart: {owner[folder]} and {who}; use the "
                "csv or full export")
        owner[folder] = who
        doc[folder] = {"Anomaly": label, "Slices": format_slices(marked)}
    result.studies = len(finished)
    result.rows = len(doc)
    result.notes = _notes(labels, "original format")
    if not_written:
        result.notes.append(
            f"{not_written} series labels were folded into one per series (the original "
            f"format holds one label per series{'; written as ' + repr(derived) if derived else ''}"
            "); use csv or full to keep them apart")
    unmarked = len(finished) - len({series_rows[s][3] for s in labels.by_slice})
    if unmarked > 0:
        result.notes.append(f"{unmarked} finished studies without marks are not listed (the "
                            "original format cannot say 'no finding'; csv and full can)")
    return doc, result


# -- full -----------------------------------------------------------------------------------
def full_document(project: Project, reader: str | None = None) -> tuple[dict[str, Any],
                                                                      ExportResult]:
    """Everything: label set, studies with statuses and current marks, the event log."""
    result = ExportResult("full", "", reader)
    statuses = project.statuses()
    marks = project.marks(reader=reader)
    with project.store.read() as conn:
        images = defaultdict(dict)
        for series_id, sl, sop in conn.execute(select(db.images.c.series_id, db.images.c.slice,
                                                      db.images.c.sop_uid)):
            images[series_id][sl] = sop
        all_series = conn.execute(select(
            db.series.c.id, db.series.c.study_id, db.series.c.series_uid, db.series.c.name,
            db.series.c.folder, db.series.c.acquisition_plane, db.series.c.plane_sizes,
            db.series.c.n_images).order_by(db.series.c.position)).all()
    by_study: dict[int, list[Any]] = defaultdict(list)
    for row in all_series:
        by_study[row[1]].append(row)
    marks_by_series: dict[int, list[Any]] = defaultdict(list)
    for m in marks:
        marks_by_series[m.series_id].append(m)
    studies = []
    for info in project.studies():
        per = statuses.get(info.id, {})
        status_doc = {}
        for who, (status, reason) in per.items():
            if reader is not None and who != reader:
                continue
            status_doc[who] = {"status": status, **({"reason": reason} if reason else {})}
        series_docs = []
        for sid, _st, uid, name, folder, plane, sizes, n_images in by_study.get(info.id, []):
            mark_docs = []
            for m in marks_by_series.get(sid, []):
                item: dict[str, Any] = {"reader": m.reader, "label": m.label, "plane": m.plane,
                                        "slices": list(m.slices), "ranges": m.ranges}
                if m.plane == plane:
                    item["sop_instance_uids"] = [images[sid].get(s, "") for s in m.slices]
                mark_docs.append(item)
            series_docs.append({"uid": uid, "name": name, "folder": folder,
                                "acquisition_plane": plane, "plane_sizes": json.loads(sizes),
                                "images": n_images, "marks": mark_docs})
        studies.append({"index": info.index, "study_uid": info.uid, "name": info.name,
                        "locations": list(info.locations), "statuses": status_doc,
                        "series": series_docs})
    events = [e for e in project.events() if reader is None or e["reader"] == reader]
    for e in events:
        e.pop("id", None)
    doc = {
        "format": FULL_FORMAT,
        "version": FULL_VERSION,
        "application": application(),
        "name": project.name,
        "exported": now(),
        "label_set": project.label_set.as_dict(),
        "readers": [reader] if reader else project.readers(),
        "statuses": ["unread", "in progress", "done", "no finding", "unreadable"],
        "studies": studies,
        "events": events,
    }
    result.studies = len(studies)
    result.rows = len(events)
    return doc, result


# -- DICOM SR -------------------------------------------------------------------------------
def _concept(key: str, meaning: str) -> Any:
    import highdicom as hd

    return hd.sr.CodedConcept(value=key, scheme_designator=PRIVATE_SCHEME, meaning=meaning)


def _evidence(info: StudyInfo, rows: list[Any]) -> list[Any]:
    """Minimal datasets standing for the study's images (the SR's evidence list)."""
    from pydicom.dataset import Dataset

    out = []
    seen: set[str] = set()
    for _st, _sid, _pos, _sl, sop, _frame, _plane, sop_class, series_uid in rows:
        if sop in seen:
            continue
        seen.add(sop)
        ds = Dataset()
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = sop
        ds.StudyInstanceUID = info.uid
        ds.SeriesInstanceUID = series_uid
        for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                        "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
                        "ReferringPhysicianName"):
            setattr(ds, keyword, info.attributes.get(keyword, ""))
        out.append(ds)
    return out


def sr_dataset(project: Project, info: StudyInfo, reader: str, rows: list[Any],
               labels: _Labels, instance: int = 1) -> Any:
    """One study's Comprehensive 3D SR: a measurement group per marked image."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    label_set = project.label_set
    plain = {lab.key for lab in label_set.markable}
    yes, no = codes.SCT.Yes, codes.SCT.No
    groups = []
    for _st, series_id, _pos, sl, sop, frame, _plane, sop_class, _uid in rows:
        marked = labels.by_slice.get(series_id, {}).get(sl)
        if not marked:
            continue
        positive = any(k in marked for k in plain)
        evaluations = [
            hd.sr.QualitativeEvaluation(
                name=_concept(lab.key, lab.name),
                value=yes if (lab.key in marked or (lab.derived and positive)) else no)
            for lab in label_set.labels]
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(
                uid=hd.UID(), identifier=f"slice {sl}" + (f" frame {frame}" if frame else "")),
            qualitative_evaluations=evaluations,
            source_images=[hd.sr.SourceImageForMeasurementGroup(
                sop_class, sop, referenced_frame_numbers=[frame] if frame else None)]))
    if not groups:  # a finished study without marks: every label "No" for the study
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="study"),
            qualitative_evaluations=[
                hd.sr.QualitativeEvaluation(name=_concept(lab.key, lab.name), value=no)
                for lab in label_set.labels]))
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name=_person_name(reader)))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=codes.cid100.CTUnspecifiedBodyRegion,
        imaging_measurements=groups,
        title=codes.cid7021.ImagingMeasurementReport)
    return hd.sr.Comprehensive3DSR(
        evidence=_evidence(info, rows), content=report, series_instance_uid=hd.UID(),
        series_number=999, sop_instance_uid=hd.UID(), instance_number=instance,
        manufacturer="mprviewer", series_description=f"labels by {reader}",
        is_complete=True)


def write_sr(project: Project, reader: str | None, folder: Path) -> ExportResult:
    """One SR file per finished study into ``folder``."""
    result = ExportResult("sr", str(folder), reader)
    finished = finished_studies(project, reader)
    _ensure_indexed(project, finished)
    study_ids = {s.id for s in finished}
    planes = _plane_map(project)
    labels = _labels(project, reader, study_ids, planes) if reader else _Labels({})
    rows_by_study: dict[int, list[Any]] = defaultdict(list)
    for row in _image_rows(project, study_ids):
        rows_by_study[row[0]].append(row)
    datasets = [(info, sr_dataset(project, info, reader or "", rows_by_study[info.id], labels))
                for info in finished if rows_by_study[info.id]]
    folder.mkdir(parents=True, exist_ok=True)
    for info, ds in datasets:
        path = folder / f"SR_{info.index:05d}_{info.uid}.dcm"
        try:
            ds.save_as(path, enforce_file_format=True)
        except OSError as exc:
            raise ProjectError(f"cannot write {path}: {exc.strerror or exc}") from None
        result.files.append(str(path))
    result.studies = len(datasets)
    result.notes = _notes(labels, "SR")
    return result


def _person_name(reader: str) -> str:
    """A reader name as a DICOM person name (one component ends with '^', as PN wants)."""
    name = reader.replace("\\", " ")[:64]
    return name if "^" in name else f"{name}^"
