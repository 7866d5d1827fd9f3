"""The container image, built and run as a user would: ``scripts/build-image``, then ``serve
demo`` with host networking, ``screenshot`` into a mounted folder and ``info`` on a mounted
study.

Not collected with the suite (the name does not start with ``test_``): ``.ci/run`` runs it after
the suite with ``pytest tests/container_image.py``. It builds the image (about 2.5 minutes cold,
15 s when the base image, the wheelhouse and the layer cache are there) and removes every
container it starts. It is skipped only where neither podman nor docker can run a container.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from mprviewer.synthetic import writer as synthetic
from tests.orthanc import free_port

ROOT = Path(__file__).resolve().parents[1]
NO_ENGINE = 4  # scripts/build-image: neither docker nor podman can run a container here
LABEL = f"org.mprviewer.test={uuid.uuid4().hex[:12]}"


class Engine:
    """The engine scripts/build-image chose, with the settings it found for this machine."""

    def __init__(self, exports: str) -> None:
        self.env = dict(os.environ)
        for line in exports.splitlines():
            for word in shlex.split(line.removeprefix("export ")):
                key, _, value = word.partition("=")
                self.env[key] = value
        self.name = self.env["MPRVIEWER_ENGINE"]
        self.image = self.env["MPRVIEWER_IMAGE"]

    def __call__(self, *args: str, timeout: float = 180, check: bool = True
                 ) -> subprocess.CompletedProcess:
        done = subprocess.run([self.name, *args], capture_output=True, text=True,
                              env=self.env, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{self.name} {' '.join(args)} failed ({done.returncode}):\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        """A one-shot container (removed when it ends) of the image, without a network."""
        return self("run", "--rm", "--label", LABEL, "--network=none", *args, timeout=timeout)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    build = subprocess.run([str(ROOT / "scripts" / "build-image"), "--offline"],
                           capture_output=True, text=True, timeout=900)
    if build.returncode == NO_ENGINE:
        reason = build.stderr.strip().splitlines()[-1] if build.stderr.strip() else ""
        pytest.skip(f"neither podman nor docker can run a container here: {reason}")
    assert build.returncode == 0, build.stderr[-4000:]
    found = Engine(build.stdout)
    yield found
    # Every container this module started carries LABEL: none may be left behind.
    left = found("ps", "-a", "-q", "--filter", f"label={LABEL}").stdout.split()
    if left:
        found("rm", "-f", "-v", *left, check=False)
    assert found("ps", "-a", "-q", "--filter", f"label={LABEL}").stdout.split() == []


def test_the_image_is_under_one_and_a_half_gigabytes(engine: Engine) -> None:
    size = int(engine("image", "inspect", "--format", "{{.Size}}", engine.image).stdout)
    assert 200e6 < size < 1.5e9, size
    config = json.loads(engine("image", "inspect", engine.image).stdout)[0]["Config"]
    assert config["User"] == "mprviewer"
    assert config["Env"] and "MPRVIEWER_HOME=/var/lib/mprviewer" in config["Env"]
    assert set(config["Volumes"]) == {"/var/lib/mprviewer", "/studies"}
    # No Qt in the image: the desktop window is not what it is for.
    probe = engine.run("--entrypoint", "python3", engine.image, "-c",
                       "import importlib.util as u; print(u.find_spec('PyQt5'), "
                       "u.find_spec('trame') is not None)")
    assert probe.stdout.split() == ["None", "True"]


def _wait_for_address(engine: Engine, name: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = engine("logs", name, check=False)
        found = re.search(r"serving at (http://\S+\?token=\S+)", logs.stdout + logs.stderr)
        if found:
            return found.group(1)
        state = engine("inspect", "--format", "{{.State.Running}}", name, check=False)
        assert state.stdout.strip() != "false", f"serve ended:\n{logs.stdout}\n{logs.stderr}"
        time.sleep(0.5)
    raise AssertionError(f"serve printed no address in {timeout:.0f} s")


def test_serve_demo_answers_with_the_token_and_refuses_without(engine: Engine) -> None:
    port = free_port()
    name = f"mprviewer-test-{uuid.uuid4().hex[:8]}"
    engine("run", "-d", "--name", name, "--label", LABEL, "--network=host", engine.image,
           "serve", "demo", "--host", "127.0.0.1", "--port", str(port))
    try:
        address = _wait_for_address(engine, name)
        base = f"http://127.0.0.1:{port}"
        token = address.split("token=", 1)[1]
        assert address == f"{base}/?token={token}" and len(token) >= 32
        assert requests.get(base + "/", timeout=10).status_code == 401
        assert requests.get(base + "/?token=" + "0" * len(token), timeout=10).status_code == 403
        with requests.Session() as http:
            page = http.get(address, timeout=60)
            assert page.status_code == 200 and "<html" in page.text.lower()
            assert page.history and page.history[0].status_code == 302
            assert "/s/" in page.url
        # the image's health check asks /healthz on the port serve was given
        if engine.name == "podman":
            assert engine("healthcheck", "run", name, check=False).returncode == 0
        else:
            assert engine("exec", name, "/usr/local/bin/mprviewer-entrypoint",
                          "--healthcheck", check=False).returncode == 0
    finally:
        engine("rm", "-f", "-v", name, check=False)
    assert engine("ps", "-a", "-q", "--filter", f"name=^{name}$").stdout.strip() == ""


def test_the_default_serve_listens_for_a_published_port(engine: Engine) -> None:
    """The README's line: `run -p PORT:8080 IMAGE serve demo`, no --host, reached from here."""
    port = free_port()
    name = f"mprviewer-test-{uuid.uuid4().hex[:8]}"
    engine("run", "-d", "--name", name, "--label", LABEL, "-p", f"127.0.0.1:{port}:8080",
           engine.image, "serve", "demo")
    try:
        address = _wait_for_address(engine, name)
        token = address.split("token=", 1)[1]
        assert address.startswith("http://127.0.0.1:8080/?token=")  # the container's own
        published = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:  # the port is forwarded once the server is up; allow it a moment
            try:
                refused = requests.get(published + "/", timeout=10)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.5)
        assert refused.status_code == 401
        with requests.Session() as http:
            page = http.get(f"{published}/?token={token}", timeout=60)
            assert page.status_code == 200 and "<html" in page.text.lower()
    finally:
        engine("rm", "-f", "-v", name, check=False)


