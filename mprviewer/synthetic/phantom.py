"""A deterministic CT-like chest phantom in Hounsfield units (numpy only).

The demo study, the benchmark and tests need a volume that looks like a CT, so that windowing,
thresholds and 3D rendering show something meaningful, and whose anatomy sits at known places,
so that a test can tell left from right in a screenshot.

Layout. The array is ``[k, j, i]`` of an axial stack written with ImageOrientationPatient
(1, 0, 0, 0, 1, 0): ``i`` runs toward the patient's Left (+x), ``j`` toward Posterior (+y),
``k`` toward Superior (+z). Anatomy is placed in coordinates normalised to the field of view,
``u = x / (width / 2)``, ``v = y / (height / 2)``, ``w = z / (length / 2)`` measured from the
volume centre, so any shape gives the same picture:

====================  =============================================  ==========
structure             where (u, v, w)                                HU
====================  =============================================  ==========
air                   outside the body                               -1000
table                 flat slab behind the back, v ~ 0.80            ~ 250
body (skin/fat/soft)  ellipse 0.90 x 0.66 centred at v = -0.05       20/-100/40
lungs                 ellipsoids at u = -0.40 (right), +0.40 (left)  -850
lung vessels          tubes radiating from the hila                  40
heart                 ellipsoid left of the midline, anterior        70/40
aorta                 descending, left of the spine                  50
liver                 below the right lung                           60
spine                 vertebral bodies at v = +0.40, discs between   700 / 90
ribs                  bands around the chest                         500
lesion                sphere in the LEFT lung, upper half            250
====================  =============================================  ==========

The lesion is at ``LESION_UVW = (+0.45, -0.20, +0.45)`` with radius ``LESION_RADIUS_U`` (in
units of u); ``lesion_center_mm`` turns that into millimetres. With the demo's 0.9 mm pixels
that is a sphere of about 16 mm diameter.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "LESION_HU",
    "LESION_RADIUS_U",
    "LESION_UVW",
    "add_noise",
    "ct_phantom",
    "lesion_center_ijk",
    "lesion_center_mm",
    "lesion_radius_mm",
]

LESION_UVW: tuple[float, float, float] = (0.45, -0.20, 0.45)
LESION_RADIUS_U = 0.07
LESION_HU = 250


def _half_extent(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> np.ndarray:
    """Half field of view in mm along (x, y, z)."""
    nk, nj, ni = shape
    dz, dy, dx = spacing
    return np.array([ni * dx / 2.0, nj * dy / 2.0, nk * dz / 2.0])


def lesion_center_mm(
    shape: tuple[int, int, int] = (128, 256, 256),
    spacing: tuple[float, float, float] = (2.5, 0.9, 0.9),
) -> np.ndarray:
    """Lesion centre in mm (x toward L, y toward P, z toward S) from the volume centre."""
    return np.asarray(LESION_UVW) * _half_extent(shape, spacing)


def lesion_radius_mm(
    shape: tuple[int, int, int] = (128, 256, 256),
    spacing: tuple[float, float, float] = (2.5, 0.9, 0.9),
) -> float:
    """Lesion radius in mm (scales with the field of view's width)."""
    return float(LESION_RADIUS_U * _half_extent(shape, spacing)[0])


def lesion_center_ijk(
    shape: tuple[int, int, int] = (128, 256, 256),
    spacing: tuple[float, float, float] = (2.5, 0.9, 0.9),
) -> np.ndarray:
    """Lesion centre as continuous voxel index (i, j, k) of the phantom array."""
    nk, nj, ni = shape
    dz, dy, dx = spacing
    centre = np.array([(ni - 1) / 2.0, (nj - 1) / 2.0, (nk - 1) / 2.0])
    return centre + lesion_center_mm(shape, spacing) / np.array([dx, dy, dz])


def _window(centre: float, radius: float, half: float, step: float, n: int) -> tuple[int, int]:
    """Index range covering normalised ``centre +- radius`` on an axis of ``n`` voxels."""
    lo = (centre - radius) * half / step + (n - 1) / 2.0
    hi = (centre + radius) * half / step + (n - 1) / 2.0
    return max(int(np.floor(lo)), 0), min(int(np.ceil(hi)) + 1, n)


def ct_phantom(
    shape: tuple[int, int, int] = (128, 256, 256),
    spacing: tuple[float, float, float] = (2.5, 0.9, 0.9),
) -> np.ndarray:
    """The phantom as int16 HU ``[k, j, i]`` (see the module docstring for the layout).

    ``spacing`` is (slice, row, column) mm; it only shapes the anatomy through the
    field of view (all positions are relative). Noise-free; see ``add_noise``.
    """
    nk, nj, ni = (int(n) for n in shape)
    half = _half_extent((nk, nj, ni), spacing)
    dz, dy, dx = spacing
    # Normalised coordinates of voxel centres.
    u = ((np.arange(ni) - (ni - 1) / 2.0) * dx / half[0]).astype(np.float32)[None, :]
    v = ((np.arange(nj) - (nj - 1) / 2.0) * dy / half[1]).astype(np.float32)[:, None]
    w_all = ((np.arange(nk) - (nk - 1) / 2.0) * dz / half[2]).astype(np.float32)
    aspect = np.float32(half[1] / half[0])  # turns v distances into u units

    out = np.full((nk, nj, ni), -1000, dtype=np.int16)

    # Constant cross-sections: body layers, table, spine and its canal.
    def ellipse(cu: float, cv: float, ru: float, rv: float) -> np.ndarray:
        return ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 <= 1.0

    body = ellipse(0.0, -0.05, 0.90, 0.66)
    fat = ellipse(0.0, -0.05, 0.885, 0.645)
    muscle = ellipse(0.0, -0.05, 0.80, 0.56)
    base = np.full((nj, ni), -1000, dtype=np.int16)
    base[body] = 20
    base[fat] = -100
    base[muscle] = 40
    table = (v >= 0.78) & (v <= 0.83) & (np.abs(u) <= 0.95)
    table_core = (v >= 0.83) & (v <= 0.92) & (np.abs(u) <= 0.95)
    base[np.broadcast_to(table, base.shape)] = 250
    base[np.broadcast_to(table_core, base.shape)] = -700
    spinous = ellipse(0.0, 0.58, 0.035, 0.07 / aspect)
    canal = ellipse(0.0, 0.51, 0.045, 0.045 / aspect)
    vertebra = ellipse(0.0, 0.38, 0.11, 0.10 / aspect)
    cortex = ellipse(0.0, 0.38, 0.13, 0.12 / aspect)
    aorta = ellipse(0.13, 0.20, 0.07, 0.07 / aspect)
    rib_outer = ellipse(0.0, -0.05, 0.78, 0.545)
    rib_inner = ellipse(0.0, -0.05, 0.74, 0.51)
    rib_ring = rib_outer & ~rib_inner & (v < 0.45)

    # Vertebrae every ~0.18 in w with discs between; ribs in bands on the vertebrae.
    period = 0.18
    phase = np.mod(w_all + 1.0, period) / period

    rng = np.random.default_rng(20240115)
    vessel_angles = rng.uniform(0, 2 * np.pi, size=(2, 9))
    vessel_tilt = rng.uniform(-0.25, 0.25, size=(2, 9))

    for k in range(nk):
        w = float(w_all[k])
        sl = base.copy()
        # Lungs: ellipsoids in the upper two thirds.
        lung_w = (w - 0.30) / 0.62
        lungs = np.zeros((nj, ni), dtype=bool)
        if abs(lung_w) < 1.0:
            scale = np.sqrt(1.0 - lung_w**2)
            for side, cu in enumerate((-0.40, 0.40)):
                lung = ellipse(cu, -0.08, 0.27 * scale + 1e-6, 0.42 * scale + 1e-6)
                sl[lung] = -850
                lungs |= lung
                # Vessels: tubes leaving the hilum at tilted angles, thinner outward.
                hu, hv = cu * 0.55, -0.05
                for n in range(vessel_angles.shape[1]):
                    ang = vessel_angles[side, n] + vessel_tilt[side, n] * (w - 0.3) * 6
                    for t in (0.1, 0.2, 0.3):
                        pu = hu + np.cos(ang) * t * 0.9 * (1 if cu > 0 else -1)
                        pv = hv + np.sin(ang) * t * 0.9
                        rad = 0.022 - 0.04 * t
                        # Only the window around the vessel: cheap at any matrix size.
                        i0, i1 = _window(pu, rad, half[0], dx, ni)
                        j0, j1 = _window(pv, rad / aspect, half[1], dy, nj)
                        if i0 >= i1 or j0 >= j1:
                            continue
                        uu, vv = u[:, i0:i1], v[j0:j1, :]
                        blob = (uu - pu) ** 2 + ((vv - pv) * aspect) ** 2 <= rad**2
                        blob &= lung[j0:j1, i0:i1]
                        sl[j0:j1, i0:i1][blob] = 40
        # Heart: anterior, left of the midline, lower part of the chest.
        heart_w = (w + 0.05) / 0.30
        if abs(heart_w) < 1.0:
            scale = np.sqrt(1.0 - heart_w**2)
            sl[ellipse(0.12, -0.20, 0.33 * scale + 1e-6, 0.33 * scale + 1e-6)] = -90
            sl[ellipse(0.12, -0.20, 0.30 * scale + 1e-6, 0.30 * scale + 1e-6)] = 70
            sl[ellipse(0.14, -0.22, 0.22 * scale + 1e-6, 0.22 * scale + 1e-6)] = 40
        # Liver: below the right lung.
        liver_w = (w + 0.55) / 0.40
        if abs(liver_w) < 1.0:
            scale = np.sqrt(1.0 - liver_w**2)
            liver = ellipse(-0.30, -0.05, 0.45 * scale + 1e-6, 0.40 * scale + 1e-6) & muscle
            sl[liver] = 60
        sl[aorta] = 50
        # Spine.
        in_disc = phase[k] > 0.85
        sl[cortex] = 90 if in_disc else 1000
        if not in_disc:
            sl[vertebra] = 700
            sl[spinous] = 600
        sl[canal] = 10
        if 0.1 < phase[k] < 0.45 and w > -0.45:
            sl[rib_ring & ~lungs] = 500
        out[k] = sl

    # Lesion: a sphere in the left lung, upper half.
    centre = lesion_center_ijk((nk, nj, ni), spacing)
    radius = lesion_radius_mm((nk, nj, ni), spacing)
    r_vox = radius / np.array([dx, dy, dz])
    lo = np.maximum(np.floor(centre - r_vox - 1), 0).astype(int)
    hi = np.minimum(np.ceil(centre + r_vox + 2), [ni, nj, nk]).astype(int)
    ii = (np.arange(lo[0], hi[0]) - centre[0]) * dx
    jj = (np.arange(lo[1], hi[1]) - centre[1]) * dy
    kk = (np.arange(lo[2], hi[2]) - centre[2]) * dz
    sphere = kk[:, None, None] ** 2 + jj[None, :, None] ** 2 + ii[None, None, :] ** 2 <= radius**2
    region = out[lo[2] : hi[2], lo[1] : hi[1], lo[0] : hi[0]]
    region[sphere] = LESION_HU
    return out


def add_noise(hu: np.ndarray, sigma: float, seed: int, *, sharpen: float = 0.0) -> np.ndarray:
    """``hu`` plus deterministic Gaussian noise (HU), clipped to the CT range, as int16.

    ``sharpen`` > 0 adds that fraction of a Laplacian high-pass, the look of a sharp
    (lung/bone) reconstruction kernel.
    """
    rng = np.random.default_rng(seed)
    data = hu.astype(np.float32)
    if sharpen:
        blur = data.copy()
        blur[:, 1:-1, :] = (data[:, :-2, :] + data[:, 1:-1, :] + data[:, 2:, :]) / 3
        blur[:, :, 1:-1] = (blur[:, :, :-2] + blur[:, :, 1:-1] + blur[:, :, 2:]) / 3
        data += sharpen * (data - blur)
    noise = rng.standard_normal(size=hu.shape, dtype=np.float32)
    data += np.float32(sigma) * noise
    np.clip(data, -1024, 3071, out=data)
    return np.rint(data).astype(np.int16)
