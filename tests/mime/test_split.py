"""The in-place MIME splitter builds FeedParser's tree; a spooled parse never holds attachments."""

from __future__ import annotations

import base64
import tracemalloc
from email.feedparser import FeedParser
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from milter.mime import parse as mime_parse
from milter.mime import split
from milter.mime.parse import MimeLimits, MimeView, parse_message
from milter.mime.split import (
    MAX_ENTITIES,
    Span,
    TooDeep,
    TooManyParts,
    materialise_small,
    split_tree,
)
from milter.mime.spool import RawMessage, SpoolConfig


def _stdlib(raw: bytes) -> Message:
    parser = FeedParser(policy=compat32)
    parser.feed(raw.decode("ascii", "surrogateescape"))
    return parser.close()


def _shape(msg: Message, path: str = "1") -> list[Any]:
    """Everything the tree says: per entity its headers, defects and payload."""
    out: list[Any] = [(path, tuple(msg.items()), [type(d).__name__ for d in msg.defects])]
    payload = vars(msg).get("_payload")
    if isinstance(payload, list):
        for index, child in enumerate(payload, 1):
            out += _shape(child, f"{path}.{index}")
    elif isinstance(payload, Span):
        out.append(payload.buffer[payload.start : payload.end].decode("ascii", "surrogateescape"))
    else:
        out.append(payload)
    return out


def _spooled(raw: bytes, directory: Path) -> RawMessage:
    writer = SpoolConfig(directory, threshold_bytes=0).writer()
    writer.write(raw)
    return writer.finish()


def _view_fields(view: MimeView) -> tuple[Any, ...]:
    return (view.headers, view.parts, view.texts, view.htmls, view.defects, view.limits_hit)


# -- Hypothesis: messages built to hit the boundary rules ----------------------------------
EOLS = st.sampled_from([b"\r\n", b"\n", b"\r"])
BOUNDARIES = st.sampled_from([b"b", b"bb", b"b1", b"=_x", b"b--"])
LINES = st.sampled_from(
    [b"hello", b"", b" folded", b"--", b"--b", b"--b--", b"--bb", b"--b ", b"--b--  ", b"--b x",
     b"From x", b"a: b", b"=41=\r", b"QUJD", b"\xe9t\xe9", b"Content-Type: text/plain", b"--b1"]
)  # fmt: skip
CTYPES = st.sampled_from(
    [b"text/plain", b"text/html", b"application/pdf", b"message/rfc822", b"multipart/mixed",
     b"message/delivery-status"]
)  # fmt: skip


@st.composite
def _lines(draw: st.DrawFn) -> bytes:
    eol = draw(EOLS)
    return b"".join(line + eol for line in draw(st.lists(LINES, max_size=5)))


@st.composite
def _leaf(draw: st.DrawFn) -> bytes:
    eol = draw(EOLS)
    head = b"Content-Type: " + draw(CTYPES) + eol
    if draw(st.booleans()):
        head += (
            b"Content-Transfer-Encoding: "
            + draw(st.sampled_from([b"base64", b"quoted-printable", b"8bit"]))
            + eol
        )
    separator = draw(st.sampled_from([eol, b"", b"X" + eol]))
    return head + separator + draw(_lines())


def _entity(depth: int) -> st.SearchStrategy[bytes]:
    if depth == 0:
        return _leaf()
    return st.one_of(_leaf(), _multipart(depth), _message(depth))


@st.composite
def _message(draw: st.DrawFn, depth: int) -> bytes:
    eol = draw(EOLS)
    return b"Content-Type: message/rfc822" + eol + eol + draw(_entity(depth - 1))


@st.composite
def _multipart(draw: st.DrawFn, depth: int) -> bytes:
    eol = draw(EOLS)
    boundary = draw(BOUNDARIES)
    out = b'Content-Type: multipart/mixed; boundary="' + boundary + b'"' + eol + eol
    out += draw(_lines())
    for child in draw(st.lists(_entity(depth - 1), max_size=3)):
        out += b"--" + boundary + draw(st.sampled_from([b"", b" ", b"\t"])) + eol
        if draw(st.booleans()):
            out += b"--" + boundary + eol  # a repeated boundary line
        out += child + draw(st.sampled_from([eol, b""]))
    if draw(st.booleans()):
        out += b"--" + boundary + b"--" + draw(st.sampled_from([eol, b"", b" " + eol]))
    return out + draw(_lines())


GARBAGE = [b"--b", b"--b--", b"\r\n", b"\n", b"\r", b"x", b"a: b", b" "]
MESSAGES = st.one_of(
    _entity(3).map(lambda body: b"From: a@example.org\r\n" + body),
    st.lists(st.sampled_from(GARBAGE), max_size=30).map(
        lambda parts: b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + b"".join(parts)
    ),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSAGES, st.booleans())
def test_split_tree_is_feedparsers_tree(raw: bytes, small_as_str: bool) -> None:
    tree = split_tree(raw)  # every leaf a Span
    if small_as_str:
        materialise_small(tree)
    assert _shape(tree) == _shape(_stdlib(raw))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSAGES)
