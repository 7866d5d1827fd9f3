"""Control characters in DICOM strings, labels, server replies and file names reach the
terminal as visible escapes, through the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest

from mprviewer.synthetic import writer as synthetic
from mprviewer.terminal import escape_controls
from tests.local_http import serving

CLEAR = "\x1b[2J"  # clears the screen
TITLE = "\x1b]0;pwned\x07"  # retitles the terminal window
CSI8 = "\x9b31m"  # the one-byte C1 form of ESC [
RLO = "\u202e"  # right-to-left override: makes "exe.txt" read "txt.exe"
EVIL = f"Doe{CLEAR}{TITLE}^Jane{CSI8}{RLO}\r"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k != "DISPLAY" and not k.startswith("MPRVIEWER_PACS_")}
    return subprocess.run([sys.executable, "-m", "mprviewer", *args], capture_output=True,
                          env=env, cwd=cwd, timeout=120)


def assert_no_raw_controls(data: bytes) -> None:
    text = data.decode("utf-8")
    for bad in ("\x1b", "\x07", "\x9b", RLO, "\r"):
        assert bad not in text, (bad, text)


def test_escape_controls_shows_every_control_and_keeps_layout():
    assert escape_controls(EVIL) == "Doe\\x1b[2J\\x1b]0;pwned\\x07^Jane\\x9b31m\\u202e\\x0d"
    assert escape_controls("a\tb\nc") == "a\tb\nc"
    assert escape_controls("Müller^Zoë 李") == "Müller^Zoë 李"
    assert escape_controls(escape_controls(EVIL)) == escape_controls(EVIL)


def test_info_shows_a_hostile_series_description_escaped(tmp_path):
    synthetic.write_series(tmp_path / "s", np.zeros((3, 4, 4), np.int16),
                           description=f"Chest{CLEAR}{TITLE}",
                           seed="esc")
    result = run_cli("info", str(tmp_path / "s"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_no_raw_controls(result.stdout + result.stderr)
    assert "Chest\\x1b[2J\\x1b]0;pwned\\x07" in result.stdout.decode()


def test_error_messages_show_a_hostile_file_name_escaped(tmp_path):
    name = f"scan{CLEAR}{RLO}gpj.dcm"
    result = run_cli("info", str(tmp_path / name), cwd=tmp_path)
    assert result.returncode == 3
    assert_no_raw_controls(result.stderr)
    assert "scan\\x1b[2J\\u202egpj.dcm" in result.stderr.decode()


def test_annotations_show_escapes_labels_and_series_names(tmp_path):
    path = tmp_path / "marks.json"
    path.write_text(json.dumps({f"CT{CLEAR}": {"Anomaly": f"Bleed{TITLE}", "Slices": "1-3"}}))
    result = run_cli("annotations", "show", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_no_raw_controls(result.stdout + result.stderr)
    out = result.stdout.decode()
    assert "CT\\x1b[2J" in out and "Bleed\\x1b]0;pwned\\x07" in out


STUDY_UID = "1.2.826.0.1.3680043.8.498.1"


class HostileQido(BaseHTTPRequestHandler):
    """A DICOMweb server whose study search answers with escape sequences in the names."""

    def do_GET(self) -> None:
        study = {
            "0020000D": {"vr": "UI", "Value": [STUDY_UID]},
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": EVIL}]},
            "00100020": {"vr": "LO", "Value": [f"P{CLEAR}1"]},
            "00081030": {"vr": "LO", "Value": [f"Head{TITLE}"]},
            "00080020": {"vr": "DA", "Value": ["20240115"]},
        }
        body = json.dumps([study] if "/studies" in self.path else []).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("as_json", [False, True])
def test_pacs_search_escapes_what_the_server_sends(tmp_path, as_json):
    with serving(HostileQido) as url:
        args = ["pacs", "search", "--server", url + "/dicom-web"]
        result = run_cli(*args, *(["--json"] if as_json else []), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_no_raw_controls(result.stdout + result.stderr)
    out = result.stdout.decode()
    if as_json:
        (record,) = json.loads(out)
        # JSON keeps the value (PN drops trailing spaces and controls) in JSON's own escapes
        assert record["patient_name"] == EVIL.rstrip("\r")
    else:
        assert "Doe\\x1b[2J" in out and "Head\\x1b]0;pwned\\x07" in out and STUDY_UID in out
