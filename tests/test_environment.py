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


def _split(spec: str) -> tuple[str, frozenset[str]]:
    """(PyPI name, every version bound of the spec): ">=5.15,<6" gives {">=5.15", "<6"}."""
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec)
    assert match, spec
    name = match.group(1).lower().replace("_", "-")
    bounds = frozenset(b.replace(" ", "") for b in match.group(2).split(",") if b.strip())
    return CONDA_TO_PYPI.get(name, name), bounds


def test_split_keeps_every_bound() -> None:
    """Upper bounds and exclusions count as much as lower bounds."""
    assert _split("pyqt>=5.15,<6") == ("pyqt5", frozenset({">=5.15", "<6"}))
    assert _split("numpy >= 1.24, != 1.25.0") == ("numpy", frozenset({">=1.24", "!=1.25.0"}))
    assert _split("pip") == ("pip", frozenset())


def _pyproject() -> dict[str, frozenset[str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    specs = data["project"]["dependencies"] + data["project"]["optional-dependencies"]["test"]
    return dict(_split(s) for s in specs)


def _environment() -> dict[str, frozenset[str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    found: dict[str, frozenset[str]] = {}
    for item in env["dependencies"]:
        if isinstance(item, dict):
            for spec in item["pip"]:
                if not spec.startswith("-e"):
                    found.update([_split(spec)])
        else:
            name, bounds = _split(item)
            if name not in ("python", "pip"):
                found[name] = bounds
    return found


def test_environment_and_pyproject_list_the_same_packages_and_bounds() -> None:
    """The same packages with the same full specifier sets (lower and upper bounds)."""
    environment, pyproject = _environment(), _pyproject()
    assert sorted(environment) == sorted(pyproject)
    differ = {name: (sorted(environment[name]), sorted(pyproject[name]))
              for name in environment if environment[name] != pyproject[name]}
    assert not differ, f"environment.yml vs pyproject.toml bounds differ: {differ}"


def test_environment_installs_the_package_itself() -> None:
    text = (ROOT / "environment.yml").read_text()
    assert "-e .[test]" in text
