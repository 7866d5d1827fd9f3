"""Hostile and broken archives and folders: nothing written outside, caps hold, clear reasons."""

from __future__ import annotations

import os
import stat
import struct
import threading
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mprviewer
from mprviewer.errors import NoImagesError, SourceError
from mprviewer.io.limits import MIB, LimitExceeded, Limits
from mprviewer.io.sources import UnzipBudget, expand_source
from mprviewer.synthetic import writer as synthetic


def _slices(n: int = 4, seed: int = 1, size: tuple[int, int] = (6, 5),
            **kw) -> tuple[np.ndarray, dict[str, bytes]]:
    """A small series as {file name: bytes}, and the array it holds."""
    array = np.random.default_rng(seed).integers(-1000, 1000, (n, *size)).astype(np.int16)
    files: dict[str, bytes] = {}
    synthetic.write_series("s", array, seed=seed, sink=lambda name, data: files.update(
        {name: data}), **kw)
    return array, files


def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            zf.writestr(info, data)
    return path


def _patch_headers(path: Path, flag_or: int = 0, method: int | None = None,
                   compress_size: int | None = None) -> None:
    """Rewrite fields of every local and central header in place."""
    data = bytearray(path.read_bytes())
    for sig, flag_at, method_at, csize_at in ((b"PK\x03\x04", 6, 8, 18),
                                              (b"PK\x01\x02", 8, 10, 20)):
        pos = data.find(sig)
        while pos != -1:
            flags = struct.unpack_from("<H", data, pos + flag_at)[0]
            struct.pack_into("<H", data, pos + flag_at, flags | flag_or)
            if method is not None:
                struct.pack_into("<H", data, pos + method_at, method)
            if compress_size is not None:
                struct.pack_into("<I", data, pos + csize_at, compress_size)
            pos = data.find(sig, pos + 4)
    path.write_bytes(bytes(data))


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# -- zip slip ----------------------------------------------------------------------------
def test_member_names_that_climb_out_are_only_labels(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    array, files = _slices(4, seed=3)
    hostile = ["../../evil/IM1.dcm", "/etc/evil_abs.dcm", "C:\\Windows\\evil_drive.dcm",
               "..\\..\\evil_back.dcm"]
    archive = _zip(tmp_path / "slip.zip",
                   {name: data for name, data in zip(hostile, files.values(), strict=True)})
    assert set(zipfile.ZipFile(archive).namelist()) == set(hostile)

    def no_extract(*args, **kwargs):
        raise AssertionError("members must never be extracted")

    monkeypatch.setattr(zipfile.ZipFile, "extract", no_extract)
    monkeypatch.setattr(zipfile.ZipFile, "extractall", no_extract)
    before = _tree(tmp_path)
    with mprviewer.open_study(archive) as study:
        assert len(study.series) == 1 and study.skipped == []
        volume = study.series[0].load()
    np.testing.assert_array_equal(volume.array, array)
    assert _tree(tmp_path) == before
    for written in (Path("/etc/evil_abs.dcm"), tmp_path.parent / "evil",
                    tmp_path.parent.parent / "evil", Path("/evil"), Path("C:\\Windows")):
        assert not written.exists()


# -- zip bombs ---------------------------------------------------------------------------
def _zero_bomb(path: Path, mib: int, name: str = "bomb.dcm") -> Path:
    """A member of ``mib`` MiB of zeros (about 1000:1)."""
    return _zip(path, {name: bytes(mib * MIB)})


def test_bomb_is_refused_at_once_naming_member_and_setting(tmp_path: Path) -> None:
    _, files = _slices(3, seed=5)
    bomb = _zip(tmp_path / "bomb.zip", {**files, "x/bomb.dcm": bytes(64 * MIB)})
    start = time.monotonic()
    with pytest.raises(LimitExceeded) as caught:
        mprviewer.open_study(bomb)
    assert time.monotonic() - start < 2
    message = str(caught.value)
    assert "bomb.zip!/x/bomb.dcm" in message and "zip bomb" in message
    assert "MPRVIEWER_MAX_ZIP_RATIO" in message
    assert isinstance(caught.value, SourceError)


def test_overstated_compressed_size_does_not_hide_a_bomb(tmp_path: Path) -> None:
    bomb = _zero_bomb(tmp_path / "lie.zip", 32)
    _patch_headers(bomb, compress_size=0xFFFF0000)  # "4 GiB compressed": ratio looks < 1
    with pytest.raises(LimitExceeded, match=r"lie\.zip!/bomb\.dcm"):
        mprviewer.open_study(bomb)


def test_streaming_count_alone_stops_a_bomb_quickly_in_little_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the directory's claims ignored, the bytes actually produced still trip the cap."""
    bomb = _zero_bomb(tmp_path / "bomb.zip", 128)
    monkeypatch.setattr(UnzipBudget, "declare", lambda self, *a: None)
    expanded = expand_source(bomb)
    member = expanded.members[0]
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(LimitExceeded, match=r"expanded \d+ times") as caught, \
                member.open() as fh:
            fh.read()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        expanded.close()
    assert time.monotonic() - start < 5
    # 128 MiB of zeros compress to ~128 KiB; at 200:1 the read stops near 25 MiB.
    assert 8 * MIB < expanded.budget.total < 32 * MIB
    assert peak < 64 * MIB
    assert "at least" in str(caught.value)


def test_layered_bomb_stops_at_the_first_inner_bomb(tmp_path: Path) -> None:
    """A 42.zip-style archive: zips of zips of a bomb, unpacked only until the first bomb."""
    layer = _zero_bomb(tmp_path / "l1.zip", 32).read_bytes()
    for n in range(2, 4):
        layer = _zip(tmp_path / f"l{n}.zip", {f"copy{c}.zip": layer for c in range(8)},
                     method=zipfile.ZIP_STORED).read_bytes()
    outer = tmp_path / "layers.zip"
    outer.write_bytes(layer)
    start = time.monotonic()
    with pytest.raises(LimitExceeded, match=r"copy0\.zip!/copy0\.zip!/bomb\.dcm: claims"):
        mprviewer.open_study(outer)
    assert time.monotonic() - start < 3


def test_total_cap_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    array, files = _slices(4, seed=7)
    archive = _zip(tmp_path / "study.zip", files)
    total = sum(len(b) for b in files.values())
    monkeypatch.setenv("MPRVIEWER_MAX_UNZIPPED_BYTES", str(total - 1))
    with pytest.raises(LimitExceeded, match="MPRVIEWER_MAX_UNZIPPED_BYTES"):
        mprviewer.open_study(archive)
    monkeypatch.setenv("MPRVIEWER_MAX_UNZIPPED_BYTES", str(total))
    with mprviewer.open_study(archive) as study:
        np.testing.assert_array_equal(study.series[0].load().array, array)
    monkeypatch.setenv("MPRVIEWER_MAX_UNZIPPED_BYTES", "lots")
    with pytest.raises(SourceError, match="MPRVIEWER_MAX_UNZIPPED_BYTES='lots'"):
        mprviewer.open_study(archive)


def test_limits_parse_sizes_and_defaults() -> None:
    env = {"MPRVIEWER_MAX_UNZIPPED_BYTES": "1.5G", "MPRVIEWER_MAX_ZIP_RATIO": "50",
           "MPRVIEWER_MAX_DOWNLOAD_BYTES": "none", "MPRVIEWER_ZIP_RATIO_MIN_BYTES": "512KiB",
           "MPRVIEWER_MAX_ZIP_DEPTH": "5"}
    lim = Limits.from_env(env)
    assert lim.max_unzipped_bytes == 1.5 * 1024**3
    assert lim.max_zip_ratio == 50
    assert lim.max_download_bytes == float("inf")
    assert lim.zip_ratio_min_bytes == 512 * 1024
    assert lim.max_zip_depth == 5
    default = Limits.from_env({})
    assert default.max_unzipped_bytes == 20 * 1024**3 and default.max_zip_ratio == 200


member_specs = st.lists(
    st.tuples(st.integers(0, 96 * 1024), st.booleans()), min_size=1, max_size=5)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=member_specs, cap=st.integers(1, 300 * 1024), ratio=st.sampled_from([2.0, 20.0]),
       trust_directory=st.booleans())
