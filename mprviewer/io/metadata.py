"""The data table of a series: what a reader wants to know about patient, study and scan."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mprviewer.io.series import Series

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


def series_metadata(series: Series) -> dict[str, str]:
    """Ordered label -> text for the data table of one series."""
    header = series.header
    table: dict[str, str] = {"Name": series.name}
    for label, keyword in TABLE_FIELDS:
        text = format_value(header.get(keyword))
        if text:
            table[label] = text
    k, j, i = series.shape
    di, dj, dk = series.spacing
    table["Size (columns x rows x slices)"] = f"{i} x {j} x {k}"
    table["Spacing (mm)"] = f"{di:.3g} x {dj:.3g} x {dk:.3g}"
    table["Orientation"] = series.orientation
    ts = series.frames[0].instance.transfer_syntax
    try:
        from pydicom.uid import UID

        table["Transfer syntax"] = f"{UID(ts).name} ({ts})"
    except Exception:
        table["Transfer syntax"] = ts
    table["Files"] = str(len({f.instance.member.name for f in series.frames}))
    if series.num_images != len({f.instance.member.name for f in series.frames}):
        table["Images (frames or tiles)"] = str(series.num_images)
    if series.split_label:
        table["Stack"] = series.split_label
    table.update(series.notes)
    plan = series.geometry.plan
    if plan is not None:
        made = sum(1 for f in series.geometry.slice_frames if f is None)
        table["Resampled"] = (
            f"onto a regular orthogonal grid: {series.num_images} images -> "
            f"{plan.num_slices} slices"
            + (f" ({made} interpolated)" if made else "")
            + ("; in-plane shift for gantry tilt" if plan.shifts is not None else "")
        )
    if series.warnings:
        table["Warnings"] = "; ".join(series.warnings)
    return table


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
