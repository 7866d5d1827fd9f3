"""Sources that hold several cases (a zip or a folder of patients): series names say which case
they come from, lists follow natural order, and each study keeps its own annotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mprviewer
from mprviewer.synthetic.writer import write_series, zip_folders


def _cases(root: Path) -> dict[str, str]:
    """Two patients, each with a T1 folder and a CT_LUNG folder: study UID per case."""
    studies = {}
    for n, case in enumerate(("case2", "case10")):
        t1 = write_series(root / case / "T1", np.full((3, 8, 8), 100 + n, np.int16),
                          modality="MR", seed=f"{case}-t1", series_number=3,
                          description="T1 MPRAGE")
        write_series(root / case / "CT_LUNG", np.full((4, 8, 8), n, np.int16),
                     seed=f"{case}-ct", series_number=2, description="lung",
                     study_uid=t1.study_uid)
        studies[case] = t1.study_uid
    return studies


@pytest.fixture(scope="module")
def several(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("cases")
    studies = _cases(root / "cases")
    archive = zip_folders(root / "cases.zip", [root / "cases" / "case2", root / "cases" / "case10"])
    return archive, studies


def test_repeated_series_names_carry_their_case_folder(several) -> None:
    archive, studies = several
    study = mprviewer.open_study(archive)
    names = {(s.study_uid, s.name) for s in study.series}
    assert names == {
        (studies["case2"], "case2/T1"), (studies["case2"], "case2/CT_LUNG"),
        (studies["case10"], "case10/T1"), (studies["case10"], "case10/CT_LUNG"),
    }
    assert not any("(" in s.name for s in study.series)


def test_series_are_listed_in_natural_order(tmp_path: Path) -> None:
    for n in (12, 8, 2, 10):
        write_series(tmp_path / f"acquisition {n}", np.zeros((2, 4, 4), np.int16),
                     seed=f"acq{n}", series_number=None, study_uid="1.2.3.4")
    names = [s.name for s in mprviewer.open_study(tmp_path).series]
    assert names == ["acquisition 2", "acquisition 8", "acquisition 10", "acquisition 12"]


def test_info_json_lists_each_study_with_its_series(several) -> None:
    import json
    import subprocess
    import sys

    archive, studies = several
    result = subprocess.run([sys.executable, "-m", "mprviewer", "info", str(archive), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    by_uid = {s["study_uid"]: s for s in doc["studies"]}
    assert set(by_uid) == set(studies.values())
    for case, uid in studies.items():
        names = {doc["series"][n]["name"] for n in by_uid[uid]["series"]}
        assert names == {f"{case}/T1", f"{case}/CT_LUNG"}
        assert all(doc["series"][n]["study_uid"] == uid for n in by_uid[uid]["series"])