def test_caps_hold_for_any_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, specs,
                                   cap: int, ratio: float, trust_directory: bool) -> None:
    """Reading everything succeeds exactly when no cap is crossed, else LimitExceeded."""
    rng = np.random.default_rng(len(specs) * 7919 + cap)
    members = {f"m{n}.bin": (bytes(size) if zeros else rng.bytes(size))
               for n, (size, zeros) in enumerate(specs)}
    archive = _zip(tmp_path / f"p{cap}_{len(specs)}.zip", members)
    limits = Limits(max_unzipped_bytes=cap, max_zip_ratio=ratio, zip_ratio_min_bytes=16 * 1024)
    infos = {i.filename: i for i in zipfile.ZipFile(archive).infolist()}
    over_total = sum(len(b) for b in members.values()) > cap
    over_ratio = any(len(b) > 16 * 1024 and len(b) > ratio * max(infos[n].compress_size, 1)
                     for n, b in members.items())
    with monkeypatch.context() as patch:
        if not trust_directory:
            patch.setattr(UnzipBudget, "declare", lambda self, *a: None)
        try:
            expanded = expand_source(archive, limits=limits)
            read = {Path(m.name.split("!/")[1]).name: m.open().read()
                    for m in expanded.members}
        except LimitExceeded:
            assert over_total or over_ratio
            return
    assert not (over_total or over_ratio)
    assert read == members
    assert expanded.budget.total == sum(len(b) for b in members.values())
    expanded.close()


