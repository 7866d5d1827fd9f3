"""A multipart/related body (WADO-RS) split into files as it streams in.

Memory holds one chunk, a delimiter's worth of look-behind and at most ``MAX_HEADERS`` of part
headers, whatever the server sends: a part that never ends grows a file (bounded by the
download cap), not the process. Each finished part is handed to a callback as a file in the
destination folder under a temporary name the caller renames (or leaves to be removed).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from mprviewer.pacs.errors import PacsProtocolError

CHUNK = 256 * 1024
MAX_HEADERS = 64 * 1024  # the headers of one part; real ones take a few hundred bytes
MAX_PREAMBLE = 64 * 1024
PART_PREFIX = ".part-"


def boundary_of(content_type: str) -> bytes | None:
    """The boundary parameter of a multipart Content-Type, None if it has none."""
    media, *params = [p.strip() for p in content_type.split(";")]
    if not media.lower().startswith("multipart/"):
        return None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "boundary":
            value = value.strip().strip('"')
            if 0 < len(value) <= 200:
                return value.encode("latin-1", "replace")
    return None


class MultipartFiles:
    """Feed the body in chunks; each complete part becomes a file passed to ``on_file``.

    ``close()`` at the end of the body: a last part without its closing delimiter was cut
    short and is dropped (the caller counts what arrived). A body that is not multipart at all
    (one bare instance, as some servers send) is kept whole as a single part.
    """

    def __init__(self, content_type: str, dest: Path, on_file: Callable[[Path], None],
                 label: str) -> None:
        self.dest = dest
        self.on_file = on_file
        self.label = label
        boundary = boundary_of(content_type)
        media = content_type.split(";")[0].strip().lower()
        if boundary is None and media.startswith("multipart/"):
            self.state = "bare"
        elif boundary is None and media != "application/dicom":
            raise PacsProtocolError(f"{label} answered {media or 'without a Content-Type'} "
                                    "where multipart/related DICOM was expected")
        else:
            self.state = "bare" if boundary is None else "preamble"
        self.dash_boundary = b"--" + (boundary or b"")
        self.delimiter = b"\r\n" + self.dash_boundary
        self.buf = bytearray()
        self.out: object = None
        self.path: Path | None = None
        if self.state == "bare":
            self._open()

    def _open(self) -> None:
        fd, name = tempfile.mkstemp(prefix=PART_PREFIX, dir=self.dest)
        self.out = os.fdopen(fd, "wb")
        self.path = Path(name)

    def _finish(self) -> None:
        self.out.close()  # type: ignore[attr-defined]
        path, self.out, self.path = self.path, None, None
        self.on_file(path)  # type: ignore[arg-type]

    def _write(self, data: bytes | bytearray) -> None:
        if data:
            self.out.write(data)  # type: ignore[attr-defined]

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the body."""
        if self.state == "bare":
            self._write(data)
            return
        self.buf += data
        while True:
            if self.state == "preamble":
                at = self.buf.find(self.dash_boundary)
                if at < 0:
                    if len(self.buf) > MAX_PREAMBLE:
                        raise self._broken("no multipart boundary")
                    return
                del self.buf[: at + len(self.dash_boundary)]
                self.state = "boundary"
            elif self.state == "boundary":  # after a delimiter: "--" ends, else a line end
                if len(self.buf) < 2:
                    return
                if self.buf[:2] == b"--":
                    self.state = "epilogue"
                    continue
                end = self.buf.find(b"\r\n")
                if end < 0:
                    if len(self.buf) > 1024:
                        raise self._broken("a boundary line that never ends")
                    return
                del self.buf[: end + 2]
                self.state = "headers"
            elif self.state == "headers":
                if self.buf[:2] == b"\r\n":
                    end = 0
                else:
                    found = self.buf.find(b"\r\n\r\n")
                    if found < 0:
                        if len(self.buf) > MAX_HEADERS:
                            raise self._broken(f"part headers longer than {MAX_HEADERS} bytes")
                        return
                    end = found + 2
                del self.buf[: end + 2]
                self._open()
                self.state = "body"
            elif self.state == "body":
                at = self.buf.find(self.delimiter)
                if at >= 0:
                    self._write(self.buf[:at])
                    del self.buf[: at + len(self.delimiter)]
                    self._finish()
                    self.state = "boundary"
                    continue
                keep = len(self.delimiter) - 1
                if len(self.buf) > keep:
                    self._write(self.buf[:-keep])
                    del self.buf[:-keep]
                return
            else:  # epilogue: ignored
                self.buf.clear()
                return

    def close(self) -> None:
        """The body ended: hand over a bare body; drop a part cut short."""
        if self.state == "bare" and self.out is not None:
            self._finish()
            return
        self.discard()

    def discard(self) -> None:
        """Remove an unfinished part's file (after an error or a cut-short body)."""
        if self.out is not None:
            self.out.close()  # type: ignore[attr-defined]
            if self.path is not None:
                self.path.unlink(missing_ok=True)
            self.out = self.path = None

    def _broken(self, why: str) -> PacsProtocolError:
        return PacsProtocolError(f"{self.label} sent a broken multipart answer ({why})")
