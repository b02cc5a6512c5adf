"""Read the Subject and From of a message for the record (stdlib only, never raises)."""

from __future__ import annotations

import re
from email.header import decode_header, make_header

from milter.text.headers import first_value

_END = re.compile(rb"\r?\n\r?\n")
_MAX = 998
_MAX_BLOCK = 256 * 1024


def _header_block(raw: bytes) -> bytes:
    match = _END.search(raw, 0, _MAX_BLOCK)
    return raw[: match.start()] if match else raw[:_MAX_BLOCK]


def _first(block: bytes, name: str) -> str:
    value = first_value(block, name)
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _decoded(value: str) -> str:
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, AssertionError, UnicodeError):
        return value


def header_value(raw: bytes, name: str) -> str:
    """The first ``name`` header of ``raw``, unfolded, undecoded ("" when absent)."""
    return _first(_header_block(raw), name)


def summary_headers(raw: bytes) -> tuple[str, str]:
    """(decoded Subject, From as written), each at most 998 characters."""
    block = _header_block(raw)
    return _decoded(_first(block, "subject"))[:_MAX], _decoded(_first(block, "from"))[:_MAX]
