"""`mprviewer serve` without a browser: who gets in, what it imports, what it refuses."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aiohttp
import pytest
import requests

from tests.web_server import running_server, server_home

pytestmark = pytest.mark.slow


def test_serve_and_the_page_import_no_qt() -> None:
    """Installing for the server needs no PyQt5: nothing of the web path imports Qt."""
    code = (
        "import sys\n"
        "import mprviewer.cli, mprviewer.commands.serve\n"
        "import mprviewer.web.launcher, mprviewer.web.app\n"
        "mprviewer.cli.build_parser(only='serve')\n"
        "banned = {'PyQt5', 'pyvistaqt', 'qtpy', 'PySide2', 'PySide6'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & banned))\n"
        "print('trame' in sys.modules, 'vtkmodules' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "True True"  # the check did load the page and its scenes


def test_the_launcher_itself_loads_neither_trame_nor_vtk() -> None:
    """The listening process stays small: trame and VTK load in the session processes."""
    code = (
        "import sys, mprviewer.commands.serve, mprviewer.web.launcher, mprviewer.web.entry\n"
        "print(sorted(m for m in ('trame', 'vtkmodules', 'PyQt5') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


async def _ws_status(url: str, cookies: dict[str, str]) -> int:
    async with aiohttp.ClientSession(cookies=cookies) as session:
        try:
            async with session.ws_connect(url) as ws:
                await ws.close()
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def test_every_page_and_websocket_needs_the_token(tmp_path_factory) -> None:
    with running_server(server_home(tmp_path_factory)) as server:
        assert server.url.startswith(server.base + "/?token=")
        assert len(server.token) >= 40
        # No token, or a wrong one: refused, for the front page and anything below it.
        for path in ("/", "/s/abcdefghijklmnopqrstuvwx/index.html", "/status", "/s/x/ws"):
            assert requests.get(server.base + path, timeout=10).status_code == 401, path
            wrong = requests.get(server.base + path, params={"token": server.token[:-1] + "0"},
                                 timeout=10)
            assert wrong.status_code == 403, path
        # The right token: a session starts, and the redirect sets the cookie.
        http = requests.Session()
        first = http.get(server.url, allow_redirects=False, timeout=60)
        assert first.status_code == 302
        location = first.headers["Location"]
        assert location.startswith("/s/") and "secret=" in location
        page = http.get(server.base + location, timeout=30)
        assert page.status_code == 200 and "<html" in page.text.lower()
        ws_url = server.base + location.split("index.html")[0] + "ws"
        # A raw websocket: refused without the cookie or with a wrong one, accepted with it.
        cookie_name = next(iter(http.cookies.keys()))
        assert asyncio.run(_ws_status(ws_url, {})) == 401
        assert asyncio.run(_ws_status(ws_url, {cookie_name: "0" * 48})) == 403
        assert asyncio.run(_ws_status(ws_url, {cookie_name: server.token})) == 101
        # The same page without the cookie is refused too.
        assert requests.get(server.base + location, timeout=10).status_code == 401
        status = http.get(server.base + "/status", timeout=10).json()
        assert len(status["sessions"]) == 1


def test_password_file_replaces_the_token(tmp_path_factory, tmp_path) -> None:
    secret = tmp_path / "password"
    secret.write_text("correct horse battery\n")
    with running_server(server_home(tmp_path_factory), "--password-file", str(secret)) as server:
        assert "token=" not in server.url
        login = requests.get(server.base + "/", timeout=10)
        assert login.status_code == 401 and "password" in login.text
        bad = requests.post(server.base + "/login", data={"password": "wrong one!"},
                            allow_redirects=False, timeout=10)
        assert bad.status_code == 403
        http = requests.Session()
        good = http.post(server.base + "/login", data={"password": "correct horse battery"},
                         allow_redirects=False, timeout=10)
        assert good.status_code == 303
        assert http.get(server.base + "/status", timeout=10).status_code == 200


@pytest.mark.parametrize(("args", "message"), [
    (["--password-file", "/nonexistent/pw"], "cannot read the password file"),
    (["--port", "70000"], "a port is a number from 0 to 65535"),
    (["/nonexistent/study.zip"], "no such file or folder"),
])
def test_bad_serve_arguments_say_why_in_one_line(args, message, tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "mprviewer", "serve", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_short_password_is_refused(tmp_path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("short\n")
    result = subprocess.run([sys.executable, "-m", "mprviewer", "serve", "--password-file",
                             str(secret)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3 and "at least 8 characters" in result.stderr


async def _held_socket(url: str, cookies: dict[str, str], seconds: float) -> str:
    """Open the session's websocket, send nothing, and say how it ended."""
    async with aiohttp.ClientSession(cookies=cookies) as session, session.ws_connect(url) as ws:
        try:
            msg = await asyncio.wait_for(ws.receive(), timeout=seconds)
        except asyncio.TimeoutError:
            return "still open"
        while msg.type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                               aiohttp.WSMsgType.CLOSING):
            msg = await asyncio.wait_for(ws.receive(), timeout=seconds)
        return "closed by the server"


def test_an_idle_session_ends_after_the_idle_timeout(tmp_path_factory) -> None:
    # 0.05 minutes = 3 s idle; a long close grace, so only idleness can end it.
    with running_server(server_home(tmp_path_factory), "--idle-timeout", "0.05",
                        close_grace=120) as server:
        http = requests.Session()
        location = http.get(server.url, allow_redirects=False, timeout=60).headers["Location"]
        (row,) = http.get(server.base + "/status", timeout=10).json()["sessions"]
        ws_url = server.base + location.split("index.html")[0] + "ws"
        cookies = {name: value for name, value in http.cookies.items()}
        assert asyncio.run(_held_socket(ws_url, cookies, 20)) == "closed by the server"
        assert http.get(server.base + "/status", timeout=10).json()["sessions"] == []
        assert http.get(server.base + location, timeout=10).status_code == 410
        from pathlib import Path

        assert not Path(f"/proc/{row['pid']}").exists() or "Z" in Path(
            f"/proc/{row['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_uploads_are_capped_like_downloads(tmp_path_factory) -> None:
    with running_server(server_home(tmp_path_factory),
                        env={"MPRVIEWER_MAX_DOWNLOAD_BYTES": "4K"}) as server:
        http = requests.Session()
        location = http.get(server.url, allow_redirects=False, timeout=60).headers["Location"]
        upload = server.base + location.split("index.html")[0] + "upload"
        small = http.post(upload, params={"name": "../../small.zip"}, data=b"PK" + b"0" * 100,
                          timeout=30)
        assert small.status_code == 200
        assert small.json() == {"file": "small.zip", "size": 102}  # no way out of its folder
        big = http.post(upload, params={"name": "big.zip"}, data=b"0" * 10_000, timeout=30)
        assert big.status_code == 413
        assert "big.zip: larger than the upload limit of 4 KiB" in big.json()["error"]
        assert "MPRVIEWER_MAX_DOWNLOAD_BYTES" in big.json()["error"]
        # Without the cookie nothing can be uploaded.
        assert requests.post(upload, data=b"PK", timeout=30).status_code == 401
