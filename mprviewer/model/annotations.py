"""Anomaly marks a reader puts on a study: slices per plane and point picks, with undo.

An ``AnnotationSet`` holds the marks of one study, grouped per series (keyed by the
SeriesInstanceUID, or by the series name when only the name is known, as in the original
JSON format). Each series has entries (a label, a plane and the slice numbers marked in that
plane) and point picks. Entries of the acquisition plane also keep the SOPInstanceUID and the
position along the slice normal of every marked slice, so ``reconcile`` can put a mark back
on the same image after the files are reloaded in another order.

Everything in the set is immutable data (frozen dataclasses and tuples): every change builds
a new state and pushes the old one on the undo stack, which makes undo/redo of every change
exact and cheap. Views subscribe to ``changed``. No Qt, no VTK.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from mprviewer.errors import AnnotationError
from mprviewer.model.events import Signal
from mprviewer.model.measurements import (
    Hematoma,
    Measurement,
    Roi,
    Ruler,
    make_hematoma,
    make_roi,
    make_ruler,
)
from mprviewer.model.slice_ranges import format_slices, normalize_slices

PLANES: tuple[str, str, str] = ("axial", "coronal", "sagittal")
DEFAULT_LABEL = "Anomaly"
MAX_LABEL = 200
MAX_NOTE = 20_000
UNDO_LIMIT = 1000


STUDY_ATTRIBUTE_KEYWORDS: tuple[str, ...] = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription",
    "SpecificCharacterSet",
)
"""Header attributes ``SeriesRef.from_series`` keeps for building KOS documents."""


def utc_now() -> str:
    """The current time as ISO 8601 UTC, e.g. ``2024-05-01T12:00:00Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def _check_plane(plane: str) -> str:
    if plane not in PLANES:
        raise AnnotationError(f"unknown plane {plane!r}: use one of {', '.join(PLANES)}.")
    return plane


def _check_label(label: str | None) -> str:
    if label is None:
        return DEFAULT_LABEL
    if not isinstance(label, str):
        raise AnnotationError(f"a label must be text, not {type(label).__name__}.")
    label = " ".join(label.split())
    if not label:
        return DEFAULT_LABEL
    if len(label) > MAX_LABEL:
        raise AnnotationError(f"label {label[:40]!r}... is longer than {MAX_LABEL} characters.")
    return label


def _check_note(note: str) -> str:
    if not isinstance(note, str):
        raise AnnotationError(f"a note must be text, not {type(note).__name__}.")
    if len(note) > MAX_NOTE:
        raise AnnotationError(f"a note is longer than {MAX_NOTE} characters.")
    return note


# -- what a series is, as far as annotations care ---------------------------------------------
@dataclass(frozen=True)
class SeriesRef:
    """The facts about a loaded series that annotations need.

    ``sop_instance_uids[s]`` and ``slice_positions[s]`` belong to slice number ``s`` of the
    acquisition plane (display-grid numbering, the numbers the user sees), not to the
    volume's k. ``study_attributes`` carries patient/study attributes for KOS export.
    """

    uid: str
    name: str = ""
    study_uid: str = ""
    acquisition_plane: str = "axial"
    plane_sizes: Mapping[str, int] = field(default_factory=dict, hash=False)
    sop_instance_uids: tuple[str, ...] = ()
    slice_positions: tuple[float, ...] = ()
    sop_class_uid: str = ""
    study_attributes: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> str:
        return self.uid or self.name

    @property
    def label(self) -> str:
        """How to name the series in messages."""
        return self.name or self.uid or "(unnamed series)"

    @classmethod
    def from_series(cls, series: Any, volume: Any = None, grid: Any = None) -> SeriesRef:
        """Reference of a series of a Study: its name, and the patient and study attributes
        of its header (for KOS export) next to what ``from_volume`` takes.

        Without ``volume`` the series' header geometry stands in (same grid, UIDs and
        positions as the loaded volume), so marks can be matched to series not loaded yet.
        """
        if volume is None:
            geometry = series.geometry
            volume = SimpleNamespace(
                affine=geometry.affine, array=SimpleNamespace(shape=tuple(series.shape)),
                sop_instance_uids=list(series.sop_instance_uids),
                slice_positions=geometry.positions, series_uid=series.uid,
                study_uid=series.study_uid, name=series.name,
                sop_class_uid=geometry.frames[0].instance.sop_class_uid,
            )
        header = getattr(series, "header", None)
        attrs: dict[str, str] = {}
        for keyword in STUDY_ATTRIBUTE_KEYWORDS:
            value = header.get(keyword) if header is not None else None
            if value is not None and str(value) != "":
                attrs[keyword] = str(value)
        return cls.from_volume(volume, grid, name=series.name, study_attributes=attrs)

    @classmethod
    def from_volume(
        cls,
        volume: Any,
        grid: Any = None,
        name: str | None = None,
        study_attributes: Mapping[str, str] | None = None,
    ) -> SeriesRef:
        """Build the reference of a loaded Volume, re-indexing per-k lists by slice number."""
        if grid is None:
            from mprviewer.model.orientation import DisplayGrid

            grid = DisplayGrid.for_volume(volume)
        acq = grid.acquisition_plane
        sizes = {p: int(grid.plane_size(p)) for p in PLANES}
        n = sizes[acq]
        uids_k = list(volume.sop_instance_uids or [])
        pos_k = [] if volume.slice_positions is None else [float(v) for v in volume.slice_positions]
        uids: list[str] = []
        positions: list[float] = []
        for s in range(n):
            k = grid.acquisition_k(acq, s)
            uids.append(str(uids_k[k]) if k is not None and k < len(uids_k) else "")
            if k is not None and k < len(pos_k):
                positions.append(pos_k[k])
        return cls(
            uid=str(volume.series_uid or ""),
            name=str(name if name is not None else (volume.name or volume.series_uid or "")),
            study_uid=str(volume.study_uid or ""),
            acquisition_plane=acq,
            plane_sizes=sizes,
            sop_instance_uids=tuple(uids) if any(uids) else (),
            slice_positions=tuple(positions) if len(positions) == n else (),
            sop_class_uid=str(volume.sop_class_uid or ""),
            study_attributes=dict(study_attributes or {}),
        )


