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