def _writable_folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)  # the image runs as its own non-root user
    return path


def test_screenshot_in_the_image_draws_what_this_checkout_draws(engine: Engine,
                                                                tmp_path: Path) -> None:
    from PIL import Image

    out = _writable_folder(tmp_path / "out")
    args = ["screenshot", "demo", "--view", "axial", "--size", "400x300"]
    engine.run("-v", f"{out}:/out", engine.image, *args, "-o", "/out/x.png", timeout=300)
    shot = np.asarray(Image.open(out / "x.png").convert("RGB"), dtype=np.int16)
    assert shot.shape == (300, 400, 3)
    assert shot.std() > 20 and shot.max() > 200 and (shot < 10).mean() > 0.2  # a picture
    # the same command on this checkout, outside the image: the same picture
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "mprviewer", *args,
                    "-o", str(tmp_path / "host.png")], check=True, env=env, timeout=300,
                   capture_output=True)
    host = np.asarray(Image.open(tmp_path / "host.png").convert("RGB"), dtype=np.int16)
    # (measured: identical; four slices off gives 5.2, a left-right flip 7.8)
    assert np.abs(shot - host).mean() < 1.0


def test_info_reads_a_mounted_study(engine: Engine, tmp_path: Path) -> None:
    studies = tmp_path / "studies"
    written = synthetic.write_series(
        studies / "chest", np.arange(5 * 8 * 6, dtype=np.int16).reshape(5, 8, 6),
        pixel_spacing=(0.8, 0.6), slice_spacing=2.5, series_number=3, description="Chest 2.5",
        seed=11, patient={"PatientID": "P-7", "PatientName": "Roe^Ann"})
    for path in [studies, *studies.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    done = engine.run("-v", f"{studies}:/studies:ro", engine.image, "info", "/studies",
                      "--json")
    doc = json.loads(done.stdout)
    (record,) = doc["series"]
    assert record["uid"] == written.series_uid and record["description"] == "Chest 2.5"
    assert record["size"] == [6, 8, 5] and record["spacing"] == [0.6, 0.8, 2.5]
    assert record["orientation"] == "axial" and doc["source"] == "/studies"


def _compose_command(engine: Engine) -> list[str] | None:
    """podman-compose (installed from Debian's packages when missing and root), or docker's."""
    if engine.name == "docker":
        ok = subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
        return ["docker", "compose"] if ok else None
    if shutil.which("podman-compose") is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                        "podman-compose"], capture_output=True, timeout=300,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return ["podman-compose"] if shutil.which("podman-compose") else None


