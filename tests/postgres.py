"""A real PostgreSQL server on 127.0.0.1 for the team-project tests.

The server comes from the Debian packages (``postgresql``, version 15; scripts/setup installs
it). ``initdb`` refuses to run as root, so under root the cluster belongs to the ``postgres``
system user: its folder is a temporary one that user owns, the unix socket lives in that
folder, and the TCP port is a free one on loopback. ``stop()`` ends the server and removes
the folder, so nothing is left running or on disk. Password authentication is on (SCRAM) for
TCP connections, so tests see the same rules as a real installation.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.orthanc import free_port

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "test-superuser-secret"


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def postgres_available() -> str | None:
    """None when the PostgreSQL server programs are installed, else what is missing."""
    if _bindir() is None:
        return "PostgreSQL is not installed (Debian package 'postgresql'; run scripts/setup)"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "no 'postgres' system user to run the server as (install 'postgresql')"
    return None


class PostgreSQL:
    """One PostgreSQL cluster with its own folder and port; ``stop()`` removes everything."""

    def __init__(self) -> None:
        self.port = free_port()
        self.host = "127.0.0.1"
        self.workdir = Path(tempfile.mkdtemp(prefix="mprviewer-postgres-"))
        self.data = self.workdir / "data"
        self.process: subprocess.Popen | None = None
        self._user: str | None = None
        self._uid: int | None = None
        self._gid: int | None = None
        if os.geteuid() == 0:
            import pwd

            entry = pwd.getpwnam("postgres")
            self._user, self._uid, self._gid = "postgres", entry.pw_uid, entry.pw_gid
            os.chown(self.workdir, entry.pw_uid, entry.pw_gid)
        os.chmod(self.workdir, 0o755)  # clients of other users reach the socket

    def _run_as(self) -> dict:
        if self._uid is None:
            return {}
        return {"user": self._uid, "group": self._gid, "extra_groups": []}

    def url(self, user: str = SUPERUSER, password: str | None = SUPERUSER_PASSWORD,
            database: str = "postgres") -> str:
        """``postgresql://user[:password]@127.0.0.1:port/database``."""
        secret = f":{password}" if password else ""
        return f"postgresql://{user}{secret}@{self.host}:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> PostgreSQL:
        """initdb (first time only), then start the server and wait until it answers."""
        missing = postgres_available()
        if missing:
            raise RuntimeError(missing)
        bindir = _bindir()
        assert bindir is not None
        if not self.data.exists():
            pwfile = self.workdir / "pwfile"
            pwfile.write_text(SUPERUSER_PASSWORD + "\n")
            if self._uid is not None:
                os.chown(pwfile, self._uid, self._gid)
            subprocess.run(
                [str(bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                 "--pwfile", str(pwfile), "--auth-local=trust", "--auth-host=scram-sha-256",
                 "-E", "UTF8", "--locale=C", "--no-sync"],
                check=True, capture_output=True, cwd=self.workdir, **self._run_as())
            pwfile.unlink()
        _become_subreaper()
        log = open(self.workdir / "postgres.log", "ab")  # noqa: SIM115 - kept for the process
        self.process = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", f"listen_addresses={self.host}", "-c", f"unix_socket_directories={self.workdir}",
             "-c", "fsync=off", "-c", "full_page_writes=off",
             "-c", "max_connections=60", "-c", "shared_buffers=16MB"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir,
            start_new_session=True, **self._run_as())
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited at start-up:\n{self.log_tail()}")
            if self._answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"PostgreSQL did not answer within {timeout} s:\n{self.log_tail()}")

    def _answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        path = self.workdir / "postgres.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """End the server at once (SIGKILL to the postmaster and its children), keep the data:
        what a crashed or unplugged database server looks like to its clients."""
        if self.process is None:
            return
        pgid = self.process.pid
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # the orphaned children come to this process (a child subreaper): reap them, so the
        # port, the shared memory and the process table are free again
        deadline = time.monotonic() + 10
        while _reap_group(pgid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def shutdown(self) -> None:
        """Stop the server the way an administrator does (fast shutdown), keep the data."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        self.kill()

    def restart(self) -> PostgreSQL:
        """Start again on the same port and data after ``kill()`` (crash recovery runs)."""
        return self.start()

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        self.shutdown()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run SQL as the superuser (autocommit, so CREATE DATABASE works)."""
        import psycopg

        with psycopg.connect(self.url(database=database), autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self, name: str) -> str:
        """An empty database; returns its name."""
        self.execute(f'CREATE DATABASE "{name}"')
        return name

    def __enter__(self) -> PostgreSQL:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _become_subreaper() -> None:
    """Linux: processes orphaned below this one (a killed server's children) are re-parented
    to it rather than to PID 1, which in a container may never reap them."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap_group(pgid: int) -> bool:
    """Reap the finished processes of group ``pgid`` that are this process's children; True
    while any process of the group is left (running, or a zombie someone else must reap)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    left = False
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) < 3 or fields[2] != str(pgid):
            continue
        if fields[0] == "Z":
            try:
                os.waitpid(int(entry.name), os.WNOHANG)
                continue
            except ChildProcessError:  # not ours to reap: it holds nothing any more
                continue
        left = True
    return left
