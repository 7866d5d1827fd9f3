"""Search filters and results, the same for QIDO-RS and C-FIND."""

from __future__ import annotations

import datetime
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from mprviewer.pacs.errors import PacsError

_DATE_RE = re.compile(r"(\d{4}-?\d{2}-?\d{2})?\s*(-|\.\.)?\s*(\d{4}-?\d{2}-?\d{2})?")
# SOP classes that carry no image: SR and KOS, presentation states, waveforms, encapsulated docs.
_NON_IMAGE_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.88.",
    "1.2.840.10008.5.1.4.1.1.11.",
    "1.2.840.10008.5.1.4.1.1.9.",
    "1.2.840.10008.5.1.4.1.1.104.",
)


# Series modalities that hold documents rather than images: key objects, reports, states.
NON_IMAGE_MODALITIES = frozenset({"KO", "SR", "PR", "DOC"})


def is_image_sop_class(sop_class_uid: str) -> bool:
    """False for SOP classes known to hold no pixels (reports, key objects, states)."""
    return not any(str(sop_class_uid).startswith(p) for p in _NON_IMAGE_PREFIXES)


def normalize_date(value: str | None) -> str | None:
    """A DICOM date or range: ``20240101``, ``20240101-20241231``, ``-20241231``, ``20240101-``.

    ISO dates (``2024-01-01``, ``2024-01-01..2024-12-31``) are accepted too.
    """
    if not value or not value.strip():
        return None
    match = _DATE_RE.fullmatch(value.strip())
    dates = [m.replace("-", "") if m else "" for m in (match[1], match[3])] if match else []
    if not match or not any(dates) or (dates[0] and dates[1] and not match[2]):
        raise PacsError(
            f"'{value}' is not a date or date range: write YYYYMMDD or YYYYMMDD-YYYYMMDD "
            "(either end may be left out)"
        )
    for text in dates:
        if text:
            try:
                datetime.datetime.strptime(text, "%Y%m%d")
            except ValueError:
                raise PacsError(f"'{value}': {text} is not a calendar date (YYYYMMDD)") from None
    if match[2]:
        return f"{dates[0]}-{dates[1]}"
    return dates[0] or dates[1]


@dataclass
class StudyQuery:
    """What to search for; empty fields match anything."""

    patient_name: str | None = None
    patient_id: str | None = None
    modality: str | None = None
    date: str | None = None
    accession: str | None = None
    study_uid: str | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        self.date = normalize_date(self.date)
        if self.modality:
            self.modality = self.modality.strip().upper()
        if self.patient_name:
            name = self.patient_name.strip()
            # a bare word should find "DOE^JOHN" when typing "doe": match it as a prefix
            if "*" not in name and "?" not in name:
                name += "*"
            self.patient_name = name

    def filters(self) -> dict[str, str]:
        """Matching keys by DICOM keyword."""
        pairs = {
            "PatientName": self.patient_name,
            "PatientID": self.patient_id,
            "ModalitiesInStudy": self.modality,
            "StudyDate": self.date,
            "AccessionNumber": self.accession,
            "StudyInstanceUID": self.study_uid,
        }
        return {k: v for k, v in pairs.items() if v}


STUDY_FIELDS = (
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "AccessionNumber",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
SERIES_FIELDS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "SeriesDate",
    "NumberOfSeriesRelatedInstances",
)


@dataclass
class StudyResult:
    study_uid: str
    date: str = ""
    time: str = ""
    description: str = ""
    accession: str = ""
    patient_name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    modalities: list[str] = field(default_factory=list)
    num_series: int | None = None
    num_instances: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SeriesResult:
    study_uid: str
    series_uid: str
    modality: str = ""
    number: int | None = None
    description: str = ""
    date: str = ""
    num_instances: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def holds_images(self) -> bool:
        """False for a series of key objects, reports or presentation states."""
        return self.modality.upper() not in NON_IMAGE_MODALITIES


def _text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword, None) if ds is not None else None
    if value is None:
        return ""
    if hasattr(value, "value"):
        value = value.value
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _int(ds: Any, keyword: str) -> int | None:
    text = _text(ds, keyword)
    try:
        return int(float(text)) if text else None
    except ValueError:
        return None


def study_from_dataset(ds: Any) -> StudyResult:
    """A study result from a pydicom Dataset (C-FIND identifier or decoded DICOM JSON)."""
    modalities = [m for m in _text(ds, "ModalitiesInStudy").split("\\") if m]
    return StudyResult(
        study_uid=_text(ds, "StudyInstanceUID"),
        date=_text(ds, "StudyDate"),
        time=_text(ds, "StudyTime"),
        description=_text(ds, "StudyDescription"),
        accession=_text(ds, "AccessionNumber"),
        patient_name=_text(ds, "PatientName"),
        patient_id=_text(ds, "PatientID"),
        birth_date=_text(ds, "PatientBirthDate"),
        modalities=modalities,
        num_series=_int(ds, "NumberOfStudyRelatedSeries"),
        num_instances=_int(ds, "NumberOfStudyRelatedInstances"),
    )


def series_from_dataset(ds: Any) -> SeriesResult:
    return SeriesResult(
        study_uid=_text(ds, "StudyInstanceUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        modality=_text(ds, "Modality"),
        number=_int(ds, "SeriesNumber"),
        description=_text(ds, "SeriesDescription"),
        date=_text(ds, "SeriesDate"),
        num_instances=_int(ds, "NumberOfSeriesRelatedInstances"),
    )


def sort_studies(studies: list[StudyResult]) -> list[StudyResult]:
    """Newest first, then by patient."""
    return sorted(studies, key=lambda s: (s.date, s.time, s.patient_name), reverse=True)


def sort_series(series: list[SeriesResult]) -> list[SeriesResult]:
    return sorted(series, key=lambda s: (s.number is None, s.number or 0, s.description))
