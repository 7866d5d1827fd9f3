"""A loaded 3D stack: voxels in acquisition order and the affine placing them in the patient."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mprviewer.io.geometry_checks import check_affine


@dataclass(eq=False)
class Volume:
    """One 3D image stack.

    ``array[k, j, i]`` is (slice, row, column), or ``[k, j, i, 3]`` for RGB. ``affine`` maps
    ``(i, j, k, 1)`` to patient LPS millimetres. ``sop_instance_uids[k]`` and
    ``slice_positions[k]`` (mm along the slice normal) tie each slice back to its file; a slice
    that was made by resampling has an empty UID.
    """

    array: np.ndarray
    affine: np.ndarray
    warnings: list[str] = field(default_factory=list)
    series_uid: str = ""
    study_uid: str = ""
    name: str = ""
    modality: str = ""
    units: str = ""
    window: tuple[float, float] | None = None
    sop_instance_uids: list[str] = field(default_factory=list)
    sop_class_uid: str = ""
    slice_positions: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.affine.shape != (4, 4):
            raise ValueError("affine must be 4x4")
        if self.array.ndim not in (3, 4):
            raise ValueError("array must be [k, j, i] or [k, j, i, 3]")
        check_affine(self.affine, self.name or self.series_uid or "volume")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(slices, rows, columns)."""
        k, j, i = self.array.shape[:3]
        return int(k), int(j), int(i)

    @property
    def is_rgb(self) -> bool:
        return self.array.ndim == 4

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along i (column), j (row), k (slice)."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return float(norms[0]), float(norms[1]), float(norms[2])

    @property
    def direction(self) -> np.ndarray:
        """3x3 unit direction cosines of the i, j, k axes (columns) in LPS."""
        return self.affine[:3, :3] / np.linalg.norm(self.affine[:3, :3], axis=0)

    def ijk_to_lps(self, ijk: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """Patient LPS mm of voxel index (i, j, k); accepts an (N, 3) array too."""
        pts = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
        out = pts @ self.affine[:3, :3].T + self.affine[:3, 3]
        return out[0] if np.ndim(ijk) == 1 else out

    def lps_to_ijk(self, lps: np.ndarray | tuple[float, float, float]) -> np.ndarray:
        """Continuous voxel index (i, j, k) of a patient LPS point; accepts (N, 3) too."""
        inv = np.linalg.inv(self.affine)
        pts = np.atleast_2d(np.asarray(lps, dtype=np.float64))
        out = pts @ inv[:3, :3].T + inv[:3, 3]
        return out[0] if np.ndim(lps) == 1 else out

    def value_range(self) -> tuple[float, float]:
        """Minimum and maximum voxel value (over all channels for RGB)."""
        return float(self.array.min()), float(self.array.max())
