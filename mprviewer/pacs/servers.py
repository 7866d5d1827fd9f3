"""Which server to talk to: parsing server specs, saved servers and their credentials.

A server is written as

- ``http(s)://host:port/dicom-web``: the root of a DICOMweb service (QIDO-RS, WADO-RS, STOW-RS);
- ``dimse://AET@host:port``: a DIMSE peer (C-FIND, C-GET, C-STORE) whose AE title is AET; our own
  (calling) AE title is ``MPRVIEWER`` unless ``?calling=MYAET`` is appended;
- the name of a server saved in the per-user file ``pacs.json`` in ``mprviewer.paths.data_dir()``.

Credentials come from the saved entry, or else from the environment (``MPRVIEWER_PACS_USER``,
``MPRVIEWER_PACS_PASSWORD``, ``MPRVIEWER_PACS_TOKEN``). They are kept out of ``repr``, labels and
error messages, and the file is written readable by its owner only.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from mprviewer.io.remote import url_label
from mprviewer.pacs.errors import PacsError

DEFAULT_CALLING_AET = "MPRVIEWER"
DEFAULT_TIMEOUT = 30.0
CONFIG_NAME = "pacs.json"
ENV_USER = "MPRVIEWER_PACS_USER"
ENV_PASSWORD = "MPRVIEWER_PACS_PASSWORD"
ENV_TOKEN = "MPRVIEWER_PACS_TOKEN"
ENV_CALLING_AET = "MPRVIEWER_PACS_AET"

_AET_RE = re.compile(r"^[\x20-\x7e]{1,16}$")
_SPEC_HELP = (
    "use http(s)://host:port/dicom-web for a DICOMweb server, dimse://AET@host:port for a "
    "DIMSE peer, or the name of a saved server"
)


@dataclass(frozen=True)
class Server:
    """A DICOMweb root or a DIMSE peer, with optional credentials that never show in text."""

    kind: str  # "dicomweb" or "dimse"
    url: str = ""  # DICOMweb root without credentials or trailing slash
    host: str = ""
    port: int = 0
    called_aet: str = ""
    calling_aet: str = DEFAULT_CALLING_AET
    name: str = ""
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False, compare=False)
    token: str | None = field(default=None, repr=False, compare=False)
    verify: bool | str = True  # TLS certificate check: False, True or a CA bundle path
    timeout: float = DEFAULT_TIMEOUT

    @property
    def address(self) -> str:
        """The server written as a spec, without credentials (safe to print and log)."""
        if self.kind == "dicomweb":
            return self.url
        return f"dimse://{self.called_aet}@{self.host}:{self.port}"

    @property
    def label(self) -> str:
        """How messages name the server: its saved name and address, never credentials."""
        return f"{self.name} ({self.address})" if self.name else self.address

    @property
    def cache_key(self) -> str:
        """Identity of the server's data for the cache (same data whoever asks)."""
        return self.address

    @property
    def has_credentials(self) -> bool:
        return bool(self.token or self.username)

    def with_credentials(
        self, username: str | None = None, password: str | None = None, token: str | None = None
    ) -> Server:
        return replace(self, username=username, password=password, token=token)

    def __str__(self) -> str:
        return self.label


def _clean_aet(value: str, what: str, spec: str) -> str:
    aet = unquote(value).strip()
    if not aet or not _AET_RE.match(aet) or "\\" in aet:
        raise PacsError(
            f"'{url_label(spec)}': the {what} AE title '{aet}' is not valid: "
            "use 1 to 16 printable characters without backslash"
        )
    return aet


def _parse_port(parts: Any, spec: str, default: int | None) -> int:
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is None:
        if default is None:
            raise PacsError(f"'{url_label(spec)}' has no port: write it as dimse://AET@host:port")
        return default
    if not 0 < port < 65536:
        raise PacsError(f"'{url_label(spec)}' has an invalid port: {_SPEC_HELP}")
    return port