def study_refs(series_list: Iterable[Any], study_uid: str = "") -> list[SeriesRef]:
    """Header-only references of a study's series (``study_uid``: only that study's), so that
    marks naming a series not displayed yet can be matched and exported."""
    out = []
    for series in series_list:
        if study_uid and getattr(series, "study_uid", "") not in ("", study_uid):
            continue
        try:
            out.append(SeriesRef.from_series(series))
        except Exception:  # a series whose geometry cannot be built is not offered
            continue
    return out


# -- the stored data ------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """Slices marked with one label in one plane of one series.

    For the acquisition plane, ``sop_instance_uids`` and ``positions`` run parallel to
    ``slices`` ("" and None where unknown); for other planes they are empty.
    """

    id: str
    label: str
    plane: str
    slices: tuple[int, ...]
    sop_instance_uids: tuple[str, ...] = ()
    positions: tuple[float | None, ...] = ()
    note: str = ""
    created: str = ""
    modified: str = ""

    @property
    def ranges(self) -> str:
        return format_slices(self.slices)

    def image_of(self, s: int) -> tuple[str, float | None]:
        """Stored (SOPInstanceUID, position) of slice ``s``, ("", None) when unknown."""
        return self.images().get(s, ("", None))

    def images(self) -> dict[int, tuple[str, float | None]]:
        """Slice number -> stored (SOPInstanceUID, position)."""
        n_uid, n_pos = len(self.sop_instance_uids), len(self.positions)
        return {
            s: (self.sop_instance_uids[i] if i < n_uid else "",
                self.positions[i] if i < n_pos else None)
            for i, s in enumerate(self.slices)
        }


@dataclass(frozen=True)
class Point:
    """A picked voxel: index (i, j, k) in the volume, patient LPS mm and the value there."""

    id: str
    voxel: tuple[int, int, int]
    lps: tuple[float, float, float]
    value: float | None = None
    label: str = DEFAULT_LABEL
    note: str = ""
    plane: str = ""
    created: str = ""


@dataclass(frozen=True)
class SeriesAnnotations:
    """All marks on one series. ``acquisition_plane`` is "" when not known (original format).

    ``clean``: the series was read and shows no anomaly (the original format's
    ``"Slices": ""``), which is a finding of its own, unlike a series nobody marked.
    """

    uid: str
    name: str
    acquisition_plane: str = ""
    sop_class_uid: str = ""
    entries: tuple[Entry, ...] = ()
    points: tuple[Point, ...] = ()
    note: str = ""
    clean: bool = False
    rulers: tuple[Ruler, ...] = ()
    rois: tuple[Roi, ...] = ()
    hematomas: tuple[Hematoma, ...] = ()

    @property
    def key(self) -> str:
        return self.uid or self.name

    @property
    def label(self) -> str:
        return self.name or self.uid or "(unnamed series)"

    @property
    def is_empty(self) -> bool:
        return (not self.entries and not self.points and not self.note
                and not self.measurements and not self.clean)

    @property
    def measurements(self) -> tuple[Measurement, ...]:
        """Rulers, ROIs and hematoma volumes, in that order."""
        return (*self.rulers, *self.rois, *self.hematomas)

    @property
    def items(self) -> tuple[Entry | Point | Measurement, ...]:
        return (*self.entries, *self.points, *self.measurements)

    def without(self, item_id: str) -> SeriesAnnotations:
        """This series with the entry, point or measurement ``item_id`` removed."""
        return replace(
            self,
            entries=tuple(e for e in self.entries if e.id != item_id),
            points=tuple(p for p in self.points if p.id != item_id),
            rulers=tuple(r for r in self.rulers if r.id != item_id),
            rois=tuple(r for r in self.rois if r.id != item_id),
            hematomas=tuple(h for h in self.hematomas if h.id != item_id),
        )

    def with_item_changed(self, item_id: str, **changes: Any) -> SeriesAnnotations:
        """This series with fields of the point or measurement ``item_id`` replaced."""

        def fix(items: tuple[Any, ...]) -> tuple[Any, ...]:
            return tuple(replace(it, **changes) if it.id == item_id else it for it in items)

        return replace(self, points=fix(self.points), rulers=fix(self.rulers),
                       rois=fix(self.rois), hematomas=fix(self.hematomas))

    def entry(self, label: str, plane: str) -> Entry | None:
        for e in self.entries:
            if e.label == label and e.plane == plane:
                return e
        return None


Item = Entry | Point | Ruler | Roi | Hematoma


@dataclass(frozen=True)
class _State:
    series: dict[str, SeriesAnnotations]
    note: str
    study_uid: str
    reader: str
    modified: str


# -- helpers on immutable data -------------------------------------------------------------
def _images_for(
    slices: Iterable[int], old: Entry | None, ref: SeriesRef | None, plane: str
) -> tuple[tuple[str, ...], tuple[float | None, ...]]:
    """UIDs and positions parallel to ``slices`` for an acquisition-plane entry."""
    slices = list(slices)
    acq = ref.acquisition_plane if ref is not None else None
    if acq is not None and plane != acq:
        return (), ()
    known = old.images() if old is not None else {}
    uids: list[str] = []
    positions: list[float | None] = []
    for s in slices:
        uid, pos = known.get(s, ("", None))
        if ref is not None:
            if not uid and s < len(ref.sop_instance_uids):
                uid = ref.sop_instance_uids[s]
            if pos is None and s < len(ref.slice_positions):
                pos = float(ref.slice_positions[s])
        uids.append(uid)
        positions.append(pos)
    if not any(uids) and all(p is None for p in positions):
        return (), ()
    return tuple(uids), tuple(positions)


def _entry_with(
    entry: Entry, slices: Iterable[int], ref: SeriesRef | None, now: str
) -> Entry:
    slices = tuple(sorted(set(slices)))
    uids, positions = _images_for(slices, entry, ref, entry.plane)
    return replace(entry, slices=slices, sop_instance_uids=uids, positions=positions, modified=now)


def _join_notes(a: str, b: str) -> str:
    if not b or b in a:
        return a
    return f"{a}\n{b}" if a else b


def _merge_entries(a: Entry, b: Entry, now: str) -> Entry:
    """Union of two entries' slices (same label and plane), keeping the image facts of both."""
    slices = sorted(set(a.slices) | set(b.slices))
    uids: list[str] = []
    positions: list[float | None] = []
    known_a, known_b = a.images(), b.images()
    for s in slices:
        ua, pa = known_a.get(s, ("", None))
        ub, pb = known_b.get(s, ("", None))
        uids.append(ua or ub)
        positions.append(pa if pa is not None else pb)
    has_images = any(uids) or any(p is not None for p in positions)
    note = _join_notes(a.note, b.note)
    return replace(
        a,
        slices=tuple(slices),
        sop_instance_uids=tuple(uids) if has_images else (),
        positions=tuple(positions) if has_images else (),
        note=note,
        modified=now,
    )


