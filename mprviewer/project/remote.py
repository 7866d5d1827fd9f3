"""Studies on a PACS as project studies: found with the ``pacs search`` query, indexed when
first opened (retrieved into the per-user PACS cache)."""

from __future__ import annotations

from typing import Any

from mprviewer.project.indexer import StudyRecord


def pacs_package() -> Any:
    """The PACS client package, imported when a PACS source is used."""
    import mprviewer.pacs

    return mprviewer.pacs


def pacs_records(server: Any, query: Any) -> tuple[str, list[StudyRecord]]:
    """(server spec without credentials, one record per matching study, no series yet)."""
    pacs = pacs_package()
    server = pacs.parse_server(server)
    found = pacs.search_studies(server, query)
    spec = server.name or server.address
    records = []
    for s in found:
        attrs = {k: v for k, v in (
            ("PatientName", s.patient_name), ("PatientID", s.patient_id),
            ("PatientBirthDate", s.birth_date), ("StudyDate", s.date), ("StudyTime", s.time),
            ("AccessionNumber", s.accession), ("StudyDescription", s.description)) if v}
        name = " ".join(x for x in (s.patient_name, s.date, s.description) if x) or s.study_uid
        records.append(StudyRecord(uid=s.study_uid, name=name, locations=[spec],
                                   attributes=attrs))
    return spec, records


def retrieve_study(info: Any, progress: Any = None, cancel: Any = None) -> Any:
    """The local cache folder of a PACS study (retrieved now unless cached)."""
    pacs = pacs_package()
    return pacs.retrieve_to_cache(pacs.parse_server(info.locations[0]), progress=progress,
                                  cancel=cancel, study_uid=info.uid)
