"""Apply a ResamplePlan: put a sheared or irregular stack onto a regular orthogonal grid.

Only stacks that need it come here (gaps, uneven steps, gantry tilt); a regular stack is
returned by the loader untouched. In-plane shifts and the blend along the slice normal are
linear, like dcm2niix's tilt correction and 3D Slicer's acquisition-geometry regularisation.
"""

from __future__ import annotations

import numpy as np

from mprviewer.io.geometry import ResamplePlan


def _shift_axis(image: np.ndarray, axis: int, offset: float, length: int,
                fill: float) -> np.ndarray:
    """``out[n] = image[n + offset]`` along ``axis`` (linear), ``fill`` outside the image."""
    size = image.shape[axis]
    coords = np.arange(length, dtype=np.float64) + offset
    base = np.floor(coords)
    frac = coords - base
    lo = base.astype(np.int64)
    hi = lo + 1
    frac = np.where(np.isclose(frac, 0.0, atol=1e-6), 0.0, frac)
    valid = (lo >= 0) & ((hi <= size - 1) | ((lo <= size - 1) & (frac == 0.0)))
    lo_c = np.clip(lo, 0, size - 1)
    hi_c = np.clip(hi, 0, size - 1)
    a = np.take(image, lo_c, axis=axis).astype(np.float32)
    b = np.take(image, hi_c, axis=axis).astype(np.float32)
    shape = [1] * image.ndim
    shape[axis] = length
    f = frac.reshape(shape).astype(np.float32)
    out = a + (b - a) * f
    mask = valid.reshape(shape)
    return np.where(mask, out, np.float32(fill))


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def shift_slice(image: np.ndarray, di: float, dj: float, rows: int, columns: int,
                fill: float) -> np.ndarray:
    """One slice ``[j, i(, c)]`` moved so output (i, j) samples input (i + di, j + dj)."""
    moved = _shift_axis(image, 0, dj, rows, fill)
    moved = _shift_axis(moved, 1, di, columns, fill)
    return _cast(moved, image.dtype)


def apply_plan(array: np.ndarray, plan: ResamplePlan) -> np.ndarray:
    """The source stack ``array[s, j, i(, c)]`` resampled to the plan's regular grid."""
    fill = float(array.min()) if array.size else 0.0
    if plan.shifts is not None:
        shape = (array.shape[0], plan.rows, plan.columns, *array.shape[3:])
        source = np.empty(shape, dtype=array.dtype)
        for s in range(array.shape[0]):
            di, dj = plan.shifts[s]
            source[s] = shift_slice(array[s], float(di), float(dj), plan.rows, plan.columns,
                                    fill)
    else:
        source = array
    identity = (plan.num_slices == source.shape[0]
                and np.array_equal(plan.lower, np.arange(source.shape[0]))
                and not np.any(plan.weight > 0))
    if identity:
        return source
    out = np.empty((plan.num_slices, *source.shape[1:]), dtype=source.dtype)
    for m in range(plan.num_slices):
        w = float(plan.weight[m])
        lo = source[plan.lower[m]]
        if w <= 0.0:
            out[m] = lo
            continue
        hi = source[plan.upper[m]]
        blend = lo.astype(np.float32) * np.float32(1.0 - w) + hi.astype(np.float32) * np.float32(w)
        out[m] = _cast(blend, source.dtype)
    return out