def _position_lookup(positions: tuple[float, ...]) -> tuple[list[tuple[float, int]], float]:
    pairs = sorted((p, s) for s, p in enumerate(positions))
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(pairs) if b[0] - a[0] > 1e-6]
    tol = max(1e-3, 0.25 * min(gaps)) if gaps else 1e-3
    return pairs, tol


def _nearest(pairs: list[tuple[float, int]], tol: float, pos: float) -> int | None:
    best = None
    for p, s in pairs:
        d = abs(p - pos)
        if d <= tol and (best is None or d < best[0]):
            best = (d, s)
    return None if best is None else best[1]


def _reconcile_series(
    sa: SeriesAnnotations, ref: SeriesRef, now: str, report: list[str] | None
) -> SeriesAnnotations:
    """``sa`` re-indexed against ``ref``: slice numbers follow the stored images."""
    acq = ref.acquisition_plane
    # A multi-frame object gives every slice one SOP instance UID: such a UID names no slice
    uid_count: dict[str, int] = {}
    for u in ref.sop_instance_uids:
        uid_count[u] = uid_count.get(u, 0) + 1
    by_uid = {u: s for s, u in enumerate(ref.sop_instance_uids) if u and uid_count[u] == 1}
    pairs, tol = _position_lookup(tuple(ref.slice_positions))
    size = ref.plane_sizes.get(acq)
    new_entries: list[Entry] = []
    for e in sa.entries:
        plane = e.plane
        if not sa.acquisition_plane and plane == "axial" and acq != "axial" and not any(
            e.sop_instance_uids
        ):
            # Original-format marks: slice numbers of the acquired images, whatever the plane.
            plane = acq
            if report is not None:
                report.append(
                    f"{sa.label}: '{e.label}' slices {e.ranges} taken as {acq} slices "
                    f"(the series was acquired {acq})."
                )
        if plane != acq:
            new_entries.append(e if plane == e.plane else replace(e, plane=plane, modified=now))
            continue
        moved: dict[int, int] = {}
        lost: list[int] = []
        result: dict[int, tuple[str, float | None]] = {}
        for s, (uid, pos) in e.images().items():
            target = None
            if uid and uid in by_uid:
                target = by_uid[uid]
            elif pos is not None and pairs:
                target = _nearest(pairs, tol, pos)  # no UID, or the files were re-exported
            if target is None:
                target = s
                if (uid and by_uid) or (pos is not None and pairs):
                    lost.append(s)
            if target != s:
                moved[s] = target
            old_uid, old_pos = result.get(target, ("", None))
            result[target] = (old_uid or uid, old_pos if old_pos is not None else pos)
        slices = sorted(result)
        base = replace(e, plane=plane, slices=tuple(slices),
                       sop_instance_uids=tuple(result[s][0] for s in slices),
                       positions=tuple(result[s][1] for s in slices))
        filled = _entry_with(base, slices, ref, e.modified)
        if report is not None:
            if moved:
                pairs_txt = ", ".join(f"{a}->{b}" for a, b in sorted(moved.items()))
                report.append(f"{sa.label}: '{e.label}' {acq} slices moved to follow their "
                              f"images: {pairs_txt}.")
            if lost:
                report.append(f"{sa.label}: '{e.label}' {acq} slices {format_slices(lost)} "
                              "were not found among the loaded images; kept their numbers.")
            if size is not None and slices and slices[-1] >= size:
                report.append(f"{sa.label}: '{e.label}' has slices beyond the {size} {acq} "
                              "slices of the loaded series; kept.")
        new_entries.append(filled if filled != e else e)
    # entries that now share label and plane are merged
    merged: list[Entry] = []
    for e in new_entries:
        for i, m in enumerate(merged):
            if m.label == e.label and m.plane == e.plane:
                merged[i] = _merge_entries(m, e, now)
                break
        else:
            merged.append(e)
    return replace(
        sa,
        uid=sa.uid or ref.uid,
        name=ref.name or sa.name,
        acquisition_plane=acq,
        sop_class_uid=sa.sop_class_uid or ref.sop_class_uid,
        entries=tuple(merged),
    )


