"""Caps that keep hostile or broken input from filling memory, disk or time.

Defaults fit real studies (a multi-GB CT or MR export, a few hundred thousand files) and
stop zip bombs, endless downloads and dead servers. Each cap can be changed for one call
(pass a ``Limits``) or for the whole process through an environment variable, e.g.
``MPRVIEWER_MAX_UNZIPPED_BYTES=64G``. Sizes accept plain bytes or K/M/G/T suffixes
(binary: 1G = 1024**3 bytes); ``0`` or ``none`` turns a cap off.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, fields, replace
from typing import Any

from mprviewer.errors import SourceError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

_UNITS = {"": 1, "b": 1, "k": KIB, "m": MIB, "g": GIB, "t": 1024 * GIB}
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


class LimitExceeded(SourceError):
    """A source went past one of the caps (size, ratio, depth, count)."""


@dataclass(frozen=True)
class Limits:
    """The caps; ``math.inf`` (or 0 in the environment) means no cap."""

    # Archives (zip, nested zip): bytes decompressed in total per source, counted as read.
    max_unzipped_bytes: float = 20 * GIB
    # A member that expands more than this many times its compressed size is a bomb ...
    max_zip_ratio: float = 200.0
    # ... once it has given more than this many bytes (small blank images compress 1000:1).
    zip_ratio_min_bytes: float = 8 * MIB
    max_zip_depth: int = 3  # a zip inside a zip inside a zip is still opened
    max_zip_members: float = 1_000_000
    # Downloads.
    max_download_bytes: float = 20 * GIB
    connect_timeout: float = 15.0  # seconds to establish a connection
    read_timeout: float = 60.0  # seconds the server may stay silent
    max_redirects: int = 10
    # An answer read whole into memory (a DICOMweb search result, not a retrieval).
    max_answer_bytes: float = 256 * MIB
    # A download slower than this many bytes a second, averaged over the window, is stopped
    # (a read timeout only sees silence, not a server that trickles a byte a second).
    min_download_rate: float = 1 * KIB
    min_rate_window: float = 30.0  # seconds
    # Temporary files (downloads, nested zips) never take the last bytes of a disk.
    min_free_disk_bytes: float = 1 * GIB
    # Headers: a data set up to its pixel data (or a whole DICOMDIR). Real ones take KBs; an
    # enhanced multi-frame object with tens of thousands of frames takes tens of MBs.
    max_header_bytes: float = 64 * MIB
    # Pixels: the decoded size of one image file or of one series' volume, checked before
    # decoding. 4 GiB holds a 2000-slice 1024x1024 16-bit CT; loading may need twice that
    # while rescaling, so a larger claim is far more likely a bomb than a study.
    max_decoded_bytes: float = 4 * GIB
    # Compressed pixel data decoding to more than 64 MiB may expand at most this many times
    # its file's size (real images: 2-20, blank ones a few hundred; bombs: 100,000s).
    max_decoded_ratio: float = 1000.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Limits:
        """Defaults, changed by ``MPRVIEWER_<FIELD>`` variables, then by ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = env_name(f.name)
            text = env.get(name)
            if text is None or not text.strip():
                continue
            values[f.name] = _parse(f.name, name, text)
        return replace(cls(**values), **overrides)


# Environment variable names: MPRVIEWER_ + the field name in capitals.
def env_name(field_name: str) -> str:
    """``max_unzipped_bytes`` -> ``MPRVIEWER_MAX_UNZIPPED_BYTES``."""
    return "MPRVIEWER_" + field_name.upper()


def _parse(field_name: str, env: str, text: str) -> float | int:
    lowered = text.strip().lower()
    is_size = field_name.endswith(("_bytes", "_rate"))
    if lowered in ("0", "none", "off", "inf", "unlimited") and field_name.startswith("max_"):
        return math.inf
    if lowered in ("none", "off") and field_name.startswith("min_"):
        return 0.0  # a minimum of nothing: the check is off
    try:
        if is_size:
            match = _SIZE_RE.match(lowered)
            if match is None:
                raise ValueError(text)
            value = float(match.group(1)) * _UNITS[match.group(2).lower()]
        else:
            value = float(lowered)
    except ValueError:
        example = "20G" if is_size else "200"
        raise SourceError(
            f"{env}={text!r} is not a valid {'size' if is_size else 'number'}; "
            f"give e.g. {example}, or unset it to use the default"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise SourceError(f"{env}={text!r} must be a positive number; unset it for the default")
    if field_name in ("max_zip_depth", "max_redirects"):
        return int(value)
    return value


def describe_size(n: float) -> str:
    """Bytes for people: 20 GiB, 1.5 MiB, 300 bytes."""
    if math.isinf(n):
        return "unlimited"
    for unit, factor in (("TiB", 1024 * GIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if n >= factor:
            value = n / factor
            return f"{value:.0f} {unit}" if value >= 100 or value.is_integer() else (
                f"{value:.1f} {unit}")
    return f"{int(n)} bytes"


def cap_hint(field_name: str) -> str:
    """Where to change a cap, for error messages."""
    return f"If the input is genuine, raise the limit with {env_name(field_name)}."