# -- encrypted, unsupported, truncated, damaged ---------------------------------------
def test_encrypted_members_are_skipped_and_named(tmp_path: Path) -> None:
    array, good = _slices(3, seed=11)
    _, secret = _slices(3, seed=12)
    plain = _zip(tmp_path / "plain.zip", good)
    locked = _zip(tmp_path / "locked.zip", {f"secret/{k}": v for k, v in secret.items()})
    _patch_headers(locked, flag_or=0x1)
    outer = _zip(tmp_path / "mixed.zip", {"plain.zip": plain.read_bytes(),
                                          "locked.zip": locked.read_bytes()},
                 method=zipfile.ZIP_STORED)
    with mprviewer.open_study(outer) as study:
        np.testing.assert_array_equal(study.series[0].load().array, array)
        reasons = dict(study.skipped)
    assert len(reasons) == 3
    assert all("locked.zip!/secret/" in name for name in reasons)
    assert all("encrypted" in r and "password" in r for r in reasons.values())
    with pytest.raises(NoImagesError, match="encrypted"):
        mprviewer.open_study(locked)


def test_unsupported_compression_method_is_named(tmp_path: Path) -> None:
    _, files = _slices(2, seed=13)
    archive = _zip(tmp_path / "d64.zip", files)
    _patch_headers(archive, method=9)
    with pytest.raises(NoImagesError, match="deflate64"):
        mprviewer.open_study(archive)


def test_truncated_zip_is_a_clear_error_alone_and_a_skip_in_a_folder(tmp_path: Path) -> None:
    array, files = _slices(4, seed=15)
    whole = _zip(tmp_path / "whole.zip", files).read_bytes()
    cut = tmp_path / "folder" / "cut.zip"
    cut.parent.mkdir()
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(SourceError, match=r"cut\.zip: .*truncated"):
        mprviewer.open_study(cut)
    synthetic.write_series(tmp_path / "folder" / "CT", array, seed=16)
    with mprviewer.open_study(tmp_path / "folder") as study:
        assert [s.name for s in study.series] == ["CT"]
        assert [(Path(n).name, "truncated" in r) for n, r in study.skipped] == [("cut.zip",
                                                                                 True)]


def test_damaged_member_fails_its_series_only(tmp_path: Path) -> None:
    good_array, good = _slices(3, seed=17, series_number=1, description="Good")
    _, bad = _slices(3, seed=18, size=(64, 64), series_number=2, description="Bad")
    archive = _zip(tmp_path / "d.zip", {**{f"A/{k}": v for k, v in good.items()},
                                        **{f"B/{k}": v for k, v in bad.items()}})
    data = bytearray(archive.read_bytes())
    info = zipfile.ZipFile(archive).getinfo(f"B/{sorted(bad)[1]}")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    # Flip bytes near the end of the compressed pixels: the header still reads.
    for offset in range(info.compress_size - 12, info.compress_size - 4):
        data[start + offset] ^= 0x5A
    archive.write_bytes(bytes(data))
    with mprviewer.open_study(archive) as study:
        by_name = {s.name: s for s in study.series}
        assert sorted(by_name) == ["A", "B"] and by_name["B"].num_slices == 3
        np.testing.assert_array_equal(by_name["A"].load().array, good_array)
        with pytest.raises(mprviewer.DicomError, match=r"'B'.*damaged data in the zip"):
            by_name["B"].load()


def test_small_damaged_member_is_skipped_while_scanning(tmp_path: Path) -> None:
    _, files = _slices(3, seed=19)
    archive = _zip(tmp_path / "s.zip", files)
    info = zipfile.ZipFile(archive).getinfo(sorted(files)[0])
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename)
    data[start + info.compress_size - 6] ^= 0xFF
    archive.write_bytes(bytes(data))
    with mprviewer.open_study(archive) as study:
        assert study.series[0].num_slices == 2
        [(name, reason)] = study.skipped
    assert name.endswith(f"s.zip!/{sorted(files)[0]}")
    assert "damaged data in the zip archive" in reason


