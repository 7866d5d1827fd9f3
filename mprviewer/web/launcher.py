"""The one listening process of ``mprviewer serve``: access check, one process per tab, proxy.

Why a process per tab rather than trame's multi-client mode in one process: a reader's VTK
render windows, loaded volumes and marks live in their own address space, so nothing one
page does can show in another, a crash takes down one tab, and closing a tab returns its
memory to the system (a Python process rarely gives freed memory back). Sessions are forked
from a *forkserver* that imported trame and VTK once, so a new tab starts in a fraction of
a second and shares those pages copy-on-write.

Every request and websocket is checked here (the token as ``?token=`` or the cookie set
from it); the session processes listen on loopback ports of their own, and their
websockets also require a per-session secret only this process hands out. The browser only
ever talks to this process: ``/s/<session>/...`` is forwarded to that session's process,
so one port (and one reverse proxy rule, for TLS) serves everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import logging
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from mprviewer.web.auth import COOKIE, Gate

log = logging.getLogger(__name__)

SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
UPLOAD_NAME_RE = re.compile(r"[^A-Za-z0-9._ -]+")
FIRST_CONNECT_GRACE = 120.0  # seconds a new session waits for its page's websocket
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "host", "cookie",
}


@dataclass
class ServeSettings:
    """What ``mprviewer serve`` was asked for."""

    host: str = "127.0.0.1"
    port: int = 8080
    secret: str = ""
    password: bool = False  # the secret is a password typed by people, not a token in links
    source: str | None = None
    project: str | None = None  # a labeling project's folder: every tab reads its worklist
    idle_timeout: float = 30 * 60.0  # seconds without a reader's action before a tab ends
    close_grace: float = 20.0  # seconds a tab's process waits for a reload before ending
    max_sessions: int = 16
    max_upload_bytes: float = 20 * 1024**3
    workdir: Path | None = None


@dataclass
class Session:
    """One tab's process and what the launcher knows about it."""

    sid: str
    secret: str
    folder: Path
    process: Any
    port: int = 0
    sockets: int = 0
    last_activity: float = field(default_factory=time.monotonic)
    alone_since: float | None = field(default_factory=time.monotonic)
    connected_once: bool = False  # a page has opened the websocket at least once
    ending: bool = False  # being stopped: no new traffic, still listed until its process is gone

    def touch(self) -> None:
        self.last_activity = time.monotonic()


