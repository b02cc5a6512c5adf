"""Length-prefixed framing: ``uint32 len | char code | data[len-1]``, incremental and bounded."""

from dataclasses import dataclass

from .errors import LocalProtocolError, RemoteProtocolError
from .wire import UINT32

DEFAULT_MAX_FRAME_SIZE = 1024 * 1024
"""Largest accepted ``len`` field. Postfix does not split headers (up to ~100 KiB)."""

MIN_MAX_FRAME_SIZE = 16
"""Smallest allowed limit: an OPTNEG packet (13 bytes) must fit."""

LENGTH_SIZE = UINT32.size


@dataclass(frozen=True, slots=True)
class Frame:
    """One packet: a one-byte command/reply code and its payload."""

    code: bytes
    payload: bytes


def encode_frame(code: bytes, payload: bytes = b"") -> bytes:
    """Serialise one packet."""
    if len(code) != 1:
        raise LocalProtocolError(f"a packet code is one byte, not {code!r}")
    return UINT32.pack(len(payload) + 1) + code + payload


class FrameBuffer:
    """Accumulates bytes and cuts them into frames; rejects oversized frames early.

    The size check happens as soon as the 4 length bytes are in, so a peer cannot
    make us buffer more than `max_frame_size` bytes of an incomplete packet.

    Frames are read from an offset into the buffer, and the consumed head is dropped on
    the next `feed`, not after every frame: a read holding 20 small packets costs one
    copy, not 20. A read that arrives while nothing is pending is kept as the very
    `bytes` object (no copy into a buffer); payloads are sliced from it once.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size < MIN_MAX_FRAME_SIZE:
            raise ValueError(f"max_frame_size must be at least {MIN_MAX_FRAME_SIZE}")
        self._buffer: bytes | bytearray = b""
        self._start = 0  # bytes of _buffer already handed out as frames
        self._max_frame_size = max_frame_size
        self.eof = False
        """True once the peer has closed its side (read-only outside this class)."""

    @property
    def max_frame_size(self) -> int:
        """The largest ``len`` field accepted."""
        return self._max_frame_size

    def __len__(self) -> int:
        return len(self._buffer) - self._start

    def feed(self, data: bytes) -> None:
        """Append bytes from the peer; ``b""`` marks end of stream."""
        if self.eof:
            raise LocalProtocolError("data received after end of stream")
        if not data:
            self.eof = True
        elif self._start == len(self._buffer):  # nothing pending: keep the bytes as they are
            self._buffer, self._start = bytes(data), 0
        else:
            pending = self._buffer
            if isinstance(pending, bytes) or self._start:
                pending = bytearray(memoryview(pending)[self._start :])
            pending += data
            self._buffer, self._start = pending, 0

    def next_frame(self) -> Frame | None:
        """Return the next complete frame, or None if more bytes are needed."""
        packet = self.next_packet()
        return None if packet is None else Frame(*packet)

    def next_packet(self) -> tuple[bytes, bytes] | None:
        """`next_frame` as a (code, payload) pair, without building a `Frame`."""
        buffer, start = self._buffer, self._start
        available = len(buffer) - start
        if available >= LENGTH_SIZE:
            (length,) = UINT32.unpack_from(buffer, start)
            if length == 0:
                raise RemoteProtocolError("packet length 0: a packet holds at least its code")
            if length > self._max_frame_size:
                raise RemoteProtocolError(
                    f"packet length {length} exceeds the limit of {self._max_frame_size}"
                )
            if available >= LENGTH_SIZE + length:
                body = start + LENGTH_SIZE
                end = body + length
                self._start = end
                if isinstance(buffer, bytes):
                    return buffer[body : body + 1], buffer[body + 1 : end]
                # a bytearray's slice is a bytearray (a copy) that bytes() copies again:
                # through a memoryview the payload is copied once
                with memoryview(buffer) as view:
                    return bytes(view[body : body + 1]), bytes(view[body + 1 : end])
        if self.eof and available:
            raise RemoteProtocolError(
                f"connection closed inside a packet ({available} bytes pending)"
            )
        return None
