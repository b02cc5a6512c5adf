"""One header field splitter: where each field of a raw header block starts and ends.

Every reader of raw header bytes (MIME parsing, applying milter edits, rewriting a part's
Content-Type, the quarantine record) splits fields here, so they all agree on what a
field is: a line that does not start with a space or tab, plus its continuation lines,
up to the first empty line. It is one linear pass over the bytes (no regular expression
that could backtrack on a 5 MB line) and never raises.
"""

from __future__ import annotations

import re

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FOLD = re.compile(r"\r?\n[ \t]")
_FIELD_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 §3.6.8 ftext


def split_message(raw: bytes) -> tuple[bytes, bytes]:
    """Split raw bytes into (header block, body); the block keeps its empty line.

    A message without an empty line is all header block."""
    match = _HEADER_END.search(raw)
    if match is None:
        return raw, b""
    return raw[: match.end()], raw[match.end() :]


def field_spans(block: bytes) -> list[tuple[int, int]]:
    """``(start, end)`` of each field in ``block``, line endings included, in order.

    Continuation lines (starting with space or tab) belong to the field above; leading
    continuation lines before any field form a span of their own. Stops at the first
    empty line.
    """
    spans: list[tuple[int, int]] = []
    pos = 0
    size = len(block)
    while pos < size:
        newline = block.find(b"\n", pos)
        end = size if newline < 0 else newline + 1
        if end - pos <= 2 and block[pos:end] in (b"\n", b"\r\n"):
            break
        if spans and block[pos] in b" \t" and spans[-1][1] == pos:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((pos, end))
        pos = end
    return spans


def field_name(field: bytes) -> bytes:
    """Lower-cased name of one raw field (the bytes before its colon, stripped)."""
    return field.split(b":", 1)[0].strip().lower()


def find_field(block: bytes, name: bytes) -> tuple[int, int] | None:
    """Span of the first field called ``name`` (case-insensitive), without its final line
    ending; None when absent."""
    wanted = name.lower()
    for start, end in field_spans(block):
        if field_name(block[start : min(end, start + 256)]) == wanted:
            return start, start + len(block[start:end].rstrip(b"\r\n"))
    return None


def unfold(value: str) -> str:
    """A field value with its folding line breaks removed and outer whitespace stripped."""
    return _FOLD.sub(" ", value).strip()


def parse_fields(block: bytes) -> tuple[tuple[str, str], ...]:
    """The fields as (name, unfolded value) in order; lines that are not fields are skipped.

    Bytes that are not UTF-8 are kept as surrogate escapes (decode with
    ``surrogateescape`` to get them back)."""
    fields: list[tuple[str, str]] = []
    for start, end in field_spans(block):
        line = block[start:end].decode("utf-8", "surrogateescape")
        name, sep, value = line.partition(":")
        if not sep or not _FIELD_NAME.fullmatch(name.rstrip(" \t")):
            continue
        fields.append((name.strip(), unfold(value)))
    return tuple(fields)


def first_value(block: bytes, name: str) -> str:
    """Unfolded value of the first field called ``name`` ("" when absent)."""
    lname = name.lower()
    return next((v for n, v in parse_fields(block) if n.lower() == lname), "")
