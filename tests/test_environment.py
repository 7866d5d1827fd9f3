"""environment.yml and pyproject.toml must name the same dependencies with the same bounds."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's.
CONDA_TO_PYPI = {"pyqt": "pyqt5", "simpleitk": "simpleitk"}


def _split(spec: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec)
    assert match, spec
    name = match.group(1).lower().replace("_", "-")
    lower = re.search(r">=\s*([0-9][0-9.]*)", match.group(2))
    return CONDA_TO_PYPI.get(name, name), lower.group(1) if lower else ""


def _pyproject() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    specs = data["project"]["dependencies"] + data["project"]["optional-dependencies"]["test"]
    return dict(_split(s) for s in specs)


def _environment() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    found: dict[str, str] = {}
    for item in env["dependencies"]:
        if isinstance(item, dict):
            for spec in item["pip"]:
                if not spec.startswith("-e"):
                    found.update([_split(spec)])
        else:
            name, lower = _split(item)
            if name not in ("python", "pip"):
                found[name] = lower
    return found


def test_environment_and_pyproject_list_the_same_packages_and_bounds() -> None:
    assert _environment() == _pyproject()


def test_environment_installs_the_package_itself() -> None:
    text = (ROOT / "environment.yml").read_text()
    assert "-e .[test]" in text
