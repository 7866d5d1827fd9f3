"""Whether a path stays inside a folder once every symbolic link is resolved.

Links in a study folder or on a CD are followed only while they stay inside the folder the
user opened, so a link to ``/usr`` or into another patient's folder is never read.
"""

from __future__ import annotations

import os


def resolves_inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether ``path``, every symbolic link resolved, lies in ``folder`` (resolved too)."""
    real = os.path.realpath(path)
    root = os.path.realpath(folder)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)
