"""Export marked slices as a DICOM Key Object Selection (KOS) document.

A KOS document lists the images a reader flagged; PACS viewers (Weasis, OHIF) show them as
key images. Only acquisition-plane marks can be referenced: a coronal slice of an axial series
is a reformat, not a stored image, so such marks are left out and listed in ``skipped``.

The document title is "Of Interest" (113000, DCM), the generic title of CID 7010 for a
selection made for a reason other than the listed clinical ones; the anomaly labels and slice
ranges go in the Key Object Description text. Patient and study attributes come from
``SeriesRef.study_attributes`` (PatientName, PatientID, ...).

This module stays in the io layer: it uses pydicom and highdicom and takes the annotation
objects by their attributes, without importing the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mprviewer.errors import AnnotationError

STUDY_KEYWORDS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
    "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyDescription",
)
MAX_DESCRIPTION = 1024


@dataclass
class KosSelection:
    """The images a KOS document will reference, and the marks it cannot."""

    study_uid: str = ""
    # (series uid, sop class uid, sop instance uid), in series and slice order
    images: list[tuple[str, str, str]] = field(default_factory=list)
    description: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    study_attributes: dict[str, str] = field(default_factory=dict)


def _pairs(source: Any, refs: Sequence[Any]) -> list[tuple[Any, Any]]:
    """(series, entry) pairs from an AnnotationSet, such pairs, or entries of one series."""
    if hasattr(source, "entries") and callable(source.entries):
        return list(source.entries())
    pairs = []
    for item in source:
        if isinstance(item, tuple) and len(item) == 2:
            pairs.append(item)
        elif len(refs) == 1:
            pairs.append((refs[0], item))
        else:
            raise AnnotationError("bare entries can be exported only with exactly one series; "
                                  "pass (series, entry) pairs.")
    return pairs


def _ref_for(refs: Sequence[Any], series: Any) -> Any:
    uid = getattr(series, "uid", "")
    name = getattr(series, "name", "")
    for ref in refs:
        if uid and ref.uid == uid:
            return ref
    for ref in refs:
        if name and ref.name == name and (not uid or not ref.uid):
            return ref
    return None


def select_images(
    source: Any, refs: Iterable[Any] | Mapping[str, Any], label: str | None = None
) -> KosSelection:
    """Work out which SOP instances the marks point at (no highdicom needed)."""
    ref_list = list(refs.values()) if isinstance(refs, Mapping) else list(refs)
    sel = KosSelection(study_uid=str(getattr(source, "study_uid", "") or ""))
    seen: set[str] = set()
    for series, entry in _pairs(source, ref_list):
        if label is not None and entry.label != label:
            continue
        where = f"{getattr(series, 'name', '') or getattr(series, 'uid', '')}"
        ref = _ref_for(ref_list, series)
        acq = (getattr(ref, "acquisition_plane", "") if ref is not None else "") or getattr(
            series, "acquisition_plane", "")
        if not acq:
            sel.skipped.append(f"{where}: {entry.label}, {entry.plane} {entry.ranges} - the "
                               "series' images are not known; open the study to export them")
            continue
        if entry.plane != acq:
            sel.skipped.append(f"{where}: {entry.label}, {entry.plane} {entry.ranges} - not the "
                               f"acquisition plane ({acq}), no stored images")
            continue
        series_uid = getattr(series, "uid", "") or (ref.uid if ref is not None else "")
        sop_class = (ref.sop_class_uid if ref is not None else "") or getattr(
            series, "sop_class_uid", "")
        if not series_uid or not sop_class:
            sel.skipped.append(f"{where}: {entry.label} - the series UID or SOP class is not "
                               "known; open the study to export key images")
            continue
        if ref is not None:
            sel.study_uid = sel.study_uid or ref.study_uid
            for key, value in dict(ref.study_attributes).items():
                sel.study_attributes.setdefault(key, str(value))
        missing = []
        for n, s in enumerate(entry.slices):
            uid = entry.sop_instance_uids[n] if n < len(entry.sop_instance_uids) else ""
            if not uid and ref is not None and s < len(ref.sop_instance_uids):
                uid = ref.sop_instance_uids[s]
            if not uid:
                missing.append(s)
                continue
            if uid not in seen:
                seen.add(uid)
                sel.images.append((series_uid, sop_class, uid))
        if missing:
            sel.skipped.append(f"{where}: {entry.label}, slices {missing[:10]} have no known "
                               "SOP Instance UID")
        if len(missing) < len(entry.slices):
            sel.description.append(f"{entry.label}: {where} {entry.plane} slices {entry.ranges}")
    return sel


def build_kos(
    source: Any,
    refs: Iterable[Any] | Mapping[str, Any],
    *,
    label: str | None = None,
    reader: str = "",
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    series_number: int = 990,
    instance_number: int = 1,
    manufacturer: str = "mprviewer",
) -> tuple[Any, KosSelection]:
    """The KOS dataset (highdicom ``KeyObjectSelectionDocument``) and what it holds."""
    import highdicom as hd
    from pydicom.dataset import Dataset
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    sel = select_images(source, refs, label)
    if not sel.images:
        why = "; ".join(sel.skipped[:3]) or "nothing is marked"
        raise AnnotationError(f"no marked images to put in a key object document: {why}.")
    if not sel.study_uid:
        raise AnnotationError("the study UID is not known; open the study to export key images.")
    attrs = dict(sel.study_attributes)
    texts = [*attrs.values(), *sel.description, reader]
    if not attrs.get("SpecificCharacterSet") and not all(t.isascii() for t in texts):
        attrs["SpecificCharacterSet"] = "ISO_IR 192"  # UTF-8 for labels and names
    evidence = []
    for series_uid, sop_class, uid in sel.images:
        ds = Dataset()
        ds.StudyInstanceUID = sel.study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = uid
        ds.Rows = 1  # marks the reference as an image (IMAGE content item)
        ds.Columns = 1
        for key in STUDY_KEYWORDS:
            setattr(ds, key, attrs.get(key) or None)
        if attrs.get("SpecificCharacterSet"):
            ds.SpecificCharacterSet = attrs["SpecificCharacterSet"]
        evidence.append(ds)
    text = "Anomaly marks. " + "; ".join(sel.description)
    if len(text) > MAX_DESCRIPTION:
        text = text[: MAX_DESCRIPTION - 3] + "..."
    observer = None
    if reader:
        observer = hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                # a free-form name is one family-name component; "^" makes that explicit
                name=reader if "^" in reader else f"{reader}^"),
        )
    content = hd.ko.KeyObjectSelection(
        document_title=codes.DCM.OfInterest,
        referenced_objects=evidence,
        observer_person_context=observer,
        description=text,
    )
    try:
        doc = hd.ko.KeyObjectSelectionDocument(
            evidence=evidence,
            content=content,
            series_instance_uid=series_instance_uid or generate_uid(),
            series_number=series_number,
            sop_instance_uid=sop_instance_uid or generate_uid(),
            instance_number=instance_number,
            manufacturer=manufacturer,
        )
    except (ValueError, TypeError) as exc:
        raise AnnotationError(f"the key object document could not be built: {exc}") from None
    if attrs.get("StudyDescription"):
        doc.StudyDescription = attrs["StudyDescription"]
    doc.SeriesDescription = "Key images: " + ", ".join(
        dict.fromkeys(d.split(":")[0] for d in sel.description))[:50]
    return doc, sel


def write_kos(
    source: Any,
    refs: Iterable[Any] | Mapping[str, Any],
    path: str | Path | None = None,
    *,
    overwrite: bool = False,
    **options: Any,
) -> Any:
    """Build a KOS document for the marked acquisition-plane images and save it to ``path``
    (if given). Returns the pydicom Dataset, ready to be sent to a PACS. Marks that cannot be
    referenced (other planes, unknown UIDs) are listed by ``select_images(...).skipped``."""
    doc, _sel = build_kos(source, refs, **options)
    if path is not None:
        path = Path(path)
        if path.exists() and not overwrite:
            raise AnnotationError(f"{path} already exists; choose another name or allow "
                                  "overwriting it.")
        try:
            doc.save_as(path, enforce_file_format=True)
        except OSError as exc:
            raise AnnotationError(f"cannot write {path}: {exc.strerror or exc}.") from None
    return doc
