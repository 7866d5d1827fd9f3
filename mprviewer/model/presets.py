"""Window/level presets: the usual CT windows in HU, and an automatic window for everything else."""

from __future__ import annotations

import numpy as np

# name -> (center, width) in Hounsfield units.
CT_PRESETS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "stroke": (40.0, 40.0),
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "abdomen": (50.0, 400.0),
    "liver": (30.0, 150.0),
    "bone": (400.0, 1800.0),
}


def auto_window(
    array: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5
) -> tuple[float, float]:
    """(center, width) spanning the given percentiles; sampled so it stays fast on big volumes."""
    flat = np.asarray(array).reshape(-1)
    step = max(1, flat.size // 2_000_000)
    sample = flat[::step].astype(np.float64, copy=False)
    lo, hi = np.percentile(sample, [low_pct, high_pct])
    if hi <= lo:
        hi = lo + 1.0
    return float((lo + hi) / 2.0), float(hi - lo)


def preset_names(modality: str) -> list[str]:
    """Presets offered for a modality: the CT list for CT, just 'auto' otherwise."""
    return [*CT_PRESETS, "auto"] if modality.upper() == "CT" else ["auto"]


def resolve_preset(name: str, array: np.ndarray) -> tuple[float, float]:
    """(center, width) of a named preset; 'auto' is computed from the data."""
    key = name.lower()
    if key == "auto":
        return auto_window(array)
    if key not in CT_PRESETS:
        known = ", ".join([*CT_PRESETS, "auto"])
        raise KeyError(f"unknown window preset {name!r}; choose one of: {known}")
    return CT_PRESETS[key]
