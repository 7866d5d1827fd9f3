#!/usr/bin/env python
"""Fuzz the loader and renderer: mutate real DICOM files and zips, open, load and render them.

Every input must end in success or a ``DicomError`` (``mprviewer.open_study``,
``Series.load``, then ``mprviewer.render.screenshot`` of what loaded, at a small size) within
a time bound and a memory bound; anything else is a bug, and the input is kept in the output
folder so it can be replayed. Each input runs in a child process forked from a warmed-up
parent, with no address-space cap: a segfault in a decoder or in VTK shows as the child's
signal, and the child's resident memory is watched while it runs (stopped past the limit)
and its peak checked when it ends. Seeds are synthetic series in every transfer syntax
the installed plugins write, pydicom's bundled scanner files, and zips of series (deflate,
stored, nested). Mutations: bit flips, interesting byte values, truncation, element length
fields, tag values (rewritten through pydicom), chunk deletion/duplication/insertion; for
zips also header fields (sizes, method, flags, name lengths, entry counts) and the central
directory.

    .venv/bin/python benchmarks/fuzz.py --inputs 3000 --seed 1 --out /tmp/fuzz-crashes
    .venv/bin/python benchmarks/fuzz.py --minutes 5 --memory-mib 1024

The bounded CI run (tests/test_fuzz_loader.py) imports ``Fuzzer`` from this file.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import io
import json
import logging
import os
import random
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
import traceback
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

INTERESTING_8 = [0x00, 0x01, 0x7F, 0x80, 0xFF]
INTERESTING_16 = [0, 1, 2, 3, 0x7FFF, 0x8000, 0xFFFF, 8, 16, 32, 64]
INTERESTING_32 = [0, 1, 2, 3, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0x10000, 1000003]
TAG_VALUES: dict[str, list[object]] = {
    "Rows": [0, 1, 3, 65535, 4096],
    "Columns": [0, 1, 3, 65535, 4096],
    "BitsAllocated": [0, 1, 7, 8, 12, 24, 32, 64, 65535],
    "BitsStored": [0, 1, 17, 33, 65535],
    "HighBit": [0, 15, 31, 65535],
    "PixelRepresentation": [0, 1, 2, 65535],
    "SamplesPerPixel": [0, 2, 3, 4, 65535],
    "PlanarConfiguration": [0, 1, 7],
    "NumberOfFrames": ["0", "-1", "3", "99999999", "abc", ""],
    "PhotometricInterpretation": ["MONOCHROME1", "RGB", "YBR_FULL_422", "PALETTE COLOR",
                                  "", "XYZ"],
    "ImagePositionPatient": [["nan", "0", "0"], ["1e308", "1e308", "1e308"], ["0", "0"],
                             ["inf", "-inf", "0"], ["abc", "1", "2"], []],
    "ImageOrientationPatient": [["0", "0", "0", "0", "0", "0"], ["1", "0", "0", "1", "0", "0"],
                                ["nan"] * 6, ["1", "0", "0"], ["1e200"] * 6],
    "PixelSpacing": [["0", "0"], ["-1", "1"], ["nan", "1"], ["1e300", "1e300"], ["1"]],
    "SliceThickness": ["0", "-5", "nan"],
    "RescaleSlope": ["0", "nan", "1e308", "-1", "abc"],
    "RescaleIntercept": ["nan", "1e308", "-1e308", "abc"],
    "WindowCenter": ["nan", "1e308", "", "abc"],
    "WindowWidth": ["0", "-1", "nan", "abc"],
    "SOPClassUID": ["", "1.2.840.10008.5.1.4.1.1.88.11", "1.2.840.10008.5.1.4.1.1.4.1"],
    "SeriesInstanceUID": ["", "1.2.3", "x" * 200],
    "InstanceNumber": ["-1", "abc", "99999999999"],
    "SliceLocation": ["nan", "abc"],
    "GantryDetectorTilt": ["89.9", "nan", "-90"],
}


@dataclass
class Seed:
    """One starting input: files of a folder (one may be mutated) or a zip archive."""

    name: str
    files: dict[str, bytes]  # relative path -> bytes
    kind: str  # "folder" or "zip"


@dataclass
class Outcome:
    kind: str  # ok, partial, DicomError subclasses, crash:<type or signal>, hang, slow, memory
    seconds: float
    detail: str = ""
    rendered: int = 0  # volumes rendered
    peak_bytes: int = 0  # the child's resident memory above the parent's, at its peak


FAILURES = ("crash", "hang", "slow", "memory")


@dataclass
class Report:
    tried: int = 0
    outcomes: Counter = field(default_factory=Counter)
    crashes: list[tuple[str, str]] = field(default_factory=list)
    slowest: float = 0.0
    seconds: float = 0.0
    rendered: int = 0
    peak_bytes: int = 0

    def summary(self) -> dict[str, object]:
        return {"inputs": self.tried, "outcomes": dict(self.outcomes.most_common()),
                "crashes": len(self.crashes), "slowest_input_s": round(self.slowest, 3),
                "rendered": self.rendered, "largest_peak_mib": round(self.peak_bytes / 2**20),
                "total_s": round(self.seconds, 1)}


# -- seeds ---------------------------------------------------------------------------------
def build_seeds() -> list[Seed]:
    """Small real and synthetic inputs, so that thousands of runs fit in minutes."""
    from mprviewer.synthetic import writer as synthetic

    rng = np.random.default_rng(0)
    seeds: list[Seed] = []
    array = rng.integers(-1000, 1500, (3, 40, 36)).astype(np.int16)
    for n, ts in enumerate(synthetic.encodable_syntaxes()):
        files: dict[str, bytes] = {}
        try:
            synthetic.write_series("s", array, seed=n, transfer_syntax=ts,
                                   rescale=(1.0, -1024.0), signed=False,
                                   sink=lambda name, data, f=files: f.update({name: data}))
        except Exception:  # a syntax whose encoder refuses this array: not a seed
            continue
        seeds.append(Seed(f"synthetic-{ts}", files, "folder"))
    extra = {
        "no-preamble": {"with_preamble": False, "extension": ""},
        "monochrome1": {"photometric": "MONOCHROME1", "bits_stored": 12, "signed": False},
        "tilt": {"tilt": 15.0},
    }
    for name, kwargs in extra.items():
        files = {}
        synthetic.write_series("s", np.abs(array), seed=name,
                               sink=lambda n, d, f=files: f.update({n: d}), **kwargs)
        seeds.append(Seed(f"synthetic-{name}", files, "folder"))
    rgb = rng.integers(0, 255, (2, 8, 6, 3)).astype(np.uint8)
    files = {}
    synthetic.write_series("s", rgb, photometric="RGB", bits_allocated=8, signed=False, seed=9,
                           sink=lambda n, d, f=files: f.update({n: d}))
    seeds.append(Seed("synthetic-rgb", files, "folder"))
    seeds.extend(_pydicom_seeds())
    base = seeds[0].files
    seeds.append(Seed("zip-deflate", {"study.zip": _zip_bytes(base, zipfile.ZIP_DEFLATED)},
                      "zip"))
    seeds.append(Seed("zip-stored", {"study.zip": _zip_bytes(base, zipfile.ZIP_STORED)}, "zip"))
    inner = _zip_bytes(base, zipfile.ZIP_DEFLATED)
    seeds.append(Seed("zip-nested", {"outer.zip": _zip_bytes({"cd/inner.zip": inner},
                                                             zipfile.ZIP_STORED)}, "zip"))
    return seeds


def _pydicom_seeds() -> list[Seed]:
    try:
        from pydicom.data import get_testdata_file
    except ImportError:
        return []
    names = ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm",
             "ExplVR_BigEnd.dcm", "SC_rgb_small_odd.dcm", "SC_rgb_rle.dcm", "rtdose_1frame.dcm",
             "liver_1frame.dcm", "MR_small_jp2klossless.dcm", "JPEG2000.dcm",
             "SC_rgb_jpeg.dcm", "image_dfl.dcm", "emri_small.dcm", "JPGExtended.dcm",
             "MR_small_jpeg_ls_lossless.dcm", "test-SR.dcm", "no_meta.dcm"]
    seeds = []
    for name in names:
        with contextlib.suppress(Exception):
            path = get_testdata_file(name)
            if path and os.path.getsize(path) < 200_000:
                seeds.append(Seed(f"pydicom-{name}", {name: Path(path).read_bytes()}, "folder"))
    return seeds


def _zip_bytes(files: dict[str, bytes], method: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, data in files.items():
            zf.writestr(f"series/{name}", data)
    return buffer.getvalue()


# -- mutators --------------------------------------------------------------------------------
def _element_length_fields(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of element length fields, by walking explicit/implicit VR LE data."""
    found: list[tuple[int, int]] = []
    pos = 132 if data[128:132] == b"DICM" else 0
    explicit_vrs = {b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"OD", b"OL", b"OV", b"UC",
                    b"UR"}
    while pos + 8 <= len(data) and len(found) < 400:
        vr = data[pos + 4 : pos + 6]
        if vr.isalpha() and vr.isupper():
            if vr in explicit_vrs:
                found.append((pos + 8, 4))
                (length,) = struct.unpack_from("<I", data, pos + 8) if pos + 12 <= len(
                    data) else (0,)
                head = 12
            else:
                found.append((pos + 6, 2))
                (length,) = struct.unpack_from("<H", data, pos + 6)
                head = 8
        else:
            found.append((pos + 4, 4))
            (length,) = struct.unpack_from("<I", data, pos + 4)
            head = 8
        if length == 0xFFFFFFFF:
            pos += head  # step into sequences and encapsulated data
        else:
            pos += head + length
    return found


