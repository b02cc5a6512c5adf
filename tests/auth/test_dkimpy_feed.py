"""The cheaper way of feeding dkimpy gives dkimpy's own results, byte for byte."""

from __future__ import annotations

from pathlib import Path

import dkim
import dkim.canonicalization as canon
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milter.auth.dkim import verify_dkim
from milter.auth.dkimpy_feed import (
    _END_OF_HEADERS,
    _LINE_END,
    _RELAXED_TAIL,
    _SIMPLE_TAIL,
    FastRelaxed,
    SpooledBody,
    _end_of_headers,
    _header_lines,
    _tail_start,
    canonical_chunks,
    load_verifier,
    parse_header_block,
    prepare,
    split_message,
)
from milter.dns.fake import FakeResolver
from milter.mime.spool import RawMessage, SpoolConfig
from milter.model.auth import AuthStatus
from tests.auth.test_dkim import MESSAGE, make_key, sign

PIECES = [b"a", b"B", b":", b" ", b"\t", b"\r", b"\n", b"\r\n", b"x: y", b"\n\n", b"From "]
messages = st.lists(st.sampled_from([*PIECES, b"\r\n\r\n", b"\n\r\n"]), max_size=16).map(b"".join)
bodies = st.lists(st.sampled_from([b"a", b" ", b"\t", b"\r\n", b"\n", b"b  c", b"\r"]), max_size=24)


def _dkimpy(function, message: bytes):  # type: ignore[no-untyped-def]
    try:
        return function(message)
    except (dkim.MessageFormatError, IndexError) as exc:
        return type(exc).__name__


@settings(max_examples=1000)
@given(messages)
def test_split_message_is_rfc822_parse(message: bytes) -> None:
    assert _dkimpy(split_message, message) == _dkimpy(dkim.rfc822_parse, message)


@settings(max_examples=1000, deadline=None)
@given(messages)
def test_header_block_parse_is_rfc822_parse(block: bytes) -> None:
    assert _dkimpy(parse_header_block, block) == _dkimpy(lambda m: dkim.rfc822_parse(m)[0], block)


line_ends = st.lists(st.sampled_from([b"a", b"\r", b"\n", b"\r\n", b":"]), max_size=20).map(
    b"".join
)


@settings(max_examples=1000)
@given(line_ends)
def test_end_of_headers_is_the_regex_match(data: bytes) -> None:
    found = _END_OF_HEADERS.search(data)
    assert _end_of_headers(data) == (found.span() if found else None)


@settings(max_examples=1000)
@given(
    st.lists(st.sampled_from([b"a", b" ", b"\t", b"\r", b"\n", b"\r\n"]), max_size=20).map(
        b"".join
    ),
    st.booleans(),
)
def test_tail_start_is_the_regex_match(buf: bytes, relaxed: bool) -> None:
    found = (_RELAXED_TAIL if relaxed else _SIMPLE_TAIL).search(buf)
    assert found is not None
    assert _tail_start(buf, relaxed=relaxed) == found.start()


@settings(max_examples=1000)
@given(line_ends)
def test_header_lines_are_the_regex_split(block: bytes) -> None:
    assert _header_lines(block) == _LINE_END.split(block)


@settings(max_examples=1000)
@given(bodies.map(b"".join))
def test_fast_relaxed_body_is_dkimpy_relaxed(body: bytes) -> None:
    assert FastRelaxed.canonicalize_body(body) == canon.Relaxed.canonicalize_body(body)


def test_fast_relaxed_is_what_dkimpy_uses_for_c_relaxed() -> None:
    policy = canon.CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    assert policy.body_algorithm is FastRelaxed
    assert policy.canonicalize_body(b"a  \tb \r\n\r\n\r\n") == b"a b\r\n"


def test_big_body_is_not_split_into_lines() -> None:
    body = b"x" * 100 + b"\r\n"
    headers, out = split_message(b"From: a@ameli.fr\r\nSubject: s\r\n\r\n" + body * 1000)
    assert headers == [[b"From", b" a@ameli.fr\r\n"], [b"Subject", b" s\r\n"]]
    assert out == body * 1000
    assert split_message(b"From: a\n\nline\nline\r\n")[1] == b"line\r\nline\r\n"


