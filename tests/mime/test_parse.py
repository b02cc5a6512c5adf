"""The MIME view: parsed once, tolerant of garbage, bounded."""

from __future__ import annotations

from email.message import Message
from email.policy import compat32

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from milter.mime.parse import BIG_PART, MimeLimits, _base64_size, _text_payload, parse_message
from milter.text.confusables import fold, has_mixed_scripts, words


def test_headers_text_and_html_are_decoded() -> None:
    raw = (
        b"From: =?UTF-8?Q?Assurance_Maladie?= <x@example.org>\r\n"
        b"Subject: =?ISO-8859-1?Q?Remboursement_=E9ligible?=\r\n"
        b"Content-Type: multipart/alternative; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nQm9uam91ciDDoCB0b3Vz\r\n"
        b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><style>p{}</style><body><p>Caf&eacute;</p></body></html>\r\n--b--\r\n"
    )
    view = parse_message(raw)
    assert view.subject == "Remboursement éligible"
    assert view.from_address is not None
    assert view.from_address.display_name == "Assurance Maladie"
    assert view.from_address.domain == "example.org"
    assert view.texts == ("Bonjour à tous",)
    assert view.html_texts == ("Café",)
    assert [p.path for p in view.parts] == ["1", "2"]
    assert view.defects == ()


def test_garbage_is_recorded_never_raised() -> None:
    raw = (
        b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n"
        b"--zz\r\nContent-Type: text/plain; charset=x-unknown-charset\r\n\r\n\xff\xfe\r\n"
    )
    view = parse_message(raw)
    assert any("unknown charset" in d for d in view.defects)
    assert any("CloseBoundaryNotFoundDefect" in d for d in view.defects)
    assert view.texts  # decoded with replacement, not lost


def test_missing_from_and_no_header_block_are_defects() -> None:
    assert any("0 From headers" in d for d in parse_message(b"just a body\r\n").defects)


def test_part_count_is_bounded() -> None:
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(50))
    raw = b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" + parts
    view = parse_message(raw + b"--b--\r\n", MimeLimits(max_parts=10))
    assert len(view.parts) == 10
    assert any("more than 10 parts" in d for d in view.defects)


def test_fold_handles_accents_case_and_homoglyphs() -> None:
    assert fold("Crédit ÉLIGIBLE") == "credit eligible"
    assert fold("Αmazοn") == "amazon"  # Greek capital alpha and omicron
    assert words("Mon-Compte_Formation!") == ["mon", "compte", "formation"]
    assert has_mixed_scripts("Αmazοn") is True
    assert has_mixed_scripts("Amélie") is False


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="AZaz09+/=\r\n \t", max_size=200))
def test_a_big_base64_payloads_size_counts_only_its_data(payload: str) -> None:
    part = Message(policy=compat32)
    part.set_payload(payload * (BIG_PART // max(len(payload), 1) + 1) if payload else "")
    body = part.get_payload()
    expected = None
    if len(body) >= BIG_PART:
        expected = (len(body) - sum(body.count(c) for c in "\r\n \t=")) * 3 // 4
    assert _base64_size(part, "base64") == expected


@pytest.mark.parametrize(
    "payload",
    ["t\u00e9t\u00e9 " * 40, "caf\udce9 " * 40, "\u20ac" * 200, "ascii only " * 40],
    ids=["latin-1 characters", "8-bit bytes as surrogates", "euro signs", "ascii"],
)
def test_a_cut_str_payload_gives_the_bytes_the_uncut_one_would(payload: str) -> None:
    """A long unencoded text payload held as ``str`` (a part the stdlib parser read) is
    cut to the first 4 x max_chars bytes of what it decodes to (the cut of the str raised
    UnicodeEncodeError on any 8-bit byte: ``get_payload()`` gives them as U+FFFD)."""
    part = Message()
    part["Content-Type"] = "text/plain"
    part.set_payload(payload)
    size, cut = _text_payload(part, None, 5)
    whole = part.get_payload(decode=True)
    assert isinstance(whole, bytes)
    assert size == len(payload)
    assert cut == whole[:20]


@pytest.mark.parametrize(
    ("charset", "text"),
    [("utf-8", "a\u00e9" * 20), ("utf-8", "\u20ac" * 30), ("utf-8", "a\U0001f600" * 30),
     ("shift_jis", "\u65e5\u672c\u8a9e" * 10), ("gb18030", "\u65e5\U0001f600" * 10),
     ("utf-16-le", "abc" * 10)],
    ids=["utf-8 2 bytes", "utf-8 3 bytes", "utf-8 4 bytes", "shift_jis", "gb18030", "utf-16"],
)  # fmt: skip
@pytest.mark.parametrize("max_parts", [0, 1], ids=["past max_parts", "listed"])
def test_a_cut_unencoded_text_keeps_its_charset(charset: str, text: str, max_parts: int) -> None:
    """An unencoded text part cut at 4 x max_chars bytes may end inside a character: that
    character is dropped, the rest read in its charset (the cut bytes, decoded strictly,
    were read as cp1252 with an "invalid in declared charset" defect)."""
    head = f"From: a\r\nContent-Type: text/plain; charset={charset}\r\n\r\n".encode()
    raw = head + text.encode(charset)
    for max_chars in range(1, 8):
        view = parse_message(raw, MimeLimits(max_parts, max_chars))
        assert view.texts == (text[:max_chars],), max_chars
        assert not any("invalid" in defect for defect in view.defects), view.defects


def test_an_uncut_text_ending_inside_a_character_is_still_invalid() -> None:
    raw = b"From: a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nd\xc3\xa9j\xc3"
    view = parse_message(raw)
    assert view.texts == ("d\u00c3\u00a9j\u00c3",)  # read as cp1252
    assert "1: bytes invalid in declared charset utf-8" in view.defects
