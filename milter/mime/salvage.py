"""Encoded parts found in a body whose MIME tree was abandoned (too deep, too many parts).

Past those limits the body is read as text, where a base64 or quoted-printable part would
be read still encoded: a link inside it would go unseen (a lure behind 10,001 filler parts
was accepted). This finds each part that declares such an encoding by plain byte
searches, without building the tree, so the caller can decode it and read its text too.
"""

from __future__ import annotations

from collections.abc import Iterator

_FIELD = b"content-transfer-encoding:"
_ENCODINGS = (b"base64", b"quoted-printable")


def encoded_parts(body: bytes, max_bytes: int) -> Iterator[tuple[str, bytes]]:
    """(encoding, encoded payload) of each part of ``body`` whose header declares base64 or
    quoted-printable, in order, until ``max_bytes`` of payload have been given."""
    lowered = body.lower()
    given = 0
    at = lowered.find(_FIELD)
    while at >= 0 and given < max_bytes:
        line_end = lowered.find(b"\n", at)
        line_end = len(lowered) if line_end < 0 else line_end
        value = lowered[at + len(_FIELD) : line_end].strip()
        headers_end = _blank_line(lowered, at)
        if headers_end < 0:
            return
        next_boundary = lowered.find(b"\n--", headers_end)
        end = len(body) if next_boundary < 0 else next_boundary
        if end > headers_end and lowered[end - 1 : end] == b"\r":
            end -= 1  # the line break before a boundary belongs to the boundary
        if value in _ENCODINGS and (at == 0 or lowered[at - 1 : at] == b"\n"):
            payload = body[headers_end : min(end, headers_end + max_bytes - given)]
            given += len(payload)
            yield value.decode(), payload
        at = lowered.find(_FIELD, max(end, line_end))


def _blank_line(data: bytes, start: int) -> int:
    """Offset just after the first empty line from ``start`` (CRLF or LF), or -1."""
    crlf, lf = data.find(b"\r\n\r\n", start), data.find(b"\n\n", start)
    found = [(i + 4 if i == crlf else i + 2) for i in (crlf, lf) if i >= 0]
    return min(found) if found else -1
