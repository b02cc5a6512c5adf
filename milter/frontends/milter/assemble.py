"""Rebuild the message bytes from the milter's header and body events, within limits.

The MTA sends each header as ``name`` and ``value``: folded lines joined with a bare LF,
and, unless HDR_LEADSPC was negotiated, with the one space after the colon removed. We
put back CRLF and the separator so the engine sees the message as it was submitted
(DKIM with ``simple`` header canonicalisation depends on it). Text arrives from the
codec as UTF-8 with surrogateescape, which round-trips any byte.
"""

from __future__ import annotations

from dataclasses import dataclass

ENCODING, ERRORS = "utf-8", "surrogateescape"


@dataclass(frozen=True, slots=True)
class AssemblyLimits:
    """What one message may hold before it is declared oversize."""

    max_headers: int = 1000
    max_header_bytes: int = 1024 * 1024
    max_message_bytes: int = 50 * 1024 * 1024


class MessageAssembler:
    """Accumulates one message. Past ``max_message_bytes`` it stops storing and records why.

    Many or long header fields are no reason to skip the scan ("a limit is never a
    bypass", #17): they are kept within ``max_message_bytes``, and the engine records a
    ``LIMIT_EXCEEDED`` finding (policy ``limits.max_headers``) and decides on them. The
    ``max_headers``/``max_header_bytes`` settings only count, for the log.
    """

    def __init__(self, limits: AssemblyLimits, *, leading_space_kept: bool) -> None:
        self._limits = limits
        self._leading_space_kept = leading_space_kept
        self._headers: list[bytes] = []
        self.header_names: list[str] = []
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0
        self.oversize: str | None = None
        self.size = 0

    def add_header(self, name: str, value: str) -> None:
        """Append one header as it appeared on the wire."""
        separator = ":" if self._leading_space_kept else ": "
        line = (name + separator + value).encode(ENCODING, ERRORS)
        line = line.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n"
        self.size += len(line)
        if self.oversize is not None:
            return
        if self._header_bytes + len(line) > self._limits.max_message_bytes:
            self._overflow(f"header block over {self._limits.max_message_bytes} bytes")
        else:
            self._headers.append(line)
            self.header_names.append(name)
            self._header_bytes += len(line)

    def add_body(self, chunk: bytes) -> None:
        """Append one body chunk."""
        self.size += len(chunk)
        if self.oversize is not None:
            return
        if self._header_bytes + self._body_bytes + len(chunk) > self._limits.max_message_bytes:
            self._overflow(f"message over {self._limits.max_message_bytes} bytes")
            return
        self._body.append(chunk)
        self._body_bytes += len(chunk)

    def _overflow(self, why: str) -> None:
        self.oversize = why
        self._headers.clear()
        self._body.clear()

    def message(self) -> bytes:
        """The whole message (headers, blank line, body). Empty once oversize."""
        if self.oversize is not None:
            return b""
        return b"".join(self._headers) + b"\r\n" + b"".join(self._body)
