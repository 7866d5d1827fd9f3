"""DIMSE: C-FIND search, C-GET retrieval into a folder, C-STORE, all through pynetdicom.

C-GET rather than C-MOVE: the instances come back on the same association, so the server needs
to know our AE title but not a host and port to call back, and firewalls in between do not matter.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from mprviewer.io.safe_paths import (
    UnsafePathError,
    child_path,
    is_dicom_uid,
    quiet_uid_warnings,
)
from mprviewer.io.transfer import Transfer
from mprviewer.pacs.errors import (
    PacsAuthError,
    PacsCancelled,
    PacsConnectionError,
    PacsError,
    PacsNoImagesError,
    PacsNotFoundError,
    PacsProtocolError,
)
from mprviewer.pacs.results import (
    SERIES_FIELDS,
    STUDY_FIELDS,
    SeriesResult,
    StudyQuery,
    StudyResult,
    is_image_sop_class,
    series_from_dataset,
    sort_series,
    sort_studies,
    study_from_dataset,
)
from mprviewer.pacs.servers import Server

Progress = Callable[[int, int], Any]
_PENDING = (0xFF00, 0xFF01)
_MAX_CONTEXTS = 128
# Storage classes offered first for C-GET (what a volume viewer opens), then the rest.
_PREFERRED_STORAGE = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.20",  # NM
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.88.59",  # Key Object Selection
)


def _ae(server: Server) -> Any:
    from pynetdicom import AE

    ae = AE(ae_title=server.calling_aet)
    ae.acse_timeout = server.timeout
    ae.dimse_timeout = server.timeout
    ae.network_timeout = server.timeout
    ae.connection_timeout = min(10.0, server.timeout)
    return ae


@contextlib.contextmanager
def _association(
    server: Server, ae: Any, what: str, **kwargs: Any
) -> Iterator[Any]:
    """An established association, released afterwards; failures become PacsErrors."""
    from pynetdicom import evt
    from pynetdicom.pdu import A_ASSOCIATE_RJ

    # A peer that rejects us sends A-ASSOCIATE-RJ and closes at once; on a busy machine
    # pynetdicom can see the closed socket before it reads the reject and report an abort.
    # Watching the PDUs as they arrive keeps the real answer.
    rejects: list[object] = []

    def on_pdu(event: Any) -> None:
        if isinstance(event.pdu, A_ASSOCIATE_RJ):
            rejects.append(event.pdu)

    handlers = [*kwargs.pop("evt_handlers", []), (evt.EVT_PDU_RECV, on_pdu)]
    assoc = ae.associate(
        server.host, server.port, ae_title=server.called_aet, evt_handlers=handlers, **kwargs
    )
    if not assoc.is_established:
        if assoc.is_rejected or rejects:
            raise PacsAuthError(
                f"{server.label} rejected the association while {what}: check that the server "
                f"knows our AE title '{server.calling_aet}' and that its own AE title is "
                f"'{server.called_aet}'"
            )
        reachable, reason = _tcp_reachable(server)
        if not reachable:
            raise PacsConnectionError(
                f"cannot reach {server.label} while {what}: {reason} (is the server running, "
                "and are the host and port right?)"
            )
        if assoc.is_aborted:
            raise PacsConnectionError(
                f"{server.label} aborted the association while {what}: is it a DICOM server, and "
                "is the AE title right?"
            )
        raise PacsConnectionError(
            f"cannot reach {server.label} while {what}: no DICOM answer (is the server running, "
            "and are the host and port right?)"
        )
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def _lost(assoc: Any, server: Server, what: str) -> PacsError:
    """The error for an association that ended without an answer."""
    if _tcp_reachable(server)[0]:  # still there: it chose to stop talking to us
        return PacsAuthError(
            f"{server.label} broke off the association while {what}: it may not know our AE "
            f"title '{server.calling_aet}' (register it on the server as a DICOM modality, or "
            "choose ours with ?calling=AET)"
        )
    return PacsConnectionError(f"connection to {server.label} was lost while {what}")


def _tcp_reachable(server: Server) -> tuple[bool, str]:
    """Whether anything accepts TCP connections there, to explain a failed association."""
    import socket

    try:
        with socket.create_connection((server.host, server.port), timeout=min(5.0, server.timeout)):
            return True, ""
    except TimeoutError:
        return False, "no answer"
    except ConnectionRefusedError:
        return False, "connection refused"
    except OSError as exc:
        return False, exc.strerror or str(exc)


def _check_context(assoc: Any, server: Server, sop_class: str, service: str) -> None:
    accepted = {cx.abstract_syntax for cx in assoc.accepted_contexts}
    if sop_class not in accepted:
        raise PacsError(f"{server.label} does not offer {service}")


def _status_text(status: Any) -> str:
    code = int(getattr(status, "Status", -1))
    comment = str(status.get("ErrorComment", "") or "") if status else ""
    return f"status 0x{code:04X}" + (f" ({comment})" if comment else "")


def _find(server: Server, identifier: Any, what: str, limit: int | None = None) -> list[Any]:
    from pynetdicom import evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

    ae = _ae(server)
    ae.add_requested_context(FIND)
    found: list[Any] = []
    # the answers are held in memory: a peer that never stops answering meets the answer cap
    transfer = Transfer(f"{server.label} while {what}", cap_field="max_answer_bytes")
    stream_id: list[int] = []

    def on_data(event: Any) -> None:
        with contextlib.suppress(Exception):  # the watchdog's hang-up aborts the association
            transfer.add(len(event.data), stream_id[0] if stream_id else None)

    with _association(server, ae, what, evt_handlers=[(evt.EVT_DATA_RECV, on_data)]) as assoc, \
            transfer.stream(_hang_up(assoc)) as ident:
        stream_id.append(ident)
        _check_context(assoc, server, FIND, "C-FIND (study root)")
        for status, answer in assoc.send_c_find(identifier, FIND):
            transfer.check()
            if not status:
                raise _lost(assoc, server, what)
            code = int(status.Status)
            if code in _PENDING:
                if answer is not None:
                    found.append(answer)
                continue
            if code != 0x0000:
                raise PacsError(f"{server.label} failed while {what}: {_status_text(status)}")
    return found[:limit] if limit else found


def _identifier(level: str, fields: Sequence[str], filters: dict[str, str]) -> Any:
    from pydicom import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword in fields:
        setattr(ds, keyword, "")
    for keyword, value in filters.items():
        setattr(ds, keyword, value)
    return ds


def search_studies(server: Server, query: StudyQuery | None = None) -> list[StudyResult]:
    """C-FIND at study level, newest first."""
    query = query or StudyQuery()
    identifier = _identifier("STUDY", STUDY_FIELDS, query.filters())
    answers = _find(server, identifier, "searching studies (C-FIND)", query.limit)
    return sort_studies([study_from_dataset(ds) for ds in answers])


def search_series(server: Server, study_uid: str) -> list[SeriesResult]:
    identifier = _identifier("SERIES", SERIES_FIELDS, {"StudyInstanceUID": study_uid})
    answers = _find(server, identifier, f"listing the series of study {study_uid} (C-FIND)")
    return sort_series([series_from_dataset(ds) for ds in answers])


def list_instances(
    server: Server, study_uid: str, series_uid: str | None = None
) -> list[tuple[str, str, str]]:
    """(series UID, SOP instance UID, SOP class UID) of each instance, by C-FIND at IMAGE level."""
    filters = {"StudyInstanceUID": study_uid}
    if series_uid:
        filters["SeriesInstanceUID"] = series_uid
    identifier = _identifier(
        "IMAGE", ("SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"), filters
    )
    answers = _find(server, identifier, f"listing the instances of study {study_uid} (C-FIND)")
    return [
        (str(ds.get("SeriesInstanceUID", "")), str(ds.get("SOPInstanceUID", "")),
         str(ds.get("SOPClassUID", "")))
        for ds in answers
        if ds.get("SOPInstanceUID")
    ]


def _storage_classes() -> list[str]:
    from pynetdicom import StoragePresentationContexts

    others = [cx.abstract_syntax for cx in StoragePresentationContexts]
    ordered = list(_PREFERRED_STORAGE) + [uid for uid in others if uid not in _PREFERRED_STORAGE]
    return ordered[: _MAX_CONTEXTS - 1]


def retrieve(
    server: Server,
    study_uid: str,
    series_uid: str | None,
    dest: Path,
    progress: Progress | None = None,
    cancel: Any = None,
) -> int:
    """C-GET a study (or series) into ``dest`` as ``<SOPInstanceUID>.dcm``; returns the count.

    ``progress(done, total)`` runs on this thread; ``cancel`` (threading.Event) aborts the
    association and raises :class:`PacsCancelled`. Callers write into a temporary folder.
    """
    from pynetdicom import build_role, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET

    what = f"series {series_uid} of study {study_uid}" if series_uid else f"study {study_uid}"
    quiet_uid_warnings()
    instances = list_instances(server, study_uid, series_uid)
    if not instances:
        _raise_missing(server, study_uid, series_uid, what)
    if not any(is_image_sop_class(c) for _s, _i, c in instances):
        raise PacsNoImagesError(
            f"{what} on {server.label} holds no images (only reports, key objects or similar)"
        )
    total = len(instances)
    received: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def on_store(event: Any) -> int:
        try:
            path = _write_instance(event, dest)
            with lock:
                received.append(path.stem)
            return 0x0000
        except Exception as exc:  # report it after the transfer, refuse this instance
            errors.append(exc)
            return 0xA700

    transfer = Transfer(
        f"{what} from {server.label}", cancel=cancel,
        cancelled=lambda: PacsCancelled(f"retrieval of {what} from {server.label} was cancelled"),
    )
    stream_id: list[int] = []

    def on_data(event: Any) -> None:  # every PDU, so slow peers and the byte cap are seen
        with contextlib.suppress(Exception):  # the watchdog's hang-up aborts the association
            transfer.add(len(event.data), stream_id[0] if stream_id else None)

    ae = _ae(server)
    ae.add_requested_context(GET)
    roles = []
    for uid in _storage_classes():
        ae.add_requested_context(uid)
        roles.append(build_role(uid, scp_role=True))
    keys = {"StudyInstanceUID": study_uid}
    if series_uid:
        keys["SeriesInstanceUID"] = series_uid
    identifier = _identifier("SERIES" if series_uid else "STUDY", (), keys)
    if progress:
        progress(0, total)
    doing = f"retrieving {what} (C-GET)"
    handlers = [(evt.EVT_C_STORE, on_store), (evt.EVT_DATA_RECV, on_data)]
    with _association(server, ae, doing, ext_neg=roles, evt_handlers=handlers) as assoc, \
            transfer.stream(_hang_up(assoc)) as ident:
        stream_id.append(ident)
        _check_context(assoc, server, GET, "C-GET (study root)")
        for status, _answer in assoc.send_c_get(identifier, GET):
            transfer.check()  # cancelled, too slow or too big: the association is aborted
            if not status:
                transfer.check()
                raise _lost(assoc, server, doing)
            code = int(status.Status)
            if code in _PENDING:
                if progress:
                    progress(min(len(received), total), total)
                continue
            failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
            if code == 0xFE00:
                raise PacsCancelled(f"{server.label} cancelled the retrieval of {what}")
            _raise_unsafe(errors, server)
            if code not in (0x0000, 0xB000) or failed:
                detail = f": {errors[0]}" if errors else ""
                raise PacsError(
                    f"{server.label} failed while {doing}: {_status_text(status)}, "
                    f"{failed} instance(s) not received{detail}"
                )
    transfer.check()
    _raise_unsafe(errors, server)
    if errors:
        raise PacsError(f"cannot write instances retrieved from {server.label}: {errors[0]}")
    if progress:
        progress(len(received), max(total, len(received)))
    if not received:
        raise PacsNoImagesError(f"{server.label} sent no instances for {what}")
    return len(received)


def _hang_up(assoc: Any) -> Callable[[], None]:
    """Abort the association and wake the thread waiting for the peer's next answer.

    pynetdicom's abort does not wake a ``send_c_get`` blocked until the DIMSE timeout; an
    empty message does, and it then reports the association as ended.
    """

    def hang_up() -> None:
        assoc.abort()
        with contextlib.suppress(Exception):
            assoc.dimse.msg_queue.put((None, None))

    return hang_up


def _raise_unsafe(errors: list[BaseException], server: Server) -> None:
    """A peer that sent a hostile file name is the failure to report, before any count."""
    for error in errors:
        if isinstance(error, UnsafePathError):
            raise PacsProtocolError(f"{server.label} sent {error}")


def _write_instance(event: Any, dest: Path) -> Path:
    """Save one instance received by C-STORE as ``<SOPInstanceUID>.dcm``, bytes as sent.

    The UID is the peer's word, so it must be a DICOM UID and the path must stay in ``dest``.
    """
    uid = str(event.request.AffectedSOPInstanceUID or "").strip("\x00 ")
    if not is_dicom_uid(uid):
        raise UnsafePathError(
            f"an instance whose SOPInstanceUID {uid[:80]!r} is not a valid DICOM UID; refused "
            "(nothing was written outside the cache)"
        )
    path = child_path(dest, f"{uid}.dcm")
    path.write_bytes(event.encoded_dataset(include_meta=True))
    return path


def _raise_missing(server: Server, study_uid: str, series_uid: str | None, what: str) -> None:
    if not search_studies(server, StudyQuery(study_uid=study_uid)):
        raise PacsNotFoundError(f"{server.label} has no study {study_uid}")
    if series_uid and series_uid not in {s.series_uid for s in search_series(server, study_uid)}:
        raise PacsNotFoundError(f"{server.label} has no series {series_uid} in study {study_uid}")
    raise PacsNoImagesError(f"{what} on {server.label} holds no instances")


def store(server: Server, datasets: Sequence[Any]) -> int:
    """C-STORE each dataset; returns how many were stored, raises on the first refusal."""
    datasets = list(datasets)
    if not datasets:
        return 0
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    ae = _ae(server)
    contexts: dict[str, set[str]] = {}
    for ds in datasets:
        meta = getattr(ds, "file_meta", None)
        syntax = str(getattr(meta, "TransferSyntaxUID", "") or ExplicitVRLittleEndian)
        contexts.setdefault(str(ds.SOPClassUID), set()).update(
            {syntax, ExplicitVRLittleEndian, ImplicitVRLittleEndian}
        )
    if len(contexts) >= _MAX_CONTEXTS:
        raise PacsError(f"too many kinds of instances to send to {server.label} at once")
    for uid, syntaxes in contexts.items():
        ae.add_requested_context(uid, sorted(syntaxes))
    stored = 0
    doing = "storing instances (C-STORE)"
    with _association(server, ae, doing) as assoc:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            if not status:
                raise _lost(assoc, server, doing)
            code = int(status.Status)
            if code != 0x0000 and (code >> 12) != 0xB:
                raise PacsError(
                    f"{server.label} refused instance {ds.get('SOPInstanceUID', '?')}: "
                    f"{_status_text(status)}"
                )
            stored += 1
    return stored


def echo(server: Server) -> None:
    """C-ECHO: raises a PacsError unless the server answers."""
    from pynetdicom.sop_class import Verification

    ae = _ae(server)
    ae.add_requested_context(Verification)
    with _association(server, ae, "checking the connection (C-ECHO)") as assoc:
        status = assoc.send_c_echo()
        if not status or int(status.Status) != 0:
            raise PacsError(f"{server.label} did not confirm C-ECHO")
