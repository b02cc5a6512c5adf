"""Encoded parts are found in a body read as text, without building its MIME tree."""

from __future__ import annotations

from milter.mime.salvage import encoded_parts

PART = b"--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: %s\r\n\r\n%s\r\n"


def test_base64_and_quoted_printable_parts_in_order() -> None:
    body = (
        PART % (b"7bit", b"plain")
        + PART % (b"BASE64", b"PGE+")
        + PART % (b"quoted-printable ", b"=3Ca=3E")
        + b"--b--\r\n"
    )
    assert list(encoded_parts(body, 1000)) == [
        ("base64", b"PGE+"),
        ("quoted-printable", b"=3Ca=3E"),
    ]


def test_bare_lf_line_ends() -> None:
    body = (PART % (b"base64", b"PGE+") + b"--b--\r\n").replace(b"\r\n", b"\n")
    assert list(encoded_parts(body, 1000)) == [("base64", b"PGE+")]


def test_the_field_counts_only_at_the_start_of_a_line() -> None:
    body = b"x-content-transfer-encoding: base64\r\n\r\nPGE+\r\n--b\r\n"
    assert list(encoded_parts(body, 1000)) == []
    quoted = b"text: Content-Transfer-Encoding: base64\r\n\r\nPGE+\r\n"
    assert list(encoded_parts(quoted, 1000)) == []


def test_payload_stops_at_the_byte_budget() -> None:
    body = PART % (b"base64", b"A" * 100) + PART % (b"base64", b"B" * 100) + b"--b--"
    parts = list(encoded_parts(body, 150))
    assert [len(p) for _, p in parts] == [100, 50]


def test_a_header_block_without_an_end_gives_nothing() -> None:
    assert list(encoded_parts(b"Content-Transfer-Encoding: base64\r\nX: y", 1000)) == []