def test_the_team_stack_serves_reads_orthanc_and_reaches_postgres(engine: Engine,
                                                                  tmp_path: Path) -> None:
    """compose.yaml with Orthanc and PostgreSQL built from Debian's packages (deploy/stand-ins):
    the page behind its token on the published port, a study stored in Orthanc found and
    retrieved by `mprviewer pacs` inside the mprviewer container by service name, and
    PostgreSQL taking the stack's password (and refusing another) over the stack's network."""
    compose = _compose_command(engine)
    assert compose, "no podman-compose or docker compose to run compose.yaml with"
    stand_ins = ROOT / "deploy" / "stand-ins"
    for service in ("orthanc", "postgres"):
        engine("build", *(["--pull=never"] if engine.name == "podman" else []),
               "-q", "-f", str(stand_ins / f"{service}.Containerfile"),
               "-t", f"localhost/mprviewer-{service}:debian", str(stand_ins), timeout=600)
    studies = tmp_path / "studies"
    written = synthetic.write_series(
        studies / "chest", np.arange(5 * 8 * 6, dtype=np.int16).reshape(5, 8, 6),
        pixel_spacing=(0.8, 0.6), slice_spacing=2.5, series_number=3, description="Chest 2.5",
        seed=12, patient={"PatientID": "P-8", "PatientName": "Poe^Ed"})
    for path in [studies, *studies.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    project = f"mprvtest{uuid.uuid4().hex[:8]}"
    web_port = free_port()
    env = {**engine.env, "POSTGRES_PASSWORD": uuid.uuid4().hex, "ORTHANC_PASSWORD":
           uuid.uuid4().hex, "ORTHANC_IMAGE": "localhost/mprviewer-orthanc:debian",
           "POSTGRES_IMAGE": "localhost/mprviewer-postgres:debian",
           "MPRVIEWER_IMAGE": engine.image, "MPRVIEWER_PORT": str(web_port),
           "ORTHANC_DICOM_PORT": str(free_port()), "MPRVIEWER_STUDIES": str(studies)}
    base = [*compose, "-p", project, "-f", str(ROOT / "compose.yaml")]

    def stack(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        done = subprocess.run([*base, *args], capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=timeout)
        assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    def container(service: str) -> str:
        names = engine("ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
                       "--filter", f"label=com.docker.compose.service={service}").stdout.split()
        assert len(names) == 1, (service, names)
        return names[0]

    stack("up", "-d")
    try:
        web = container("mprviewer")
        address = _wait_for_address(engine, web)
        token = address.split("token=", 1)[1]
        published = f"http://127.0.0.1:{web_port}"
        assert requests.get(published + "/", timeout=10).status_code == 401
        with requests.Session() as http:
            page = http.get(f"{published}/?token={token}", timeout=60)
            assert page.status_code == 200 and "<html" in page.text.lower()

        store = ("import os, pathlib, requests, time\n"
                 "e = os.environ\n"
                 "auth = (e['MPRVIEWER_PACS_USER'], e['MPRVIEWER_PACS_PASSWORD'])\n"
                 "for _ in range(60):\n"
                 "    try:\n"
                 "        requests.get('http://orthanc:8042/system', timeout=5); break\n"
                 "    except requests.ConnectionError: time.sleep(1)\n"
                 "assert requests.get('http://orthanc:8042/system', timeout=5).status_code == 401\n"
                 "for f in sorted(pathlib.Path('/studies/chest').iterdir()):\n"
                 "    requests.post('http://orthanc:8042/instances', data=f.read_bytes(),\n"
                 "                  auth=auth, timeout=30).raise_for_status()\n")
        engine("exec", web, "python3", "-c", store)
        found = json.loads(engine("exec", web, "mprviewer", "pacs", "search", "--json").stdout)
        assert [s["patient_id"] for s in found] == ["P-8"] and found[0]["num_instances"] == 5
        folder = engine("exec", web, "mprviewer", "pacs", "retrieve", "--study",
                        found[0]["study_uid"]).stdout.strip().splitlines()[-1]
        doc = json.loads(engine("exec", web, "mprviewer", "info", folder, "--json").stdout)
        (record,) = doc["series"]
        assert record["uid"] == written.series_uid and record["size"] == [6, 8, 5]

        network = json.loads(engine("inspect", web).stdout)[0]["NetworkSettings"]["Networks"]
        (net,) = network
        psql = ["run", "--rm", "--label", LABEL, "--network", net, "--entrypoint", "psql",
                "localhost/mprviewer-postgres:debian"]
        sql = "select current_user, current_database()"
        good = f"postgresql://mprviewer:{env['POSTGRES_PASSWORD']}@postgres:5432/mprviewer"
        deadline = time.monotonic() + 60
        while True:
            done = engine(*psql, good, "-Atc", sql, check=False)
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert done.stdout.strip() == "mprviewer|mprviewer", done.stderr
        bad = engine(*psql, good.replace(env["POSTGRES_PASSWORD"], "wrong"), "-Atc", sql,
                     check=False)
        assert bad.returncode != 0 and "password authentication failed" in bad.stderr
    finally:
        stack("down", "-v")
        if engine.name == "podman":  # podman-compose 1.0 leaves the stack's network behind
            engine("network", "rm", f"{project}_default", check=False)
    assert engine("ps", "-a", "-q", "--filter",
                  f"label=com.docker.compose.project={project}").stdout.split() == []
