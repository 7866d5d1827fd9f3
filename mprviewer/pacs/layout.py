"""Retrieved instances filed one folder per series, each folder named as a person reads it.

The loader names a series after its folder when that folder holds the series alone (the
layout of the zips the original tool took), and that name is what the original annotation
format keys on. A cache entry's own folder is named by a hash, so a study retrieved flat would
give its series a hash for a name. Filing each series under ``<SeriesNumber>
<SeriesDescription>`` gives the name a PACS user sees in its series list.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from mprviewer.io.safe_paths import child_path

# Characters no file system (or no shell user) wants in a folder name.
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]+')
MAX_NAME = 80


def series_folder_name(number: object, description: object, series_uid: str) -> str:
    """``"<SeriesNumber> <SeriesDescription>"`` made safe as one folder name; else the UID."""
    text = " ".join(str(v).strip() for v in (number, description) if v not in (None, ""))
    text = _UNSAFE.sub("_", text).strip(" .")[:MAX_NAME].strip(" .")
    return text or _UNSAFE.sub("_", series_uid).strip(" .") or "series"


def file_by_series(folder: Path) -> int:
    """Move the ``.dcm`` files lying directly in ``folder`` into one subfolder per series.

    Series that would share a folder name get `` (2)``, `` (3)``... in the order of their
    UIDs, so the layout does not depend on arrival order. Files whose header cannot be read
    stay where they are (the loader reports them). Returns the number of series folders.
    """
    from mprviewer.io.quick_values import header_value
    from mprviewer.io.scan import read_header
    from mprviewer.io.sources import Member

    series_of: dict[Path, tuple[str, str]] = {}
    for path in sorted(folder.glob("*.dcm")):
        member = Member(name=str(path), folder=str(folder), size=0,
                        opener=functools.partial(open, path, "rb"), path=path)
        try:  # the loader's own header walk: one 16 KB read, no pixel data
            ds = read_header(member)
            uid = str(header_value(ds, "SeriesInstanceUID", "") or "")
            name = series_folder_name(header_value(ds, "SeriesNumber"),
                                      header_value(ds, "SeriesDescription"), uid)
        except Exception:  # an unreadable file is the loader's to report
            continue
        series_of[path] = (uid, name)
    folder_of: dict[str, str] = {}
    taken: set[str] = set()
    for uid, name in sorted(set(series_of.values())):
        if uid in folder_of:
            continue
        unique, n = name, 2
        while unique.casefold() in taken:
            unique, n = f"{name} ({n})", n + 1
        taken.add(unique.casefold())
        folder_of[uid] = unique
    for path, (uid, _name) in series_of.items():
        target = child_path(folder, folder_of[uid])  # a description never leaves the folder
        target.mkdir(exist_ok=True)
        path.replace(child_path(target, path.name))
    return len(folder_of)