def test_spooled_parse_is_the_in_memory_parse(
    tmp_path_factory: pytest.TempPathFactory, raw: bytes
) -> None:
    with _spooled(raw, tmp_path_factory.mktemp("spool")) as source:
        assert _view_fields(parse_message(source)) == _view_fields(parse_message(raw))


def _parse_materialised(raw: bytes, limits: MimeLimits) -> MimeView:
    """parse_message with every small leaf given its str payload (the parse before leaves
    without a transfer encoding kept their Span)."""
    keep = mime_parse.materialise_small
    mime_parse.materialise_small = lambda tree, **_: keep(tree)  # type: ignore[assignment]
    try:
        return parse_message(raw, limits)
    finally:
        mime_parse.materialise_small = keep


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSAGES, st.sampled_from([None, (0, 3), (1, 1), (2, 40), (1, 2000)]))
def test_unencoded_leaves_read_from_their_span_as_from_their_str(
    raw: bytes, tight: tuple[int, int] | None
) -> None:
    """Leaves without a transfer encoding keep their Span (materialise_small's
    keep_unencoded): the view is the one their str payloads gave, under the default limits
    and past max_parts, where the text read is cut at the budget left."""
    limits = MimeLimits() if tight is None else MimeLimits(*tight)
    try:
        expected = _view_fields(_parse_materialised(raw, limits))
    except UnicodeEncodeError:  # the str's cut past max_parts raised on 8-bit text
        return  # (a Span's cut does not; a str payload's, e.g. delivery-status, still does)
    assert _view_fields(parse_message(raw, limits)) == expected


