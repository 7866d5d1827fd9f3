"""The streaming multipart splitter: parts come out byte for byte however the body is chunked."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mprviewer.pacs.errors import PacsProtocolError
from mprviewer.pacs.multipart import MAX_HEADERS, MultipartFiles

BOUNDARY = "b0undary"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary="{BOUNDARY}"'


def _body(parts: list[bytes], headers: bool = True) -> bytes:
    head = b"Content-Type: application/dicom\r\n" if headers else b""
    out = b"preamble to ignore\r\n"
    for part in parts:
        out += f"--{BOUNDARY}\r\n".encode() + head + b"\r\n" + part + b"\r\n"
    return out + f"--{BOUNDARY}--\r\nepilogue".encode()


def _split(tmp_path: Path, body: bytes, sizes: list[int], content_type: str = CONTENT_TYPE,
           finish: bool = True) -> list[bytes]:
    got: list[bytes] = []

    def take(path: Path) -> None:  # the callback owns the file, as the retrieval's does
        got.append(path.read_bytes())
        path.unlink()

    splitter = MultipartFiles(content_type, tmp_path, take, "test server")
    start = 0
    for size in sizes:
        splitter.feed(body[start:start + size])
        start += size
    splitter.feed(body[start:])
    if finish:
        splitter.close()
    return got


# parts that look like the delimiter's beginning, end in CR LF, or are empty
PARTS = [b"DICM" + bytes(range(256)) * 3, b"", b"\r\n--b0undar", b"x\r\n", b"--b0undary-not"]


@pytest.mark.parametrize("headers", [True, False])
def test_parts_are_exact_whatever_the_chunking(tmp_path: Path, headers: bool) -> None:
    body = _body(PARTS, headers)
    assert _split(tmp_path, body, []) == PARTS
    assert _split(tmp_path, body, [1] * len(body)) == PARTS
    rng = random.Random(7)
    for _ in range(20):
        sizes = [rng.randint(1, 40) for _ in range(len(body) // 20)]
        assert _split(tmp_path, body, sizes) == PARTS
    assert list(tmp_path.iterdir()) == []  # every part was handed over, nothing left behind


def test_a_part_cut_short_is_dropped(tmp_path: Path) -> None:
    body = _body([b"first", b"second"])
    cut = body[: body.index(b"second") + 3]
    assert _split(tmp_path, cut, []) == [b"first"]
    assert list(tmp_path.iterdir()) == []


def test_a_bare_instance_is_one_part(tmp_path: Path) -> None:
    assert _split(tmp_path, b"DICM-bytes", [3], content_type="application/dicom") == [
        b"DICM-bytes"]


def test_endless_headers_and_missing_boundaries_are_errors(tmp_path: Path) -> None:
    endless = f"--{BOUNDARY}\r\n".encode() + b"X-Long: " + b"a" * (MAX_HEADERS + 10)
    with pytest.raises(PacsProtocolError, match="part headers longer than"):
        _split(tmp_path, endless, [], finish=False)
    with pytest.raises(PacsProtocolError, match="no multipart boundary"):
        _split(tmp_path, b"z" * (MAX_HEADERS + 10), [], finish=False)
    with pytest.raises(PacsProtocolError, match="text/plain"):
        MultipartFiles("text/plain", tmp_path, print, "test server")
