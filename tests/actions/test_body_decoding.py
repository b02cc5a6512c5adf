"""The rewriter reads a part's headers and payload as the stdlib parser would, without it."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.parser import BytesHeaderParser
from email.policy import compat32

from hypothesis import given
from hypothesis import strategies as st

from milter.actions import banner
from milter.actions.banner import HTML_END, HTML_START, PLAIN_END, PLAIN_START, strip_banners
from milter.actions.body import same_line_ends
from milter.mime.parse import transfer_decoded
from milter.mime.split import header_message

CTES = st.sampled_from(["7bit", "8bit", "binary", "quoted-printable", "base64"])
BODY_BYTES = st.lists(
    st.sampled_from(
        [b"a", b"QUJD", b"=", b"=41", b"=\r\n", b"=\n", b"\r\n", b"\n", b"\r", b" ", b"\t",
         b"\xe9", b"From x", b"--b", b"\x00", b"==", b"Zg", b"\xff"]
    ),
    max_size=40,
).map(b"".join)  # fmt: skip


@given(BODY_BYTES, CTES)
def test_payload_decoded_as_the_parsed_entity_gives_it(body: bytes, cte: str) -> None:
    alone = b"Content-Transfer-Encoding: " + cte.encode("ascii") + b"\n\n" + body
    assert transfer_decoded(body, cte) == message_from_bytes(alone, policy=compat32).get_payload(
        decode=True
    )


HEADER_LINES = st.sampled_from(
    [b"Content-Type: text/html; charset=utf-8", b" folded", b"\tx", b"X-A:", b"From a: b",
     b":x", b"junk line", b"Content-Transfer-Encoding: base64", b"\xe9: x", b""]
)  # fmt: skip


@given(st.lists(HEADER_LINES, max_size=6), st.sampled_from([b"\r\n", b"\n", b"\r"]))
def test_headers_read_as_bytes_header_parser_reads_them(lines: list[bytes], eol: bytes) -> None:
    block = b"".join(line + eol for line in lines) + eol
    ours = header_message(block.decode("ascii", "surrogateescape"))
    stdlib = BytesHeaderParser(policy=compat32).parsebytes(block)
    assert ours.items() == stdlib.items()
    assert [type(d) for d in ours.defects] == [type(d) for d in stdlib.defects]
    assert ours.get_content_type() == stdlib.get_content_type()


LINE_TEXT = st.lists(st.sampled_from(["a", "\r", "\n", "\r\n", "\n\r", " ", "é"]), max_size=30)


@given(LINE_TEXT.map("".join), st.sampled_from(["\r\n", "\n"]))
def test_line_ends_rewritten_as_the_pattern_does(text: str, eol: str) -> None:
    assert same_line_ends(text, eol) == re.sub(r"\r\n|\r|\n", eol, text)


BANNER_PIECES = st.lists(
    st.sampled_from(
        [HTML_START, HTML_END, PLAIN_START, PLAIN_END, "[Tocsin] -", "> ", "\n", "\r\n", "x",
         "-" * 12 + " [/Tocsin]", "[Tocsin] " + "-" * 12, " "]
    ),
    max_size=20,
).map("".join)  # fmt: skip


@given(BANNER_PIECES)
def test_banners_stripped_as_by_both_patterns(text: str) -> None:
    reference = banner._PLAIN_BLOCK.sub("", banner._HTML_BLOCK.sub("", text))
    assert strip_banners(text) == reference
