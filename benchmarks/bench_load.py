"""Loading a DICOM series folder into a volume: mprviewer next to its peers and the floor.

Every candidate is a function ``folder -> object holding the volume``; each does the whole
job a user waits for (find the files, read headers, order slices, read pixels), nothing more.
All imports happen when this module is imported, before anything is timed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk
from bench_data import DatasetSpec, dicom_files
from bench_measure import Sample, measure, median
from vtkmodules.vtkCommonCore import vtkObject
from vtkmodules.vtkIOImage import vtkDICOMImageReader

import mprviewer
from mprviewer.io import pixels as _pixels  # noqa: F401  (import cost out of the timing)

vtkObject.GlobalWarningDisplayOff()


def load_mprviewer(folder: Path) -> Any:
    """mprviewer: header scan, geometry sort, pixels into one int16 array (2 threads)."""
    study = mprviewer.open_study(str(folder))
    try:
        return study.series[0].load()
    finally:
        study.close()


def load_simpleitk(folder: Path) -> Any:
    """SimpleITK: GDCM scan and sort (GetGDCMSeriesFileNames), then ImageSeriesReader."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def load_vtk(folder: Path) -> Any:
    """vtkDICOMImageReader: stored values, no rescale, no sort by position."""
    reader = vtkDICOMImageReader()
    reader.SetDirectoryName(str(folder))
    reader.Update()
    if reader.GetErrorCode():
        raise RuntimeError("vtkDICOMImageReader reported an error")
    return reader.GetOutput()


def load_original(folder: Path) -> Any:
    """The original tool: dcmread every file, sort by SliceLocation, float64 stack, rescale."""
    slices = [pydicom.dcmread(path) for path in dicom_files(folder)]
    slices.sort(key=lambda ds: float(ds.SliceLocation))
    volume = np.stack([ds.pixel_array for ds in slices]).astype(np.float64)
    volume *= float(slices[0].RescaleSlope)
    volume += float(slices[0].RescaleIntercept)
    return volume


def read_all_bytes(folder: Path) -> Any:
    """The floor: list the folder and read every file's bytes once (one thread)."""
    total = 0
    for path in dicom_files(folder):
        with open(path, "rb") as fh:
            total += len(fh.read())
    return total


@dataclass(frozen=True)
class Candidate:
    name: str
    load: Callable[[Path], Any]
    note: str
    decodes_jpeg2000: bool = True


MPRVIEWER = "mprviewer"
SIMPLEITK = "SimpleITK ImageSeriesReader"
VTK = "vtkDICOMImageReader"
ORIGINAL = "original (pydicom, float64)"
FLOOR = "raw bytes (floor)"

CANDIDATES = [
    Candidate(MPRVIEWER, load_mprviewer, "open_study(folder).series[0].load(): int16 HU"),
    Candidate(SIMPLEITK, load_simpleitk,
              "GetGDCMSeriesFileNames + Execute: int16 HU, sorted by position"),
    Candidate(VTK, load_vtk, "stored values, rescale not applied, not sorted by position",
              decodes_jpeg2000=False),
    Candidate(ORIGINAL, load_original,
              "dcmread every file, sort by SliceLocation, np.stack, float64 HU"),
    Candidate(FLOOR, read_all_bytes, "read() of every file, nothing decoded"),
]


@dataclass
class LoadResult:
    spec: DatasetSpec
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # candidate -> why not measured
    check: dict[str, Any] = field(default_factory=dict)

    def median_seconds(self, name: str) -> float:
        return median([s.seconds for s in self.samples.get(name, [])])

    def median_cpu(self, name: str) -> float:
        return median([s.cpu_seconds for s in self.samples.get(name, [])])

    def median_peak(self, name: str) -> float:
        return median([float(s.peak_bytes) for s in self.samples.get(name, [])])


def run_load(spec: DatasetSpec, folder: Path, reps: int, log=print) -> LoadResult:
    """Warm up each candidate once, then ``reps`` rounds, each running all candidates in a
    rotated order (so none is always first after another's garbage)."""
    result = LoadResult(spec)
    active = []
    for cand in CANDIDATES:
        if spec.compressed and not cand.decodes_jpeg2000:
            result.skipped[cand.name] = "cannot decode JPEG 2000"
            continue
        try:
            measure(lambda c=cand: c.load(folder))  # warm-up: page cache, lazy plugins
        except Exception as exc:
            result.skipped[cand.name] = f"failed: {type(exc).__name__}: {exc}"
            continue
        active.append(cand)
        result.samples[cand.name] = []
    for rep in range(reps):
        shift = rep % max(1, len(active))
        for cand in active[shift:] + active[:shift]:
            sample, held = measure(lambda c=cand: c.load(folder))
            del held
            result.samples[cand.name].append(sample)
        log(f"  {spec.name}: round {rep + 1}/{reps}: " + ", ".join(
            f"{c.name} {result.samples[c.name][-1].seconds:.3f}s" for c in active))
    return result


# -- correctness ---------------------------------------------------------------------------
def sitk_affine(image: Any) -> np.ndarray:
    """(i, j, k) -> LPS of a SimpleITK image (ITK's physical space is LPS)."""
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.asarray(image.GetSpacing(), dtype=np.float64)
    affine[:3, 3] = image.GetOrigin()
    return affine


def check_against_simpleitk(folder: Path) -> dict[str, Any]:
    """mprviewer's volume against SimpleITK's: every voxel equal, affines within 1e-4 mm."""
    vol = load_mprviewer(folder)
    image = load_simpleitk(folder)
    ours = np.asarray(vol.array)
    theirs = sitk.GetArrayViewFromImage(image)
    same_shape = ours.shape == theirs.shape
    differing = (int(np.count_nonzero(ours.astype(np.int32) != theirs.astype(np.int32)))
                 if same_shape else -1)
    affine_diff = float(np.max(np.abs(np.asarray(vol.affine) - sitk_affine(image))))
    return {
        "shape": tuple(ours.shape),
        "sitk_shape": tuple(theirs.shape),
        "dtype": str(ours.dtype),
        "sitk_dtype": str(theirs.dtype),
        "differing_voxels": differing,
        "voxels_equal": same_shape and differing == 0,
        "affine_max_diff": affine_diff,
        "affine_ok": affine_diff <= 1e-4,
        "volume_bytes": int(ours.nbytes),
    }