# -- nesting, links, special files --------------------------------------------------------
def _nest(tmp_path: Path, files: dict[str, bytes], levels: int) -> Path:
    current = _zip(tmp_path / "level1.zip", files)
    for n in range(2, levels + 1):
        current = _zip(tmp_path / f"level{n}.zip", {f"in{n}/level{n - 1}.zip":
                                                    current.read_bytes()})
    return current


def test_nesting_beyond_the_depth_is_skipped_and_named(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    array, files = _slices(3, seed=19)
    deep = _nest(tmp_path, files, levels=4)
    with pytest.raises(NoImagesError, match="nested more than 3 levels"):
        mprviewer.open_study(deep)
    monkeypatch.setenv("MPRVIEWER_MAX_ZIP_DEPTH", "4")
    with mprviewer.open_study(deep) as study:
        np.testing.assert_array_equal(study.series[0].load().array, array)


def test_zip_that_contains_itself_ends_at_the_depth_cap(tmp_path: Path) -> None:
    inner = _zip(tmp_path / "q.zip", {"q.zip": b"PK\x03\x04" + bytes(40)})
    for _ in range(6):
        inner = _zip(tmp_path / "q.zip", {"q.zip": inner.read_bytes()})
    with pytest.raises(NoImagesError) as caught:
        mprviewer.open_study(inner)
    assert "nested" in str(caught.value)


def test_symbolic_links_inside_archives_are_not_followed(tmp_path: Path) -> None:
    array, files = _slices(3, seed=21)
    archive = tmp_path / "links.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        link = zipfile.ZipInfo("passwd.dcm")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "../../../../../../etc/passwd")
        fifo = zipfile.ZipInfo("pipe.dcm")
        fifo.create_system = 3
        fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
        zf.writestr(fifo, b"")
    with mprviewer.open_study(archive) as study:
        np.testing.assert_array_equal(study.series[0].load().array, array)
        reasons = {Path(n).name: r for n, r in study.skipped}
    assert "symbolic link" in reasons["passwd.dcm"]
    assert "special file" in reasons["pipe.dcm"]


def test_link_loops_and_broken_links_in_folders(tmp_path: Path) -> None:
    array, _ = _slices(3, seed=23)
    root = tmp_path / "study"
    synthetic.write_series(root / "CT", array, seed=23)
    other, _ = _slices(2, seed=24)
    synthetic.write_series(tmp_path / "elsewhere" / "MR", other, seed=24, series_number=9)
    (root / "CT" / "back").symlink_to(root, target_is_directory=True)  # loop
    (root / "again").symlink_to(root / "CT", target_is_directory=True)  # read already
    (root / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)  # outside
    (root / "a.dcm").symlink_to(root / "b.dcm")
    (root / "b.dcm").symlink_to(root / "a.dcm")  # file loop
    (root / "gone.dcm").symlink_to(tmp_path / "missing.dcm")
    os.mkfifo(root / "pipe.dcm")
    start = time.monotonic()
    with mprviewer.open_study(root) as study:
        assert time.monotonic() - start < 10
        assert sorted(s.num_slices for s in study.series) == [3]  # nothing read twice
        reasons = {Path(n).name: r for n, r in study.skipped}
    assert "symbolic link loop" in reasons["back"] and str(root) in reasons["back"]
    assert "read already" in reasons["again"]
    assert "outside the opened folder" in reasons["linked"]
    assert "symbolic link loop" in reasons["a.dcm"] and "loop" in reasons["b.dcm"]
    assert "broken symbolic link" in reasons["gone.dcm"]
    assert "not a regular file" in reasons["pipe.dcm"]
    with pytest.raises(SourceError, match="not a regular file"):
        mprviewer.open_study(root / "pipe.dcm")


def test_other_archive_formats_are_named(tmp_path: Path) -> None:
    import gzip

    gz = tmp_path / "study.tar.gz"
    gz.write_bytes(gzip.compress(b"x" * 100))
    with pytest.raises(SourceError, match=r"gzip file; .*extract it first"):
        mprviewer.open_study(gz)


def test_cancel_while_expanding_a_large_archive(tmp_path: Path) -> None:
    _, files = _slices(3, seed=25)
    archive = _zip(tmp_path / "c.zip", files)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(mprviewer.LoadCancelled):
        mprviewer.open_study(archive, cancel=cancel)



# -- nested zip bombs ----------------------------------------------------------------------
def _stored_zip(members: dict[str, bytes]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _overlapping(path: Path, member: bytes, copies: int) -> Path:
    """One deflated member listed ``copies`` times in the central directory, every entry
    pointing at the same bytes: the overlapping zip bomb."""
    _zip(path, {"inner.zip": member})
    data = bytearray(path.read_bytes())
    end = data.rindex(b"PK\x05\x06")
    size, offset = struct.unpack_from("<II", data, end + 12)
    tail = bytearray(data[end:])
    struct.pack_into("<HHII", tail, 8, copies, copies, size * copies, offset)
    path.write_bytes(bytes(data[:offset]) + bytes(data[offset:offset + size]) * copies
                     + bytes(tail))
    return path


def test_overlapping_nested_zips_are_refused_before_unpacking(tmp_path: Path) -> None:
    _array, files = _slices(3, seed=25)
    inner = _stored_zip({"filler.bin": bytes(8 * MIB - 200), **files})
    bomb = _overlapping(tmp_path / "outer.zip", inner, 300)
    assert bomb.stat().st_size < 64 * 1024 and len(zipfile.ZipFile(bomb).infolist()) == 300
    tracemalloc.start()
    try:
        with pytest.raises(LimitExceeded, match="overlap in the archive") as caught:
            expand_source(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value).startswith(f"{bomb}: members 'inner.zip' and 'inner.zip'")
    assert peak < 4 * MIB  # nothing was unpacked (it took 2.5 GB)
    # The same bomb one level down (in a folder's zip) is refused just the same.
    outer = _zip(tmp_path / "wrapped.zip", {"bomb.zip": bomb.read_bytes()})
    with pytest.raises(LimitExceeded, match="overlap in the archive"):
        expand_source(outer)


def test_many_nested_zips_are_spilled_to_one_file_not_kept_in_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    array, files = _slices(3, seed=26)
    rng = np.random.default_rng(26)  # nested zips of incompressible data: no bomb
    nested = {f"n{n:03d}.zip": _stored_zip({f"pad{n}.bin": rng.bytes(MIB // 2)})
              for n in range(100)}
    nested["series.zip"] = _stored_zip(files)
    archive = _zip(tmp_path / "many.zip", nested, zipfile.ZIP_STORED)
    fds_before = len(os.listdir("/proc/self/fd"))
    tracemalloc.start()
    try:
        study = mprviewer.open_study(archive)
        peak = tracemalloc.get_traced_memory()[1]
        fds_open = len(os.listdir("/proc/self/fd"))
    finally:
        tracemalloc.stop()
    with study:
        np.testing.assert_array_equal(study.series[0].load().array, array)
        assert sum("pad" in name for name, _ in study.skipped) == 100
    assert peak < 16 * MIB, peak  # 50 MiB of nested zips were unpacked, none kept
    assert fds_open - fds_before <= 3  # the archive and one spill file, not 101 files
    assert len(os.listdir("/proc/self/fd")) <= fds_before
    # The bytes count against the cap across every level of nesting: the outer archive
    # declares 50 MiB, its nested zips 50 MiB more.
    monkeypatch.setenv("MPRVIEWER_MAX_UNZIPPED_BYTES", "75M")
    with pytest.raises(LimitExceeded, match="more than the limit of 75 MiB") as caught:
        mprviewer.open_study(archive)
    assert str(caught.value).startswith(f"{archive}!/n0")
    assert "MPRVIEWER_MAX_UNZIPPED_BYTES" in str(caught.value)


def test_cli_on_an_overlapping_bomb_exits_3_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    bomb = _overlapping(tmp_path / "outer.zip", _stored_zip({"f": bytes(8 * MIB - 200)}), 1000)
    result = subprocess.run([sys.executable, "-m", "mprviewer", "info", str(bomb)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "overlap in the archive" in result.stderr and "MemoryError" not in result.stderr


def test_nested_zips_of_zeros_are_refused_before_any_is_unpacked(tmp_path: Path) -> None:
    """Just under the 8 MiB past which a member's ratio counts, each; distinct, so nothing
    overlaps: only the nested-zip ratio stops them before 20 x 8 MiB are written out."""
    nested = {f"n{n:02d}.zip": _stored_zip({f"zeros{n}.bin": bytes(8 * MIB - 300)})
              for n in range(20)}
    archive = _zip(tmp_path / "zeros.zip", nested)
    assert archive.stat().st_size < 512 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(LimitExceeded) as caught:
            expand_source(archive)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert message.startswith(f"{archive}!/n00.zip: a nested zip that expands")
    assert "MPRVIEWER_MAX_ZIP_RATIO" in message
    assert peak < 4 * MIB
