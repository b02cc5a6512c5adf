"""Decode MTA packets into command events. Any malformation raises `RemoteProtocolError`."""

from collections.abc import Callable

from .commands import (
    MACRO_CODES,
    Abort,
    BodyChunk,
    Command,
    Connect,
    Data,
    EndOfHeaders,
    EndOfMessage,
    Family,
    Header,
    Helo,
    Macro,
    MailFrom,
    OptNeg,
    Quit,
    QuitNewConnection,
    Rcpt,
    Unknown,
)
from .errors import LocalProtocolError, RemoteProtocolError
from .flags import ActionFlag, ProtocolFlag
from .frames import Frame
from .wire import UINT16, UINT32, exact_cstrings, split_cstrings, to_text

OPTNEG_SIZE = 3 * UINT32.size


def _read_optneg(payload: bytes) -> OptNeg:
    if len(payload) != OPTNEG_SIZE:
        raise ValueError(f"OPTNEG payload is {len(payload)} bytes, expected {OPTNEG_SIZE}")
    version, actions, protocol = (UINT32.unpack_from(payload, i)[0] for i in (0, 4, 8))
    return OptNeg(version, ActionFlag(actions), ProtocolFlag(protocol))


def _read_macro(payload: bytes) -> Macro:
    if not payload or payload[0] not in MACRO_CODES:
        raise ValueError(f"macro packet for unknown command {payload[:1]!r}")
    texts = split_cstrings(payload[1:])
    if len(texts) % 2:
        raise ValueError("macro packet has a name without a value")
    return Macro(payload[:1], dict(zip(texts[::2], texts[1::2], strict=True)))


def _read_connect(payload: bytes) -> Connect:
    hostname, sep, rest = payload.partition(b"\0")
    if not sep or not rest:
        raise ValueError("CONNECT lacks a hostname or a family")
    family = Family(to_text(rest[:1]))
    rest = rest[1:]
    if family is Family.UNKNOWN:
        if rest:
            raise ValueError("trailing bytes after an UNKNOWN family")
        return Connect(to_text(hostname), family)
    if len(rest) < UINT16.size:
        raise ValueError("CONNECT lacks a port")
    (port,) = UINT16.unpack_from(rest)
    (address,) = exact_cstrings(rest[UINT16.size :], 1)
    return Connect(to_text(hostname), family, port, address)


def _read_envelope(kind: type[MailFrom] | type[Rcpt], payload: bytes) -> MailFrom | Rcpt:
    texts = split_cstrings(payload)
    if not texts:
        raise ValueError("missing address")
    return kind(texts[0], tuple(texts[1:]))


def _read_empty(kind: type[Command]) -> Callable[[bytes], Command]:
    def read(payload: bytes) -> Command:
        if payload:
            raise ValueError(f"unexpected {len(payload)} payload bytes")
        return kind()

    return read


def _read_header(payload: bytes) -> Header:
    name, value = exact_cstrings(payload, 2)
    return Header(name, value)


_READERS: dict[bytes, Callable[[bytes], Command | Macro]] = {
    OptNeg.CODE: _read_optneg,
    Macro.CODE: _read_macro,
    Connect.CODE: _read_connect,
    Helo.CODE: lambda p: Helo(*exact_cstrings(p, 1)),
    MailFrom.CODE: lambda p: _read_envelope(MailFrom, p),
    Rcpt.CODE: lambda p: _read_envelope(Rcpt, p),
    Data.CODE: _read_empty(Data),
    Header.CODE: _read_header,
    EndOfHeaders.CODE: _read_empty(EndOfHeaders),
    BodyChunk.CODE: BodyChunk,
    EndOfMessage.CODE: EndOfMessage,
    Abort.CODE: _read_empty(Abort),
    Quit.CODE: _read_empty(Quit),
    QuitNewConnection.CODE: _read_empty(QuitNewConnection),
    Unknown.CODE: lambda p: Unknown(*exact_cstrings(p, 1)),
}


def decode_command(frame: Frame) -> Command | Macro:
    """Turn one MTA packet into an event; raises `RemoteProtocolError` on malformed input."""
    reader = _READERS.get(frame.code)
    if reader is None:
        raise RemoteProtocolError(f"unknown command code {frame.code!r}")
    try:
        return reader(frame.payload)
    except (ValueError, LocalProtocolError) as exc:
        raise RemoteProtocolError(f"malformed {frame.code!r} packet: {exc}") from exc
