"""PACS peers that misbehave on purpose, on loopback: a DICOMweb server and a DIMSE C-GET peer.

Both serve instances built here with whatever UIDs and descriptions a test asks for (``../../x``
included), and the DICOMweb one can stream a part that never ends, or trickle its answer.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from tests.local_http import serving

STUDY = "1.2.826.0.1.3680043.8.498.7001"
SERIES = "1.2.826.0.1.3680043.8.498.7001.1"
BOUNDARY = "hostile-boundary-7f3a"


@dataclass
class Instance:
    sop_uid: str
    series_uid: str = SERIES
    study_uid: str = STUDY
    number: int = 1
    description: str = "plain"
    slice_index: int = 0
    cut: int = 0  # bytes dropped from the end of the encoded file (a part cut short)

    def dataset(self) -> pydicom.Dataset:
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = self.sop_uid
        ds.StudyInstanceUID = self.study_uid
        ds.SeriesInstanceUID = self.series_uid
        ds.SeriesNumber = self.number
        ds.SeriesDescription = self.description
        ds.InstanceNumber = self.slice_index + 1
        ds.Modality = "CT"
        ds.PatientName = "HOSTILE^TEST"
        ds.PatientID = "H-1"
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0, 0, 2.0 * self.slice_index]
        ds.PixelSpacing = [1, 1]
        ds.SliceThickness = 2
        ds.Rows = ds.Columns = 8
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.PixelData = (np.arange(64, dtype=np.uint16) + 100 * self.slice_index).tobytes()
        return ds

    def encoded(self) -> bytes:
        buffer = io.BytesIO()
        with _lenient_writing():
            self.dataset().save_as(buffer, enforce_file_format=True)
        data = buffer.getvalue()
        return data[: len(data) - self.cut]


@contextlib.contextmanager
def _lenient_writing() -> Iterator[None]:
    """pydicom refuses to write a UID like ``../../x``; a hostile server has no such scruples."""
    config = pydicom.config.settings
    saved = config.writing_validation_mode
    config.writing_validation_mode = pydicom.config.IGNORE
    try:
        yield
    finally:
        config.writing_validation_mode = saved


def qido_json(instances: list[Instance]) -> bytes:
    return json.dumps([
        {"0020000E": {"vr": "UI", "Value": [inst.series_uid]},
         "00080018": {"vr": "UI", "Value": [inst.sop_uid]},
         "00080016": {"vr": "UI", "Value": [CTImageStorage]}}
        for inst in instances
    ]).encode()


@dataclass
class WebBehaviour:
    """What the fake DICOMweb server does when asked for a series."""

    instances: list[Instance] = field(default_factory=list)
    endless: bool = False  # one part that never ends
    endless_search: bool = False  # a QIDO answer that never ends
    bare: bool = False  # the first instance alone as application/dicom, not multipart
    trickle: float = 0.0  # seconds between single bytes of the answer (0: all at once)
    sent: list[int] = field(default_factory=lambda: [0])  # bytes of series answers sent
    disconnected: threading.Event = field(default_factory=threading.Event)


def dicomweb_handler(behaviour: WebBehaviour) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path.endswith("/instances") and behaviour.endless_search:
                self.send_response(200)
                self.send_header("Content-Type", "application/dicom+json")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    self._send(b"[")
                    item = qido_json(behaviour.instances)[1:-1] + b","
                    while True:
                        self._send(item * 512)
                except OSError:
                    behaviour.disconnected.set()
                return
            if path.endswith("/instances"):
                body = qido_json(behaviour.instances)
                self.send_response(200)
                self.send_header("Content-Type", "application/dicom+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if "/series/" in path:
                self._series()
                return
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _series(self) -> None:
            if behaviour.bare:
                body = behaviour.instances[0].encoded()
                self.send_response(200)
                self.send_header("Content-Type", "application/dicom")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self._send(body)
                return
            self.send_response(200)
            self.send_header("Content-Type", f'multipart/related; type="application/dicom"; '
                                             f"boundary={BOUNDARY}")
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                if behaviour.endless:
                    self._send(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode())
                    self._send(behaviour.instances[0].encoded())
                    block = b"\x00" * 65536
                    while True:
                        self._send(block)
                body = b"".join(
                    f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                    + inst.encoded() + b"\r\n" for inst in behaviour.instances
                ) + f"--{BOUNDARY}--\r\n".encode()
                if behaviour.trickle:
                    for i in range(len(body)):
                        self._send(body[i:i + 1])
                        time.sleep(behaviour.trickle)
                else:
                    self._send(body)
            except OSError:
                behaviour.disconnected.set()

        def _send(self, data: bytes) -> None:
            self.wfile.write(data)
            self.wfile.flush()
            behaviour.sent[0] += len(data)

    return Handler


@contextlib.contextmanager
def dicomweb_server(behaviour: WebBehaviour) -> Iterator[str]:
    """Yields the DICOMweb root, ``http://127.0.0.1:PORT/dicom-web``."""
    with serving(dicomweb_handler(behaviour)) as base:
        yield f"{base}/dicom-web"


@contextlib.contextmanager
def dimse_peer(instances: list[Instance], aet: str = "HOSTILE",
               stall: float = 0.0, endless_find: bool = False) -> Iterator[str]:
    """A C-FIND/C-GET peer on a free loopback port; yields ``dimse://AET@127.0.0.1:PORT``.

    ``stall`` seconds of silence before the first instance of a C-GET (cut short when the
    peer is shut down). ``endless_find`` answers C-FIND with the same instances over and over
    until the association ends.
    """
    closing = threading.Event()
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import (
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelGet,
    )

    def on_find(event: Any) -> Iterator[tuple[int, object]]:
        rounds = 0
        while rounds == 0 or endless_find:
            rounds += 1
            for inst in instances:
                if closing.is_set() or not event.assoc.is_established:
                    return
                yield 0xFF00, _answer(inst)
        yield 0x0000, None

    def _answer(inst: Instance) -> pydicom.Dataset:
        answer = pydicom.Dataset()
        answer.QueryRetrieveLevel = "IMAGE"
        answer.StudyInstanceUID = inst.study_uid
        answer.SeriesInstanceUID = inst.series_uid
        answer.SOPInstanceUID = inst.sop_uid
        answer.SOPClassUID = CTImageStorage
        return answer

    def on_get(event: object) -> Iterator[object]:
        yield len(instances)
        if stall and closing.wait(stall):
            return
        for inst in instances:
            with _lenient_writing():
                ds = inst.dataset()
            yield 0xFF00, ds

    ae = AE(ae_title=aet)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_supported_context(CTImageStorage, ExplicitVRLittleEndian, scu_role=True,
                             scp_role=True)
    server = ae.start_server(("127.0.0.1", 0), block=False,
                             evt_handlers=[(evt.EVT_C_FIND, on_find), (evt.EVT_C_GET, on_get)])
    try:
        yield f"dimse://{aet}@127.0.0.1:{server.server_address[1]}"
    finally:
        closing.set()
        server.shutdown()
