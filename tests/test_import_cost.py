"""What importing the package and the loader pulls in, checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import sys
import {module}
heavy = {heavy!r}
print(",".join(sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))))
"""
HEAVY = ["pydicom", "vtk", "vtkmodules", "pyvista", "PyQt5", "pyvistaqt", "requests",
         "imagecodecs", "SimpleITK", "matplotlib"]


def _loaded(module: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", CHECK.format(module=module, heavy=HEAVY)],
                         capture_output=True, text=True, check=True).stdout.strip()
    return set(out.split(",")) - {""}


def test_the_package_imports_nothing_heavy() -> None:
    assert _loaded("mprviewer") == set()


@pytest.mark.parametrize("module", ["mprviewer.io.study", "mprviewer.io.pixels"])
def test_the_loader_imports_no_pydicom_network_gui_or_renderer(module: str) -> None:
    # pydicom comes in when a file needs it (lite_header reads the common layout).
    assert _loaded(module) == set()


@pytest.mark.parametrize("module", ["mprviewer.io.scan", "mprviewer.io.pixels"])
def test_pydicom_imported_after_the_loader_leaves_requests_out(module: str) -> None:
    assert _loaded(f"{module}, pydicom") == {"pydicom"}


def test_requests_still_imports_after_the_loader() -> None:
    code = ("import mprviewer.io.study, pydicom, requests, pydicom.data.download as d; "
            "print(requests.__name__, d.HAVE_REQUESTS)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["requests", "False"]


@pytest.mark.parametrize("module", ["mprviewer.cli", "mprviewer.io.tempfiles",
                                    "mprviewer.commands.view"])
def test_what_every_command_imports_first_leaves_pydicom_to_the_loader(module: str) -> None:
    """The command line installs its temporary-file cleanup before any command runs; the
    viewer reads pydicom in its loading thread, not before the window."""
    assert _loaded(module) == set()
