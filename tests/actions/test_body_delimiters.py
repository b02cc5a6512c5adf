"""Boundary lines are found exactly where the plain multiline pattern finds them."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from milter.actions.body import delimiters

BOUNDARY = b"b=_1"


def _plain(body: bytes, boundary: bytes) -> list[tuple[int, int, bool]]:
    pattern = re.compile(rb"(?m)(\r?\n)?^--" + re.escape(boundary) + rb"(--)?[ \t]*(\r?\n|\Z)")
    return [(m.start(), m.end(), m.group(2) is not None) for m in pattern.finditer(body)]


PIECES = st.sampled_from(
    [b"--", b"--b=_1", b"--b=_1--", b"b=_1", b"\r\n", b"\n", b"\r", b" ", b"\t", b"x", b"-", b"="]
)


@given(st.lists(PIECES, max_size=40))
def test_same_delimiters_as_the_multiline_pattern(pieces: list[bytes]) -> None:
    body = b"".join(pieces)
    assert list(delimiters(body, BOUNDARY)) == _plain(body, BOUNDARY)


def test_parts_of_a_multipart_body() -> None:
    body = b"preamble\r\n--b=_1\r\nA\r\n--b=_1 \r\nB\r\n--b=_1--\r\nepilogue"
    found = list(delimiters(body, BOUNDARY))
    assert [body[s:e] for s, e, _ in found] == [
        b"\r\n--b=_1\r\n",
        b"\r\n--b=_1 \r\n",
        b"\r\n--b=_1--\r\n",
    ]
    assert [close for _, _, close in found] == [False, False, True]
