"""The built-in demo study: a CT chest phantom, generated on first use and cached as a zip.

Nothing is downloaded: the phantom (``mprviewer.synthetic.phantom``) is written with the synthetic
series writer as two reconstructions of one acquisition, a soft-tissue and a lung kernel,
each in its own folder of the zip, one file per slice with shuffled file names, as exported
by a PACS. Generation is deterministic (same bytes every time) and takes a few seconds; the
zip is written to a temporary file and renamed, so an interrupted first run never leaves a
broken cache. The file name carries ``GENERATOR_VERSION``: changing the generator changes the
name, and the old cache is replaced on next use.

Facts for tests: ``DEMO_SHAPE``, ``DEMO_SPACING``, ``DEMO_ORIGIN``, ``DEMO_AFFINE`` (the
(i, j, k) -> LPS affine a reader must produce for either series), ``DEMO_LESION_LPS`` (centre
of the bright lesion, on the patient's left, superior half), ``DEMO_LESION_RADIUS_MM`` and
``DEMO_SERIES`` (folder name, description, window, ...).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DEMO_AFFINE",
    "DEMO_LESION_LPS",
    "DEMO_LESION_RADIUS_MM",
    "DEMO_ORIGIN",
    "DEMO_SERIES",
    "DEMO_SHAPE",
    "DEMO_SPACING",
    "GENERATOR_VERSION",
    "DemoSeries",
    "build_demo_zip",
    "demo_path",
]

GENERATOR_VERSION = "1"
DEMO_SHAPE: tuple[int, int, int] = (128, 256, 256)  # (k, j, i)
DEMO_SPACING: tuple[float, float, float] = (2.5, 0.9, 0.9)  # (slice, row, column) mm
# LPS of voxel (0, 0, 0): the field of view is centred on x = y = 0, feet-first z below 0.
DEMO_ORIGIN: tuple[float, float, float] = (-114.75, -114.75, -420.0)
_SEED = "mprviewer-demo"
_ZIP_DATE = (2024, 1, 15, 9, 35, 0)
_ZIP_COMMENT = f"mprviewer demo study, generator {GENERATOR_VERSION}".encode()


@dataclass(frozen=True)
class DemoSeries:
    """One reconstruction in the demo zip."""

    folder: str
    series_number: int
    description: str
    window: tuple[float, float]
    kernel: str
    noise_hu: float
    sharpen: float


DEMO_SERIES: tuple[DemoSeries, ...] = (
    DemoSeries("CT_SOFT_TISSUE", 2, "Chest 2.5mm soft tissue", (40.0, 400.0), "B30f", 10.0, 0.0),
    DemoSeries("CT_LUNG", 3, "Chest 2.5mm lung", (-600.0, 1500.0), "B70f", 25.0, 1.5),
)


def _demo_affine() -> np.ndarray:
    affine = np.eye(4)
    affine[0, 0] = DEMO_SPACING[2]
    affine[1, 1] = DEMO_SPACING[1]
    affine[2, 2] = DEMO_SPACING[0]
    affine[:3, 3] = DEMO_ORIGIN
    return affine


DEMO_AFFINE: np.ndarray = _demo_affine()


def _lesion() -> tuple[tuple[float, float, float], float]:
    from mprviewer.synthetic.phantom import lesion_center_ijk, lesion_radius_mm

    ijk = lesion_center_ijk(DEMO_SHAPE, DEMO_SPACING)
    lps = DEMO_AFFINE[:3, :3] @ ijk + DEMO_AFFINE[:3, 3]
    return (float(lps[0]), float(lps[1]), float(lps[2])), lesion_radius_mm(DEMO_SHAPE, DEMO_SPACING)


DEMO_LESION_LPS, DEMO_LESION_RADIUS_MM = _lesion()

_PATIENT = {
    "PatientName": "Demo^Phantom",
    "PatientID": "MPRV-DEMO-0001",
    "PatientBirthDate": "19650412",
    "PatientSex": "F",
    "PatientAge": "058Y",
    "PatientSize": "1.68",
    "PatientWeight": "64",
}

_STUDY_TAGS = {
    "StudyDate": "20240115",
    "StudyTime": "093012",
    "SeriesDate": "20240115",
    "SeriesTime": "093455",
    "ContentDate": "20240115",
    "ContentTime": "093455",
    "AcquisitionDate": "20240115",
    "AcquisitionTime": "093248",
    "StudyDescription": "CT CHEST (synthetic phantom)",
    "AccessionNumber": "ACC20240115001",
    "StudyID": "1001",
    "InstitutionName": "mprviewer Demo Hospital",
    "StationName": "SYNCT01",
    "Manufacturer": "mprviewer",
    "ManufacturerModelName": "Synthetic CT",
    "SoftwareVersions": f"demo generator {GENERATOR_VERSION}",
    "ReferringPhysicianName": "Referrer^Demo",
    "BodyPartExamined": "CHEST",
    "ProtocolName": "Chest routine",
    "PatientPosition": "HFS",
    "KVP": "120",
    "XRayTubeCurrent": 180,
    "ExposureTime": 500,
    "DataCollectionDiameter": "500",
    "ReconstructionDiameter": "230.4",
    "GantryDetectorTilt": "0",
    "TableHeight": "155",
    "RotationDirection": "CW",
    "AcquisitionNumber": 1,
    "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
}


def build_demo_zip(path: str | Path) -> Path:
    """Generate the demo study into the zip ``path`` (atomically: temp file, then rename)."""
    from mprviewer.synthetic.phantom import add_noise, ct_phantom
    from mprviewer.synthetic.writer import make_uid, write_series

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    hu = ct_phantom(DEMO_SHAPE, DEMO_SPACING)
    study_uid = make_uid(_SEED, "study")
    frame_uid = make_uid(_SEED, "frame")
    fd, tmp_name = tempfile.mkstemp(prefix=".demo-", suffix=".zip.part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.comment = _ZIP_COMMENT
            for n, spec in enumerate(DEMO_SERIES):

                def sink(name: str, data: bytes, folder: str = spec.folder) -> None:
                    info = zipfile.ZipInfo(f"{folder}/{name}", date_time=_ZIP_DATE)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = 0o644 << 16
                    zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)

                values = add_noise(hu, spec.noise_hu, seed=n + 1, sharpen=spec.sharpen)
                write_series(
                    spec.folder,
                    values,
                    affine=DEMO_AFFINE,
                    modality="CT",
                    rescale=(1.0, -1024.0),
                    signed=False,
                    bits_stored=12,
                    window=spec.window,
                    seed=_SEED,
                    study_uid=study_uid,
                    frame_of_reference_uid=frame_uid,
                    series_uid=make_uid(_SEED, "series", spec.folder),
                    series_number=spec.series_number,
                    description=spec.description,
                    patient=_PATIENT,
                    tags={
                        **_STUDY_TAGS,
                        "ConvolutionKernel": spec.kernel,
                        "WindowCenterWidthExplanation": "SOFT TISSUE" if n == 0 else "LUNG",
                    },
                    shuffle=101 + n,
                    file_names="IM%05d",
                    extension="",
                    instance_numbers="reverse",
                    sink=sink,
                )
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def _is_valid(path: Path) -> bool:
    """A cheap check that the cached zip is complete and from this generator version."""
    try:
        with zipfile.ZipFile(path) as zf:
            if zf.comment != _ZIP_COMMENT:
                return False
            expected = DEMO_SHAPE[0] * len(DEMO_SERIES)
            return sum(1 for info in zf.infolist() if not info.is_dir()) == expected
    except (OSError, zipfile.BadZipFile):
        return False


@contextlib.contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on the demo folder while the zip is built (where locks exist)."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform: each process builds its own
        yield
        return
    with open(folder / ".build.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def demo_path() -> Path:
    """The demo study zip, generated into the per-user data folder on first use."""
    from mprviewer.paths import sub_dir

    folder = sub_dir("demo")
    path = folder / f"mprviewer-demo-v{GENERATOR_VERSION}.zip"
    if path.is_file() and _is_valid(path):
        return path
    with _build_lock(folder):  # processes starting together build it once, not each its own
        if path.is_file() and _is_valid(path):
            return path
        build_demo_zip(path)
    for old in folder.glob("mprviewer-demo-v*.zip"):
        if old != path:
            with contextlib.suppress(OSError):
                old.unlink()
    return path
