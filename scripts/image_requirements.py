"""Print the image's requirements: mprviewer's dependencies and its web extra, without Qt.

PyQt5 and pyvistaqt serve only the desktop window (``mprviewer/gui``); the container image runs
``serve`` and the headless commands, so it leaves them out (about 200 MB). Used by the
Containerfile and by scripts/build-image (to fill the wheelhouse), so both agree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

DESKTOP_ONLY = {"pyqt5", "pyvistaqt"}


def requirements(pyproject: Path) -> list[str]:
    """The requirement strings of the dependencies and the web extra, minus the desktop-only."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    out = []
    for req in project["dependencies"] + project["optional-dependencies"]["web"]:
        name = re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower().replace("_", "-")
        if name not in DESKTOP_ONLY and req not in out:
            out.append(req)
    return out


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    print("\n".join(requirements(path)))
