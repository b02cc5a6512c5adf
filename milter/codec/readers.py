"""Decode MTA packets into command events. Any malformation raises `RemoteProtocolError`."""

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TypeVar

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
from .wire import (
    TEXT_ENCODING,
    TEXT_ERRORS,
    UINT16,
    UINT32,
    exact_cstrings,
    split_cstrings,
    to_text,
)

OPTNEG_SIZE = 3 * UINT32.size
NO_MACROS: Mapping[str, str] = MappingProxyType({})

_C = TypeVar("_C", bound=Command | Macro)
_Reader = Callable[[bytes, Mapping[str, str]], Command | Macro]


def _built(kind: type[_C], macros: Mapping[str, str], **fields: object) -> _C:
    """A command decoded from the wire, built without its class's `__post_init__` checks.

    Those checks guard values a program makes (the MTA role, tests): text must encode and
    hold no NUL. Decoded values are valid by construction: texts come from splitting the
    payload at NULs and decoding with surrogateescape (which round-trips any byte), numbers
    from fixed-size fields, so checking them again cost more than the rest of decoding. A
    property test (tests/codec) compares every reader with the checked constructor.
    """
    event = object.__new__(kind)
    event.__dict__.update(fields)
    if kind is not Macro:
        event.__dict__["macros"] = macros
    return event


def _read_optneg(payload: bytes, macros: Mapping[str, str]) -> OptNeg:
    if len(payload) != OPTNEG_SIZE:
        raise ValueError(f"OPTNEG payload is {len(payload)} bytes, expected {OPTNEG_SIZE}")
    version, actions, protocol = (UINT32.unpack_from(payload, i)[0] for i in (0, 4, 8))
    return _built(
        OptNeg,
        macros,
        version=version,
        actions=ActionFlag(actions),
        protocol=ProtocolFlag(protocol),
    )


def _read_macro(payload: bytes, macros: Mapping[str, str]) -> Macro:
    if not payload or payload[0] not in MACRO_CODES:
        raise ValueError(f"macro packet for unknown command {payload[:1]!r}")
    texts = split_cstrings(payload[1:])
    if len(texts) % 2:
        raise ValueError("macro packet has a name without a value")
    values = dict(zip(texts[::2], texts[1::2], strict=True))
    if "" in values:
        raise ValueError("empty macro name")
    macro = object.__new__(Macro)  # as `_built` does, without its keyword arguments
    fields = macro.__dict__
    fields["command"] = payload[:1]
    fields["values"] = MappingProxyType(values)
    return macro


def _read_connect(payload: bytes, macros: Mapping[str, str]) -> Connect:
    hostname, sep, rest = payload.partition(b"\0")
    if not sep or not rest:
        raise ValueError("CONNECT lacks a hostname or a family")
    family = Family(to_text(rest[:1]))
    rest = rest[1:]
    if family is Family.UNKNOWN:
        if rest:
            raise ValueError("trailing bytes after an UNKNOWN family")
        return _built(
            Connect, macros, hostname=to_text(hostname), family=family, port=None, address=None
        )
    if len(rest) < UINT16.size:
        raise ValueError("CONNECT lacks a port")
    (port,) = UINT16.unpack_from(rest)
    (address,) = exact_cstrings(rest[UINT16.size :], 1)
    return _built(
        Connect, macros, hostname=to_text(hostname), family=family, port=port, address=address
    )


def _read_envelope(
    kind: type[MailFrom] | type[Rcpt], payload: bytes, macros: Mapping[str, str]
) -> Command:
    texts = split_cstrings(payload)
    if not texts:
        raise ValueError("missing address")
    return _built(kind, macros, address=texts[0], esmtp_args=tuple(texts[1:]))


def _read_empty(kind: type[Command]) -> _Reader:
    def read(payload: bytes, macros: Mapping[str, str]) -> Command:
        if payload:
            raise ValueError(f"unexpected {len(payload)} payload bytes")
        return _built(kind, macros)

    return read


def _read_header(payload: bytes, macros: Mapping[str, str]) -> Header:
    # the commonest packet, built in place (as `_built` does); anything irregular takes
    # exact_cstrings, which raises what it always did
    if payload[-1:] == b"\0":
        parts = payload[:-1].split(b"\0")
        if len(parts) == 2:
            header = object.__new__(Header)
            fields = header.__dict__
            fields["name"] = parts[0].decode(TEXT_ENCODING, TEXT_ERRORS)
            fields["value"] = parts[1].decode(TEXT_ENCODING, TEXT_ERRORS)
            fields["macros"] = macros
            return header
    name, value = exact_cstrings(payload, 2)
    return _built(Header, macros, name=name, value=value)


def _read_body(payload: bytes, macros: Mapping[str, str]) -> BodyChunk:
    chunk = object.__new__(BodyChunk)  # as `_built` does, without its keyword arguments
    fields = chunk.__dict__
    fields["data"] = payload
    fields["macros"] = macros
    return chunk


_READERS: dict[bytes, _Reader] = {
    OptNeg.CODE: _read_optneg,
    Macro.CODE: _read_macro,
    Connect.CODE: _read_connect,
    Helo.CODE: lambda p, m: _built(Helo, m, helo=exact_cstrings(p, 1)[0]),
    MailFrom.CODE: lambda p, m: _read_envelope(MailFrom, p, m),
    Rcpt.CODE: lambda p, m: _read_envelope(Rcpt, p, m),
    Data.CODE: _read_empty(Data),
    Header.CODE: _read_header,
    EndOfHeaders.CODE: _read_empty(EndOfHeaders),
    BodyChunk.CODE: _read_body,
    EndOfMessage.CODE: lambda p, m: _built(EndOfMessage, m, data=p),
    Abort.CODE: _read_empty(Abort),
    Quit.CODE: _read_empty(Quit),
    QuitNewConnection.CODE: _read_empty(QuitNewConnection),
    Unknown.CODE: lambda p, m: _built(Unknown, m, line=exact_cstrings(p, 1)[0]),
}


def decode_command(frame: Frame) -> Command | Macro:
    """Turn one MTA packet into an event; raises `RemoteProtocolError` on malformed input."""
    return decode_packet(frame.code, frame.payload)


def decode_packet(
    code: bytes, payload: bytes, macros: Mapping[str, str] = NO_MACROS
) -> Command | Macro:
    """`decode_command` for a (code, payload) pair; a command gets ``macros`` attached
    (the values its SMFIC_MACRO packet announced)."""
    reader = _READERS.get(code)
    if reader is None:
        raise RemoteProtocolError(f"unknown command code {code!r}")
    try:
        return reader(payload, macros)
    except (ValueError, LocalProtocolError) as exc:
        raise RemoteProtocolError(f"malformed {code!r} packet: {exc}") from exc
