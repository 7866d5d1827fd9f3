"""Small studies with known content for the PACS tests, and a module-scoped user folder."""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from mprviewer.synthetic.writer import make_uid, write_series


@dataclass
class SeriesOnDisk:
    folder: Path
    files: list[Path]
    study_uid: str
    series_uid: str
    array: np.ndarray = field(repr=False)


def ct_series(folder: Path, *, slices: int = 6, size: int = 32, seed: str = "pacs-ct",
              patient: tuple[str, str] = ("DOE^JANE", "P-001"), accession: str = "ACC-CT-1",
              date: str = "20240115", modality: str = "CT") -> SeriesOnDisk:
    """A CT series whose neighbouring voxels all differ (a ramp through the volume, in HU)."""
    k, j, i = np.meshgrid(np.arange(slices), np.arange(size), np.arange(size), indexing="ij")
    array = ((k * 997 + j * size + i) % 4000 - 1000).astype(np.float64)
    study_uid = make_uid(seed, "study")
    series_uid = make_uid(seed, "series")
    files = write_series(
        folder, array, rescale=(1.0, -1024.0) if modality == "CT" else None,
        pixel_spacing=(0.8, 0.7), slice_spacing=2.5, origin=(-11.0, -12.0, 30.0),
        modality=modality, study_uid=study_uid, series_uid=series_uid, seed=seed,
        description=f"{modality} test series", shuffle=3,
        patient={"PatientName": patient[0], "PatientID": patient[1]},
        tags={"AccessionNumber": accession, "StudyDate": date, "SeriesDate": date},
    )
    return SeriesOnDisk(folder, [Path(p) for p in files], study_uid, series_uid, array)


def extract_zip(zip_path: str | Path, folder: Path) -> list[Path]:
    """Unpack every member of a zip (the demo study) into ``folder``."""
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file())


@contextlib.contextmanager
def module_home(factory: pytest.TempPathFactory) -> Iterator[Path]:
    """MPRVIEWER_HOME for module-scoped fixtures, sharing the demo cache like conftest does."""
    home = factory.mktemp("pacs-home")
    shared_demo = factory.getbasetemp() / "shared-demo"
    shared_demo.mkdir(exist_ok=True)
    (home / "demo").symlink_to(shared_demo, target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MPRVIEWER_HOME", str(home))
        yield home
