"""Reading meaning back out of rendered images (used by tests and checks of screenshots)."""

from __future__ import annotations

import numpy as np


def grey_mask(img: np.ndarray, min_level: int = 150, max_spread: int = 40) -> np.ndarray:
    """Pixels that are bright and grey (not the coloured crosshair, letters or overlay)."""
    rgb = img[..., :3].astype(np.int16)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    return (rgb.min(axis=2) >= min_level) & (spread <= max_spread)


def bright_spot(img: np.ndarray, min_level: int = 150) -> tuple[float, float] | None:
    """(column, row) median of the bright grey pixels, rows counted from the top; None if none.

    The median ignores the few white pixels of the corner text when a marker blob is present.
    """
    rows, cols = np.nonzero(grey_mask(img, min_level))
    if rows.size == 0:
        return None
    return float(np.median(cols)), float(np.median(rows))


def tile(img: np.ndarray, index: int, shape: tuple[int, int] = (2, 2)) -> np.ndarray:
    """One view of a composed image: index counts row by row from the top left."""
    h, w = img.shape[:2]
    r, c = divmod(index, shape[1])
    th, tw = h // shape[0], w // shape[1]
    return img[r * th : (r + 1) * th, c * tw : (c + 1) * tw]