def _same_measurement(a: Measurement, b: Measurement) -> bool:
    """Two measurements at the same place with the same label (an import of the same file)."""
    if a.id == b.id:
        return True
    keep = ("id", "created", "note")
    return type(a) is type(b) and replace(a, **dict.fromkeys(keep, "")) == replace(
        b, **dict.fromkeys(keep, ""))


# -- the set --------------------------------------------------------------------------------
class AnnotationSet:
    """The marks of one study, with undo/redo and a ``changed`` signal after every change."""

    def __init__(self, study_uid: str = "", reader: str = "", created: str | None = None):
        self.created: str = created or utc_now()
        self._state = _State({}, "", str(study_uid or ""), str(reader or ""), self.created)
        self._undo: list[_State] = []
        self._redo: list[_State] = []
        self.changed = Signal()
        self.last_change: str = ""

    # -- construction from stored data (no undo history) --------------------------------
    @classmethod
    def from_parts(
        cls,
        study_uid: str = "",
        reader: str = "",
        series: Iterable[SeriesAnnotations] = (),
        note: str = "",
        created: str | None = None,
        modified: str | None = None,
    ) -> AnnotationSet:
        aset = cls(study_uid, reader, created)
        table: dict[str, SeriesAnnotations] = {}
        for sa in series:
            if sa.key in table:
                raise AnnotationError(f"series {sa.label!r} appears twice.")
            table[sa.key] = sa
        aset._state = _State(table, note, aset.study_uid, aset.reader, modified or aset.created)
        return aset

    # -- read access ---------------------------------------------------------------------
    @property
    def study_uid(self) -> str:
        return self._state.study_uid

    @property
    def reader(self) -> str:
        return self._state.reader

    @property
    def note(self) -> str:
        return self._state.note

    @property
    def modified(self) -> str:
        return self._state.modified

    @property
    def series(self) -> list[SeriesAnnotations]:
        """The annotated series, in the order they were first marked."""
        return list(self._state.series.values())

    @property
    def is_empty(self) -> bool:
        return not self._state.note and all(s.is_empty for s in self._state.series.values())

    def get_series(self, series_uid: str = "", series_name: str = "") -> SeriesAnnotations | None:
        """The series with this UID, else one with this name and no conflicting UID."""
        key = self._find_key(self._state.series, series_uid, series_name)
        return None if key is None else self._state.series[key]

    def entries(self) -> list[tuple[SeriesAnnotations, Entry]]:
        return [(sa, e) for sa in self._state.series.values() for e in sa.entries]

    def points(self) -> list[tuple[SeriesAnnotations, Point]]:
        return [(sa, p) for sa in self._state.series.values() for p in sa.points]

    def measurements(self) -> list[tuple[SeriesAnnotations, Measurement]]:
        """Every ruler, ROI and hematoma volume with its series."""
        return [(sa, m) for sa in self._state.series.values() for m in sa.measurements]

    def find(self, item: Item | str) -> tuple[SeriesAnnotations, Item]:
        """The series holding an entry or point (given as object or id), and its current form."""
        item_id = item if isinstance(item, str) else item.id
        for sa in self._state.series.values():
            for it in sa.items:
                if it.id == item_id:
                    return sa, it
        raise AnnotationError(f"no annotation with id {item_id!r} (it may have been deleted).")

    def labels_used(self) -> list[str]:
        """Labels in use, most used first; ``["Anomaly"]`` when nothing is marked yet."""
        counts: dict[str, int] = {}
        for sa in self._state.series.values():
            for e in sa.entries:
                counts[e.label] = counts.get(e.label, 0) + len(e.slices)
            for p in sa.points:
                counts[p.label] = counts.get(p.label, 0) + 1
        if not counts:
            return [DEFAULT_LABEL]
        return sorted(counts, key=lambda lab: -counts[lab])

    def slices_for(
        self, series_uid: str, series_name: str, plane: str, label: str | None = None
    ) -> list[int]:
        """Marked slice numbers of a plane (all labels, or one)."""
        sa = self.get_series(series_uid, series_name)
        if sa is None:
            return []
        out: set[int] = set()
        for e in sa.entries:
            if e.plane == plane and (label is None or e.label == label):
                out.update(e.slices)
        return sorted(out)

    def marked_labels(self, series_uid: str, series_name: str, plane: str) -> dict[int, list[str]]:
        """For each marked slice of a plane, the labels on it (for ticks and badges)."""
        sa = self.get_series(series_uid, series_name)
        out: dict[int, list[str]] = {}
        if sa is None:
            return out
        for e in sa.entries:
            if e.plane == plane:
                for s in e.slices:
                    out.setdefault(s, []).append(e.label)
        return {s: out[s] for s in sorted(out)}

    # -- undo -----------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def clear_history(self) -> None:
        """Forget undo/redo steps (after loading a file, which is not an edit)."""
        self._undo.clear()
        self._redo.clear()

    def undo(self) -> bool:
        """Go back one change; False when there is nothing to undo."""
        if not self._undo:
            return False
        self._redo.append(self._state)
        self._state = self._undo.pop()
        self.last_change = "undo"
        self.changed.emit()
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(self._state)
        self._state = self._redo.pop()
        self.last_change = "redo"
        self.changed.emit()
        return True

    def _commit(self, description: str, **changes: Any) -> None:
        new = replace(self._state, modified=utc_now(), **changes)
        if new.series == self._state.series and all(
            getattr(new, k) == getattr(self._state, k) for k in ("note", "study_uid", "reader")
        ):
            return  # nothing changed: no undo step, no signal
        self._undo.append(self._state)
        del self._undo[:-UNDO_LIMIT]
        self._redo.clear()
        self._state = new
        self.last_change = description
        self.changed.emit()

    # -- finding and creating series --------------------------------------------------------
    @staticmethod
    def _find_key(table: Mapping[str, SeriesAnnotations], uid: str, name: str) -> str | None:
        if uid and uid in table:
            return uid
        if name:
            for key, sa in table.items():
                if sa.name == name and (not sa.uid or not uid):
                    return key
        if not uid and name in table:
            return name
        return None

    @staticmethod
    def _as_ref(ref: SeriesRef | str) -> SeriesRef:
        if isinstance(ref, SeriesRef):
            return ref
        if isinstance(ref, str) and ref:
            return SeriesRef(uid="", name=ref, plane_sizes={})
        raise AnnotationError("a series (SeriesRef or series name) is needed to place a mark.")

    def _series_table_for(
        self, ref: SeriesRef
    ) -> tuple[dict[str, SeriesAnnotations], str, SeriesAnnotations]:
        """A copy of the series table holding ``ref``'s series (created or adopted)."""
        table = dict(self._state.series)
        key = self._find_key(table, ref.uid, ref.name)
        if key is None:
            sa = SeriesAnnotations(
                uid=ref.uid,
                name=ref.name or ref.uid,
                acquisition_plane=ref.acquisition_plane if ref.uid or ref.plane_sizes else "",
                sop_class_uid=ref.sop_class_uid,
            )
            table[sa.key] = sa
            return table, sa.key, sa
        sa = table[key]
        if ref.uid and not sa.uid:
            # a series known by name only (original format) meets its UID: adopt it
            sa = _reconcile_series(sa, ref, utc_now(), None)
            del table[key]
            table[sa.key] = sa
            return table, sa.key, sa
        return table, key, sa

    def _check_slices(self, ref: SeriesRef, plane: str, slices: Iterable[int]) -> list[int]:
        _check_plane(plane)
        out = normalize_slices(slices)
        size = ref.plane_sizes.get(plane)
        if size is not None and out and out[-1] >= size:
            bad = [s for s in out if s >= size]
            raise AnnotationError(
                f"{plane} slice {bad[0]} is outside series {ref.label!r}, whose {plane} plane "
                f"has {size} slices (0-{size - 1})."
            )
        return out

    # -- changes --------------------------------------------------------------------------
    def mark(
        self,
        ref: SeriesRef | str,
        plane: str,
        slices: Iterable[int],
        label: str | None = DEFAULT_LABEL,
    ) -> Entry | None:
        """Mark slices of a plane with a label; returns the entry holding them."""
        ref = self._as_ref(ref)
        label = _check_label(label)
        wanted = self._check_slices(ref, plane, slices)
        if not wanted:
            return None
        table, key, sa = self._series_table_for(ref)
        now = utc_now()
        old = sa.entry(label, plane)
        if old is None:
            entry = Entry(id=new_id(), label=label, plane=plane, slices=(), created=now)
            entry = _entry_with(entry, wanted, ref, now)
            entries = (*sa.entries, entry)
        else:
            if set(wanted) <= set(old.slices) and table == self._state.series:
                return old
            entry = _entry_with(old, set(old.slices) | set(wanted), ref, now)
            entries = tuple(entry if e.id == old.id else e for e in sa.entries)
        table[key] = replace(sa, entries=entries)
        self._commit(f"mark {plane} {format_slices(wanted)} as {label}", series=table)
        return entry

    def set_slices(
        self,
        ref: SeriesRef | str,
        plane: str,
        slices: Iterable[int],
        label: str | None = DEFAULT_LABEL,
    ) -> Entry | None:
        """Make the marks of one label in one plane exactly ``slices`` (a range text box),
        as one undoable change; an empty selection removes the entry."""
        ref = self._as_ref(ref)
        label = _check_label(label)
        wanted = self._check_slices(ref, plane, slices)
        table, key, sa = self._series_table_for(ref)
        now = utc_now()
        old = sa.entry(label, plane)
        if old is None and not wanted:
            return None
        if old is None:
            entry: Entry | None = _entry_with(
                Entry(id=new_id(), label=label, plane=plane, slices=(), created=now),
                wanted, ref, now)
            entries = (*sa.entries, entry)
        elif not wanted:
            entry = None
            entries = tuple(e for e in sa.entries if e.id != old.id)
        else:
            if list(old.slices) == wanted:
                return old
            kept = old.images()
            base = replace(old, slices=tuple(wanted),
                           sop_instance_uids=tuple(kept.get(s, ("", None))[0] for s in wanted),
                           positions=tuple(kept.get(s, ("", None))[1] for s in wanted))
            entry = _entry_with(base, wanted, ref, now)
            entries = tuple(entry if e.id == old.id else e for e in sa.entries)
        table[key] = replace(sa, entries=entries)
        self._commit(f"set {plane} {label} to {format_slices(wanted)}", series=table)
        return entry

    def mark_range(
        self,
        ref: SeriesRef | str,
        plane: str,
        start: int,
        end: int,
        label: str | None = DEFAULT_LABEL,
    ) -> Entry | None:
        """Mark every slice from ``start`` to ``end`` inclusive (either order)."""
        lo, hi = sorted((int(start), int(end)))
        normalize_slices([lo, hi])
        return self.mark(ref, plane, range(lo, hi + 1), label)

    def unmark(
        self,
        ref: SeriesRef | str,
        plane: str,
        slices: Iterable[int],
        label: str | None = None,
    ) -> int:
        """Remove marks from slices (of one label, or of all labels); returns how many."""
        ref = self._as_ref(ref)
        _check_plane(plane)
        gone = set(normalize_slices(slices))
        key = self._find_key(self._state.series, ref.uid, ref.name)
        if key is None or not gone:
            return 0
        label = None if label is None else _check_label(label)
        sa = self._state.series[key]
        now = utc_now()
        removed = 0
        entries: list[Entry] = []
        for e in sa.entries:
            if e.plane != plane or (label is not None and e.label != label):
                entries.append(e)
                continue
            keep = [s for s in e.slices if s not in gone]
            removed += len(e.slices) - len(keep)
            if keep:
                idx = [i for i, s in enumerate(e.slices) if s not in gone]
                entries.append(replace(
                    e,
                    slices=tuple(keep),
                    sop_instance_uids=tuple(e.sop_instance_uids[i] for i in idx)
                    if e.sop_instance_uids else (),
                    positions=tuple(e.positions[i] for i in idx) if e.positions else (),
                    modified=now,
                ))
        if removed:
            table = dict(self._state.series)
            table[key] = replace(sa, entries=tuple(entries))
            self._commit(f"unmark {plane} {format_slices(gone)}", series=table)
        return removed

    def toggle(
        self, ref: SeriesRef | str, plane: str, slice_index: int, label: str | None = DEFAULT_LABEL
    ) -> bool:
        """Mark the slice with the label, or unmark it if it already has it; True if now marked."""
        ref = self._as_ref(ref)
        label = _check_label(label)
        if slice_index in self.slices_for(ref.uid, ref.name, plane, label):
            self.unmark(ref, plane, [slice_index], label)
            return False
        self.mark(ref, plane, [slice_index], label)
        return True

    def add_point(
        self,
        ref: SeriesRef | str,
        voxel: Iterable[int],
        lps: Iterable[float],
        value: float | None = None,
        label: str | None = DEFAULT_LABEL,
        note: str = "",
        plane: str = "",
    ) -> Point:
        """Store a picked voxel with its patient position and value."""
        ref = self._as_ref(ref)
        try:
            vox = tuple(int(v) for v in voxel)
            pos = tuple(float(v) for v in lps)
            val = None if value is None else float(value)
        except (TypeError, ValueError) as exc:
            raise AnnotationError(
                f"a point needs a voxel (i, j, k) and a position: {exc}"
            ) from None
        if len(vox) != 3 or len(pos) != 3 or min(vox) < 0:
            raise AnnotationError("a point needs three voxel indices >= 0 and three coordinates.")
        if plane:
            _check_plane(plane)
        point = Point(
            id=new_id(), voxel=vox, lps=pos, value=val, label=_check_label(label),  # type: ignore[arg-type]
            note=_check_note(note), plane=plane, created=utc_now(),
        )
        table, key, sa = self._series_table_for(ref)
        table[key] = replace(sa, points=(*sa.points, point))
        self._commit(f"add point {vox}", series=table)
        return point

    def _add_measurement(self, ref: SeriesRef | str, kind: str, item: Measurement,
                         description: str) -> None:
        ref = self._as_ref(ref)
        table, key, sa = self._series_table_for(ref)
        table[key] = replace(sa, **{kind: (*getattr(sa, kind), item)})
        self._commit(description, series=table)

    def add_ruler(
        self,
        ref: SeriesRef | str,
        a_lps: Iterable[float],
        b_lps: Iterable[float],
        plane: str,
        slice_index: int,
        label: str | None = "Ruler",
        note: str = "",
    ) -> Ruler:
        """Store a ruler drawn on slice ``slice_index`` of ``plane`` (end points in LPS mm)."""
        ruler = make_ruler(new_id(), a_lps, b_lps, _check_plane(plane), slice_index,
                           _check_label(label or "Ruler"), _check_note(note), utc_now())
        self._add_measurement(ref, "rulers", ruler, f"ruler {ruler.length_mm:.1f} mm")
        return ruler

    def add_roi(
        self,
        ref: SeriesRef | str,
        center_lps: Iterable[float],
        radius_mm: float,
        plane: str,
        slice_index: int,
        stats: Any = None,
        units: str = "",
        label: str | None = "ROI",
        note: str = "",
    ) -> Roi:
        """Store a circular ROI and the statistics shown for it (``mprviewer.measure``)."""
        roi = make_roi(new_id(), center_lps, radius_mm, _check_plane(plane), slice_index, stats,
                       units, _check_label(label or "ROI"), _check_note(note), utc_now())
        self._add_measurement(ref, "rois", roi, f"ROI r {roi.radius_mm:.1f} mm")
        return roi

    def add_hematoma(
        self,
        ref: SeriesRef | str,
        a_mm: float,
        b_mm: float,
        c_mm: float,
        slices: tuple[int, int] | None = None,
        ruler_ids: Iterable[str] = (),
        label: str | None = "Hematoma",
        note: str = "",
    ) -> Hematoma:
        """Store an ABC/2 hematoma volume from its three diameters in mm."""
        item = make_hematoma(new_id(), a_mm, b_mm, c_mm, slices, ruler_ids,
                             _check_label(label or "Hematoma"), _check_note(note), utc_now())
        self._add_measurement(ref, "hematomas", item, f"hematoma {item.volume_ml:.1f} mL")
        return item

    def _replace_item(self, item: Item | str, make: Any, description: str) -> None:
        sa, current = self.find(item)
        table = dict(self._state.series)
        table[sa.key] = make(sa, current)
        self._commit(description, series=table)

    def relabel(self, item: Item | str, label: str) -> None:
        """Give an entry or point another label (merging with an entry that has it already)."""
        label = _check_label(label)

        def make(sa: SeriesAnnotations, cur: Item) -> SeriesAnnotations:
            now = utc_now()
            if not isinstance(cur, Entry):
                return sa.with_item_changed(cur.id, label=label)
            other = sa.entry(label, cur.plane)
            if other is not None and other.id != cur.id:
                merged = _merge_entries(other, cur, now)
                return replace(sa, entries=tuple(
                    merged if e.id == other.id else e for e in sa.entries if e.id != cur.id))
            return replace(sa, entries=tuple(
                replace(e, label=label, modified=now) if e.id == cur.id else e
                for e in sa.entries))

        self._replace_item(item, make, f"relabel as {label}")

    def delete(self, item: Item | str) -> None:
        """Remove an entry or a point."""

        def make(sa: SeriesAnnotations, cur: Item) -> SeriesAnnotations:
            return sa.without(cur.id)

        self._replace_item(item, make, "delete")

    def set_note(self, note: str, target: SeriesRef | Item | str | None = None) -> None:
        """Set the study note (no target), a series note (SeriesRef or series key), or the
        note of an entry or point."""
        note = _check_note(note)
        if target is None:
            self._commit("note", note=note)
            return
        if isinstance(target, (Entry, Point, Ruler, Roi, Hematoma)) or (
            isinstance(target, str) and target not in self._state.series
            and any(it.id == target for sa in self.series for it in sa.items)
        ):
            now = utc_now()

            def make(sa: SeriesAnnotations, cur: Item) -> SeriesAnnotations:
                sa = sa.with_item_changed(cur.id, note=note)
                return replace(
                    sa,
                    entries=tuple(replace(e, note=note, modified=now) if e.id == cur.id else e
                                  for e in sa.entries),
                )

            self._replace_item(target, make, "note")  # type: ignore[arg-type]
            return
        if isinstance(target, str) and target in self._state.series:
            target = self._state.series[target].name or target
        ref = self._as_ref(target)  # type: ignore[arg-type]
        table, key, sa = self._series_table_for(ref)
        table[key] = replace(sa, note=note)
        self._commit("note", series=table)

    def set_reader(self, reader: str) -> None:
        self._commit("reader", reader=_check_note(str(reader)).strip())

    # -- reload and import -------------------------------------------------------------------
    def reconcile(self, ref: SeriesRef) -> list[str]:
        """Re-derive acquisition-plane slice numbers of ``ref``'s series from the stored
        SOPInstanceUIDs (then positions), adopt its UID if only the name was known, and fill in
        image facts that were missing. Applied to the undo history too, so undo stays on the
        same images. Returns what changed, in words."""
        report: list[str] = []
        now = utc_now()

        def fix(state: _State, rep: list[str] | None) -> _State:
            key = self._find_key(state.series, ref.uid, ref.name)
            if key is None:
                return state
            sa = _reconcile_series(state.series[key], ref, now, rep)
            if sa == state.series[key]:
                return state
            table = dict(state.series)
            del table[key]
            if sa.key in table:
                # the UID's series is already there too: keep both, say so
                if rep is not None:
                    rep.append(f"{sa.label}: marks stored by name and by UID are kept apart; "
                               "review and merge them.")
                return state
            table[sa.key] = sa
            return replace(state, series=table)

        new = fix(self._state, report)
        if new is self._state:
            return report
        self._undo = [fix(s, None) for s in self._undo]
        self._redo = [fix(s, None) for s in self._redo]
        self._state = replace(new, modified=now)
        if ref.study_uid and not self._state.study_uid:
            self._state = replace(self._state, study_uid=ref.study_uid)
        self.last_change = "reconcile"
        self.changed.emit()
        return report

    def merge(self, other: AnnotationSet, force: bool = False) -> str:
        """Add another set's marks to this one as one undoable change; returns a summary.

        Marks for a different study are refused unless ``force``.
        """
        if self.study_uid and other.study_uid and self.study_uid != other.study_uid and not force:
            raise AnnotationError(
                f"these annotations belong to study {other.study_uid}, but the open study is "
                f"{self.study_uid}; import them into the matching study (or force the import)."
            )
        now = utc_now()
        table = dict(self._state.series)
        used_ids = {it.id for sa in table.values() for it in sa.items}
        n_entries = n_points = n_measures = 0
        for osa in other.series:
            key = self._find_key(table, osa.uid, osa.name)
            if key is None:
                sa = replace(osa, entries=(), points=())
                key = sa.key
            else:
                sa = table[key]
                if osa.uid and not sa.uid:
                    del table[key]
                    sa = replace(sa, uid=osa.uid)
                    key = sa.key
                sa = replace(
                    sa,
                    acquisition_plane=sa.acquisition_plane or osa.acquisition_plane,
                    sop_class_uid=sa.sop_class_uid or osa.sop_class_uid,
                    note=_join_notes(sa.note, osa.note),
                    clean=sa.clean or osa.clean,
                )
            entries = list(sa.entries)
            for oe in osa.entries:
                for i, e in enumerate(entries):
                    if e.label == oe.label and e.plane == oe.plane:
                        merged = _merge_entries(e, oe, now)
                        if merged.slices != e.slices:
                            n_entries += 1
                        entries[i] = merged if merged.slices != e.slices or (
                            merged.sop_instance_uids != e.sop_instance_uids) else e
                        break
                else:
                    entries.append(oe if oe.id not in used_ids else replace(oe, id=new_id()))
                    used_ids.add(entries[-1].id)
                    n_entries += 1
            points = list(sa.points)
            for op in osa.points:
                if any(p.voxel == op.voxel and p.label == op.label for p in points):
                    continue
                points.append(op if op.id not in used_ids else replace(op, id=new_id()))
                used_ids.add(points[-1].id)
                n_points += 1
            kinds: dict[str, list[Any]] = {
                "rulers": list(sa.rulers), "rois": list(sa.rois), "hematomas": list(sa.hematomas)}
            for name, have in kinds.items():
                for om in getattr(osa, name):
                    if any(_same_measurement(m, om) for m in have):
                        continue
                    have.append(om if om.id not in used_ids else replace(om, id=new_id()))
                    used_ids.add(have[-1].id)
                    n_measures += 1
            table[key] = replace(sa, entries=tuple(entries), points=tuple(points),
                                 **{k: tuple(v) for k, v in kinds.items()})
        note = _join_notes(self.note, other.note)
        self._commit(
            "import",
            series=table,
            note=note,
            study_uid=self.study_uid or other.study_uid,
            reader=self.reader or other.reader,
        )
        measures = (f", {n_measures} measurement{'' if n_measures == 1 else 's'}"
                    if n_measures else "")
        return (f"merged {n_entries} slice entr{'y' if n_entries == 1 else 'ies'} and "
                f"{n_points} point{'' if n_points == 1 else 's'}{measures} from "
                f"{len(other.series)} series.")

    # -- other writers of the same sidecar ----------------------------------------------------
    def snapshot(self) -> AnnotationSet:
        """A copy of the current marks without history (the data is immutable: cheap)."""
        state = self._state
        return AnnotationSet.from_parts(state.study_uid, state.reader, state.series.values(),
                                        state.note, self.created, state.modified)

    def absorb(self, base: AnnotationSet, theirs: AnnotationSet) -> str:
        """Take in what another writer changed between ``base`` (what both last agreed on)
        and ``theirs`` (what it saved): slices and points it added are added, those it
        removed are removed, notes it changed are taken (joined with ours when both changed).
        Applied to the undo history too, so undoing one's own edit never drops another's.
        Not an undo step. Returns what came in, in words ("" when nothing did)."""
        counts = {"added": 0, "removed": 0}

        def fix(state: _State, tally: bool) -> _State:
            table = dict(state.series)
            keys = {(s.uid, s.name) for s in (*base.series, *theirs.series)}
            for uid, name in keys:
                bsa = base.get_series(uid, name)
                tsa = theirs.get_series(uid, name)
                key = self._find_key(table, uid, name)
                sa = table.get(key) if key is not None else None
                if sa is None:
                    if tsa is None:
                        continue  # gone on both sides
                    sa = replace(tsa, entries=(), points=(), rulers=(), rois=(), hematomas=(),
                                 note="")
                    key = sa.key
                new = _absorb_series(sa, bsa, tsa, utc_now(), counts if tally else None)
                if new.is_empty and (key not in table or tsa is None):
                    table.pop(key, None)  # nothing left of a series they removed or never had
                elif new != sa or key not in table:
                    table[key] = new
            note = state.note
            if theirs.note != base.note:
                note = theirs.note if note == base.note else _join_notes(note, theirs.note)
            return replace(state, series=table, note=note)

        new = fix(self._state, True)
        if new == self._state:
            return ""
        self._undo = [fix(s, False) for s in self._undo]
        self._redo = [fix(s, False) for s in self._redo]
        self._state = replace(new, modified=utc_now())
        self.last_change = "absorb"
        self.changed.emit()
        parts = []
        if counts["added"]:
            parts.append(f"{counts['added']} mark{'s' if counts['added'] > 1 else ''} added")
        if counts["removed"]:
            parts.append(f"{counts['removed']} removed")
        return ("Another window saved marks of this study: " + ", ".join(parts or ["notes"])
                + "; they are merged with yours.")