def test_an_unencoded_text_leaf_keeps_its_span() -> None:
    raw = b"Content-Type: text/plain; charset=utf-8\r\n\r\nd\xc3\xa9j\xc3\xa0\r\n"
    tree = split_tree(raw)
    materialise_small(tree, keep_unencoded=True)
    assert isinstance(vars(tree)["_payload"], Span)
    assert parse_message(raw).texts == ("déjà\r\n",)
    past_cap = b"From: a\r\nContent-Type: text/plain\r\n\r\nhello\r\n\xe9t\xe9\r\n"
    assert parse_message(past_cap, MimeLimits(0, 3)).texts == ("hel",)  # the str's cut raised
    encoded = raw.replace(b"\r\n\r\n", b"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    tree = split_tree(encoded.replace(b"d\xc3\xa9j\xc3\xa0", b"ZMOpasOg"))
    materialise_small(tree, keep_unencoded=True)
    assert isinstance(vars(tree)["_payload"], str)


@pytest.mark.parametrize(
    "raw",
    [
        b"From: a@example.org\r\nContent-Type: text/plain\r\nFrom x\r\n\r\nbody\r\n",
        b"From: a\r\nFrom x\r\nnot a header\r\nbody",
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nA: 1\r\nFrom x\r\n\r\nz\r\n--b--",
    ],
)
def test_a_last_header_line_starting_with_from_goes_to_the_body(raw: bytes) -> None:
    """FeedParser reads such a line as the body's first line, after the empty line."""
    tree = split_tree(raw)
    materialise_small(tree)
    assert _shape(tree) == _shape(_stdlib(raw))


# -- the shared corpus ----------------------------------------------------------------------
def test_split_tree_and_spooled_parse_match_the_stdlib_on_the_corpus(
    corpus: Path, tmp_path: Path
) -> None:
    files = [p for p in sorted(corpus.rglob("*")) if p.is_file()]
    assert len(files) > 1000
    for path in files:
        raw = path.read_bytes()
        try:
            expected = _shape(_stdlib(raw))
        except RecursionError:
            continue  # the stdlib's own limit; the splitter has MAX_NESTING
        assert _shape(split_tree(raw)) == expected, path
        view = _view_fields(parse_message(raw))
        assert view == _view_fields(_parse_materialised(raw, MimeLimits())), path
        with _spooled(raw, tmp_path) as source:
            assert _view_fields(parse_message(source)) == view, path


# -- structure, not time ----------------------------------------------------------------------
def _big_message(attachment_bytes: int) -> bytes:
    text = "Bonjour, votre dossier CPF https://moncompteformation.gouv.fr/ est prêt.\r\n" * 50
    attachment = base64.encodebytes(b"\x00\x01binary" * (attachment_bytes // 8)).replace(
        b"\n", b"\r\n"
    )
    return (
        b"From: a@example.org\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="sep"\r\n\r\n'
        b"--sep\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text.encode() + b"\r\n"
        b"--sep\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="dossier.pdf"\r\n\r\n'
        + attachment
        + b"\r\n--sep--\r\n"
    )


def test_spooled_parse_never_materialises_the_attachment(tmp_path: Path) -> None:
    """Python allocations while parsing a spooled 12 MB message stay around the text part
    and one read chunk (1 MiB), while the in-memory parse of the same bytes holds several
    copies of the attachment: the bound is about the text, not the message."""
    raw = _big_message(9 * 1024 * 1024)
    with _spooled(raw, tmp_path) as source:
        tracemalloc.start()
        try:
            view = parse_message(source)
            spooled_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            in_memory = parse_message(raw)  # in memory, but as large: split too
            memory_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            _stdlib(raw)  # the stdlib parser, which Tocsin no longer uses
            stdlib_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert _view_fields(view) == _view_fields(in_memory)
    assert view.parts[1].size == 9 * 1024 * 1024 // 8 * 8
    assert "moncompteformation" in view.texts[0]
    assert spooled_peak < 3 * 1024 * 1024 < len(raw) // 4
    assert memory_peak < 3 * 1024 * 1024
    assert stdlib_peak > len(raw)  # what the bound guards against


def test_spooled_text_part_is_read_up_to_the_text_limit(tmp_path: Path) -> None:
    body = b"https://ameli-remboursement.example/ " * 200_000  # 7.4 MB of text
    raw = b"From: a@example.org\r\nContent-Type: text/plain\r\n\r\n" + body
    with _spooled(raw, tmp_path) as source:
        view = parse_message(source)
    assert len(view.texts[0]) == 1_000_000
    assert [h.limit for h in view.limits_hit] == ["text"]
    assert view.parts[0].size == len(body)


def test_too_deep_a_tree_is_read_as_text(tmp_path: Path) -> None:
    nested = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
        for level in range(split.MAX_NESTING + 5)
    )
    raw = nested + b"Content-Type: text/html\r\n\r\n<a href='https://evil.example/'>x</a>\r\n"
    with pytest.raises(TooDeep):
        split_tree(raw)
    with _spooled(raw, tmp_path) as source:
        view = parse_message(source)
    assert any(h.limit == "depth" for h in view.limits_hit)
    assert any("evil.example" in html for html in view.htmls)


def test_cut_message_records_the_size_limit(tmp_path: Path) -> None:
    raw = _big_message(100_000)
    with _spooled(raw, tmp_path) as source:
        view = parse_message(source.prefix(20_000))
    assert [h.limit for h in view.limits_hit] == ["size"]
    assert "moncompteformation" in view.texts[0]


def test_past_the_entity_cap_the_body_is_read_as_text() -> None:
    """More than MAX_ENTITIES parts: the splitter stops (TooManyParts) instead of parsing
    every part's header block, and the parse reads the body as text, so a link behind the
    filler is still seen and the ``parts`` limit is recorded."""
    filler = b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * (MAX_ENTITIES + 1)
    lure = (
        b'--b\r\nContent-Type: text/html\r\n\r\n<a href="https://ameli-secure.example/">x</a>\r\n'
    )
    raw = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + filler + lure + b"--b--\r\n"
    with pytest.raises(TooManyParts):
        split_tree(raw)
    view = parse_message(raw)
    assert [hit.limit for hit in view.limits_hit] == ["parts"]
    assert any("ameli-secure.example" in html for html in view.htmls)


HEADER_LINES = st.sampled_from(
    ["Content-Type: text/plain", " folded", "\tfolded", "X-A:", "X-B:b", "From x", ":x",
     "From a: b", "Subject: caf\udce9", "a: b: c", "To: x@y", "  ", "X-C: a\x00b", "X A: b",
     "Sub\udcc3ject: x", "X\x0b: y"]
)  # fmt: skip


@given(st.lists(HEADER_LINES, max_size=6), st.sampled_from(["\r\n", "\n", "\r"]), st.booleans())
def test_a_plain_header_block_reads_as_the_stdlib_reads_it(
    lines: list[str], eol: str, mixed: bool
) -> None:
    text = "".join(line + eol for line in lines) + eol
    if mixed and lines:
        text = text.replace(eol, "\n" if eol != "\n" else "\r\n", 1)
    fast = split.plain_header_block(text)
    if fast is None:  # not plain: the stdlib reads it
        return
    slow = HeaderParser(policy=compat32).parsestr(text, headersonly=True)
    assert fast.items() == slow.items()
    assert fast.defects == slow.defects == []
    assert fast.get_unixfrom() == slow.get_unixfrom()
    assert vars(fast).get("_payload") == vars(slow).get("_payload") == ""


def test_plain_header_blocks_take_the_fast_path() -> None:
    plain = "Content-Type: text/plain;\r\n charset=utf-8\r\nX-A: b\r\n\r\n"
    msg = split.plain_header_block(plain)
    assert msg is not None
    assert msg.items() == [("Content-Type", "text/plain;\r\n charset=utf-8"), ("X-A", "b")]
    assert split.plain_header_block(plain.replace("\r\n", "\n")) is not None
    for odd in ("From a: b\r\n\r\n", " a: b\r\n\r\n", "a: b\r\n", "a: b\n\r\n", ":x\n\n"):
        assert split.plain_header_block(odd) is None, odd


@given(st.binary(max_size=300), st.integers(0, 40), st.integers(0, 40))
def test_span_counts_the_bytes_among_chars(data: bytes, cut_start: int, cut_end: int) -> None:
    start, end = min(cut_start, len(data)), max(min(cut_start, len(data)), len(data) - cut_end)
    chars = b"\r\n \t="
    naive = sum(data[start:end].count(bytes((c,))) for c in chars)
    assert Span(data, start, end).count(chars) == naive