@pytest.mark.parametrize("line_end", [b"\r\n", b"\n"])
async def test_prepared_message_verifies_like_raw(line_end: bytes) -> None:
    key = make_key(1024)
    signed = sign(MESSAGE, "ameli.fr", "s1", key).replace(b"\r\n", line_end)
    resolver = FakeResolver({("s1._domainkey.ameli.fr", "TXT"): key.record()})
    (raw,) = await verify_dkim(signed, resolver)
    (prepared,) = await verify_dkim(prepare(signed), resolver)
    assert raw == prepared
    assert prepared.result is AuthStatus.PASS
    tampered = signed.replace(b"disponible", b"disponib1e")
    (bad,) = await verify_dkim(prepare(tampered), resolver)
    assert bad.result is AuthStatus.FAIL


def test_unparsable_header_is_left_to_dkimpy() -> None:
    broken = b" leading fold\r\nFrom: a\r\n\r\nbody"
    assert prepare(broken) == broken
    with pytest.raises(IndexError):
        load_verifier(dkim.DKIM, broken)


# -- spooled messages: the body canonicalised a chunk at a time ------------------------------
@settings(max_examples=1500)
@given(
    st.lists(st.sampled_from([b"a", b" ", b"\t", b"\r\n", b"\n", b"\r", b"b  c"]), max_size=30),
    st.lists(st.integers(0, 60), max_size=6),
    st.booleans(),
)
def test_canonical_chunks_is_dkimpy_on_the_joined_body(
    pieces: list[bytes], cuts: list[int], relaxed: bool
) -> None:
    body = b"".join(pieces)
    points = sorted({min(c, len(body)) for c in cuts})
    chunks = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    crlf = split_message(b"A: b\r\n\r\n" + body)[1]  # bare LFs made CRLF, as dkimpy does
    algorithm = canon.Relaxed if relaxed else canon.Simple
    assert b"".join(canonical_chunks(chunks, relaxed=relaxed)) == algorithm.canonicalize_body(crlf)


def _spool(raw: bytes, directory: Path) -> RawMessage:
    writer = SpoolConfig(directory, threshold_bytes=1024).writer()
    writer.write(raw)
    message = writer.finish()
    assert message.spooled
    return message


@pytest.mark.parametrize(
    ("canonicalize", "length", "line_end"),
    [
        ((b"relaxed", b"relaxed"), False, b"\r\n"),
        ((b"simple", b"simple"), False, b"\r\n"),
        ((b"relaxed", b"simple"), True, b"\r\n"),
        ((b"relaxed", b"relaxed"), False, b"\n"),
    ],
)
async def test_spooled_message_verifies_like_raw(
    tmp_path: Path, canonicalize: tuple[bytes, bytes], length: bool, line_end: bytes
) -> None:
    key = make_key(1024)
    body = b"Votre remboursement  est disponible. \t\r\n" * 40_000 + b"\r\n\r\n"
    message = MESSAGE + body
    header = dkim.sign(
        message,
        b"s1",
        b"ameli.fr",
        key.private_pem,
        include_headers=[b"from", b"subject"],
        canonicalize=canonicalize,
        length=length,
    )
    signed = (bytes(header) + message).replace(b"\r\n", line_end)
    resolver = FakeResolver({("s1._domainkey.ameli.fr", "TXT"): key.record()})
    (raw,) = await verify_dkim(prepare(signed), resolver)
    with _spool(signed, tmp_path) as spooled:
        prepared = prepare(spooled)
        assert isinstance(prepared, tuple)
        assert isinstance(prepared[1], SpooledBody)  # the body stays in the spool file
        (streamed,) = await verify_dkim(prepared, resolver)
    assert streamed == raw
    assert streamed.result is AuthStatus.PASS
    tampered = signed.replace(b"disponible.", b"disponib1e.", 1)
    with _spool(tampered, tmp_path) as spooled:
        (bad,) = await verify_dkim(prepare(spooled), resolver)
    assert bad.result is AuthStatus.FAIL
