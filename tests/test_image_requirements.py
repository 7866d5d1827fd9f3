"""The container image's requirements: every dependency and the web extra, without Qt."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="needs tomllib (3.11)")


def _name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower()


def test_the_image_gets_every_dependency_but_the_desktop_ones(tmp_path: Path) -> None:
    import tomllib

    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\n'
        'dependencies = ["numpy>=1.24", "PyQt5>=5.15,<6", "pyvistaqt>=0.11", "vtk>=9.3"]\n'
        '[project.optional-dependencies]\n'
        'web = ["trame>=4.0", "vtk>=9.3"]\ntest = ["pytest>=7"]\n')
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "image_requirements.py"),
                          str(pyproject)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["numpy>=1.24", "vtk>=9.3", "trame>=4.0"]
    # and on the real pyproject: nothing but the desktop's two is left out, bounds kept
    real = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [r for r in real["dependencies"] + real["optional-dependencies"]["web"]
              if _name(r) not in ("pyqt5", "pyvistaqt")]
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "image_requirements.py"),
                          str(ROOT / "pyproject.toml")], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split("\n")[:-1] == list(dict.fromkeys(wanted))
