"""Frames of an instance: one for classic images; several for multi-frame objects."""

from __future__ import annotations

from mprviewer.io.geometry import Frame
from mprviewer.io.scan import Instance


def expand_frames(instance: Instance) -> list[Frame]:
    """The 2D frames an instance contributes, each with its own position when known.

    A legacy multi-frame image without per-frame positions gets its frames stacked along
    the slice normal at SpacingBetweenSlices (or SliceThickness).
    """
    if instance.frames <= 1:
        return [Frame(instance, 0)]
    import numpy as np

    frames = []
    position = instance.position
    orientation = instance.orientation
    step = None
    if position is not None and orientation is not None:
        normal = np.cross(orientation[:3], orientation[3:])
        try:
            spacing = float(instance.header.get("SpacingBetweenSlices")
                            or instance.header.get("SliceThickness") or 1.0)
        except (TypeError, ValueError):
            spacing = 1.0
        step = normal * spacing
    for n in range(instance.frames):
        frame_position = None if step is None else position + n * step
        frames.append(Frame(instance, n, position=frame_position, orientation=orientation))
    return frames
