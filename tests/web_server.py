"""`mprviewer serve` run as a reader runs it, and Debian's chromium driven by playwright.

``running_server`` starts the real command on a free loopback port and stops it at the
end; every process it started (launcher, forkserver, one per session) carries a marker in
its environment, and the helper fails the test if any of them is still alive afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.orthanc import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
URL_RE = re.compile(r"(http://\S+)")


@dataclass
class Server:
    url: str  # with ?token=
    base: str  # http://127.0.0.1:PORT
    token: str
    process: subprocess.Popen
    marker: str
    log: Path


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds ``MPRVIEWER_TEST_MARKER=marker``."""
    found = []
    needle = f"MPRVIEWER_TEST_MARKER={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


@contextlib.contextmanager
def running_server(home: Path, *args: str, close_grace: float = 2.0,
                   env: dict[str, str] | None = None) -> Iterator[Server]:
    """``mprviewer serve ARGS`` on a free port until the block ends; nothing left behind."""
    port = free_port()
    marker = uuid.uuid4().hex
    env = dict(os.environ, **(env or {}), MPRVIEWER_HOME=str(home),
               MPRVIEWER_TEST_MARKER=marker)
    # stderr goes to a file: a pipe nobody reads would block the server once full.
    log = home / f"serve-{port}.log"
    with log.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "mprviewer", "serve", "--port", str(port),
             "--close-grace", str(close_grace), *args],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env,
        )
    try:
        line = process.stdout.readline() if process.stdout else ""
        match = URL_RE.search(line)
        if match is None:
            process.kill()
            process.wait()
            raise AssertionError(f"serve printed {line!r}; stderr: {log.read_text()}")
        url = match.group(1)
        token = url.split("token=", 1)[1] if "token=" in url else ""
        yield Server(url=url, base=f"http://127.0.0.1:{port}", token=token, process=process,
                     marker=marker, log=log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        deadline = time.monotonic() + 10
        left = processes_with(marker)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = processes_with(marker)
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        assert not left, f"processes of the server still alive after it stopped: {left}"


def server_home(factory) -> Path:
    """A data folder whose demo cache is the one the whole test run shares."""
    home = factory.mktemp("serve-home")
    shared = factory.getbasetemp() / "shared-demo"
    shared.mkdir(exist_ok=True)
    (home / "demo").symlink_to(shared, target_is_directory=True)
    return home


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """Debian's chromium under playwright (never a browser playwright downloads)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