def parse_server(spec: str | Server, *, name: str = "", use_env: bool = True) -> Server:
    """Turn a spec (URL, dimse:// address or saved server name) into a :class:`Server`.

    Credentials from the URL or the saved entry win; otherwise, with ``use_env``, the
    ``MPRVIEWER_PACS_*`` variables fill them in.
    """
    if isinstance(spec, Server):
        return _with_env(spec) if use_env else spec
    text = str(spec).strip()
    if not text:
        raise PacsError(f"no server given: {_SPEC_HELP}")
    if "://" not in text:
        saved = find_saved_server(text)
        if saved is None:
            raise PacsError(f"'{text}' is not a saved server nor a server address: {_SPEC_HELP}")
        return _with_env(saved) if use_env else saved
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise PacsError(f"'{url_label(text)}' is not a valid server address: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        server = _parse_dicomweb(text, parts, name)
    elif scheme == "dimse":
        server = _parse_dimse(text, parts, name)
    else:
        raise PacsError(f"'{url_label(text)}': unknown scheme '{parts.scheme}': {_SPEC_HELP}")
    return _with_env(server) if use_env else server


def _parse_dicomweb(text: str, parts: Any, name: str) -> Server:
    if not parts.hostname:
        raise PacsError(f"'{url_label(text)}' has no host name: {_SPEC_HELP}")
    port = _parse_port(parts, text, 443 if parts.scheme.lower() == "https" else 80)
    host = parts.hostname
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{port}"
    url = urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return Server(
        kind="dicomweb", url=url, host=host, port=port, name=name,
        username=username, password=password,
    )


def _parse_dimse(text: str, parts: Any, name: str) -> Server:
    if not parts.hostname:
        raise PacsError(f"'{url_label(text)}' has no host name: write it as dimse://AET@host:port")
    if "@" not in parts.netloc:
        raise PacsError(
            f"'{text}' names no AE title: write it as dimse://AET@host:port "
            "(AET is the server's AE title)"
        )
    userinfo = parts.netloc.rsplit("@", 1)[0]
    if ":" in userinfo:
        raise PacsError(
            f"'{url_label(text)}': DIMSE addresses take no password; write dimse://AET@host:port "
            "(AET is the server's AE title)"
        )
    called = _clean_aet(userinfo, "called", text)
    query = parse_qs(parts.query)
    calling_values = query.get("calling") or query.get("aet")
    calling = calling_values[0] if calling_values else os.environ.get(ENV_CALLING_AET, "")
    calling = _clean_aet(calling, "calling", text) if calling else DEFAULT_CALLING_AET
    port = _parse_port(parts, text, None)
    return Server(
        kind="dimse", host=parts.hostname, port=port, called_aet=called, calling_aet=calling,
        name=name,
    )


def _with_env(server: Server) -> Server:
    """Fill in credentials from the environment when the server has none of its own."""
    if server.kind != "dicomweb" or server.has_credentials:
        return server
    token = os.environ.get(ENV_TOKEN) or None
    user = os.environ.get(ENV_USER) or None
    password = os.environ.get(ENV_PASSWORD) or None
    if token or user:
        return server.with_credentials(username=user, password=password, token=token)
    return server


# --- saved servers -----------------------------------------------------------------------------


def config_path() -> Path:
    """The per-user file holding saved servers (and their credentials, owner-readable only)."""
    from mprviewer.paths import data_dir

    return data_dir() / CONFIG_NAME


def load_config() -> dict[str, Any]:
    """The saved configuration; a missing file is an empty one, a broken file an error."""
    path = config_path()
    if not path.exists():
        return {"servers": []}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PacsError(
            f"the PACS settings file {path} cannot be read ({exc}); fix or delete it"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("servers", []), list):
        raise PacsError(
            f"the PACS settings file {path} is not in the expected form "
            '({"servers": [...]}); fix or delete it'
        )
    data.setdefault("servers", [])
    return data


def save_config(data: dict[str, Any]) -> Path:
    """Write the configuration atomically, readable by its owner only."""
    path = config_path()
    try:
        fd, tmp = tempfile.mkstemp(prefix=".pacs-", suffix=".json", dir=path.parent)
    except OSError as exc:
        raise PacsError(f"the PACS settings cannot be saved in {path.parent}: "
                        f"{exc.strerror or exc}; set MPRVIEWER_HOME to a folder you can "
                        "write to") from None
    try:
        os.chmod(tmp, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _server_from_entry(entry: dict[str, Any]) -> Server:
    name = str(entry.get("name", "")).strip()
    spec = str(entry.get("url") or entry.get("address") or "")
    if not spec and entry.get("host"):
        spec = f"dimse://{entry.get('aet', '')}@{entry['host']}:{entry.get('port', 104)}"
    server = parse_server(spec, name=name, use_env=False)
    changes: dict[str, Any] = {}
    if entry.get("calling_aet") and server.kind == "dimse":
        changes["calling_aet"] = _clean_aet(str(entry["calling_aet"]), "calling", spec)
    for key in ("username", "password", "token"):
        if entry.get(key):
            changes[key] = str(entry[key])
    if "verify" in entry:
        changes["verify"] = entry["verify"]
    if entry.get("timeout"):
        changes["timeout"] = float(entry["timeout"])
    return replace(server, **changes)


def saved_servers() -> list[Server]:
    """The servers saved in the per-user settings file, in their saved order."""
    servers = []
    for entry in load_config()["servers"]:
        if isinstance(entry, dict):
            servers.append(_server_from_entry(entry))
    return servers


def find_saved_server(name: str) -> Server | None:
    for server in saved_servers():
        if server.name == name:
            return server
    return None


def save_server(server: Server, *, keep_credentials: bool = True) -> Path:
    """Add or replace (by name) a saved server; returns the settings file."""
    if not server.name:
        raise PacsError(f"a saved server needs a name ({server.address})")
    entry: dict[str, Any] = {"name": server.name, "url": server.address}
    if server.kind == "dimse" and server.calling_aet != DEFAULT_CALLING_AET:
        entry["calling_aet"] = server.calling_aet
    if keep_credentials:
        for key in ("username", "password", "token"):
            value = getattr(server, key)
            if value:
                entry[key] = value
    if server.verify is not True:
        entry["verify"] = server.verify
    if server.timeout != DEFAULT_TIMEOUT:
        entry["timeout"] = server.timeout
    data = load_config()
    data["servers"] = [
        e for e in data["servers"] if not (isinstance(e, dict) and e.get("name") == server.name)
    ]
    data["servers"].append(entry)
    return save_config(data)


def remove_saved_server(name: str) -> bool:
    data = load_config()
    kept = [e for e in data["servers"] if not (isinstance(e, dict) and e.get("name") == name)]
    if len(kept) == len(data["servers"]):
        return False
    data["servers"] = kept
    save_config(data)
    return True


def describe(server: Server) -> dict[str, Any]:
    """A printable summary: which credentials are set, never their values."""
    summary = {k: v for k, v in asdict(server).items() if k not in ("password", "token")}
    summary["address"] = server.address
    summary["password"] = "set" if server.password else ""
    summary["token"] = "set" if server.token else ""
    return summary