def mutate_bytes(data: bytes, rnd: random.Random) -> tuple[bytes, str]:
    """One or a few byte-level mutations."""
    if not data:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300))), "fill"
    b = bytearray(data)
    op = rnd.choice(["flip", "flip", "interesting", "truncate", "truncate", "length", "length",
                     "chunk_delete", "chunk_dup", "insert", "zero_run"])
    if op == "flip":
        for _ in range(rnd.randint(1, 8)):
            i = rnd.randrange(len(b))
            b[i] ^= 1 << rnd.randrange(8)
    elif op == "interesting":
        for _ in range(rnd.randint(1, 4)):
            i = rnd.randrange(len(b))
            width = rnd.choice([1, 2, 4])
            if width == 1:
                b[i] = rnd.choice(INTERESTING_8)
            elif width == 2 and i + 2 <= len(b):
                struct.pack_into("<H", b, i, rnd.choice(INTERESTING_16))
            elif i + 4 <= len(b):
                struct.pack_into("<I", b, i, rnd.choice(INTERESTING_32))
    elif op == "truncate":
        cut = rnd.choice([rnd.randrange(len(b)), rnd.randrange(min(len(b), 1200)),
                          len(b) - rnd.randint(1, 64)])
        del b[max(cut, 0):]
    elif op == "length":
        fields = _element_length_fields(data)
        if fields:
            for _ in range(rnd.randint(1, 3)):
                offset, size = rnd.choice(fields)
                if size == 2 and offset + 2 <= len(b):
                    struct.pack_into("<H", b, offset, rnd.choice(INTERESTING_16))
                elif offset + 4 <= len(b):
                    struct.pack_into("<I", b, offset, rnd.choice(INTERESTING_32))
    elif op == "chunk_delete":
        i = rnd.randrange(len(b))
        del b[i : i + rnd.randint(1, 256)]
    elif op == "chunk_dup":
        i = rnd.randrange(len(b))
        chunk = b[i : i + rnd.randint(1, 256)]
        j = rnd.randrange(len(b))
        b[j:j] = chunk
    elif op == "insert":
        i = rnd.randrange(len(b))
        b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 64)))
    else:
        i = rnd.randrange(len(b))
        b[i : i + rnd.randint(4, 512)] = bytes(min(len(b) - i, 512))
    return bytes(b), op


