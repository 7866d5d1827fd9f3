"""A hostile PACS must not write outside the cache: UIDs and names never make paths unchecked.

Each test starts its own misbehaving peer on loopback (tests/hostile_pacs.py), runs the real
command line against it, and checks the sentinel files a path traversal would have hit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mprviewer.io.safe_paths import UnsafePathError, child_path, is_dicom_uid
from mprviewer.pacs import PacsConnectionError, PacsProtocolError, retrieve_to_cache
from mprviewer.pacs.layout import series_folder_name
from tests.hostile_pacs import STUDY, Instance, WebBehaviour, dicomweb_server, dimse_peer

SENTINEL = b"the user's own file\n"


def _cli(*args: str, home: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPRVIEWER_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "mprviewer", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def _files_outside(root: Path, inside: Path) -> list[Path]:
    """Every file under ``root`` that is not under ``inside`` (nor one of the sentinels)."""
    return [p for p in root.rglob("*") if p.is_file() and inside not in p.parents
            and p.read_bytes() != SENTINEL]


def _plant_sentinels(tmp_path: Path, home: Path, names: list[str]) -> list[Path]:
    """Files a traversal would overwrite: each hostile name resolved against the cache's
    partial folder (two levels below ``home``), or taken as an absolute path."""
    planted = []
    for name in names:
        target = Path(name + ".dcm") if name.startswith("/") else home / (Path(name).name + ".dcm")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(SENTINEL)
        planted.append(target)
    return planted


def test_uid_and_child_path_rules(tmp_path: Path) -> None:
    assert is_dicom_uid("1.2.840.10008.5.1.4.1.1.2")
    assert is_dicom_uid("1.2.03") and not is_dicom_uid("1.2.03", strict=True)
    for bad in ("", "../../x", "/abs/x", "1..2", ".1.2", "1.2.", "1.2.3a", "1.2\x00",
                "1" * 65, "1.2/3", None, 12):
        assert not is_dicom_uid(bad), bad
    assert child_path(tmp_path, "1.2.3.dcm") == tmp_path / "1.2.3.dcm"
    for bad in ("../x.dcm", "/abs/x.dcm", "a/b", "..", ".", "", "a\\b", "x\x00"):
        with pytest.raises(UnsafePathError):
            child_path(tmp_path, bad)
    # a link already on disk that points out of the folder is refused too
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "link.dcm").symlink_to(outside / "victim.dcm")
    with pytest.raises(UnsafePathError):
        child_path(tmp_path, "link.dcm")


@pytest.mark.parametrize("hostile", ["../../x", "1.2.3/../../../x", "ABS"])
def test_dicomweb_sop_uid_traversal_is_refused_by_info(tmp_path: Path, hostile: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    if hostile == "ABS":
        hostile = str(tmp_path / "elsewhere" / "x")
    planted = _plant_sentinels(tmp_path, home, [hostile])
    behaviour = WebBehaviour(instances=[Instance("1.2.3.4"), Instance(hostile, slice_index=1)])
    with dicomweb_server(behaviour) as root:
        result = _cli("info", f"{root}/studies/{STUDY}", home=home)
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "not a valid DICOM UID" in lines[0] and repr(hostile) in lines[0]
    assert "Traceback" not in result.stderr
    assert all(p.read_bytes() == SENTINEL for p in planted)
    assert _files_outside(tmp_path, home / "pacs-cache") == []
    # nothing half-retrieved is kept in the cache either
    cache = home / "pacs-cache"
    assert [p for p in cache.rglob("*") if p.is_file()] == []


def test_dimse_sop_uid_traversal_is_refused_by_retrieve(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    absolute = str(tmp_path / "elsewhere" / "y")
    planted = _plant_sentinels(tmp_path, home, ["../../x", absolute])
    instances = [Instance("1.2.3.4"), Instance("../../x", slice_index=1),
                 Instance(absolute, slice_index=2)]
    with dimse_peer(instances) as spec:
        result = _cli("pacs", "retrieve", "--server", spec, "--study", STUDY, home=home)
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "not a valid DICOM UID" in lines[0] and spec in lines[0]
    assert all(p.read_bytes() == SENTINEL for p in planted)
    assert _files_outside(tmp_path, home / "pacs-cache") == []
    assert [p for p in (home / "pacs-cache").rglob("*") if p.is_file()] == []


def test_dicomweb_listed_series_uid_that_is_a_path_is_refused(tmp_path: Path) -> None:
    behaviour = WebBehaviour(instances=[Instance("1.2.3.4", series_uid="../../series")])
    with dicomweb_server(behaviour) as root, pytest.raises(PacsProtocolError) as info:
        retrieve_to_cache(f"{root}/studies/{STUDY}")
    assert "SeriesInstanceUID '../../series' that is not a valid DICOM UID" in str(info.value)


@pytest.mark.parametrize("description", ["../../evil", "/etc/cron.d/x", "..", "a/../../b"])
def test_series_description_cannot_lead_the_series_folder_out(
        tmp_path: Path, description: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A correct result: the series is filed under a safe name inside its cache entry."""
    monkeypatch.setenv("MPRVIEWER_HOME", str(tmp_path / "home"))
    instances = [Instance("1.2.3.4", number=7, description=description),
                 Instance("1.2.3.5", number=7, description=description, slice_index=1)]
    with dicomweb_server(WebBehaviour(instances=instances)) as root:
        folder = retrieve_to_cache(f"{root}/studies/{STUDY}")
    series_folders = [p for p in folder.iterdir() if p.is_dir()]
    assert len(series_folders) == 1
    name = series_folders[0].name
    assert name == series_folder_name(7, description, instances[0].series_uid)
    assert "/" not in name and name not in ("", ".", "..") and name.startswith("7")
    assert sorted(p.name for p in series_folders[0].iterdir()) == ["1.2.3.4.dcm", "1.2.3.5.dcm"]
    assert _files_outside(tmp_path, folder.parent) == []


