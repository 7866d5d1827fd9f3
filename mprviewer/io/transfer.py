"""One watchdog for every download: byte cap, minimum rate, and Cancel that hangs up at once.

A read timeout only notices a server that goes silent; one that sends a byte a second, or
never stops sending, passes it. Every transfer (a plain URL, a DICOMweb series, a DIMSE
C-GET) counts its bytes here as they arrive. It is stopped when the total goes past
``max_download_bytes``, when fewer than ``min_download_rate`` bytes a second arrived over the
last ``min_rate_window`` seconds, or when the user cancels; a watchdog thread then calls the
transfer's hang-up function (socket shutdown, association abort), so a read blocked in the
middle of a slow chunk returns at once instead of after the next chunk or timeout.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

from mprviewer.errors import LoadCancelled, SourceError
from mprviewer.io.limits import LimitExceeded, Limits, cap_hint, describe_size, env_name


class TooSlow(SourceError):
    """A server sent data more slowly than the minimum rate for a whole window."""


HangUp = Callable[[], None]


class Transfer:
    """The bytes of one download (one or more streams) against the caps; thread-safe.

    ``shown`` names the source in messages (no credentials). ``cancel`` is a
    threading.Event; ``cancelled`` builds the error raised when it is set.
    """

    def __init__(self, shown: str, limits: Limits | None = None,
                 cancel: threading.Event | None = None,
                 cancelled: Callable[[], BaseException] | None = None,
                 cap_field: str = "max_download_bytes") -> None:
        self.shown = shown
        self.limits = limits or Limits.from_env()
        # the byte cap: the download cap, or a smaller one for answers held in memory
        self.cap_field = cap_field
        self.cap = min(self.limits.max_download_bytes, getattr(self.limits, cap_field))
        self.cancel = cancel
        self._cancelled = cancelled or (
            lambda: LoadCancelled(f"{shown}: the download was cancelled"))
        self.total = 0
        self._lock = threading.Lock()
        self._stopped: BaseException | None = None
        self._streams: dict[int, _Stream] = {}
        self._next_id = 0
        self._watchdog: threading.Thread | None = None
        self._done = threading.Event()

    # -- counting --------------------------------------------------------------------
    def add(self, n: int, stream: int | None = None) -> None:
        """Count ``n`` bytes received; raise if the transfer was stopped or is over the cap."""
        with self._lock:
            self.total += n
            if stream is not None and stream in self._streams:
                self._streams[stream].received += n
            over = self.total > self.cap
        if over:
            self.stop(LimitExceeded(
                f"{self.shown}: the download went past the limit of "
                f"{describe_size(self.cap)} and was stopped. {cap_hint(self.cap_field)}"))
        self.check()

    def check(self) -> None:
        """Raise the reason the transfer was stopped, if it was (cancel included)."""
        if self._stopped is None and self.cancel is not None and self.cancel.is_set():
            self.stop(self._cancelled())
        if self._stopped is not None:
            raise self._stopped

    @property
    def stopped(self) -> BaseException | None:
        return self._stopped

    def stop(self, reason: BaseException) -> None:
        """Stop every stream: remember why (the first reason wins) and hang them all up."""
        with self._lock:
            if self._stopped is None:
                self._stopped = reason
            streams = list(self._streams.values())
        for stream in streams:
            stream.hang_up_once()

    # -- streams and the watchdog --------------------------------------------------------
    @contextlib.contextmanager
    def stream(self, hang_up: HangUp, check_rate: bool = True) -> Iterator[int]:
        """Register one connection while it is read; yields its id for :meth:`add`.

        ``hang_up`` must make a read blocked on that connection return at once. Without
        ``check_rate`` the stream is only watched for cancel (waiting for a server's first
        answer, which the read timeout bounds).
        """
        with self._lock:
            ident = self._next_id
            self._next_id += 1
            self._streams[ident] = _Stream(hang_up, time.monotonic(), check_rate)
            if self._watchdog is None:
                self._watchdog = threading.Thread(target=self._watch, args=(self._done,),
                                                  daemon=True, name="transfer-watchdog")
                self._watchdog.start()
        try:
            if self._stopped is not None:
                self._streams[ident].hang_up_once()
            yield ident
        finally:
            with self._lock:
                self._streams.pop(ident, None)
                if not self._streams and self._watchdog is not None:
                    self._done.set()
                    self._watchdog = None
                    self._done = threading.Event()

    def _watch(self, done: threading.Event) -> None:
        window = max(0.05, float(self.limits.min_rate_window))
        tick = min(0.2, window / 10)
        while not done.wait(tick):
            if self._stopped is None and self.cancel is not None and self.cancel.is_set():
                self.stop(self._cancelled())
            if self._stopped is not None:
                continue
            rate = float(self.limits.min_download_rate)
            if rate <= 0 or self.limits.min_rate_window <= 0:
                continue
            now = time.monotonic()
            with self._lock:
                streams = list(self._streams.values())
            for stream in streams:
                if not stream.check_rate:
                    continue
                got = stream.received_over(now, window)
                if got is not None and got < rate * window:
                    self.stop(TooSlow(
                        f"{self.shown}: the server sent {describe_size(got)} in the last "
                        f"{window:g} s, less than the minimum of "
                        f"{describe_size(rate)}/s; the download was stopped. If the "
                        f"connection is genuinely this slow, lower "
                        f"{env_name('min_download_rate')} or raise "
                        f"{env_name('min_rate_window')}."))
                    break


class _Stream:
    def __init__(self, hang_up: HangUp, started: float, check_rate: bool = True) -> None:
        self._hang_up = hang_up
        self.check_rate = check_rate
        self._hung_up = False
        self.received = 0
        self.started = started
        self._samples: deque[tuple[float, int]] = deque([(started, 0)])

    def received_over(self, now: float, window: float) -> int | None:
        """Bytes received in the last ``window`` seconds; None before a full window."""
        self._samples.append((now, self.received))
        while len(self._samples) > 1 and self._samples[1][0] <= now - window:
            self._samples.popleft()
        oldest_time, oldest_count = self._samples[0]
        if now - oldest_time < window:
            return None
        return self.received - oldest_count

    def hang_up_once(self) -> None:
        if self._hung_up:
            return
        self._hung_up = True
        with contextlib.suppress(Exception):
            self._hang_up()


def hang_up_response(response: object) -> HangUp:
    """A hang-up for a streamed requests response: shut its socket down for reading."""
    import socket

    def hang_up() -> None:
        raw = getattr(response, "raw", None)
        with contextlib.suppress(Exception):
            raw.shutdown()  # urllib3 >= 2.3 unblocks readers in other threads
            return
        sock = None
        with contextlib.suppress(Exception):
            sock = raw._connection.sock
        if sock is None:
            with contextlib.suppress(Exception):
                sock = raw._fp.fp.raw._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    return hang_up


def read_some(response: object, size: int) -> bytes:
    """Whatever body bytes have arrived, up to ``size`` (never waits to fill ``size``)."""
    raw = response.raw  # type: ignore[attr-defined]
    read1 = getattr(raw, "read1", None)
    if read1 is not None:
        try:
            return read1(size, decode_content=True) or b""
        except (NotImplementedError, TypeError):
            pass
    return raw.read(size, decode_content=True) or b""


def track_sockets(session: object) -> HangUp:
    """Make a requests session remember its sockets; returns a hang-up for all of them.

    Until a server sends its headers requests hands out no response whose socket could be
    shut, so Cancel would wait for the read timeout. The session's connections are made
    by subclasses that record their socket as they connect.
    """
    import socket
    import weakref

    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    sockets: weakref.WeakSet = weakref.WeakSet()

    class _Connection(HTTPConnection):
        def connect(self) -> None:
            super().connect()
            with contextlib.suppress(TypeError):
                sockets.add(self.sock)

    class _SecureConnection(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            with contextlib.suppress(TypeError):
                sockets.add(self.sock)

    class _Pool(HTTPConnectionPool):
        ConnectionCls = _Connection

    class _SecurePool(HTTPSConnectionPool):
        ConnectionCls = _SecureConnection

    for adapter in session.adapters.values():  # type: ignore[attr-defined]
        manager = getattr(adapter, "poolmanager", None)
        if manager is not None:
            manager.pool_classes_by_scheme = {"http": _Pool, "https": _SecurePool}

    def hang_up() -> None:
        for sock in list(sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    return hang_up
