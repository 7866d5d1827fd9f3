"""``user:password@`` never shows, whatever the scheme: CLI errors, exception messages, labels."""

from __future__ import annotations

import contextlib
import io
import subprocess

import pytest

from mprviewer.cli import main
from mprviewer.errors import MprviewerError
from mprviewer.io.remote import expand_remote, strip_credentials, url_label
from mprviewer.pacs import parse_server
from tests.orthanc import free_port

SECRET = "s3cr3t-Pw"
USER = "alice-user"


def _cli(*args: str) -> subprocess.CompletedProcess:
    """The command line in this process (its error path is the same, and much quicker)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_url_label_strips_userinfo_in_every_scheme() -> None:
    assert url_label(f"ftp://{USER}:{SECRET}@files.example/x.zip") == "ftp://files.example/x.zip"
    assert url_label(f"sftp://{USER}@host:22/x") == "sftp://host:22/x"
    assert url_label(f"gopher://{USER}:{SECRET}@h/x") == "gopher://h/x"
    assert url_label(f"s3://{USER}:{SECRET}@bucket/key") == "s3://bucket/key"
    # a DIMSE address keeps its AE title, not a password written after it
    assert url_label(f"dimse://PACS:{SECRET}@h:104") == "dimse://PACS@h:104"
    assert url_label("dimse://PACS@h:104?calling=ME") == "dimse://PACS@h:104?calling=ME"
    assert url_label(f"dimse://:{SECRET}@h:104") == "dimse://h:104"


def test_strip_credentials_cleans_every_url_in_a_message() -> None:
    text = (f"cannot reach ftp://{USER}:{SECRET}@a.example/x.zip nor "
            f"'dimse://PACS:{SECRET}@b.example:104' (after http://{USER}:{SECRET}@c/d)")
    cleaned = strip_credentials(text)
    assert SECRET not in cleaned and USER not in cleaned
    assert cleaned == ("cannot reach ftp://a.example/x.zip nor 'dimse://PACS@b.example:104' "
                       "(after http://c/d)")
    assert strip_credentials("no URL here: me@example.org") == "no URL here: me@example.org"


@pytest.mark.parametrize("url", [
    f"ftp://{USER}:{SECRET}@127.0.0.1/study.zip",
    f"dimse://PACS:{SECRET}@127.0.0.1:104",
    f"webdav://{USER}:{SECRET}@127.0.0.1/x",
])
def test_cli_info_never_prints_the_password(url: str) -> None:
    result = _cli("info", url)
    assert result.returncode == 3
    assert SECRET not in result.stderr + result.stdout
    assert USER not in result.stderr + result.stdout
    assert result.stderr.startswith(f"mprviewer: {url_label(url)}: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_info_on_an_http_url_with_credentials_hides_them() -> None:
    url = f"http://{USER}:{SECRET}@127.0.0.1:{free_port()}/study.zip"
    result = _cli("info", url)
    assert result.returncode == 3
    assert SECRET not in result.stderr and USER not in result.stderr
    assert "127.0.0.1" in result.stderr and "Connection refused" in result.stderr


@pytest.mark.parametrize("server", [
    f"dimse://PACS:{SECRET}@127.0.0.1:{free_port()}",
    f"ftp://{USER}:{SECRET}@127.0.0.1/dicom-web",
])
def test_cli_pacs_search_never_prints_the_password(server: str) -> None:
    result = _cli("pacs", "search", "--server", server)
    assert result.returncode == 3, result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert USER not in result.stderr + result.stdout
    assert url_label(server) in result.stderr


def test_a_dimse_password_is_refused_not_taken_for_an_ae_title() -> None:
    with pytest.raises(MprviewerError) as info:
        parse_server(f"dimse://PACS:{SECRET}@127.0.0.1:104")
    assert "take no password" in str(info.value) and SECRET not in str(info.value)


def test_exception_messages_of_remote_sources_hide_the_password() -> None:
    for url in (f"ftp://{USER}:{SECRET}@127.0.0.1/x.zip",
                f"dimse://PACS:{SECRET}@127.0.0.1:104"):
        with pytest.raises(MprviewerError) as info:
            expand_remote(url)
        assert SECRET not in str(info.value) and USER not in str(info.value)
        assert url_label(url) in str(info.value)
