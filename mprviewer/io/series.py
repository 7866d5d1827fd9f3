"""Group scanned instances into series, split series that hold several stacks, name them."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from mprviewer.errors import DicomError, GeometryError
from mprviewer.io.geometry import (
    ORIENTATION_DECIMALS,
    Frame,
    StackGeometry,
    build_geometry,
    frame_orientation,
    frame_position,
    frame_problems,
    median,
)
from mprviewer.io.lite_header import LiteHeader
from mprviewer.io.metadata import TABLE_FIELDS, readable_value
from mprviewer.io.quick_values import header_value
from mprviewer.io.scan import Instance
from mprviewer.io.volume import Volume

# Tags that tell repeated acquisitions at the same positions apart, most specific first.
REPEAT_KEYS: tuple[tuple[str, str], ...] = (
    ("StackID", "stack"),
    ("TemporalPositionIdentifier", "time point"),
    ("TriggerTime", "trigger time"),
    ("EchoNumbers", "echo"),
    ("EchoTime", "echo time"),
    ("DiffusionBValue", "b-value"),
    ("DiffusionGradientOrientation", "gradient"),
    ("ImageType", "image type"),
    ("AcquisitionNumber", "acquisition"),
    ("DimensionIndexValues", "dimension index"),
)
# Private tags some vendors use instead (Siemens b-value and gradient direction).
PRIVATE_KEYS: dict[str, tuple[int, str, int]] = {
    "DiffusionBValue": (0x0019, "SIEMENS MR HEADER", 0x0C),
    "DiffusionGradientOrientation": (0x0019, "SIEMENS MR HEADER", 0x0E),
}


class Series:
    """One 3D stack of a study: what the series table shows and what ``load()`` reads."""

    def __init__(self, frames: list[Frame], label: str = "") -> None:
        self.frames = frames
        self.split_label = label
        first = frames[0].instance
        header = first.facts
        self.uid: str = first.series_uid
        self.study_uid: str = first.study_uid
        self.modality: str = str(header.get("Modality", ""))
        self.description: str = str(header.get("SeriesDescription", "")).strip()
        try:
            self.number: int | None = int(header.get("SeriesNumber"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.number = None
        self.name: str = ""
        self.extra_warnings: list[str] = []
        self.notes: dict[str, str] = {}  # extra rows for the data table (how it was split)
        self._geometry: StackGeometry | None = None

    # -- geometry ----------------------------------------------------------------------
    @property
    def geometry(self) -> StackGeometry:
        if self._geometry is None:
            self._geometry = build_geometry(self.frames)
            self.frames = self._geometry.frames
        return self._geometry

    @property
    def num_slices(self) -> int:
        """Slices of the loaded volume (more than the images when gaps are filled)."""
        return self.shape[0]

    @property
    def num_images(self) -> int:
        """2D images (files, frames or mosaic tiles) the series is made of."""
        return len(self.frames)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(slices, rows, columns) of the volume ``load()`` returns."""
        return self.geometry.shape

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along i (column), j (row), k (slice)."""
        norms = np.linalg.norm(self.geometry.affine[:3, :3], axis=0)
        return float(norms[0]), float(norms[1]), float(norms[2])

    @property
    def orientation(self) -> str:
        return self.geometry.orientation_label

    @property
    def warnings(self) -> list[str]:
        return [*self.extra_warnings, *self.geometry.warnings]

    @property
    def header(self) -> Any:
        """The first file's header (a pydicom Dataset without pixel data)."""
        return self.frames[0].instance.header

    @property
    def metadata(self) -> dict[str, str]:
        """The data table: patient, study, series and acquisition facts, in reading order."""
        return _metadata_table(self)

    @property
    def sop_instance_uids(self) -> list[str]:
        """Per output slice k: the SOP instance shown there, "" for an interpolated slice."""
        return [f.instance.sop_uid if f is not None else ""
                for f in self.geometry.slice_frames]

    def slice_header(self, k: int) -> Any:
        """The header of the image shown as slice k (None for an interpolated slice)."""
        slices = self.geometry.slice_frames
        frame = slices[k] if 0 <= k < len(slices) else None
        return frame.instance.header if frame is not None else None

    # -- pixels ------------------------------------------------------------------------
    def load(
        self,
        progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Volume:
        """Read the pixels into a Volume (array[k, j, i] in patient-ordered slices)."""
        from mprviewer.io.pixels import load_frames

        geometry = self.geometry
        try:
            array, notes = load_frames(geometry.frames, progress=progress, cancel=cancel)
            if geometry.plan is not None:
                from mprviewer.io.resample import apply_plan

                array = apply_plan(array, geometry.plan)
        except DicomError:
            raise
        except MemoryError as exc:
            raise DicomError(f"series {self.name!r}: not enough memory for "
                             f"{self.shape} voxels") from exc
        except Exception as exc:  # damaged pixel data: name the series, keep the study
            raise DicomError(
                f"series {self.name!r}: pixel data cannot be read "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        header = self.frames[0].instance.facts
        return Volume(
            array=array,
            affine=geometry.affine.copy(),
            warnings=[*self.warnings, *notes],
            series_uid=self.uid,
            study_uid=self.study_uid,
            name=self.name,
            modality=self.modality,
            units=_units(header, self.modality),
            window=self.default_window(notes),
            sop_instance_uids=self.sop_instance_uids,
            sop_class_uid=geometry.frames[0].instance.sop_class_uid,
            slice_positions=geometry.positions.copy(),
        )

    def default_window(self, notes: list[str] | None = None) -> tuple[float, float] | None:
        """The median of the per-slice WindowCenter/Width the files hold, or None.

        Scanners (Siemens MR) write a window per slice, fitted to that slice: the edge slices
        of a head hold a few grey values (W 8 L 4) while the middle says W 1550 L 801. The
        median over the slices is the window that fits most of the volume.
        """
        notes = list(notes or [])
        seen: set[int] = set()
        centers: list[float] = []
        widths: list[float] = []
        for frame in self.geometry.slice_frames:
            if frame is None or id(frame.instance) in seen:
                continue
            seen.add(id(frame.instance))
            window = _window(frame.instance.facts, notes)
            if window is not None:
                centers.append(window[0])
                widths.append(window[1])
        if not centers:
            return None
        return median(centers), median(widths)

    def __repr__(self) -> str:
        return f"Series({self.name!r}, {self.modality}, {self.shape})"


def _units(header: Any, modality: str) -> str:
    if modality.upper() == "RTDOSE":
        return str(header.get("DoseUnits", "GY")).capitalize() if "DoseGridScaling" in header \
            else ""
    rescale_type = str(header.get("RescaleType", "")).upper()
    if rescale_type in ("HU",) or (modality.upper() == "CT" and rescale_type in ("", "US")):
        return "HU" if modality.upper() == "CT" or rescale_type == "HU" else ""
    return rescale_type if rescale_type not in ("", "US") else ""


def _window(header: Any, notes: list[str]) -> tuple[float, float] | None:
    try:
        center = header.get("WindowCenter")
        width = header.get("WindowWidth")
        if center is None or width is None:
            return None
        center = float(center[0] if _is_multi(center) else center)
        width = float(width[0] if _is_multi(width) else width)
    except (TypeError, ValueError, IndexError):
        return None
    if not (np.isfinite(center) and np.isfinite(width)) or width <= 0:
        return None
    if any(n.startswith("MONOCHROME1") for n in notes):
        return None  # the stored window refers to the un-inverted values
    return center, width


def _is_multi(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"


# -- grouping ----------------------------------------------------------------------------
def _is_localizer(frame: Frame) -> bool:
    image_type = header_value(frame.instance.facts, "ImageType") or []
    if isinstance(image_type, str):
        image_type = image_type.split("\\")
    return any(str(v).upper() in ("LOCALIZER", "SCOUT") for v in image_type)


def _stack_key(frame: Frame) -> tuple:
    inst = frame.instance
    orientation = frame_orientation(frame)
    with np.errstate(over="ignore", invalid="ignore"):  # absurd values: build_geometry says
        rounded = None if orientation is None else tuple(
            np.round(orientation, ORIENTATION_DECIMALS))
        spacing = frame.spacing
        spacing = None if spacing is None else tuple(np.round(spacing, 4))
    try:
        samples = int(header_value(inst.facts, "SamplesPerPixel", 1) or 1)
    except (TypeError, ValueError):  # a damaged, multi-valued or non-numeric value
        samples = 0
    return (frame.rows, frame.columns, rounded, spacing, samples, _is_localizer(frame),
            frame.keys.get("StackID", ""))


def frames_of(instance: Instance) -> tuple[list[Frame], list[str]]:
    """The 2D frames an instance contributes (one for single-frame images) and notes."""
    from mprviewer.io.multiframe import expand_frames

    return expand_frames(instance)


def repeat_value(frame: Frame, keyword: str) -> str:
    """The value of a splitting key for a frame: functional groups, header, private tags."""
    if keyword in frame.keys:
        return frame.keys[keyword]
    facts = frame.instance.facts
    if isinstance(facts, LiteHeader):
        value = facts.get(keyword)
        if value in (None, "") and keyword in PRIVATE_KEYS:
            group, creator, _offset = PRIVATE_KEYS[keyword]
            # Without that private block the answer is None, as _private_value's.
            value = (_private_value(frame.instance.header, *PRIVATE_KEYS[keyword])
                     if facts.has_private_block(group, (creator,)) else None)
    else:
        header = facts
        tag = _tag_of(keyword)
        # The element store itself: Dataset.get(keyword) first resolves the keyword.
        value = header[tag].value if tag is not None and tag in header._dict else None
        if value in (None, "") and keyword in PRIVATE_KEYS:
            value = _private_value(header, *PRIVATE_KEYS[keyword])
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(_short(v) for v in value)
    return _short(value)


_TAGS: dict[str, Any] = {}


def _tag_of(keyword: str) -> Any:
    if keyword not in _TAGS:
        from pydicom.datadict import tag_for_keyword
        from pydicom.tag import BaseTag

        tag = tag_for_keyword(keyword)
        _TAGS[keyword] = None if tag is None else BaseTag(tag)
    return _TAGS[keyword]


def _private_value(header: Any, group: int, creator: str, offset: int) -> Any:
    """A private element's value by its creator, or None. The header's private creators
    are listed once and kept with it (pydicom's private_block searches them every call)."""
    creators = header.__dict__.get("_mprviewer_private_creators")
    if creators is None:
        creators = {}
        tags = [t for t in header._dict if (t >> 16) & 1 and 0x10 <= (t & 0xFFFF) <= 0xFF]
        for t in tags:
            try:
                value = header[t].value
            except Exception:  # a damaged creator names nothing
                continue
            if isinstance(value, str):
                creators.setdefault((t >> 16, value.strip()), t & 0xFF)
        header.__dict__["_mprviewer_private_creators"] = creators
    block = creators.get((group, creator))
    if block is None:
        return None
    from pydicom.tag import BaseTag

    tag = BaseTag((group << 16) | (block << 8) | offset)
    try:
        return header[tag].value if tag in header._dict else None
    except Exception:
        return None


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    try:
        return f"{float(str(value)):.6g}" if str(value).strip() else ""
    except ValueError:
        return str(value).strip()


def _split_repeats(frames: list[Frame]) -> list[tuple[str, list[Frame]]]:
    """Split frames that revisit the same positions into separate stacks (4D: time points,
    echoes, diffusion directions, acquisitions), labelled by what tells them apart."""
    def pos_key(f: Frame) -> tuple | None:
        p = frame_position(f)
        return None if p is None else tuple(round(float(v), 2) for v in p)

    keys = [pos_key(f) for f in frames]
    if any(k is None for k in keys) or len(set(keys)) == len(keys):
        return [("", frames)]

    position_of = {id(f): k for f, k in zip(frames, keys, strict=True)}

    def unique_positions(groups: dict[Any, list[Frame]]) -> bool:
        return all(len({position_of[id(f)] for f in g}) == len(g) for g in groups.values())

    # Each frame's keys, looked up once (the steps below ask for them again and again).
    memo: dict[tuple[int, str], str] = {}

    def value_of(f: Frame, kw: str) -> str:
        key = (id(f), kw)
        if key not in memo:
            memo[key] = repeat_value(f, kw)
        return memo[key]

    varying = [(kw, label) for kw, label in REPEAT_KEYS
               if len({value_of(f, kw) for f in frames}) > 1]

    def labelled(groups: dict[Any, list[Frame]]) -> list[tuple[str, list[Frame]]]:
        """Each group named by every varying key that is constant within it."""
        out = []
        for _, group in sorted(groups.items(), key=lambda kv: _sort_key(kv[0])):
            parts = []
            for kw, label in varying:
                values = {value_of(f, kw) for f in group}
                if kw == "DimensionIndexValues" and parts:
                    continue  # only an index of what the other parts already say
                if len(values) == 1 and (value := values.pop()):
                    parts.append(f"{label} {value}")
            out.append((", ".join(parts) or "repeat", group))
        return out

    for keyword, _label in varying:
        groups: dict[str, list[Frame]] = defaultdict(list)
        for f in frames:
            groups[value_of(f, keyword)].append(f)
        if unique_positions(groups):
            return labelled(groups)
    if len(varying) > 1:  # e.g. several echoes at several time points: split on all of them
        combined: dict[tuple[str, ...], list[Frame]] = defaultdict(list)
        for f in frames:
            combined[tuple(value_of(f, kw) for kw, _ in varying)].append(f)
        if unique_positions(combined):
            return labelled(combined)
    # No tag tells them apart: the n-th visit of each position forms the n-th stack.
    seen: dict[tuple, int] = defaultdict(int)
    groups_by_visit: dict[int, list[Frame]] = defaultdict(list)
    for f, key in sorted(zip(frames, keys, strict=True),
                         key=lambda fk: (fk[0].instance.instance_number or 0, fk[0].frame)):
        groups_by_visit[seen[key]].append(f)
        seen[key] += 1
    return [(f"repeat {n + 1}", g) for n, g in sorted(groups_by_visit.items())]


def _sort_key(value: Any) -> list:
    values = value if isinstance(value, tuple) else (value,)
    return [_natural(v) for v in values]


def _natural(text: str) -> tuple:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def group_series(instances: list[Instance]) -> tuple[list[Series], list[tuple[str, str]]]:
    """Series by SeriesInstanceUID, each split into single 3D stacks, named for people."""
    by_uid: dict[str, list[Instance]] = defaultdict(list)
    for inst in instances:
        by_uid[inst.series_uid].append(inst)
    skipped: list[tuple[str, str]] = []
    result: list[Series] = []
    for uid, members in by_uid.items():
        members = _dedupe(members, skipped)
        frames: list[Frame] = []
        notes: list[str] = []
        checked: dict[object, str | None] = {}  # orientations and spacings seen
        for inst in members:
            try:
                inst_frames, inst_notes = frames_of(inst)
            except Exception as exc:  # a damaged sequence, parsed only when first read
                skipped.append((inst.member.name, "damaged multi-frame or mosaic header: "
                                                  f"{type(exc).__name__}: {exc}"))
                continue
            problems = frame_problems(inst_frames, checked)
            if any(problems):
                reason = next(p for p in problems if p)
                bad = sum(1 for p in problems if p)
                where = f"{bad} of {len(problems)} frames: " if len(problems) > 1 else ""
                skipped.append((inst.member.name, f"series {uid}: {where}{reason}"))
                inst_frames = [f for f, p in zip(inst_frames, problems, strict=True) if not p]
            frames.extend(inst_frames)
            notes.extend(n for n in inst_notes if n not in notes)
        stacks: dict[tuple, list[Frame]] = defaultdict(list)
        memo: dict[tuple, tuple] = {}
        for f in frames:
            # Frames of one object mostly share orientation and spacing: key them once.
            memo_key = (id(f.instance), id(frame_orientation(f)), f.spacing, f.tile,
                        f.keys.get("StackID", ""))
            key = memo.get(memo_key)
            if key is None:
                key = memo[memo_key] = _stack_key(f)
            stacks[key].append(f)
        stack_list = sorted(stacks.values(), key=len, reverse=True)
        pieces: list[tuple[str, list[Frame]]] = []
        for n, stack in enumerate(stack_list):
            label = "" if len(stack_list) == 1 else _stack_label(stack, n)
            for repeat_label, part in _split_repeats(stack):
                pieces.append((", ".join(x for x in (label, repeat_label) if x), part))
        for label, part in pieces:
            series = Series(part, label)
            series.extra_warnings.extend(notes)
            if len(pieces) > 1:
                series.extra_warnings.append(
                    f"series {uid} holds {len(pieces)} stacks; this one is: {label}"
                )
                series.notes["Split"] = f"stack of {len(pieces)} in the series: {label}"
            try:
                series.geometry  # noqa: B018 - validate now so a bad stack is skipped early
            except (GeometryError, ValueError, np.linalg.LinAlgError) as exc:
                for f in part:
                    skipped.append((f.instance.member.name, f"series {uid}: {exc}"))
                continue
            result.append(series)
    _assign_names(result)
    if len(result) > 1:  # natural name order needs natsort, whose import costs 60 ms
        result.sort(key=lambda s: (s.number if s.number is not None else 1 << 30,
                                   series_sort_key(s.name)))
    return result, skipped


def _dedupe(members: list[Instance], skipped: list[tuple[str, str]]) -> list[Instance]:
    """Drop second copies of the same SOP instance (the same file twice on a CD or in a zip)."""
    seen: set[str] = set()
    kept = []
    for inst in sorted(members, key=lambda i: i.member.name):
        if inst.sop_uid and inst.sop_uid in seen:
            skipped.append((inst.member.name, f"duplicate of SOP instance {inst.sop_uid}"))
            continue
        seen.add(inst.sop_uid)
        kept.append(inst)
    return kept


def _stack_label(stack: list[Frame], n: int) -> str:
    from mprviewer.io.geometry import orientation_label

    kind = orientation_label(frame_orientation(stack[0]))
    stack_id = stack[0].keys.get("StackID", "")
    if _is_localizer(stack[0]) or (len(stack) <= 3 and n > 0):
        return f"localizer {kind}"
    label = f"{kind} {stack[0].columns}x{stack[0].rows}"
    return f"stack {stack_id} {label}" if stack_id else label


def series_sort_key(name: str) -> Any:
    """Natural order of series names: "acquisition 8" before "acquisition 12"."""
    return _natural_keygen()(name)


@lru_cache(maxsize=1)
def _natural_keygen() -> Any:
    from natsort import natsort_keygen, ns

    return natsort_keygen(alg=ns.IGNORECASE)


def _folder_parts(series: Series) -> list[str]:
    """Path components of the folder that holds all of a series' files (archive folders
    included), "" components dropped."""
    from os.path import commonpath

    folders = {f.instance.member.folder.replace("!", "/") for f in series.frames}
    if len(folders) == 1:
        folder = next(iter(folders))
    else:
        try:
            folder = commonpath(sorted(folders))
        except ValueError:
            folder = ""
    return [p for p in folder.split("/") if p]


def _with_case_folders(group: list[tuple[Series, str, bool]]) -> list[str]:
    """Names for series whose names repeat: each led by the folder(s) that tell them apart
    ("case2/T1" rather than "T1 (2)"); "" where their folders do not differ."""
    parts = []
    for series, _name, from_folder in group:
        components = _folder_parts(series)
        parts.append(components[:-1] if from_folder else components)
    longest = max((len(p) for p in parts), default=0)
    for depth in range(1, longest + 1):
        tails = ["/".join(p[-depth:]) for p in parts]
        if len(set(tails)) == len(tails):
            return [f"{tail}/{name}" if tail else name
                    for tail, (_s, name, _f) in zip(tails, group, strict=True)]
    return [""] * len(group)


def _assign_names(series_list: list[Series]) -> None:
    """Folder name when a series sits alone in its folder, else '<number> <description>';
    names that repeat are led by the case folder that tells them apart."""
    folder_series: dict[str, set[str]] = defaultdict(set)
    for s in series_list:
        for f in s.frames:
            folder_series[f.instance.member.folder].add(s.uid)
    stacks_per_uid: dict[str, int] = defaultdict(int)
    for s in series_list:
        stacks_per_uid[s.uid] += 1
    named: list[tuple[Series, str, bool]] = []
    for s in series_list:
        folders = {f.instance.member.folder for f in s.frames}
        name = ""
        from_folder = False
        if len(folders) == 1:
            folder = next(iter(folders))
            if folder_series[folder] == {s.uid}:
                name = s.frames[0].instance.member.folder_name
                from_folder = bool(name)
        if not name:
            number = "" if s.number is None else str(s.number)
            name = " ".join(x for x in (number, s.description) if x) or s.modality or "series"
        if stacks_per_uid[s.uid] > 1 and s.split_label:
            name = f"{name} [{s.split_label}]"
        named.append((s, name, from_folder))
    groups: dict[str, list[int]] = defaultdict(list)
    for n, (_s, name, _f) in enumerate(named):
        groups[name].append(n)
    final = [name for _s, name, _f in named]
    for indexes in groups.values():
        if len(indexes) < 2:
            continue
        cased = _with_case_folders([named[n] for n in indexes])
        for n, name in zip(indexes, cased, strict=True):
            if name:
                final[n] = name
    used: dict[str, int] = defaultdict(int)
    for s, name in zip(series_list, final, strict=True):
        used[name] += 1
        s.name = name if used[name] == 1 else f"{name} ({used[name]})"


def _metadata_table(series: Series) -> dict[str, str]:
    """Ordered label -> text for the data table of one series."""
    header = series.header
    table: dict[str, str] = {"Name": series.name}
    for label, keyword in TABLE_FIELDS:
        text = readable_value(keyword, header.get(keyword))
        if text:
            table[label] = text
    k, j, i = series.shape
    di, dj, dk = series.spacing
    table["Size (columns x rows x slices)"] = f"{i} x {j} x {k}"
    table["Spacing (mm)"] = f"{di:.3g} x {dj:.3g} x {dk:.3g}"
    table["Orientation"] = series.orientation
    ts = series.frames[0].instance.transfer_syntax
    try:
        from pydicom.uid import UID

        table["Transfer syntax"] = f"{UID(ts).name} ({ts})"
    except Exception:
        table["Transfer syntax"] = ts
    table["Files"] = str(len({f.instance.member.name for f in series.frames}))
    if series.num_images != len({f.instance.member.name for f in series.frames}):
        table["Images (frames or tiles)"] = str(series.num_images)
    if series.split_label:
        table["Stack"] = series.split_label
    table.update(series.notes)
    plan = series.geometry.plan
    if plan is not None:
        made = sum(1 for f in series.geometry.slice_frames if f is None)
        table["Resampled"] = (
            f"onto a regular orthogonal grid: {series.num_images} images -> "
            f"{plan.num_slices} slices"
            + (f" ({made} interpolated)" if made else "")
            + ("; in-plane shift for gantry tilt" if plan.shifts is not None else "")
        )
    if series.warnings:
        table["Warnings"] = "; ".join(series.warnings)
    return table

