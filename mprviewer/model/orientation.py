"""How a volume's index axes map onto the patient's axes for display.

The viewer shows every volume on a display grid whose axes run toward the patient's
Left (x), Posterior (y) and Superior (z), DICOM LPS. For the usual axial, coronal and
sagittal acquisitions this is a transpose and flips of the array (no resampling); an
oblique stack is shown on its nearest axes, and ``obliquity_deg`` says by how much.

Plane slice numbers are indices on this grid, so they depend on geometry only:
axial counts from inferior (0) to superior, coronal from anterior to posterior,
sagittal from the patient's right to left.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

PLANES: tuple[str, str, str] = ("axial", "coronal", "sagittal")
# Display axis (0 = x toward L, 1 = y toward P, 2 = z toward S) each plane steps along.
PLANE_AXIS: dict[str, int] = {"sagittal": 0, "coronal": 1, "axial": 2}
AXIS_PLANE: dict[int, str] = {v: k for k, v in PLANE_AXIS.items()}


@dataclass(frozen=True)
class DisplayGrid:
    """Mapping between volume indices (i, j, k) and display indices (x, y, z).

    ``source_axis[d]`` is the volume index axis (0 = i, 1 = j, 2 = k) shown along display
    axis ``d``; ``flipped[d]`` is True when that index runs toward R, A or I.
    """

    source_axis: tuple[int, int, int]
    flipped: tuple[bool, bool, bool]
    source_shape_ijk: tuple[int, int, int]
    affine: np.ndarray
    obliquity_deg: float

    @classmethod
    def from_affine(cls, affine: np.ndarray, shape_kji: tuple[int, ...]) -> DisplayGrid:
        """Build the grid for a volume with this affine and ``array.shape`` (k, j, i, ...)."""
        affine = np.asarray(affine, dtype=np.float64)
        cosines = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
        best = None
        for perm in itertools.permutations(range(3)):
            # perm[d] = index axis shown along display axis d
            score = sum(abs(cosines[d, perm[d]]) for d in range(3))
            if best is None or score > best[0]:
                best = (score, perm)
        assert best is not None
        perm = best[1]
        flipped = tuple(bool(cosines[d, perm[d]] < 0) for d in range(3))
        worst = min(abs(cosines[d, perm[d]]) for d in range(3))
        obliquity = float(np.degrees(np.arccos(np.clip(worst, -1.0, 1.0))))
        nk, nj, ni = (int(n) for n in shape_kji[:3])
        return cls(
            source_axis=(int(perm[0]), int(perm[1]), int(perm[2])),
            flipped=flipped,  # type: ignore[arg-type]
            source_shape_ijk=(ni, nj, nk),
            affine=affine,
            obliquity_deg=round(obliquity, 3),
        )

    @classmethod
    def for_volume(cls, volume: Any) -> DisplayGrid:
        """Grid for any object with ``affine`` and ``array`` (a Volume)."""
        return cls.from_affine(volume.affine, volume.array.shape)

    # -- sizes -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """Number of voxels along x (L), y (P), z (S)."""
        return tuple(self.source_shape_ijk[a] for a in self.source_axis)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along x, y, z."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return tuple(float(norms[a]) for a in self.source_axis)  # type: ignore[return-value]

    @property
    def is_oblique(self) -> bool:
        return self.obliquity_deg > 0.5

    def plane_size(self, plane: str) -> int:
        """How many slices the plane has."""
        return self.shape[PLANE_AXIS[plane]]

    # -- arrays ------------------------------------------------------------------------
    def display_array(self, array: np.ndarray) -> np.ndarray:
        """A view of ``array[k, j, i(, c)]`` as ``[z, y, x(, c)]`` (no copy)."""
        # numpy axis of index axis a is 2 - a; output axes are z, y, x.
        order = [2 - self.source_axis[d] for d in (2, 1, 0)]
        out = np.transpose(array, order + list(range(3, array.ndim)))
        slicer = [slice(None)] * out.ndim
        for d in range(3):
            if self.flipped[d]:
                slicer[2 - d] = slice(None, None, -1)
        return out[tuple(slicer)]

    # -- indices -----------------------------------------------------------------------
    def display_to_ijk(self, xyz: tuple[float, float, float] | np.ndarray) -> np.ndarray:
        """Volume index (i, j, k) of display index (x, y, z); fractional values allowed."""
        xyz = np.asarray(xyz, dtype=np.float64)
        ijk = np.zeros(3)
        for d in range(3):
            a = self.source_axis[d]
            n = self.source_shape_ijk[a]
            ijk[a] = (n - 1 - xyz[d]) if self.flipped[d] else xyz[d]
        return ijk

    def ijk_to_display(self, ijk: tuple[float, float, float] | np.ndarray) -> np.ndarray:
        """Display index (x, y, z) of volume index (i, j, k)."""
        ijk = np.asarray(ijk, dtype=np.float64)
        xyz = np.zeros(3)
        for d in range(3):
            a = self.source_axis[d]
            n = self.source_shape_ijk[a]
            xyz[d] = (n - 1 - ijk[a]) if self.flipped[d] else ijk[a]
        return xyz

    @property
    def display_affine(self) -> np.ndarray:
        """4x4 mapping display index (x, y, z, 1) to patient LPS mm, exact for oblique data."""
        to_ijk = np.zeros((4, 4))
        to_ijk[3, 3] = 1.0
        for d in range(3):
            a = self.source_axis[d]
            if self.flipped[d]:
                to_ijk[a, d] = -1.0
                to_ijk[a, 3] = self.source_shape_ijk[a] - 1
            else:
                to_ijk[a, d] = 1.0
        return self.affine @ to_ijk

    def display_to_lps(self, xyz: tuple[float, float, float] | np.ndarray) -> np.ndarray:
        """Patient LPS mm of a display index."""
        p = np.append(np.asarray(xyz, dtype=np.float64), 1.0)
        return (self.display_affine @ p)[:3]

    def lps_to_display(self, lps: tuple[float, float, float] | np.ndarray) -> np.ndarray:
        """Continuous display index of a patient LPS point."""
        p = np.append(np.asarray(lps, dtype=np.float64), 1.0)
        return (np.linalg.inv(self.display_affine) @ p)[:3]

    @property
    def origin(self) -> tuple[float, float, float]:
        """LPS position of display voxel (0, 0, 0): the VTK image origin."""
        return tuple(float(v) for v in self.display_to_lps((0, 0, 0)))  # type: ignore[return-value]

    # -- the acquisition plane ----------------------------------------------------------
    @property
    def acquisition_plane(self) -> str:
        """The plane whose slices are the acquired images (the one the k axis steps through)."""
        return AXIS_PLANE[self.source_axis.index(2)]

    def acquisition_k(self, plane: str, index: int) -> int | None:
        """The volume's k of slice ``index`` of ``plane``, or None for a reformatted plane."""
        if plane != self.acquisition_plane:
            return None
        d = PLANE_AXIS[plane]
        nk = self.source_shape_ijk[2]
        return int(nk - 1 - index) if self.flipped[d] else int(index)

    def plane_index_of_k(self, k: int) -> int:
        """Slice number in the acquisition plane of the volume's slice k."""
        d = PLANE_AXIS[self.acquisition_plane]
        nk = self.source_shape_ijk[2]
        return int(nk - 1 - k) if self.flipped[d] else int(k)
