"""The slice range text of the original tool: ``"0-11; 57-59; 112"`` both ways.

Readers type these by hand, so parsing is forgiving about spaces, a trailing separator,
reversed ranges (``5-3``), duplicates and overlaps, and accepts ``,`` as well as ``;``.
It is strict about everything else and quotes the part it could not read. Sizes are capped
so that hostile text (``0-999999999999``) fails fast instead of eating memory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from mprviewer.errors import AnnotationError

MAX_SLICE_INDEX = 99_999
"""Largest slice number accepted; no real plane has 100000 slices."""

MAX_SLICES = 100_000
"""Most slices one range text may select."""

ENV_MAX_DOCUMENT_SLICES = "MPRVIEWER_MAX_ANNOTATION_SLICES"
DEFAULT_MAX_DOCUMENT_SLICES = 1_000_000
"""Most slices one annotation document (file, sidecar, import) may select in total.

A heavily annotated study (40 series, every slice of 2,000 marked in all three planes) is
240,000; a million slices take about 40 MB and a fraction of a second to read. Without a
total, 1000 series of ``"0-99999"`` (47 KB of JSON) would expand to 10^8 numbers and
gigabytes."""

_MAX_TEXT = 1_000_000  # characters; longer text is not a hand-typed range list
_NUMBER = r"\s*([0-9]{1,12})\s*"
_PART = re.compile(rf"^{_NUMBER}(?:[-\u2013\u2014]{_NUMBER})?$")
_SEPARATORS = re.compile(r"[;,]")


def _quote(part: str) -> str:
    part = part.strip()
    return repr(part if len(part) <= 40 else part[:37] + "...")


def _check_index(value: int, part: str) -> None:
    if value > MAX_SLICE_INDEX:
        raise AnnotationError(
            f"slice number {value} in {_quote(part)} is too large: slice numbers run from 0 "
            f"to at most {MAX_SLICE_INDEX}."
        )


def parse_runs(text: str) -> list[tuple[int, int]]:
    """Slice ranges as sorted, disjoint runs ``(first, last)``, without expanding them.

    Raises AnnotationError quoting the part that is not a number or a range ``a-b``.
    """
    if not isinstance(text, str):
        raise AnnotationError(
            f"slice ranges must be text like '0-11; 57', not {type(text).__name__}."
        )
    if len(text) > _MAX_TEXT:
        raise AnnotationError(
            f"slice range text is {len(text)} characters long; at most {_MAX_TEXT} are accepted."
        )
    runs: list[tuple[int, int]] = []
    for part in _SEPARATORS.split(text):
        if not part.strip():
            continue  # "0-3;" or "1;;2": empty parts are harmless
        match = _PART.match(part)
        if match is None:
            raise AnnotationError(
                f"cannot read {_quote(part)} in slice ranges: write numbers and ranges like "
                "'0-11; 57-59; 112' (0-based, separated by ';' or ',')."
            )
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        _check_index(first, part)
        _check_index(last, part)
        runs.append((min(first, last), max(first, last)))
    runs.sort()
    merged: list[tuple[int, int]] = []
    for low, high in runs:
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged


def runs_size(runs: Iterable[tuple[int, int]]) -> int:
    """How many slices disjoint runs ``(first, last)`` select."""
    return sum(high - low + 1 for low, high in runs)


def parse_slices(text: str) -> list[int]:
    """Slice numbers written as ``"0-11; 57-59; 112"``, sorted and without duplicates.

    The count is checked from the ranges before any list is built. Raises AnnotationError
    quoting the part that is not a number or a range ``a-b``.
    """
    runs = parse_runs(text)
    for low, high in runs:
        if high - low + 1 > MAX_SLICES:
            raise AnnotationError(
                f"range '{low}-{high}' selects {high - low + 1} slices; at most "
                f"{MAX_SLICES} are accepted."
            )
    if runs_size(runs) > MAX_SLICES:
        raise AnnotationError(f"slice ranges select more than {MAX_SLICES} slices.")
    return [s for low, high in runs for s in range(low, high + 1)]


def max_document_slices() -> int | None:
    """The total cap of one document from ``MPRVIEWER_MAX_ANNOTATION_SLICES`` (``0`` or
    ``none``: no cap), else the default."""
    text = os.environ.get(ENV_MAX_DOCUMENT_SLICES, "").strip().lower().replace("_", "")
    if not text:
        return DEFAULT_MAX_DOCUMENT_SLICES
    if text in ("0", "none", "off", "unlimited"):
        return None
    if not text.isdigit():
        raise AnnotationError(
            f"{ENV_MAX_DOCUMENT_SLICES}={os.environ[ENV_MAX_DOCUMENT_SLICES][:40]!r} is not a "
            "whole number of slices (or 'none')."
        )
    return int(text)


class SliceBudget:
    """The slices one document may still select, counted from range text before expanding.

    One budget is shared by every range and list of a document, so many small ranges cannot
    add up to more than a single big one may.
    """

    def __init__(self, limit: int | None = None, use_env: bool = True):
        self.limit = max_document_slices() if limit is None and use_env else limit
        self.used = 0

    def take(self, count: int) -> None:
        """Count ``count`` more slices; AnnotationError once the total passes the cap."""
        self.used += count
        if self.limit is not None and self.used > self.limit:
            raise AnnotationError(
                f"the document selects more than {self.limit:,} slices in total, more than "
                "any study has; if the file is genuine, raise "
                f"{ENV_MAX_DOCUMENT_SLICES}"
            )


def normalize_slices(slices: Iterable[int]) -> list[int]:
    """Sorted unique slice numbers, checked to be whole numbers in range."""
    out: set[int] = set()
    for value in slices:
        if isinstance(value, bool) or not isinstance(value, int):
            raise AnnotationError(f"slice number {value!r} is not a whole number.")
        if value < 0 or value > MAX_SLICE_INDEX:
            raise AnnotationError(
                f"slice number {value} is out of range: slice numbers run from 0 to at most "
                f"{MAX_SLICE_INDEX}."
            )
        out.add(value)
        if len(out) > MAX_SLICES:
            raise AnnotationError(f"more than {MAX_SLICES} slices selected.")
    return sorted(out)


def to_runs(slices: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive runs ``(first, last)`` of sorted unique slice numbers."""
    runs: list[tuple[int, int]] = []
    for value in normalize_slices(slices):
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def format_slices(slices: Iterable[int]) -> str:
    """Slice numbers as the original range text: ``[0, 1, 2, 57] -> "0-2; 57"``."""
    return "; ".join(str(a) if a == b else f"{a}-{b}" for a, b in to_runs(slices))
