"""The layering rule: loading and annotations work without VTK or Qt; rendering without Qt."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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


# --- The folders are the layers: each package imports only the ones it lists (static check) ---

PACKAGE = Path(__file__).resolve().parent.parent / "mprviewer"

# package -> the mprviewer packages below it that it may import. The modules every layer may
# use (errors, paths, and the top-level package whose import-time body loads only errors) are
# in BASE. Add a package here when it is created; entries for packages not (yet) in the tree
# are skipped, so project/ and web/ are checked as soon as they exist.
LOWER: dict[str, set[str]] = {
    "synthetic": set(),
    "io": {"synthetic"},
    "pacs": {"io"},
    "model": {"io", "pacs"},
    "project": {"io", "pacs", "model"},
    "session": {"io", "pacs", "model", "project"},
    "render": {"io", "pacs", "model", "project", "session"},
    "gui": {"synthetic", "io", "pacs", "model", "project", "session", "render"},
    "web": {"synthetic", "io", "pacs", "model", "project", "session", "render"},
    "commands": {"synthetic", "io", "pacs", "model", "project", "session", "render", "gui",
                 "web"},
}
BASE = {"mprviewer", "mprviewer.errors", "mprviewer.paths"}
# Modules at the top of the package that stand above every layer: the public API.
FACADES = {"mprviewer", "mprviewer.__main__", "mprviewer.cli", "mprviewer.annotations",
           "mprviewer.measure"}
# Packages that must load neither Qt nor VTK (the test below imports them in a fresh interpreter).
NO_GUI_LAYERS = ["synthetic", "io", "pacs", "model", "project", "session"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every mprviewer module NAME imports, wherever the import sits (top level, in a function,
    under TYPE_CHECKING): a lazy import is still an arrow between layers."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "mprviewer")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "mprviewer":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LOWER else None


def _layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in graph.items():
        if module in FACADES:
            continue
        layer = _layer(module)
        for target in targets:
            other = _layer(target)
            if target in BASE or other == layer:
                continue
            if layer is None:
                bad.append(f"{module} -> {target} (a base module imports a layer)")
            elif other is None and target in FACADES:
                bad.append(f"{module} -> {target} (a layer imports the public API)")
            elif other is not None and other not in LOWER[layer]:
                bad.append(f"{module} -> {target} ({layer} may not import {other})")
    return sorted(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_import_analysis_sees_arrows_and_cycles() -> None:
    # The checker itself: a made-up graph with one cycle and one upward arrow is caught.
    graph = {"mprviewer.io.a": {"mprviewer.io.b", "mprviewer.errors"},
             "mprviewer.io.b": {"mprviewer.io.c"}, "mprviewer.io.c": {"mprviewer.io.a"},
             "mprviewer.model.x": {"mprviewer.io.a"}, "mprviewer.io.d": {"mprviewer.gui.w"},
             "mprviewer.gui.w": set()}
    assert _cycles(graph) == [["mprviewer.io.a", "mprviewer.io.b", "mprviewer.io.c"]]
    assert _layer_violations(graph) == ["mprviewer.io.d -> mprviewer.gui.w (io may not import gui)"]
    real = _graph()
    # Lazy imports inside functions count: series.py's own import of geometry is seen.
    assert "mprviewer.io.geometry" in real["mprviewer.io.series"]
    assert "mprviewer.pacs.dimse" in real["mprviewer.pacs"]


def test_every_package_is_a_known_layer() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(LOWER), f"add {sorted(packages - set(LOWER))} to LOWER"


def test_layers_import_only_layers_below_them() -> None:
    assert _layer_violations(_graph()) == []


def test_no_import_cycles_between_mprviewer_modules() -> None:
    assert _cycles(_graph()) == []


def test_layers_below_render_load_neither_qt_nor_vtk_in_a_fresh_interpreter() -> None:
    present = [f"mprviewer.{p}" for p in NO_GUI_LAYERS if (PACKAGE / p / "__init__.py").exists()]
    assert {"mprviewer.io", "mprviewer.pacs", "mprviewer.model"} <= set(present)
    count, loaded = _loaded(present, [], QT + VTK)
    assert count > 10
    assert loaded == ""


def test_render_and_the_web_front_end_load_no_qt() -> None:
    present = [f"mprviewer.{p}" for p in ("render", "web")
               if (PACKAGE / p / "__init__.py").exists()]
    count, loaded = _loaded(present, [], QT)
    assert count > 3
    assert loaded == ""