def mutate_tags(data: bytes, rnd: random.Random) -> tuple[bytes, str]:
    """Rewrite one to three tag values through pydicom; falls back to byte mutation."""
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        changed = []
        for name in rnd.sample(sorted(TAG_VALUES), rnd.randint(1, 3)):
            value = rnd.choice(TAG_VALUES[name])
            if value == [] or value == "":
                if name in ds:
                    delattr(ds, name)
                    changed.append(f"-{name}")
                continue
            setattr(ds, name, value)
            changed.append(name)
        if rnd.random() < 0.2 and "TransferSyntaxUID" in getattr(ds, "file_meta", {}):
            ds.file_meta.TransferSyntaxUID = rnd.choice(
                ["1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.4.50",
                 "1.2.840.10008.1.2.5", "1.2.3.4"])
            changed.append("TransferSyntaxUID")
        out = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.save_as(out, enforce_file_format=False)
        return out.getvalue(), "tags:" + ",".join(changed)
    except Exception:
        return mutate_bytes(data, rnd)


def mutate_zip(data: bytes, rnd: random.Random) -> tuple[bytes, str]:
    """Mutations aimed at zip structure: header fields, central directory, data."""
    b = bytearray(data)
    op = rnd.choice(["field", "field", "field", "cd_flip", "bytes", "eocd"])
    if op == "field":
        sigs = [(b"PK\x03\x04", {6: 2, 8: 2, 14: 4, 18: 4, 22: 4, 26: 2, 28: 2}),
                (b"PK\x01\x02", {8: 2, 10: 2, 16: 4, 20: 4, 24: 4, 28: 2, 30: 2, 38: 4, 42: 4})]
        sig, layout = rnd.choice(sigs)
        positions = []
        pos = data.find(sig)
        while pos != -1:
            positions.append(pos)
            pos = data.find(sig, pos + 4)
        if positions:
            at = rnd.choice(positions)
            offset, size = rnd.choice(sorted(layout.items()))
            if at + offset + size <= len(b):
                if size == 2:
                    struct.pack_into("<H", b, at + offset, rnd.choice([*INTERESTING_16, 9, 99]))
                else:
                    struct.pack_into("<I", b, at + offset, rnd.choice(INTERESTING_32))
        return bytes(b), f"zip-field@{offset if positions else '-'}"
    if op == "cd_flip":
        start = data.find(b"PK\x01\x02")
        if start != -1:
            for _ in range(rnd.randint(1, 6)):
                i = rnd.randrange(start, len(b))
                b[i] ^= 1 << rnd.randrange(8)
        return bytes(b), "zip-cd-flip"
    if op == "eocd":
        at = data.rfind(b"PK\x05\x06")
        if at != -1:
            offset = rnd.choice([8, 10, 12, 16, 20])
            size = 4 if offset in (12, 16) else 2
            value = rnd.choice(INTERESTING_32 if size == 4 else INTERESTING_16)
            if at + offset + size <= len(b):  # a "PK\x05\x06" near the end of the data
                struct.pack_into("<I" if size == 4 else "<H", b, at + offset, value)
        return bytes(b), "zip-eocd"
    return mutate_bytes(data, rnd)


