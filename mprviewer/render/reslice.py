"""An oblique acquisition resliced onto the patient's axial, coronal and sagittal planes.

The viewer shows every volume on a display grid along the patient's axes. For an oblique
acquisition (a 20 degree coronal-oblique MR, a tilted CT) that grid is only the nearest
one, so its "axial" view is really a tilted plane. ``patient_aligned`` resamples the volume
through its affine onto a grid that is exactly axis aligned in LPS (what 3D Slicer shows by
default); the acquisition grid stays available, since the marks of acquired images are made
on it. ``obliquity_text`` is the line the views' corner text shows for either.

vtkImageReslice does the resampling (trilinear, multithreaded): 5 s for a 512x512x300 stack
tilted 20 degrees (into 512x627x404) on this project's two shared cores.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from mprviewer.model.orientation import DisplayGrid

OBLIQUE_DEG = 1.0
"""Grids further than this from the patient's axes are resliced and called oblique."""


def obliquity(volume: Any) -> float:
    """Degrees between the volume's grid and the patient's axes (0 for a straight stack)."""
    return float(DisplayGrid.for_volume(volume).obliquity_deg)


def is_oblique(volume: Any) -> bool:
    """True when the grid is more than ``OBLIQUE_DEG`` off the patient's axes."""
    return obliquity(volume) > OBLIQUE_DEG


def obliquity_text(degrees: float, resliced: bool) -> str:
    """The corner-text line for an oblique series ('' for a straight one)."""
    if degrees <= OBLIQUE_DEG:
        return ""
    if resliced:
        return f"resliced, acquired oblique {degrees:.0f}°"
    return f"acquisition grid, oblique {degrees:.0f}°"


def patient_aligned(volume: Any) -> Any:
    """A copy of ``volume`` resampled onto an LPS-aligned grid covering all its voxels.

    Spacing along each patient axis is that of the acquisition axis nearest to it, so no
    detail is lost and the size grows only by the tilt. Voxels outside the acquired stack get
    the data's minimum (air for CT). The copy has no SOP instance UIDs (its slices are not
    acquired images) and says in its warnings that it was resliced.
    """
    from vtkmodules.util import numpy_support
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkCommonMath import vtkMatrix4x4
    from vtkmodules.vtkCommonTransforms import vtkTransform
    from vtkmodules.vtkImagingCore import vtkImageReslice

    from mprviewer.io.decoded import check_volume

    array = np.asarray(volume.array)
    affine = np.asarray(volume.affine, dtype=np.float64)
    grid = DisplayGrid.from_affine(affine, array.shape)
    degrees = float(grid.obliquity_deg)
    nk, nj, ni = array.shape[:3]
    corners = np.array([[i, j, k] for i in (0, ni - 1) for j in (0, nj - 1) for k in (0, nk - 1)],
                       dtype=np.float64)
    lps = corners @ affine[:3, :3].T + affine[:3, 3]
    lo, hi = lps.min(axis=0), lps.max(axis=0)
    spacing = np.asarray(grid.spacing, dtype=np.float64)
    dims = np.floor((hi - lo) / spacing + 1e-6).astype(int) + 1
    center = (lo + hi) / 2.0
    origin = center - (dims - 1) * spacing / 2.0

    components = int(array.shape[3]) if array.ndim == 4 else 1
    # Spacings of 1e-3 and 1e4 mm on one tilted grid make a reslice of billions of voxels,
    # which VTK aborts on: refuse it like any volume past the decoded-size cap.
    shape = (int(dims[2]), int(dims[1]), int(dims[0]))
    check_volume((*shape, components) if components > 1 else shape, array.dtype.itemsize,
                 f"{getattr(volume, 'name', '') or 'volume'}: resliced onto the patient's axes",
                 action="not resliced (its acquisition grid can still be shown)")
    source = vtkImageData()
    source.SetDimensions(ni, nj, nk)
    contiguous = np.ascontiguousarray(array)
    flat = contiguous.reshape(-1, components) if components > 1 else contiguous.reshape(-1)
    scalars = numpy_support.numpy_to_vtk(flat, deep=False)
    source.GetPointData().SetScalars(scalars)

    # Output points are LPS mm; the transform takes them to the source's (i, j, k).
    to_index = vtkMatrix4x4()
    inverse = np.linalg.inv(affine)
    for r in range(4):
        for c in range(4):
            to_index.SetElement(r, c, float(inverse[r, c]))
    transform = vtkTransform()
    transform.SetMatrix(to_index)

    reslice = vtkImageReslice()
    reslice.SetInputData(source)
    reslice.SetResliceTransform(transform)
    reslice.SetInterpolationModeToLinear()
    reslice.SetOutputSpacing(*spacing)
    reslice.SetOutputOrigin(*origin)
    reslice.SetOutputExtent(0, int(dims[0]) - 1, 0, int(dims[1]) - 1, 0, int(dims[2]) - 1)
    reslice.SetBackgroundLevel(float(array.min()) if array.size else 0.0)
    reslice.Update()
    out = reslice.GetOutput()
    values = numpy_support.vtk_to_numpy(out.GetPointData().GetScalars())
    resampled = values.reshape((*shape, components) if components > 1 else shape)
    if resampled.dtype != array.dtype:
        resampled = resampled.astype(array.dtype)

    new_affine = np.eye(4)
    new_affine[:3, :3] = np.diag(spacing)
    new_affine[:3, 3] = origin
    note = (f"resliced onto the patient's axes from an acquisition {degrees:.1f}° oblique; "
            "slice numbers are those of the resliced grid")
    return replace(
        volume,
        array=np.ascontiguousarray(resampled),
        affine=new_affine,
        warnings=[*list(getattr(volume, "warnings", []) or []), note],
        sop_instance_uids=[],
        slice_positions=None,
    )
