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
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size < MIN_MAX_FRAME_SIZE:
            raise ValueError(f"max_frame_size must be at least {MIN_MAX_FRAME_SIZE}")
        self._buffer = bytearray()
        self._max_frame_size = max_frame_size
        self._eof = False

    @property
    def max_frame_size(self) -> int:
        """The largest ``len`` field accepted."""
        return self._max_frame_size

    @property
    def eof(self) -> bool:
        """True once the peer has closed its side."""
        return self._eof

    def __len__(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Append bytes from the peer; ``b""`` marks end of stream."""
        if self._eof:
            raise LocalProtocolError("data received after end of stream")
        if data:
            self._buffer += data
        else:
            self._eof = True

    def next_frame(self) -> Frame | None:
        """Return the next complete frame, or None if more bytes are needed."""
        length = self._peek_length()
        if length is None or len(self._buffer) < LENGTH_SIZE + length:
            if self._eof and self._buffer:
                raise RemoteProtocolError(
                    f"connection closed inside a packet ({len(self._buffer)} bytes pending)"
                )
            return None
        end = LENGTH_SIZE + length
        frame = Frame(
            bytes(self._buffer[LENGTH_SIZE : LENGTH_SIZE + 1]), bytes(self._buffer[5:end])
        )
        del self._buffer[:end]
        return frame

    def _peek_length(self) -> int | None:
        if len(self._buffer) < LENGTH_SIZE:
            return None
        (length,) = UINT32.unpack_from(self._buffer)
        if length == 0:
            raise RemoteProtocolError("packet length 0: a packet holds at least its code")
        if length > self._max_frame_size:
            raise RemoteProtocolError(
                f"packet length {length} exceeds the limit of {self._max_frame_size}"
            )
        return int(length)