# -- running -----------------------------------------------------------------------------
class _Timeout(BaseException):
    """Raised by the alarm when one input takes too long (a hang)."""


def dicom_error_names() -> set[str]:
    """Names of DicomError and every subclass: the outcomes that count as handled errors."""
    from mprviewer.errors import DicomError

    names, todo = set(), [DicomError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


RENDER_SIZE = (96, 72)  # small: the render stage is about crashes, not pictures
RENDER_VOLUMES = 2  # loaded volumes rendered per input


def run_input(folder: Path, target: Path, render: bool = False) -> tuple[str, str, int]:
    """Open and load ``target`` (and render what loaded); outcome kind, detail, renders."""
    import mprviewer
    from mprviewer.errors import DicomError

    try:
        study = mprviewer.open_study(target)
    except DicomError as exc:
        return type(exc).__name__, str(exc)[:200], 0
    failed = rendered = 0
    try:
        for series in study.series[:6]:
            try:
                volume = series.load()
                if volume.array.size and volume.array.dtype.kind == "f":
                    np.nanmax(volume.array)  # touch the values
                if render and rendered < RENDER_VOLUMES:
                    from mprviewer.render.screenshot import screenshot

                    image = screenshot(volume, view="quad", size=RENDER_SIZE)
                    if image.shape[:2] != (RENDER_SIZE[1], RENDER_SIZE[0]):
                        raise RuntimeError(f"rendered {image.shape}, not {RENDER_SIZE}")
                    rendered += 1
            except DicomError:
                failed += 1
    finally:
        study.close()
    return ("partial" if failed else "ok"), "", rendered


def _rss_bytes(pid: int | str = "self") -> int:
    """Resident memory of a process from /proc (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def warm_up(seeds: list[Seed], workdir: Path, render: bool) -> None:
    """Open and load every seed once in the parent, so each forked child starts with the
    modules and plugins it needs imported (no render window is made here: each child makes
    its own)."""
    for n, seed in enumerate(seeds):
        folder = workdir / f"warm{n:03d}"
        folder.mkdir(parents=True)
        for name, data in seed.files.items():
            (folder / name).write_bytes(data)
        target = folder / sorted(seed.files)[0] if seed.kind == "zip" else folder
        with warnings.catch_warnings(), contextlib.suppress(Exception):
            warnings.simplefilter("ignore")
            run_input(folder, target, render=False)
        shutil.rmtree(folder, ignore_errors=True)
    if render:
        import vtkmodules.vtkRenderingCore
        import vtkmodules.vtkRenderingFreeType
        import vtkmodules.vtkRenderingOpenGL2
        import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401

        import mprviewer.render.screenshot  # noqa: F401


def run_isolated(
    work: Callable[[], dict[str, object]], time_bound: float, memory_limit: float
) -> tuple[dict[str, object], float, int]:
    """Run ``work`` in a forked child; (its result or a failure, seconds, peak bytes: the
    child's resident memory at its peak less what it had when it started).

    The child's resident memory above the parent's is sampled while it runs, and the child
    is killed past ``memory_limit`` (kind "memory") or after twice ``time_bound`` ("hang"); a
    child killed by a signal is "crash:SIGSEGV" and the like. Its result travels back as JSON
    through a pipe."""
    baseline = _rss_bytes()
    read_fd, write_fd = os.pipe()
    errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed below) the child's stderr
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns, never runs the parent's exit handlers
        os.close(read_fd)
        os.dup2(errors.fileno(), 2)
        faulthandler.enable(errors, all_threads=False)  # the crashing thread's stack
        code = 0
        start_rss = _rss_bytes()  # pages shared with the parent count only once touched
        try:
            result = work()
        except BaseException as exc:  # also pyo3 panics from Rust decoders
            result = {"kind": f"crash:{type(exc).__name__}", "detail": traceback.format_exc()}
        result["start_rss"] = start_rss
        try:
            with os.fdopen(write_fd, "w") as pipe:
                pipe.write(json.dumps(result, default=str)[:100_000])
        except BaseException:
            code = 70
        os._exit(code)
    os.close(write_fd)
    baseline = min(baseline, _rss_bytes(pid) or baseline)  # the child as it starts
    peak = 0
    max_rss = 0
    kind = ""
    status = 0
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            max_rss = int(usage.ru_maxrss) * 1024
            peak = max(peak, max_rss - baseline)
            break
        peak = max(peak, _rss_bytes(pid) - baseline)
        elapsed = time.monotonic() - start
        if memory_limit and peak > memory_limit:
            kind = "memory"
        elif elapsed > 2 * time_bound:
            kind = "hang"
        if kind:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.wait4(pid, 0)
            break
        time.sleep(0.005 if elapsed < 0.5 else 0.02)
    seconds = time.monotonic() - start
    with os.fdopen(read_fd) as pipe:
        text = pipe.read() if not kind else ""
    with errors:
        errors.seek(0)
        stderr_head = "\n".join(  # the list of loaded extension modules says nothing
            line for line in errors.read(6000).decode("utf-8", "replace").splitlines()
            if not line.startswith("Extension modules:"))
    if kind:
        return {"kind": kind, "detail": f"{peak / 2**20:.0f} MiB after {seconds:.1f} s"}, \
            seconds, peak
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        return {"kind": f"crash:{name}", "detail": f"killed by {name}\n{stderr_head}"}, \
            seconds, peak
    try:
        result = json.loads(text)
    except ValueError:
        result = {"kind": "crash:exit", "detail": f"exit status {os.WEXITSTATUS(status)}, "
                  f"no result"}
    start_rss = int(result.pop("start_rss", 0) or 0)
    if start_rss:
        peak = max_rss - start_rss  # what the input itself made resident
    if memory_limit and peak > memory_limit:
        result = {"kind": "memory", "detail": f"peak {peak / 2**20:.0f} MiB"}
    return result, seconds, peak


class Fuzzer:
    """Generates mutated inputs from the seeds and runs them, collecting outcomes."""

    def __init__(self, seed: int = 1, workdir: Path | None = None,
                 keep: Path | None = None, time_bound: float = 5.0, render: bool = True,
                 memory_limit: float = 1024 * 2**20, isolate: bool = True,
                 render_every: int = 1) -> None:
        warnings.simplefilter("ignore")  # pydicom warns on every odd value; outcomes matter
        for name in ("pydicom", "openjpeg", "pylibjpeg", "libjpeg", "rle"):
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        self.rnd = random.Random(seed)
        self.seeds = build_seeds()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="mprviewer-fuzz-"))
        self.keep = keep
        self.time_bound = time_bound
        self.render = render
        self.render_every = max(1, render_every)  # each render makes a GL context: ~0.4 s
        self.memory_limit = memory_limit
        self.isolate = isolate and hasattr(os, "fork")
        self.report = Report()
        if self.isolate:
            warm_up(self.seeds, self.workdir, render)

    def make_input(self, index: int) -> tuple[Path, str]:
        """Write one mutated input under the work folder; return (what to open, description)."""
        seed = self.rnd.choice(self.seeds)
        folder = self.workdir / f"in{index:06d}"
        folder.mkdir(parents=True)
        names = sorted(seed.files)
        victims = set(self.rnd.sample(names, 1 if len(names) == 1 or self.rnd.random() < 0.8
                                      else 2))
        notes = []
        for name in names:
            data = seed.files[name]
            if name in victims:
                rounds = 1 if self.rnd.random() < 0.7 else self.rnd.randint(2, 4)
                for _ in range(rounds):
                    if seed.kind == "zip":
                        data, note = mutate_zip(data, self.rnd)
                    elif self.rnd.random() < 0.35:
                        data, note = mutate_tags(data, self.rnd)
                    else:
                        data, note = mutate_bytes(data, self.rnd)
                    notes.append(note)
            (folder / name).write_bytes(data)
        target = folder / names[0] if seed.kind == "zip" else folder
        return target, f"{seed.name}: {'; '.join(notes)}"

    def run_one(self, index: int) -> Outcome:
        target, description = self.make_input(index)
        folder = target if target.is_dir() else target.parent
        render = self.render and index % self.render_every == 0
        if self.isolate:
            def work() -> dict[str, object]:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    kind, detail, rendered = run_input(folder, target, render)
                return {"kind": kind, "detail": detail, "rendered": rendered}

            result, seconds, peak = run_isolated(work, self.time_bound, self.memory_limit)
            kind, detail = str(result["kind"]), str(result.get("detail", ""))
            rendered = int(result.get("rendered", 0) or 0)  # type: ignore[call-overload]
        else:
            kind, detail, rendered, seconds = self._run_here(folder, target, render)
            peak = 0
        if kind.startswith(FAILURES):
            detail = f"{description}\n{detail}"
        elif seconds > self.time_bound:
            kind, detail = "slow", f"{seconds:.1f} s: {description}"
        outcome = Outcome(kind, seconds, detail, rendered, max(peak, 0))
        self._record(index, outcome, folder)
        return outcome

    def _run_here(self, folder: Path, target: Path, render: bool
                  ) -> tuple[str, str, int, float]:
        """The input in this process (``--in-process``, for a debugger): no memory check."""
        start = time.monotonic()
        use_alarm = threading.current_thread() is threading.main_thread() and hasattr(
            signal, "SIGALRM")
        if use_alarm:
            previous = signal.signal(signal.SIGALRM, _alarm)
            signal.setitimer(signal.ITIMER_REAL, self.time_bound * 2)
        rendered = 0
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kind, detail, rendered = run_input(folder, target, render)
        except _Timeout:
            kind, detail = "hang", f"over {2 * self.time_bound:.0f} s"
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # also pyo3 panics from Rust decoders
            kind = f"crash:{type(exc).__name__}"
            detail = traceback.format_exc()
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
        return kind, detail, rendered, time.monotonic() - start

    def _record(self, index: int, outcome: Outcome, folder: Path) -> None:
        report = self.report
        report.tried += 1
        report.outcomes[outcome.kind] += 1
        report.slowest = max(report.slowest, outcome.seconds)
        report.seconds += outcome.seconds
        report.rendered += outcome.rendered
        report.peak_bytes = max(report.peak_bytes, outcome.peak_bytes)
        bad = outcome.kind.startswith(FAILURES)
        if bad:
            report.crashes.append((outcome.kind, outcome.detail))
            if self.keep is not None:
                dest = self.keep / f"{index:06d}-{outcome.kind.replace(':', '-')}"
                shutil.copytree(folder, dest, dirs_exist_ok=True)
                (dest / "WHY.txt").write_text(outcome.detail)
        shutil.rmtree(folder, ignore_errors=True)

    def run(self, count: int | None = None, seconds: float | None = None,
            on_progress: Callable[[Report], None] | None = None) -> Report:
        start = time.monotonic()
        index = 0
        while (count is None or index < count) and (
                seconds is None or time.monotonic() - start < seconds):
            self.run_one(index)
            index += 1
            if on_progress and index % 100 == 0:
                on_progress(self.report)
        return self.report

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def _alarm(signum: int, frame: object) -> None:
    raise _Timeout()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=None, help="number of inputs to try")
    parser.add_argument("--minutes", type=float, default=None, help="run for this long")
    parser.add_argument("--seed", type=int, default=1, help="random seed (replayable)")
    parser.add_argument("--time-bound", type=float, default=5.0,
                        help="seconds one input may take (default 5)")
    parser.add_argument("--out", type=Path, default=None,
                        help="keep failing inputs here, with WHY.txt")
    parser.add_argument("--memory-mib", type=float, default=1024.0,
                        help="resident memory one input may add (default 1024; 0: no check)")
    parser.add_argument("--no-render", action="store_true",
                        help="skip the render stage (load only)")
    parser.add_argument("--render-every", type=int, default=1,
                        help="render the volumes of every Nth input only (default 1: all)")
    parser.add_argument("--in-process", action="store_true",
                        help="run inputs in this process (no memory check; for debugging)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    if args.inputs is None and args.minutes is None:
        args.inputs = 3000
    os.environ.setdefault("MPRVIEWER_HOME", tempfile.mkdtemp(prefix="mprviewer-fuzz-home-"))
    fuzzer = Fuzzer(seed=args.seed, keep=args.out, time_bound=args.time_bound,
                    render=not args.no_render, memory_limit=args.memory_mib * 2**20,
                    isolate=not args.in_process, render_every=args.render_every)
    print(f"{len(fuzzer.seeds)} seeds; work folder {fuzzer.workdir}", file=sys.stderr)

    def progress(report: Report) -> None:
        print(f"\r{report.tried} inputs: {dict(report.outcomes.most_common())}",
              end="", file=sys.stderr, flush=True)

    try:
        report = fuzzer.run(args.inputs, None if args.minutes is None else args.minutes * 60,
                            on_progress=progress)
    finally:
        fuzzer.close()
    print(file=sys.stderr)
    summary = report.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"inputs tried: {summary['inputs']} in {summary['total_s']} s "
              f"(slowest {summary['slowest_input_s']} s, largest memory peak "
              f"{summary['largest_peak_mib']} MiB); volumes rendered: {summary['rendered']}")
        for kind, n in report.outcomes.most_common():
            print(f"  {kind:<24} {n}")
        print(f"failures (crash, hang, slow, memory): {summary['crashes']}")
        for kind, detail in report.crashes[:10]:
            print(f"--- {kind}\n{detail}")
    return 1 if report.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
