"""Colour tables: the threshold overlay and the threshold-opacity transfer functions."""

from __future__ import annotations

from vtkmodules.vtkCommonCore import vtkLookupTable
from vtkmodules.vtkCommonDataModel import vtkPiecewiseFunction
from vtkmodules.vtkRenderingCore import vtkColorTransferFunction, vtkVolumeProperty

OVERLAY_RGBA = (1.0, 0.25, 0.1, 0.45)


def threshold_edge(threshold: float, integer: bool) -> float:
    """Half-width of the step around the threshold, so that ``v >= threshold`` is coloured.

    Integer data use half a unit (exact); floating data a relative epsilon.
    """
    return 0.5 if integer else max(abs(threshold), 1.0) * 1e-6


def threshold_lut(
    threshold: float, integer: bool, rgba: tuple[float, float, float, float] = OVERLAY_RGBA
) -> vtkLookupTable:
    """Two-entry table: transparent below the threshold, ``rgba`` at or above it."""
    lut = vtkLookupTable()
    lut.SetNumberOfTableValues(2)
    lut.SetTableValue(0, 0.0, 0.0, 0.0, 0.0)
    lut.SetTableValue(1, *rgba)
    update_threshold_lut(lut, threshold, integer)
    return lut


def update_threshold_lut(lut: vtkLookupTable, threshold: float, integer: bool) -> None:
    edge = threshold_edge(threshold, integer)
    lut.SetTableRange(threshold - edge, threshold + edge)
    lut.Build()
    lut.Modified()


def opacity_ramp(threshold: float, scalar_range: tuple[float, float]) -> list[tuple[float, float]]:
    """(value, opacity) points: zero below the threshold, a ramp to opaque above it."""
    lo, hi = scalar_range
    t = min(max(threshold, lo), hi)
    span = max(hi - t, 1e-6)
    ramp_end = t + max(span * 0.15, 1e-6)
    points = [(min(lo, t) - 1.0, 0.0), (t, 0.0), (ramp_end, 0.85), (max(hi, ramp_end) + 1.0, 0.95)]
    return points


def volume_property(
    threshold: float, scalar_range: tuple[float, float], window: tuple[float, float]
) -> vtkVolumeProperty:
    """Volume property for threshold-opacity rendering, coloured with a warm ramp."""
    prop = vtkVolumeProperty()
    prop.SetScalarOpacity(vtkPiecewiseFunction())
    prop.SetColor(vtkColorTransferFunction())
    prop.SetInterpolationTypeToLinear()
    prop.ShadeOn()
    prop.SetAmbient(0.45)
    prop.SetDiffuse(0.6)
    prop.SetSpecular(0.15)
    update_volume_property(prop, threshold, scalar_range, window)
    return prop


def update_volume_property(
    prop: vtkVolumeProperty,
    threshold: float,
    scalar_range: tuple[float, float],
    window: tuple[float, float],
) -> None:
    """Re-point the opacity and colour functions at a new threshold."""
    opacity = prop.GetScalarOpacity()
    opacity.RemoveAllPoints()
    for value, alpha in opacity_ramp(threshold, scalar_range):
        opacity.AddPoint(value, alpha)
    colour = prop.GetRGBTransferFunction()
    colour.RemoveAllPoints()
    lo, hi = scalar_range
    t = min(max(threshold, lo), hi)
    top = max(hi, t + 1.0)
    colour.AddRGBPoint(t, 0.75, 0.35, 0.2)
    colour.AddRGBPoint(t + (top - t) * 0.3, 0.95, 0.8, 0.6)
    colour.AddRGBPoint(top, 1.0, 1.0, 0.95)
