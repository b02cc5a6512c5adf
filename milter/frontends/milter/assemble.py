"""Rebuild the message bytes from the milter's header and body events, within limits.

The MTA sends each header as ``name`` and ``value``: folded lines joined with a bare LF,
and, unless HDR_LEADSPC was negotiated, with the one space after the colon removed. We
put back CRLF and the separator so the engine sees the message as it was submitted
(DKIM with ``simple`` header canonicalisation depends on it). Text arrives from the
codec as UTF-8 with surrogateescape, which round-trips any byte.

The bytes go to a `MessageWriter` (milter.mime.spool): in memory while small, in a spool
file past ``spool.threshold_bytes``, so a 40 MB message never sits in memory whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from milter.mime.spool import MessageWriter, RawMessage, SpoolConfig

ENCODING, ERRORS = "utf-8", "surrogateescape"
# Header lines wait in a list and go to the writer together (at the end of the headers, or
# once this many bytes wait): one write, one header-end search for the whole block instead
# of one per header. The writer sees the same bytes in the same order.
HEADER_BATCH_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class AssemblyLimits:
    """How much of one message is kept, and where large ones go."""

    max_headers: int = 1000
    max_header_bytes: int = 1024 * 1024
    max_message_bytes: int = 50 * 1024 * 1024
    spool: SpoolConfig = field(default_factory=SpoolConfig)


class MessageAssembler:
    """Accumulates one message; past ``max_message_bytes`` it counts but stops storing.

    Nothing here is a reason to skip the scan ("a limit is never a bypass", #17): many
    or long header fields are kept within ``max_message_bytes`` (the engine records a
    ``LIMIT_EXCEEDED`` finding, policy ``limits.max_headers``), and a message past
    ``max_message_bytes`` keeps its first bytes, which the engine scans (limit ``size``).
    A spool that cannot be written (``failure``) makes the message a tempfail.
    """

    def __init__(self, limits: AssemblyLimits, *, leading_space_kept: bool) -> None:
        self._leading_space_kept = leading_space_kept
        self._writer: MessageWriter | None = limits.spool.writer(limits.max_message_bytes)
        self._in_body = False
        self._lines: list[bytes] = []  # header lines not handed to the writer yet
        self._pending = 0  # their bytes
        self.header_names: list[str] = []
        self.failure: str | None = None

    @property
    def size(self) -> int:
        """Bytes received so far (kept or not)."""
        return self._writer.received + self._pending if self._writer is not None else 0

    def add_header(self, name: str, value: str) -> None:
        """Append one header as it appeared on the wire."""
        separator = ":" if self._leading_space_kept else ": "
        line = (name + separator + value).encode(ENCODING, ERRORS)
        line = line.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n"
        self.header_names.append(name)
        if self._in_body:  # (the codec allows no header after the body)
            self._write(line)
            return
        self._lines.append(line)
        self._pending += len(line)
        if self._pending >= HEADER_BATCH_BYTES:
            self._flush_lines()

    def _flush_lines(self) -> None:
        lines = self._lines
        if lines:
            self._lines, self._pending = [], 0
            self._write(lines[0] if len(lines) == 1 else b"".join(lines))

    def add_body(self, chunk: bytes) -> None:
        """Append one body chunk."""
        self._end_headers()
        self._write(chunk)

    def _end_headers(self) -> None:
        if not self._in_body:
            self._in_body = True
            self._lines.append(b"\r\n")
            self._pending += 2
            self._flush_lines()

    def _write(self, data: bytes) -> None:
        if self._writer is None or self.failure is not None:
            return
        try:
            self._writer.write(data)
        except OSError as exc:  # the writer has closed its spool file
            self.failure = f"spool: {exc.strerror or exc}"

    def finish(self) -> RawMessage:
        """The message (headers, empty line, body); the caller closes it when done."""
        self._end_headers()
        if self._writer is None:
            raise RuntimeError("message already finished")
        writer, self._writer = self._writer, None
        if self.failure is not None:
            writer.discard()
            return RawMessage(b"", received=writer.received)
        return writer.finish()

    def discard(self) -> None:
        """Drop the message (aborted, connection lost): its spool file goes."""
        self._lines, self._pending = [], 0
        if self._writer is not None:
            self._writer.discard()
            self._writer = None
