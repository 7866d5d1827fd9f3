"""Decoding every compressed transfer syntax: mprviewer next to SimpleITK (GDCM) in process.

Each dataset is the benchmark CT phantom, 60 slices of 512x512, one file a slice, written once
into ``bench-data/codec-*`` (8 bits for JPEG baseline, 12 for the other JPEG processes).
Loaders alternate round after round; the report gives the median and the spread.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import bench_data
import numpy as np

SHAPE = (60, 512, 512)
SPACING = (1.0, 0.7, 0.7)


@dataclass(frozen=True)
class Codec:
    name: str
    uid: str
    label: str
    bits: int = 12


CODECS = [
    Codec("jpeg-baseline", "1.2.840.10008.1.2.4.50", "JPEG baseline (8-bit)", 8),
    Codec("jpeg-extended", "1.2.840.10008.1.2.4.51", "JPEG extended (12-bit)"),
    Codec("jpeg-lossless", "1.2.840.10008.1.2.4.57", "JPEG lossless (process 14)"),
    Codec("jpeg-lossless-sv1", "1.2.840.10008.1.2.4.70", "JPEG lossless SV1"),
    Codec("jpeg-ls", "1.2.840.10008.1.2.4.80", "JPEG-LS lossless"),
    Codec("jpeg2000", "1.2.840.10008.1.2.4.90", "JPEG 2000 lossless"),
    Codec("rle", "1.2.840.10008.1.2.5", "RLE lossless"),
]


def _encode(codec: Codec, frame: np.ndarray) -> bytes:
    """One frame in ``codec``'s syntax, through imagecodecs (or the writer's own encoders)."""
    import imagecodecs

    if codec.uid == "1.2.840.10008.1.2.4.50":
        return imagecodecs.jpeg8_encode(frame.astype(np.uint8), level=90)
    if codec.uid == "1.2.840.10008.1.2.4.51":
        return imagecodecs.jpeg8_encode(frame, level=90, bitspersample=12)
    if codec.uid in ("1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"):
        return imagecodecs.ljpeg_encode(frame, bitspersample=12)
    raise ValueError(codec.uid)


def ensure_codec_dataset(codec: Codec, root: Path = bench_data.DEFAULT_ROOT,
                         log=print) -> Path:
    """The folder of ``codec``'s series, written when missing."""
    import pydicom
    from pydicom.encaps import encapsulate

    from mprviewer.synthetic import writer as synthetic

    folder = Path(root) / f"codec-{codec.name}"
    stamp = folder.with_name(folder.name + ".complete.json")
    if stamp.is_file():
        return folder
    log(f"writing {codec.label} 512x512x60 into {folder} ...")
    spec = bench_data.DatasetSpec("codec", SHAPE, spacing=SPACING)
    hu = bench_data.hu_volume(spec)
    if codec.bits == 8:  # a soft-tissue window as 0..255
        values = np.clip((hu.astype(np.float64) + 160) * 255 / 400, 0, 255).astype(np.int16)
        kwargs = dict(rescale=(1, 0), bits_allocated=8, bits_stored=8, signed=False)
    else:
        values = hu
        kwargs = dict(rescale=(1, -1024), bits_stored=12, signed=False)
    ours = codec.uid in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                         "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70")
    import shutil

    if folder.exists():
        shutil.rmtree(folder)
    nk, nj, ni = SHAPE
    synthetic.write_series(
        folder, values, origin=(-(ni - 1) * 0.35, -(nj - 1) * 0.35, -(nk - 1)),
        pixel_spacing=(0.7, 0.7), slice_spacing=1.0, window=(40, 400), shuffle=3,
        seed=f"bench-codec-{codec.name}", description=f"benchmark {codec.label}",
        transfer_syntax="1.2.840.10008.1.2.1" if ours else codec.uid, **kwargs)
    if ours:
        for path in sorted(folder.iterdir()):
            ds = pydicom.dcmread(path)
            ds.PixelData = encapsulate([_encode(codec, ds.pixel_array)])
            ds["PixelData"].VR = "OB"
            ds["PixelData"].is_undefined_length = True
            ds.file_meta.TransferSyntaxUID = codec.uid
            if codec.uid in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"):
                ds.LossyImageCompression = "01"
                ds.LossyImageCompressionMethod = "ISO_10918_1"
            ds.save_as(path, enforce_file_format=True)
    stamp.write_text("{}")
    return folder


def load_mprviewer(folder: Path) -> np.ndarray:
    import mprviewer

    with mprviewer.open_study(folder) as study:
        return study.series[0].load().array


def load_simpleitk(folder: Path) -> np.ndarray:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return sitk.GetArrayFromImage(reader.Execute())


@dataclass
class CodecResult:
    codec: Codec
    seconds: dict[str, list[float]] = field(default_factory=dict)
    equal: bool = False
    note: str = ""


