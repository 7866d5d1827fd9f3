"""Project studies from a PACS query (a real Orthanc on loopback): found from the query,
indexed on first use from the retrieved headers, exported like local studies."""

from __future__ import annotations

import pydicom
import pytest

from mprviewer.cli import main
from mprviewer.project import Project
from tests.orthanc import Orthanc
from tests.pacs_data import ct_series, module_home


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory):
    with module_home(tmp_path_factory):
        a = ct_series(tmp_path_factory.mktemp("pa"), slices=4, size=8, seed="proj-a",
                      patient=("DOE^ANN", "PA"), date="20240110")
        b = ct_series(tmp_path_factory.mktemp("pb"), slices=3, size=8, seed="proj-b",
                      patient=("ROE^BOB", "PB"), date="20240320")
        mr = ct_series(tmp_path_factory.mktemp("pm"), slices=2, size=8, seed="proj-m",
                       patient=("DOE^MR", "PM"), date="20240115", modality="MR")
        with Orthanc() as server:
            server.upload([*a.files, *b.files, *mr.files])
            yield server, a, b, mr


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_pacs_query_adds_the_matching_studies_and_indexes_them_on_use(orthanc, tmp_path,
                                                                      capsys, backend,
                                                                      request):
    """The same with the labels in the folder or in a real PostgreSQL (a team project whose
    images are in Orthanc)."""
    server, a, b, mr = orthanc
    folder = tmp_path / "proj"
    db = ["--db", request.getfixturevalue("pg_url")] if backend == "postgresql" else []
    assert main(["project", "create", str(folder), "--server", server.dicomweb_url,
                 "--modality", "CT", *db]) == 0
    with Project.open(folder) as p:
        found = {s.uid: s for s in p.studies()}
        assert set(found) == {a.study_uid, b.study_uid}  # the MR study does not match
        assert all(s.kind == "pacs" for s in found.values())
        # marking needs the series: the study is retrieved and indexed from its headers
        p.mark(a.study_uid, "subdural", "1", "ann")
        p.set_status(a.study_uid, "ann", "done")
    assert main(["project", "add", str(folder), "--server", server.dicomweb_url,
                 "--date", "20240101-20241231"]) == 0
    assert "skipped 2 already in the project" in capsys.readouterr().err
    with Project.open(folder) as p:
        # the MR study joined at the end, the CT ones were not added twice
        assert [s.uid for s in p.studies()][2:] == [mr.study_uid] and len(p) == 3
    out = tmp_path / "x.csv"
    assert main(["project", "export", str(folder), "--to", "csv", str(out)]) == 0
    by_z = sorted((pydicom.dcmread(f, stop_before_pixels=True) for f in a.files),
                  key=lambda ds: float(ds.ImagePositionPatient[2]))
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + 4 * 6
    assert f"ID_{by_z[1].SOPInstanceUID}_subdural,1" in lines
    assert f"ID_{by_z[1].SOPInstanceUID}_any,1" in lines
    assert sum(line.endswith(",1") for line in lines) == 2
