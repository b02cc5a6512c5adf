"""Log lines: key=value or JSON, a time zone in every timestamp, stderr or syslog (mail)."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milter.ops.logs import _PLAIN, configure_logging, kv_line, kv_value, log_fields

FIELDS = {
    "action": "quarantine",
    "verdict": "quarantine",
    "brand": "cpf",
    "score": 16.0,
    "codes": ["BRAND_AUTH_FAIL", "DISPLAY_NAME_BRAND"],
    "from": "<>",
    "rcpts": ["a@x.test", "b@x.test"],
    "failure": None,
    "reply": '451 4.7.1 "try later"',
}


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_key_value_line_quotes_only_what_needs_it() -> None:
    line = kv_line(FIELDS)
    assert line.startswith("action=quarantine verdict=quarantine brand=cpf score=16 ")
    assert "codes=BRAND_AUTH_FAIL,DISPLAY_NAME_BRAND" in line
    assert "rcpts=a@x.test,b@x.test" in line
    assert "failure=-" in line
    assert 'reply="451 4.7.1 \\"try later\\""' in line


def test_text_lines_carry_a_utc_offset(
    restore_root: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", "text", "stderr")
    log_fields(logging.getLogger("tocsin.message"), logging.INFO, ("queue_id", "4XyZ"), FIELDS)
    line = capsys.readouterr().err.strip()
    stamp, rest = line.split(" ", 1)
    assert stamp[-6] in "+-"
    assert stamp[-3] == ":"
    assert rest.startswith(f"tocsin[{os.getpid()}] INFO tocsin.message: 4XyZ: action=quarantine")


def test_json_lines_keep_the_fields_typed(
    restore_root: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", "json", "stderr")
    log_fields(logging.getLogger("tocsin.message"), logging.INFO, ("queue_id", "4XyZ"), FIELDS)
    logging.getLogger("tocsin.other").warning("plain %s", "text")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first["queue_id"] == "4XyZ"
    assert first["codes"] == ["BRAND_AUTH_FAIL", "DISPLAY_NAME_BRAND"]
    assert first["score"] == 16.0
    assert first["level"] == "info"
    assert first["ts"][-6] in "+-"
    assert second == {**second, "level": "warning", "msg": "plain text", "logger": "tocsin.other"}


def test_syslog_target_sends_mail_facility_datagrams(restore_root: None, tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(5)
        configure_logging("info", "text", "syslog", str(path))
        log_fields(logging.getLogger("tocsin.message"), logging.INFO, ("queue_id", "Q9"), FIELDS)
        datagram = server.recv(65536).decode()
    # <22> = facility mail (2) * 8 + severity info (6); syslog stamps the time itself
    assert datagram.startswith(f"<22>tocsin[{os.getpid()}]: INFO tocsin.message: Q9: action=")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(sorted(_PLAIN) + list(" \"'\\\n\t=é;#%")), max_size=30))
def test_plain_values_are_those_of_plain_characters_only(text: str) -> None:
    """kv_value leaves a value bare exactly when every character is in _PLAIN (the
    pattern that tests it in one pass must say what the character set says)."""
    bare = kv_value(text) == text and text != ""
    assert bare == all(c in _PLAIN for c in text) or text == ""