def _restricted(entry: Entry, keep: set[int]) -> Entry:
    """``entry`` with only the slices in ``keep`` (and their image facts)."""
    idx = [i for i, s in enumerate(entry.slices) if s in keep]
    return replace(
        entry,
        slices=tuple(entry.slices[i] for i in idx),
        sop_instance_uids=tuple(entry.sop_instance_uids[i] for i in idx)
        if entry.sop_instance_uids else (),
        positions=tuple(entry.positions[i] for i in idx) if entry.positions else (),
    )


def _absorb_series(
    sa: SeriesAnnotations,
    bsa: SeriesAnnotations | None,
    tsa: SeriesAnnotations | None,
    now: str,
    counts: dict[str, int] | None,
) -> SeriesAnnotations:
    """``sa`` (ours) with the changes from ``bsa`` to ``tsa`` (another writer's) applied."""
    entries = list(sa.entries)
    pairs = {(e.label, e.plane) for x in (bsa, tsa) if x is not None for e in x.entries}
    for label, plane in sorted(pairs):
        be = bsa.entry(label, plane) if bsa is not None else None
        te = tsa.entry(label, plane) if tsa is not None else None
        added = set(te.slices if te else ()) - set(be.slices if be else ())
        removed = set(be.slices if be else ()) - set(te.slices if te else ())
        i = next((n for n, e in enumerate(entries) if e.label == label and e.plane == plane),
                 None)
        current = entries[i] if i is not None else None
        if added and te is not None:
            incoming = _restricted(te, added)
            if current is None:
                used = {it.id for it in sa.items}
                current = incoming if incoming.id not in used else replace(incoming, id=new_id())
            else:
                current = _merge_entries(current, incoming, now)
        if removed and current is not None:
            current = _restricted(current, set(current.slices) - removed)
        if counts is not None:
            counts["added"] += len(added)
            counts["removed"] += len(removed)
        if current is not None and current.slices:
            if i is None:
                entries.append(current)
            else:
                entries[i] = current
        elif i is not None:
            del entries[i]
    kept: dict[str, tuple[Any, ...]] = {}
    for kind in ("points", "rulers", "rois", "hematomas"):  # items kept by their id
        base_ids = {it.id for it in getattr(bsa, kind)} if bsa is not None else set()
        theirs = {it.id: it for it in getattr(tsa, kind)} if tsa is not None else {}
        items = [it for it in getattr(sa, kind)
                 if not (it.id in base_ids and it.id not in theirs)]
        have = {it.id for it in items}
        for item_id, item in theirs.items():
            if item_id not in base_ids and item_id not in have:
                items.append(item)
                if counts is not None:
                    counts["added"] += 1
        kept[kind] = tuple(items)
    base_note = bsa.note if bsa is not None else ""
    their_note = tsa.note if tsa is not None else ""
    note = sa.note
    if their_note != base_note:
        note = their_note if note == base_note else _join_notes(note, their_note)
    return replace(sa, entries=tuple(entries), note=note, **kept)
