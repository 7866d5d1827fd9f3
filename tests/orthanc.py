"""A real Orthanc server on 127.0.0.1 for the PACS tests.

Orthanc and its DICOMweb plugin come from the Debian packages ``orthanc`` and ``orthanc-dicomweb``
(scripts/setup installs them). Each server gets free HTTP and DICOM ports and its own temporary
storage, so test modules never see each other's studies.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import requests

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
ORTHANC_AET = "ORTHANCTEST"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def orthanc_available() -> str | None:
    """None when Orthanc and its DICOMweb plugin are installed, else what is missing."""
    if not (os.path.exists(ORTHANC) and os.access(ORTHANC, os.X_OK)):
        return "Orthanc is not installed (Debian package 'orthanc'; run scripts/setup)"
    if not os.path.exists(DICOMWEB_PLUGIN):
        return "the Orthanc DICOMweb plugin is missing (Debian package 'orthanc-dicomweb')"
    return None


class Orthanc:
    """One Orthanc process with its own ports and storage; ``stop()`` removes everything."""

    def __init__(
        self,
        users: dict[str, str] | None = None,
        modalities: dict[str, tuple[str, int]] | None = None,
    ) -> None:
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.aet = ORTHANC_AET
        self.users = dict(users or {})
        self.modalities = dict(modalities or {})
        self.workdir = Path(tempfile.mkdtemp(prefix="mprviewer-orthanc-"))
        self.process: subprocess.Popen | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.http_url}/dicom-web"

    @property
    def dimse_spec(self) -> str:
        return f"dimse://{self.aet}@127.0.0.1:{self.dicom_port}"

    @property
    def auth(self) -> tuple[str, str] | None:
        if not self.users:
            return None
        user, password = next(iter(self.users.items()))
        return user, password

    def config(self) -> dict:
        storage = self.workdir / "storage"
        return {
            "Name": "mprviewer-test",
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(self.users),
            "RegisteredUsers": self.users,
            "Plugins": [DICOMWEB_PLUGIN],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "StudiesMetadata": "Full"},
            "DicomModalities": {
                name: [aet, "127.0.0.1", port] for name, (aet, port) in self.modalities.items()
            },
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowGet": False,
            "DicomAlwaysAllowMove": False,
            "DicomAlwaysAllowStore": True,
            "UnknownSopClassAccepted": True,
            "HttpTimeout": 10,
            "HttpThreadsCount": 8,
            "ConcurrentJobs": 1,
            "StableAge": 1,
            "LimitFindResults": 0,
            "LimitFindInstances": 0,
            "StorageCompression": False,
            "SaveJobs": False,
        }

    def start(self, timeout: float = 30.0) -> Orthanc:
        """Start the server and wait until its REST API answers."""
        missing = orthanc_available()
        if missing:
            raise RuntimeError(missing)
        config_path = self.workdir / "orthanc.json"
        config_path.write_text(json.dumps(self.config(), indent=2))
        log = open(self.workdir / "orthanc.log", "wb")  # noqa: SIM115 - kept for the process
        self.process = subprocess.Popen(
            [ORTHANC, "--no-jobs", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start-up:\n{self.log_tail()}")
            try:
                response = requests.get(f"{self.http_url}/system", auth=self.auth, timeout=1)
                if response.status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        path = self.workdir / "orthanc.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """Stop the process at once (simulates a server that goes away), keep the storage."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server and remove its storage."""
        self.kill()  # a clean shutdown takes seconds, and the storage is thrown away anyway
        shutil.rmtree(self.workdir, ignore_errors=True)

    def upload(self, files: Iterable[str | Path]) -> list[str]:
        """Store DICOM files through the REST API; returns Orthanc's instance ids."""
        ids = []
        with requests.Session() as session:
            session.auth = self.auth
            for path in files:
                response = session.post(
                    f"{self.http_url}/instances", data=Path(path).read_bytes(), timeout=30
                )
                response.raise_for_status()
                ids.append(response.json()["ID"])
        return ids

    def rest(self, path: str) -> object:
        """GET a JSON resource from the REST API."""
        response = requests.get(f"{self.http_url}{path}", auth=self.auth, timeout=10)
        response.raise_for_status()
        return response.json()

    def __enter__(self) -> Orthanc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
