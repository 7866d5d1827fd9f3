"""Text bound for a terminal: control characters from data are shown, never obeyed.

DICOM strings, file names, server replies and annotation labels come from strangers. Written
raw, ``ESC [2J`` would clear the screen, other sequences retitle the window, move the cursor
or hide text, and a bidirectional override can make a line read other than it is. The command
line writes everything through ``escape_controls`` (``protect_streams`` wraps stdout and
stderr); the program's own cursor moves for progress lines go through ``control``.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from typing import Any, TextIO

# C0 controls except newline and tab, DEL, C1 controls, and the Unicode bidirectional
# controls and line separators that change how a line displays.
_CONTROLS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with every control character written as a visible escape (``\\x1b``);
    newlines and tabs are kept."""
    return _CONTROLS.sub(_escape, text)


class SafeStream:
    """A text stream that escapes control characters in everything written to it."""

    def __init__(self, raw: TextIO):
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(escape_controls(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding, ...
        return getattr(self.raw, name)


def control(stream: Any, sequence: str) -> None:
    """Write the program's own terminal control ``sequence`` (``"\\r\\033[K"``) unescaped."""
    getattr(stream, "raw", stream).write(sequence)


@contextlib.contextmanager
def protect_streams() -> Iterator[None]:
    """Escape control characters in everything written to stdout and stderr meanwhile."""
    saved = sys.stdout, sys.stderr
    if saved[0] is not None:
        sys.stdout = SafeStream(saved[0])  # type: ignore[assignment]
    if saved[1] is not None:
        sys.stderr = SafeStream(saved[1])  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