def _context() -> Any:
    """The forkserver that has imported trame and VTK once (see the module docstring)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["mprviewer.web.app"])
    return ctx


class Launcher:
    """The aiohttp application behind ``mprviewer serve``."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.gate = Gate(settings.secret)
        self.sessions: dict[str, Session] = {}
        self._ctx = _context()
        self._client: Any = None
        root = settings.workdir
        self.root = Path(tempfile.mkdtemp(prefix="mprviewer-serve-", dir=root))
        self.cookie = f"{COOKIE}_{settings.port}"
        self.bound_port = 0
        self._reaper: asyncio.Task | None = None
        self._starting = asyncio.Lock()
        self._keep_root = False  # a session's marks could not be kept elsewhere

    # -- the web application -------------------------------------------------------------
    def app(self) -> Any:
        from aiohttp import web

        app = web.Application(middlewares=[self._check_access], client_max_size=1024**2)
        app.router.add_get("/", self._new_session)
        app.router.add_post("/login", self._login)
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/status", self._status)
        app.router.add_route("*", "/s/{sid}/ws", self._proxy_ws)
        app.router.add_post("/s/{sid}/upload", self._upload)
        app.router.add_route("*", "/s/{sid}/{tail:.*}", self._proxy_http)
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def _on_startup(self, _app: Any) -> None:
        import aiohttp

        # No pooled keep-alive connections: a session's port is reused by a later session
        # once it ends, and a pooled connection to the old one would be reset mid-request.
        self._client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True),
            auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None, connect=10),
        )
        self._reaper = asyncio.get_running_loop().create_task(self._reap())
        # Start the forkserver now, so the first tab does not wait for the imports.
        await asyncio.get_running_loop().run_in_executor(None, self._warm_up)

    def _warm_up(self) -> None:
        from multiprocessing import forkserver

        _context()
        with contextlib.suppress(Exception):
            forkserver.ensure_running()

    async def _on_cleanup(self, _app: Any) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for session in list(self.sessions.values()):
            await self._end(session, "the server stops")
        if self._client is not None:
            await self._client.close()
        if not self._keep_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- access ------------------------------------------------------------------------------
    def _offered(self, request: Any) -> tuple[str | None, bool]:
        """The credential a request carries, and whether it came in the address."""
        token = request.query.get("token")
        if token is not None:
            return token, True
        return request.cookies.get(self.cookie), False

    def _set_cookie(self, response: Any) -> None:
        response.set_cookie(
            self.cookie, self.settings.secret, httponly=True, samesite="Strict", path="/"
        )

    @staticmethod
    def _refuse(status: int, text: str) -> Any:
        from aiohttp import web

        body = (
            "<!doctype html><meta charset=utf-8><title>mprviewer</title>"
            f"<p>{html.escape(text)}</p>"
        )
        return web.Response(status=status, text=body, content_type="text/html")

    def _login_page(self, status: int, problem: str = "") -> Any:
        from aiohttp import web

        note = f"<p style='color:#b00'>{html.escape(problem)}</p>" if problem else ""
        body = (
            "<!doctype html><meta charset=utf-8><title>mprviewer</title>"
            "<form method=post action=login style='font:16px sans-serif;margin:4em'>"
            f"<p>mprviewer: enter the password.</p>{note}"
            "<input type=password name=password autofocus> <button>Open</button></form>"
        )
        return web.Response(status=status, text=body, content_type="text/html")

    @property
    def _check_access(self) -> Any:
        from aiohttp import web

        @web.middleware
        async def check(request: Any, handler: Any) -> Any:
            if request.path in ("/login", "/healthz"):
                return await handler(request)
            offered, in_address = self._offered(request)
            if not self.gate.accepts(offered):
                if self.settings.password and request.path == "/":
                    return self._login_page(401 if offered is None else 403,
                                            "" if offered is None else "Wrong password.")
                if offered is None:
                    return self._refuse(401, "This mprviewer server needs the address with its "
                                        "token (printed by 'mprviewer serve').")
                return self._refuse(403, "The token in this address is not this server's.")
            response = await handler(request)
            if in_address and isinstance(response, web.StreamResponse) and not response.prepared:
                self._set_cookie(response)
            return response

        return check

    async def _login(self, request: Any) -> Any:
        from aiohttp import web

        if not self.settings.password:
            return self._refuse(404, "This server uses a token, not a password.")
        form = await request.post()
        if not self.gate.accepts(str(form.get("password", ""))):
            return self._login_page(403, "Wrong password.")
        response = web.Response(status=303, headers={"Location": "/"})
        self._set_cookie(response)
        return response

    async def _health(self, _request: Any) -> Any:
        from aiohttp import web

        return web.json_response({"ok": True})

    async def _status(self, _request: Any) -> Any:
        """Open sessions and their processes (behind the token, like everything else)."""
        from aiohttp import web

        rows = [
            {"pid": s.process.pid, "sockets": s.sockets,
             "idle_s": round(time.monotonic() - s.last_activity, 1)}
            for s in self.sessions.values()
        ]
        return web.json_response({"sessions": rows})

    # -- sessions ----------------------------------------------------------------------------
    async def _new_session(self, request: Any) -> Any:
        from aiohttp import web

        if len(self.sessions) >= self.settings.max_sessions:
            return self._refuse(503, f"This server already has {len(self.sessions)} open "
                                "sessions, its limit; close a tab or try again later.")
        try:
            session = await self._start_session()
        except RuntimeError as exc:
            return self._refuse(500, f"A session could not start: {exc}")
        # The page's websocket address, given outright (USE_HOST becomes the address the
        # browser used, ws: becomes wss: behind TLS), so the client does not first ask a
        # session manager this server does not have.
        query = urlencode({"sessionURL": f"ws://USE_HOST/s/{session.sid}/ws",
                           "secret": session.secret})
        return web.Response(
            status=302, headers={"Location": f"/s/{session.sid}/index.html?{query}"}
        )

    async def _start_session(self) -> Session:
        from mprviewer.web.entry import session_main

        sid = secrets.token_hex(16)  # lower case: the page's client lower-cases its ws URL
        secret = secrets.token_hex(16)
        folder = self.root / sid
        (folder / "uploads").mkdir(parents=True)
        parent_conn, child_conn = self._ctx.Pipe(duplex=False)
        config = {
            "secret": secret,
            "folder": str(folder),
            "source": self.settings.source,
            "project": self.settings.project,
            "max_upload_bytes": self.settings.max_upload_bytes,
            "launcher_pid": os.getpid(),
            "cache": str(self.root / "volumes"),
        }
        process = self._ctx.Process(
            target=session_main, args=(child_conn, config), name=f"mprviewer-session-{sid[:6]}",
            daemon=True,
        )
        async with self._starting:
            await asyncio.get_running_loop().run_in_executor(None, process.start)
        child_conn.close()
        session = Session(sid=sid, secret=secret, folder=folder, process=process)
        self.sessions[sid] = session
        ready = await asyncio.get_running_loop().run_in_executor(None, parent_conn.poll, 120)
        message = parent_conn.recv() if ready else None
        parent_conn.close()
        if not isinstance(message, dict) or "port" not in message:
            await self._end(session, "it did not start")
            problem = message.get("error") if isinstance(message, dict) else "no answer in 120 s"
            raise RuntimeError(str(problem))
        session.port = int(message["port"])
        session.alone_since = time.monotonic()
        log.info("session %s started (pid %s, port %s)", sid, process.pid, session.port)
        return session

    async def _end(self, session: Session, why: str) -> None:
        """Stop a session's process (SIGTERM, then SIGKILL), keep its marks (``keep_marks``)
        and delete its files; the session leaves the list only once its process is gone."""
        if session.ending:
            return
        session.ending = True
        process = session.process
        loop = asyncio.get_running_loop()
        if process.is_alive():
            with contextlib.suppress(OSError):
                os.kill(process.pid, signal.SIGTERM)
            await loop.run_in_executor(None, process.join, 5)
            if process.is_alive():
                with contextlib.suppress(OSError):
                    os.kill(process.pid, signal.SIGKILL)
                await loop.run_in_executor(None, process.join, 5)
        try:
            keep_marks(session.folder, session.sid)
        except OSError:
            self._keep_root = True  # its marks could not be copied: leave them where they are
        else:
            shutil.rmtree(session.folder, ignore_errors=True)
        self.sessions.pop(session.sid, None)
        log.info("session %s ended: %s", session.sid, why)

    async def _reap(self) -> None:
        """End sessions whose tab closed (after a grace for reloads) or sat idle too long."""
        while True:
            await asyncio.sleep(min(1.0, self.settings.close_grace / 2))
            now = time.monotonic()
            for session in list(self.sessions.values()):
                if not session.process.is_alive():
                    await self._end(session, "its process exited")
                elif session.alone_since is not None and session.port and (
                    now - session.alone_since > self._grace(session)
                ):
                    await self._end(session, "its page closed" if session.connected_once
                                    else "no page connected to it")
                elif now - session.last_activity > self.settings.idle_timeout:
                    await self._end(session, "idle")

    def _grace(self, session: Session) -> float:
        """How long a session may have no page: a new one gets time for its page to load."""
        if session.connected_once:
            return self.settings.close_grace
        return max(self.settings.close_grace, FIRST_CONNECT_GRACE)

    def _session(self, request: Any) -> Session:
        from aiohttp import web

        sid = request.match_info["sid"]
        session = self.sessions.get(sid) if SESSION_RE.match(sid) else None
        if session is None or not session.port or session.ending:
            raise web.HTTPGone(
                text="This session has ended (closed, idle or the server restarted); "
                "open the server's address again.",
            )
        return session

    # -- forwarding ----------------------------------------------------------------------------
    async def _proxy_http(self, request: Any) -> Any:
        import aiohttp
        from aiohttp import web

        session = self._session(request)
        session.touch()
        tail = request.match_info["tail"]
        query = [(k, v) for k, v in request.query.items() if k != "token"]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        url = f"http://127.0.0.1:{session.port}/{tail}"
        body = await request.read() if request.can_read_body else None
        try:
            async with self._client.request(
                request.method, url, params=query, headers=headers, data=body,
                allow_redirects=False,
            ) as upstream:
                content = await upstream.read()
                status, upstream_headers = upstream.status, upstream.headers
        except (aiohttp.ClientError, OSError):
            return self._refuse(502, "This session's process did not answer; it may have "
                                "just ended. Open the server's address again.")
        out_headers = {
            k: v for k, v in upstream_headers.items()
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"
        }
        if status in (301, 302, 303, 307, 308) and "Location" in out_headers:
            location = out_headers["Location"]
            if not location.startswith(("http:", "https:", "/")):
                location = f"/s/{session.sid}/{location}"
            out_headers["Location"] = location
        return web.Response(status=status, body=content, headers=out_headers)

    async def _proxy_ws(self, request: Any) -> Any:
        import aiohttp
        from aiohttp import web

        session = self._session(request)
        browser = web.WebSocketResponse(max_msg_size=0, compress=False, heartbeat=30)
        await browser.prepare(request)
        session.sockets += 1
        session.connected_once = True
        session.alone_since = None
        session.touch()
        try:
            async with self._client.ws_connect(
                f"http://127.0.0.1:{session.port}/ws", max_msg_size=0, compress=0
            ) as upstream:

                async def to_session() -> None:
                    async for msg in browser:
                        session.touch()
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            await upstream.send_str(msg.data)
                        elif msg.type == aiohttp.WSMsgType.BINARY:
                            await upstream.send_bytes(msg.data)
                        else:
                            break

                async def to_browser() -> None:
                    async for msg in upstream:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            await browser.send_str(msg.data)
                        elif msg.type == aiohttp.WSMsgType.BINARY:
                            await browser.send_bytes(msg.data)
                        else:
                            break

                tasks = [asyncio.ensure_future(to_session()), asyncio.ensure_future(to_browser())]
                _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
        except (aiohttp.ClientError, OSError) as exc:
            log.info("session %s: websocket to its process failed: %s", session.sid, exc)
        finally:
            session.sockets -= 1
            if session.sockets <= 0:
                session.sockets = 0
                session.alone_since = time.monotonic()
            await browser.close()
        return browser

    async def _upload(self, request: Any) -> Any:
        """A file from the page's file input, streamed to the session's folder with a cap."""
        from aiohttp import web

        session = self._session(request)
        session.touch()
        name = UPLOAD_NAME_RE.sub("_", Path(request.query.get("name", "upload.zip")).name)
        name = name.strip(" .")[:120] or "upload.zip"
        limit = self.settings.max_upload_bytes
        target = session.folder / "uploads" / name
        stem, suffix, n = target.stem, target.suffix, 1
        while target.exists():  # an open study may still read the earlier file of this name
            n += 1
            name = f"{stem}-{n}{suffix}"
            target = target.with_name(name)
        size = 0
        digest = hashlib.sha256()
        try:
            with target.open("wb") as out:
                async for chunk in request.content.iter_chunked(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise ValueError
                    digest.update(chunk)
                    out.write(chunk)
        except ValueError:
            target.unlink(missing_ok=True)
            from mprviewer.io.limits import describe_size, env_name

            return web.json_response(
                {"error": f"{name}: larger than the upload limit of {describe_size(limit)} "
                 f"(set {env_name('max_download_bytes')} to change it)"},
                status=413,
            )
        # What the upload is, for sharing its decoded series with other sessions; written
        # here, where the bytes were seen, never taken from the page.
        (session.folder / "digests").mkdir(exist_ok=True)
        (session.folder / "digests" / name).write_text(digest.hexdigest())
        return web.json_response({"file": name, "size": size})


KEPT_MARKS = "served-marks"


def keep_marks(folder: Path, sid: str) -> Path | None:
    """Move an ended session's autosaved marks (sidecars of uploads, links and the demo,
    written in its private data folder) to ``<data dir>/served-marks/<time>-<session>/``,
    so closing a tab never deletes a reader's marks. Returns where they went (None: none)."""
    from mprviewer.errors import MprviewerError
    from mprviewer.paths import data_dir

    marks = folder / "home" / "annotations"
    files = sorted(p for p in marks.glob("*.json")) if marks.is_dir() else []
    if not files:
        return None
    try:
        target = data_dir() / KEPT_MARKS / f"{time.strftime('%Y%m%d-%H%M%S')}-{sid[:8]}"
        target.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copy2(path, target / path.name)
    except (OSError, MprviewerError) as exc:
        log.warning("the marks of session %s could not be kept (%s); they stay in %s",
                    sid, exc, marks)
        raise OSError(str(exc)) from None
    log.info("session %s: its marks are kept in %s", sid, target)
    return target


async def serve(settings: ServeSettings, ready: Any = None) -> None:
    """Run the launcher until cancelled (Ctrl+C); ``ready(url)`` is called once listening."""
    from aiohttp import web

    launcher = Launcher(settings)
    runner = web.AppRunner(launcher.app(), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await site.start()
        launcher.bound_port = int(runner.addresses[0][1])
        launcher.cookie = f"{COOKIE}_{launcher.bound_port}"
        if ready is not None:
            ready(launcher)
        await stop.wait()
    finally:
        await runner.cleanup()
