"""One vtkImageData per volume, on the display grid, shared by every view.

The 2D views, the 3D planes and the volume rendering all read the same vtkImageData, which
wraps the display array without copying it when that array is contiguous (the usual axial
acquisition). World coordinates are patient LPS millimetres: the image is axis aligned with
x toward the patient's Left, y Posterior, z Superior, origin ``grid.origin`` and spacing
``grid.spacing``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from vtkmodules.util import numpy_support
from vtkmodules.vtkCommonDataModel import vtkImageData

from mprviewer.io.geometry_checks import check_affine
from mprviewer.model.orientation import PLANE_AXIS, DisplayGrid

# dtypes VTK's image mappers handle directly; anything else is converted once.
_NATIVE = {np.dtype(t) for t in ("int8", "uint8", "int16", "uint16", "int32", "uint32")} | {
    np.dtype("float32"),
    np.dtype("float64"),
}


def _display_data(volume: Any, grid: DisplayGrid) -> np.ndarray:
    """The volume as a C-contiguous ``[z, y, x(, c)]`` array, a view when possible."""
    arr = grid.display_array(np.asarray(volume.array))
    if arr.dtype not in _NATIVE:
        arr = arr.astype(np.float32)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return arr


class ImageStore:
    """The shared display image of one volume, plus the little facts views need about it."""

    def __init__(self, volume: Any, grid: DisplayGrid | None = None) -> None:
        # A Volume checks its affine when made; this catches one changed since, because VTK
        # crashes on NaN, infinite or degenerate geometry instead of raising.
        check_affine(volume.affine, str(getattr(volume, "name", "") or "volume"))
        self.volume = volume
        self.grid = grid if grid is not None else DisplayGrid.for_volume(volume)
        self.array = _display_data(volume, self.grid)  # [z, y, x(, c)]
        self.is_rgb = self.array.ndim == 4
        self.components = int(self.array.shape[3]) if self.is_rgb else 1
        self.shape = self.grid.shape  # (nx, ny, nz)
        self.spacing = tuple(float(s) for s in self.grid.spacing)
        self.origin = tuple(float(o) for o in self.grid.origin)
        self.image = vtkImageData()
        self.image.SetDimensions(*self.shape)
        self.image.SetSpacing(*self.spacing)
        self.image.SetOrigin(*self.origin)
        flat = self.array.reshape(-1, self.components) if self.is_rgb else self.array.reshape(-1)
        scalars = numpy_support.numpy_to_vtk(flat, deep=False)
        scalars.SetName("values")
        self.image.GetPointData().SetScalars(scalars)
        self._scalars = scalars  # keeps the numpy buffer alive with the VTK array
        self._range: tuple[float, float] | None = None

    # -- facts -------------------------------------------------------------------------
    @property
    def units(self) -> str:
        return str(getattr(self.volume, "units", "") or "")

    @property
    def scalar_range(self) -> tuple[float, float]:
        """(min, max) of the data, computed once."""
        if self._range is None:
            lo, hi = float(self.array.min()), float(self.array.max())
            self._range = (lo, hi if hi > lo else lo + 1.0)
        return self._range

    @property
    def is_integer(self) -> bool:
        return bool(np.issubdtype(self.array.dtype, np.integer))

    @property
    def bounds(self) -> tuple[float, float, float, float, float, float]:
        """World bounds (xmin, xmax, ymin, ymax, zmin, zmax) of the voxel centres."""
        b = []
        for d in range(3):
            lo = self.origin[d]
            hi = lo + (self.shape[d] - 1) * self.spacing[d]
            b += [lo, hi]
        return tuple(b)  # type: ignore[return-value]

    def world_of(self, xyz: tuple[float, float, float] | np.ndarray) -> np.ndarray:
        """World (LPS mm on the display grid) of a display index."""
        return np.asarray(self.origin) + np.asarray(xyz, dtype=np.float64) * self.spacing

    def index_of(self, world: tuple[float, float, float] | np.ndarray) -> np.ndarray:
        """Continuous display index of a world point."""
        return (np.asarray(world, dtype=np.float64) - self.origin) / np.asarray(self.spacing)

    def plane_position_mm(self, plane: str, index: int) -> float:
        """Position of a slice along its plane's axis in patient mm (x, y or z of LPS)."""
        d = PLANE_AXIS[plane]
        return float(self.origin[d] + index * self.spacing[d])

    def value_at(self, xyz: tuple[int, int, int]) -> Any:
        """The voxel value (a tuple for RGB) at display index (x, y, z)."""
        x, y, z = (int(v) for v in xyz)
        v = self.array[z, y, x]
        return tuple(int(c) for c in v) if self.is_rgb else v.item()

    def contains(self, xyz: tuple[int, int, int]) -> bool:
        return all(0 <= int(xyz[d]) < self.shape[d] for d in range(3))
