"""Listening addresses, socket binding and the settings file."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from milter.frontends.listen import ListenAddress, ListenError, bind, parse_listen
from milter.frontends.settings import load_settings
from milter.policy.errors import PolicyInvalid


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("inet:127.0.0.1:8894", ListenAddress("127.0.0.1", 8894)),
        ("inet:localhost:10999", ListenAddress("localhost", 10999)),
        ("inet:[::1]:8894", ListenAddress("::1", 8894)),
        ("inet:8894@127.0.0.1", ListenAddress("127.0.0.1", 8894)),
        ("inet6:8894@::1", ListenAddress("::1", 8894)),
        ("unix:/run/tocsin/milter.sock", ListenAddress(path=Path("/run/tocsin/milter.sock"))),
        ("local:/tmp/m.sock", ListenAddress(path=Path("/tmp/m.sock"))),
    ],
)
def test_parse_listen_accepts_postfix_and_sendmail_forms(
    spec: str, expected: ListenAddress
) -> None:
    assert parse_listen(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("127.0.0.1:8894", "unknown socket type"),
        ("inet:127.0.0.1", "port is missing"),
        ("inet:127.0.0.1:70000", "port must be"),
        ("inet::8894", "missing host"),
        ("unix:relative.sock", "absolute"),
        ("tcp:1.2.3.4:5", "unknown socket type"),
        ("inet:[::1]8894", "IPv6"),
    ],
)
def test_parse_listen_rejects_with_a_reason(spec: str, message: str) -> None:
    with pytest.raises(ListenError, match=message):
        parse_listen(spec)


def test_bind_replaces_a_stale_unix_socket_but_not_a_live_one(tmp_path: Path) -> None:
    path = tmp_path / "m.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens
    live = bind(ListenAddress(path=path), mode=0o600)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(ListenError, match="another process is listening"):
        bind(ListenAddress(path=path))
    live.close()


def test_bind_never_removes_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "important"
    path.write_text("data")
    with pytest.raises(ListenError, match="not a socket"):
        bind(ListenAddress(path=path))
    assert path.read_text() == "data"


def test_bind_reports_a_busy_port() -> None:
    first = bind(ListenAddress("127.0.0.1", 0))
    port = first.getsockname()[1]
    try:
        with pytest.raises(ListenError, match=str(port)):
            bind(ListenAddress("127.0.0.1", port))
    finally:
        first.close()


def test_settings_file_overrides_defaults(tmp_path: Path) -> None:
    path = tmp_path / "tocsin.yaml"
    path.write_text(
        "milter:\n  listen: unix:/run/tocsin/milter.sock\n  workers: 2\n"
        "nameservers: [127.0.0.1:5353]\nquarantine:\n  directory: /srv/q\n"
    )
    settings = load_settings(path)
    assert settings.milter.listen == "unix:/run/tocsin/milter.sock"
    assert settings.milter.workers == 2
    assert settings.milter.on_failure == "tempfail"  # default kept
    assert settings.nameservers == ("127.0.0.1:5353",)
    assert settings.quarantine.directory == Path("/srv/q")


def test_settings_errors_name_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "tocsin.yaml"
    path.write_text(
        "milter:\n  workers: 2\n  listen: tcp:nowhere\n  colour: blue\nlog_level: loud\n"
    )
    with pytest.raises(PolicyInvalid) as caught:
        load_settings(path)
    text = str(caught.value)
    assert f"{path}:3: milter.listen:" in text
    assert f"{path}:4: milter.colour: unknown key" in text
    assert f"{path}:5: log_level:" in text


def test_settings_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "tocsin.yaml"
    path.write_text("milter:\n  workers: [2\n")
    with pytest.raises(PolicyInvalid, match=rf"{path}:\d+: YAML syntax error"):
        load_settings(path)
