"""Crafted files and folders: symbolic links, header bombs, decoded-size bombs, deflate
bombs. Each ends as a clear error or a partial result with a reason, in bounded memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import mprviewer
from mprviewer.io import synthetic

ARRAY = np.arange(3 * 6 * 5, dtype=np.int16).reshape(3, 6, 5)


# -- symbolic links ------------------------------------------------------------------------
def test_links_out_of_the_opened_folder_are_skipped_and_links_inside_followed(
        tmp_path: Path) -> None:
    root = tmp_path / "patient-a"
    synthetic.write_series(root / "CT", ARRAY, seed=31, series_number=1)
    synthetic.write_series(tmp_path / "patient-b" / "MR", ARRAY[:2], seed=32, series_number=2)
    synthetic.write_series(tmp_path / "inside-src", ARRAY[:2], seed=33, series_number=3)
    (root / "system").symlink_to("/usr", target_is_directory=True)
    (root / "neighbour").symlink_to(tmp_path / "patient-b", target_is_directory=True)
    other_file = sorted((tmp_path / "patient-b" / "MR").iterdir())[0]
    (root / "one.dcm").symlink_to(other_file)
    (root / "sub").mkdir()
    (root / "sub" / "up.dcm").symlink_to(other_file)  # a link deeper down, same rule
    inside = root / "kept"
    (tmp_path / "inside-src").rename(inside)
    (root / "alias").symlink_to(inside / sorted(p.name for p in inside.iterdir())[0])
    with mprviewer.open_study(root) as study:
        assert sorted(s.number for s in study.series) == [1, 3]
        assert sorted(s.num_images for s in study.series) == [2, 3]
        reasons = dict(study.skipped)
    for link in ("system", "neighbour", "one.dcm", "sub/up.dcm"):
        assert "outside the opened folder" in reasons[str(root / link)], (link, reasons)
    assert str(root / "alias") not in reasons  # inside: read (a duplicate of its target)
    assert not any(name.startswith("/usr") for name in reasons)
