"""The data table of a series: what a reader wants to know about patient, study and scan.

Which header fields the table shows and how a value reads; ``Series.metadata`` fills it in
(this module knows nothing of Series, so the two import one way).
"""

from __future__ import annotations

from typing import Any

# (label, keyword) in the order the table shows them.
TABLE_FIELDS: tuple[tuple[str, str], ...] = (
    ("Patient name", "PatientName"),
    ("Patient ID", "PatientID"),
    ("Birth date", "PatientBirthDate"),
    ("Sex", "PatientSex"),
    ("Age", "PatientAge"),
    ("Study date", "StudyDate"),
    ("Study time", "StudyTime"),
    ("Study description", "StudyDescription"),
    ("Accession number", "AccessionNumber"),
    ("Study UID", "StudyInstanceUID"),
    ("Series number", "SeriesNumber"),
    ("Series description", "SeriesDescription"),
    ("Series UID", "SeriesInstanceUID"),
    ("Modality", "Modality"),
    ("Body part", "BodyPartExamined"),
    ("Protocol", "ProtocolName"),
    ("Manufacturer", "Manufacturer"),
    ("Model", "ManufacturerModelName"),
    ("Institution", "InstitutionName"),
    ("Referring physician", "ReferringPhysicianName"),
    ("Slice thickness (mm)", "SliceThickness"),
    ("kVp", "KVP"),
    ("Tube current (mA)", "XRayTubeCurrent"),
    ("Kernel", "ConvolutionKernel"),
    ("Magnetic field (T)", "MagneticFieldStrength"),
    ("Sequence", "SequenceName"),
    ("Repetition time (ms)", "RepetitionTime"),
    ("Echo time (ms)", "EchoTime"),
    ("Window center", "WindowCenter"),
    ("Window width", "WindowWidth"),
    ("Rescale slope", "RescaleSlope"),
    ("Rescale intercept", "RescaleIntercept"),
    ("Photometric", "PhotometricInterpretation"),
    ("Bits stored", "BitsStored"),
)


def format_value(value: Any) -> str:
    """A DICOM value as one readable line."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(format_value(v) for v in value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value).strip()


DATE_KEYWORDS = frozenset({"PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate",
                           "ContentDate"})
TIME_KEYWORDS = frozenset({"StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime"})


def readable_date(text: str) -> str:
    """DICOM DA "19700606" as "1970-06-06"; anything else unchanged."""
    text = str(text).strip()
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text


def readable_time(text: str) -> str:
    """DICOM TM "143015.123" as "14:30:15"; anything else unchanged."""
    text = str(text).strip()
    digits = text.split(".", 1)[0]
    if digits.isdigit() and len(digits) in (4, 6):
        parts = [digits[n:n + 2] for n in range(0, len(digits), 2)]
        return ":".join(parts)
    return text


def readable_value(keyword: str, value: Any) -> str:
    """``format_value``, with dates and times written as people read them."""
    text = format_value(value)
    if keyword in DATE_KEYWORDS:
        return readable_date(text)
    if keyword in TIME_KEYWORDS:
        return readable_time(text)
    return text


def patient_summary(header: Any) -> str:
    """One line naming patient and study, for a strip that stays on screen: name, ID, birth
    date and sex, study date and time, study description."""
    if header is None:
        return ""

    def get(keyword: str) -> str:
        try:
            return readable_value(keyword, header.get(keyword))
        except Exception:  # a damaged value: leave it out of the strip
            return ""

    name = get("PatientName").replace("^", " ").strip()
    parts = [name or "(no name)"]
    if get("PatientID"):
        parts.append(f"ID {get('PatientID')}")
    born = " ".join(x for x in (get("PatientBirthDate"), f"({get('PatientSex')})"
                                if get("PatientSex") else "") if x)
    if born:
        parts.append(f"born {born}")
    study = " ".join(x for x in (get("StudyDate"), get("StudyTime")) if x)
    if study:
        parts.append(f"study {study}")
    if get("StudyDescription"):
        parts.append(get("StudyDescription"))
    return "   ·   ".join(parts)


def dataset_rows(ds: Any) -> list[tuple[str, str, str, str]]:
    """(tag, keyword, VR, value) for every element of a header: the tag browser's rows."""
    rows = []
    for elem in ds.iterall():
        if elem.tag.group == 0x7FE0:
            continue
        value = "<sequence>" if elem.VR == "SQ" else format_value(elem.value)
        if len(value) > 200:
            value = value[:200] + "..."
        rows.append((f"({elem.tag.group:04X},{elem.tag.element:04X})", elem.keyword or elem.name,
                     str(elem.VR), value))
    return rows
