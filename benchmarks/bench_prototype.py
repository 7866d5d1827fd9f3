#!/usr/bin/env python3
"""What the uncompressed load could cost: minimal prototypes of the proposed loader changes.

    .venv/bin/python benchmarks/bench_prototype.py [bench-data/ct-512x512x300]

Measurement aids, not loader code: they handle only what the benchmark files hold (explicit
VR little endian with a preamble, no sequences, one frame, 16-bit unsigned with a 12-bit
rescale to int16) and check their result against mprviewer's volume. They show how far
(1) a struct-based header walk that keeps only the tags the loader uses, instead of a full
pydicom parse, and (2) reading each slice straight into the volume with the bit mask and the
rescale applied in place, in the reading thread, bring the load toward the raw-bytes floor.
"""

from __future__ import annotations

import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
from bench_load import load_mprviewer, read_all_bytes  # noqa: E402
from bench_measure import median  # noqa: E402

LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UR", b"UT", b"UN"}
WANTED = {
    0x00080016: "sop_class", 0x00080018: "sop_uid", 0x0020000E: "series_uid",
    0x00200032: "position", 0x00200037: "orientation", 0x00280010: "rows",
    0x00280011: "columns", 0x00280030: "spacing", 0x00280100: "bits_allocated",
    0x00280101: "bits_stored", 0x00280103: "pixel_representation",
    0x00281052: "intercept", 0x00281053: "slope",
}
PIXEL_DATA = 0x7FE00010


def fast_header(path: Path) -> dict:
    """The wanted tags and the pixel data offset of one explicit-VR little-endian file."""
    with open(path, "rb") as fh:
        buf = fh.read(16384)
    if buf[128:132] != b"DICM":
        raise ValueError("no preamble")
    pos, out = 132, {}
    while pos + 8 <= len(buf):
        group, elem = struct.unpack_from("<HH", buf, pos)
        tag = group << 16 | elem
        vr = buf[pos + 4:pos + 6]
        if vr in LONG_VRS:
            (length,) = struct.unpack_from("<I", buf, pos + 8)
            head = 12
        else:
            (length,) = struct.unpack_from("<H", buf, pos + 6)
            head = 8
        if tag == PIXEL_DATA:
            out["pixel_offset"] = pos + head
            return out
        if length == 0xFFFFFFFF:
            raise ValueError("undefined length: needs the full parser")
        if tag in WANTED:
            raw = buf[pos + head:pos + head + length]
            out[WANTED[tag]] = (struct.unpack("<H", raw)[0] if vr == b"US"
                                else raw.decode("ascii").strip("\0 "))
        pos += head + length
    raise ValueError("header longer than the first read")


def scan(folder: Path) -> list[tuple[float, Path, dict]]:
    """Every file's header, sorted along the slice normal."""
    found = []
    for path in folder.iterdir():
        h = fast_header(path)
        o = [float(v) for v in h["orientation"].split("\\")]
        normal = np.cross(o[:3], o[3:])
        p = [float(v) for v in h["position"].split("\\")]
        found.append((float(np.dot(normal, p)), path, h))
    found.sort(key=lambda t: t[0])
    return found


def fused_load(folder: Path, workers: int = 2) -> np.ndarray:
    headers = scan(folder)
    first = headers[0][2]
    rows, cols = first["rows"], first["columns"]
    mask = np.uint16((1 << first["bits_stored"]) - 1)
    intercept = np.int16(int(float(first["intercept"])))
    volume = np.empty((len(headers), rows, cols), dtype=np.int16)
    stored = volume.view(np.uint16)

    def read(k: int) -> None:
        _, path, h = headers[k]
        with open(path, "rb") as fh:
            fh.seek(h["pixel_offset"])
            fh.readinto(memoryview(stored[k]).cast("B"))
        np.bitwise_and(stored[k], mask, out=stored[k])
        np.add(volume[k], intercept, out=volume[k])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(read, range(len(headers))))
    return volume


def timed(fn, reps: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return median(walls), median(cpus)


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "bench-data" / \
        "ct-512x512x300"
    reps = 5
    ours = load_mprviewer(folder).array
    proto = fused_load(folder)
    assert np.array_equal(ours, proto), "prototype differs from mprviewer's volume"
    rows = [
        ("mprviewer today (open_study + load)", lambda: load_mprviewer(folder)),
        ("prototype: struct header walk + sort only", lambda: scan(folder)),
        ("prototype: whole load, 1 thread", lambda: fused_load(folder, 1)),
        ("prototype: whole load, 2 threads", lambda: fused_load(folder, 2)),
        ("raw bytes floor", lambda: read_all_bytes(folder)),
    ]
    print(f"{folder} (median of {reps}; prototype volume equals mprviewer's)")
    print(f"{'':45s} {'wall s':>8s} {'cpu s':>8s}")
    for name, fn in rows:
        fn()
        wall, cpu = timed(fn, reps)
        print(f"{name:45s} {wall:8.3f} {cpu:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
