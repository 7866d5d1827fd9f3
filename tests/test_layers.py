"""The layering rule: loading and annotations work without VTK or Qt; rendering without Qt."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import importlib, pkgutil, sys
import mprviewer
names = []
for package in {packages!r}:
    module = importlib.import_module(package)
    names.append(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
        names.append(info.name)
for extra in {extra!r}:
    importlib.import_module(extra)
banned = {banned!r}
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set(banned))
print(len(names), ",".join(loaded))
"""

QT = ["PyQt5", "pyvistaqt", "qtpy", "PySide2", "PySide6"]
VTK = ["vtk", "vtkmodules", "pyvista"]


def _loaded(packages: list[str], extra: list[str], banned: list[str]) -> tuple[int, str]:
    code = CHECK.format(packages=packages, extra=extra, banned=banned)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    return int(out[0]), (out[1] if len(out) > 1 else "")


@pytest.mark.parametrize("packages", [["mprviewer.io"], ["mprviewer.model"]])
def test_io_and_model_import_neither_vtk_nor_qt(packages: list[str]) -> None:
    count, loaded = _loaded(packages, ["mprviewer.annotations", "mprviewer.commands.info",
                                       "mprviewer.commands.annotations"], QT + VTK)
    assert count > 3
    assert loaded == ""


def test_render_imports_no_qt() -> None:
    count, loaded = _loaded(["mprviewer.render"], ["mprviewer.commands.screenshot"], QT)
    assert count > 3
    assert loaded == ""