def run_codecs(reps: int, root: Path = bench_data.DEFAULT_ROOT,
               codecs: list[Codec] | None = None) -> list[CodecResult]:
    """Every codec: mprviewer and SimpleITK alternating, ``reps`` rounds after a warm-up,
    each round started after a quiet second (at most 30 s of waiting)."""
    results = []
    for codec in codecs or CODECS:
        folder = ensure_codec_dataset(codec, root)
        result = CodecResult(codec, {"mprviewer": [], "SimpleITK": []})
        ours, theirs = load_mprviewer(folder), load_simpleitk(folder)  # warm-up
        result.equal = ours.shape == theirs.shape and bool(np.array_equal(ours, theirs))
        if not result.equal:
            result.note = f"voxels differ: {ours.dtype}{ours.shape} vs {theirs.dtype}{theirs.shape}"
        for n in range(reps):
            _wait_quiet(os.cpu_count() or 1)
            order = [("mprviewer", load_mprviewer), ("SimpleITK", load_simpleitk)]
            for name, fn in order if n % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                fn(folder)
                result.seconds[name].append(time.perf_counter() - t0)
        med = {k: float(np.median(v)) for k, v in result.seconds.items()}
        print(f"  {codec.label}: mprviewer {med['mprviewer'] * 1000:.0f} ms, SimpleITK "
              f"{med['SimpleITK'] * 1000:.0f} ms, {med['SimpleITK'] / med['mprviewer']:.2f}x, "
              f"equal {result.equal}")
        results.append(result)
    return results


if __name__ == "__main__":
    import sys

    run_codecs(int(sys.argv[1]) if len(sys.argv) > 1 else 3)


def _decoder(uid: str):
    import imagecodecs

    if uid in ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"):
        return imagecodecs.jpegls_decode
    if uid in ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"):
        return _j2k
    return imagecodecs.jpeg8_decode


def _j2k(data: bytes):
    import imagecodecs

    return imagecodecs.jpeg2k_decode(data, numthreads=1)


def _decode_in_worker(item: tuple[str, bytes]):
    uid, data = item
    return _decoder(uid)(data)


def threads_vs_processes(reps: int, root: Path = bench_data.DEFAULT_ROOT) -> list[dict]:
    """The 60 compressed frames of each imagecodecs syntax decoded on 1 thread, 2 threads
    and 2 worker processes (frames sent, arrays sent back; the pool is started beforehand)."""
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    import pydicom
    from pydicom.encaps import generate_fragmented_frames

    rows = []
    with ProcessPoolExecutor(2) as processes, ThreadPoolExecutor(2) as threads:
        for codec in CODECS:
            if codec.uid == "1.2.840.10008.1.2.5":
                continue
            folder = ensure_codec_dataset(codec, root)
            frames = []
            for path in sorted(folder.iterdir()):
                ds = pydicom.dcmread(path)
                frames.append(b"".join(next(generate_fragmented_frames(
                    ds.PixelData, number_of_frames=1))))
            decode = _decoder(codec.uid)
            items = [(codec.uid, f) for f in frames]
            ways = {
                "1 thread": lambda d=decode, fs=frames: [d(f) for f in fs],
                "2 threads": lambda d=decode, fs=frames: list(threads.map(d, fs)),
                "2 processes": lambda it=items: list(processes.map(_decode_in_worker, it,
                                                                   chunksize=8)),
            }
            times: dict[str, list[float]] = {k: [] for k in ways}
            for fn in ways.values():
                fn()  # warm-up
            for n in range(reps):
                for name, fn in (list(ways.items()) if n % 2 == 0
                                 else list(ways.items())[::-1]):
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
            row = {"codec": codec.label, **{k: float(np.median(v)) for k, v in times.items()}}
            print(f"  {codec.label}: " + ", ".join(f"{k} {row[k] * 1000:.0f} ms" for k in ways))
            rows.append(row)
    return rows


# -- JPEG 2000: every decoder and arrangement at hand -------------------------------------
# OpenJPEG's tier-1 decoding (the MQ decoder and the three coding passes over each 64x64
# code-block) is nearly all of a frame's cost, so what matters is the CPU each decoder
# spends a frame and how many cores the arrangement keeps busy. CPU is the process's
# (every thread, OpenJPEG's own included) plus, for the process pool, the workers'.

J2K_FRAMES = 60


def _j2k_threads(data: bytes, numthreads: int = 1):
    import imagecodecs

    return imagecodecs.jpeg2k_decode(data, numthreads=numthreads)


def _j2k_in_worker(data: bytes):
    """A worker's decode and the CPU it took (a pool's CPU is not the parent's)."""
    c0 = time.process_time()
    frame = _j2k_threads(data)
    return frame, time.process_time() - c0


def _in_process(fn):
    """A way whose CPU is all in this process: run it, nothing spent outside."""
    def run() -> float:
        fn()
        return 0.0
    return run