@pytest.mark.parametrize("args", [["--study", "../../x"], ["--study", STUDY, "--series", "1.2/.."]])
def test_a_study_or_series_uid_given_by_hand_must_be_a_uid(tmp_path: Path, args: list[str]) -> None:
    result = _cli("pacs", "retrieve", "--server", "http://127.0.0.1:9/dicom-web", *args,
                  home=tmp_path)
    assert result.returncode == 3
    assert "is not a valid DICOM UID" in result.stderr and "Traceback" not in result.stderr


def test_a_server_answering_one_bare_instance_still_works(tmp_path: Path) -> None:
    """Some servers send a lone instance as application/dicom rather than multipart."""
    behaviour = WebBehaviour(instances=[Instance("1.2.3.4")], bare=True)
    with dicomweb_server(behaviour) as root:
        folder = retrieve_to_cache(f"{root}/studies/{STUDY}")
    files = list(folder.rglob("*.dcm"))
    assert [p.name for p in files] == ["1.2.3.4.dcm"]
    assert files[0].read_bytes() == behaviour.instances[0].encoded()


def test_an_instance_cut_short_inside_its_part_is_an_error(tmp_path: Path) -> None:
    """The part ends properly but its pixel data stops 40 bytes early: not filed as good."""
    instances = [Instance("1.2.3.4"), Instance("1.2.3.5", slice_index=1, cut=40)]
    with dicomweb_server(WebBehaviour(instances=instances)) as root, \
            pytest.raises(PacsConnectionError, match=r"1\.2\.3\.5 from .* truncated"):
        retrieve_to_cache(f"{root}/studies/{STUDY}")
    assert [p for p in (Path(os.environ["MPRVIEWER_HOME"]) / "pacs-cache").rglob("*")
            if p.is_file()] == []