def _j2k_ways(frames: list[bytes], files: list[Path], threads, processes) -> dict:
    """name -> (callable returning the CPU seconds spent outside this process, note)."""
    from functools import partial

    ways = {}
    for workers in (1, 2):
        for nt in (1, 2):
            decode = partial(_j2k_threads, numthreads=nt)
            if workers == 1:
                fn = _in_process(lambda d=decode: [d(f) for f in frames])
            else:
                fn = _in_process(lambda d=decode: list(threads.map(d, frames)))
            ways[f"imagecodecs, {workers} thread{'s' if workers > 1 else ''} x "
                 f"{nt} OpenJPEG thread{'s' if nt > 1 else ''}"] = (
                fn, "frames in memory; lets go of the GIL")
    ways["imagecodecs, 2 processes"] = (
        lambda: sum(cpu for _, cpu in processes.map(_j2k_in_worker, frames, chunksize=4)),
        "frames sent to a started pool, arrays sent back")
    try:
        import openjpeg

        ways["pylibjpeg-openjpeg, 1 thread"] = (
            _in_process(lambda: [openjpeg.decode(f, j2k_format=0) for f in frames]),
            "frames in memory; holds the GIL, so threads do not help")
    except ImportError:
        pass
    try:
        import gdcm

        def read_gdcm(path: Path) -> bytes:
            reader = gdcm.ImageReader()
            reader.SetFileName(str(path))
            if not reader.Read():
                raise OSError(f"GDCM cannot read {path}")
            return reader.GetImage().GetBuffer()

        ways["python-gdcm ImageReader, 1 thread"] = (
            _in_process(lambda: [read_gdcm(p) for p in files]),
            "from the files; OpenJPEG threads inside; holds the GIL")
    except ImportError:
        pass
    import SimpleITK as sitk

    ways["SimpleITK ReadImage, 1 thread"] = (
        _in_process(lambda: [sitk.GetArrayFromImage(sitk.ReadImage(str(p))) for p in files]),
        "from the files; GDCM's OpenJPEG with its own threads")
    return ways


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy (every process), or None off Linux."""
    try:
        with open("/proc/stat") as fh:
            ticks = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _wait_quiet(cores: int, patience: float = 30.0, share: float = 0.15) -> None:
    """Wait (at most ``patience`` s) for a second in which other processes use less than
    ``share`` of the cores: on a shared machine a round then starts on idle cores."""
    end = time.monotonic() + patience
    while time.monotonic() < end:
        b0 = _busy_seconds()
        time.sleep(1.0)
        b1 = _busy_seconds()
        if b0 is None or b1 is None or (b1 - b0) / cores < share:
            return


def jpeg2000_decoders(reps: int, root: Path = bench_data.DEFAULT_ROOT) -> list[dict]:
    """The 60 JPEG 2000 frames through each decoder and arrangement, alternating round by
    round (the order reversed every other round): wall and CPU per round, and the share of
    the cores other processes took meanwhile (each round waits for a quiet second first)."""
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    import pydicom
    from pydicom.encaps import generate_fragmented_frames

    codec = next(c for c in CODECS if c.name == "jpeg2000")
    folder = ensure_codec_dataset(codec, root)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    frames = [b"".join(next(generate_fragmented_frames(
        pydicom.dcmread(p).PixelData, number_of_frames=1))) for p in files]
    with ProcessPoolExecutor(2) as processes, ThreadPoolExecutor(2) as threads:
        ways = _j2k_ways(frames, files, threads, processes)
        wall: dict[str, list[float]] = {k: [] for k in ways}
        cpu: dict[str, list[float]] = {k: [] for k in ways}
        others: dict[str, list[float]] = {k: [] for k in ways}
        cores = os.cpu_count() or 1
        for fn, _ in ways.values():
            fn()  # warm-up (and the pool's start)
        for n in range(reps):
            _wait_quiet(cores)
            items = list(ways.items())
            for name, (fn, _) in items if n % 2 == 0 else items[::-1]:
                b0, c0, t0 = _busy_seconds(), time.process_time(), time.perf_counter()
                outside = fn()
                t1, c1, b1 = time.perf_counter(), time.process_time(), _busy_seconds()
                wall[name].append(t1 - t0)
                cpu[name].append(c1 - c0 + outside)
                if b0 is not None and b1 is not None:
                    others[name].append(max(0.0, b1 - b0 - cpu[name][-1]) / cores / (t1 - t0))
    rows = []
    for name, (_, note) in ways.items():
        row = {"name": name, "note": note, "wall": wall[name], "cpu": cpu[name],
               "others": others[name]}
        print(f"  {name}: wall {np.median(wall[name]) * 1000:.0f} ms, "
              f"CPU {np.median(cpu[name]) * 1000:.0f} ms")
        rows.append(row)
    return rows
