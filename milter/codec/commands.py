"""Events the MTA sends (SMFIC_*): immutable dataclasses that know their wire payload.

Decoding lives in `readers.py`; `payload()` is what the MTA role (`mta.py`) sends.
Macros sent in an SMFIC_MACRO packet are attached to the command they announce.
"""

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar

from .errors import LocalProtocolError
from .flags import ActionFlag, ProtocolFlag
from .wire import UINT16, UINT32, check_text, check_uint32, cstring, cstrings

MACRO_CODES = frozenset(b"CHMRTLNBEU")
"""Command codes an SMFIC_MACRO packet may announce."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise LocalProtocolError(message)


def _check_texts(**texts: str) -> None:
    for what, text in texts.items():
        try:
            check_text(text, what)
        except ValueError as exc:
            raise LocalProtocolError(str(exc)) from None


def _frozen_macros(macros: Mapping[str, str]) -> Mapping[str, str]:
    for name, value in macros.items():
        _check_texts(macro_name=name, macro_value=value)
        _check(name != "", "empty macro name")
    return MappingProxyType(dict(macros))


@dataclass(frozen=True)
class Macro:
    """SMFIC_MACRO: macro values for the next command `command` (never replied to)."""

    CODE: ClassVar[bytes] = b"D"  # SMFIC_MACRO
    command: bytes
    values: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        _check(len(self.command) == 1, f"macro command code must be one byte: {self.command!r}")
        _check(self.command[0] in MACRO_CODES, f"no macros for command {self.command!r}")
        object.__setattr__(self, "values", _frozen_macros(self.values))

    def payload(self) -> bytes:
        """Wire payload after the code byte."""
        pairs = [text for item in self.values.items() for text in item]
        return self.command + cstrings(*pairs)


@dataclass(frozen=True)
class Command:
    """Base of MTA commands. `macros` holds the SMFIC_MACRO values sent for it."""

    CODE: ClassVar[bytes]
    EXPECTS_REPLY: ClassVar[bool] = True
    NO_REPLY_FLAG: ClassVar[ProtocolFlag] = ProtocolFlag.NONE
    macros: Mapping[str, str] = field(default_factory=dict, kw_only=True, hash=False)

    def __post_init__(self) -> None:
        if self.macros:
            _check(self.CODE[0] in MACRO_CODES, f"{type(self).__name__} cannot carry macros")
        object.__setattr__(self, "macros", _frozen_macros(self.macros))

    def payload(self) -> bytes:
        """Wire payload after the code byte (empty for most simple commands)."""
        return b""


def expects_reply(command: Command, protocol: ProtocolFlag) -> bool:
    """Whether the milter must answer `command` under the negotiated `protocol` bits."""
    if not command.EXPECTS_REPLY:
        return False
    return not (command.NO_REPLY_FLAG and command.NO_REPLY_FLAG in protocol)


@dataclass(frozen=True)
class OptNeg(Command):
    """SMFIC_OPTNEG: the MTA's offer (version, actions it grants, protocol bits it supports)."""

    CODE: ClassVar[bytes] = b"O"
    version: int
    actions: ActionFlag
    protocol: ProtocolFlag

    def __post_init__(self) -> None:
        super().__post_init__()
        fields = (("version", self.version), ("actions", self.actions), ("protocol", self.protocol))
        for what, value in fields:
            try:
                check_uint32(int(value), what)
            except ValueError as exc:
                raise LocalProtocolError(str(exc)) from None
        object.__setattr__(self, "actions", ActionFlag(self.actions))
        object.__setattr__(self, "protocol", ProtocolFlag(self.protocol))

    def payload(self) -> bytes:
        return UINT32.pack(self.version) + UINT32.pack(self.actions) + UINT32.pack(self.protocol)


class Family(enum.Enum):
    """Address family in SMFIC_CONNECT."""

    UNKNOWN = "U"  # SMFIA_UNKNOWN: no port or address follow
    UNIX = "L"  # SMFIA_UNIX
    INET = "4"  # SMFIA_INET
    INET6 = "6"  # SMFIA_INET6


@dataclass(frozen=True)
class Connect(Command):
    """SMFIC_CONNECT: client hostname and address (`port`/`address` are None for UNKNOWN)."""

    CODE: ClassVar[bytes] = b"C"
    NO_REPLY_FLAG: ClassVar[ProtocolFlag] = ProtocolFlag.NR_CONN
    hostname: str
    family: Family
    port: int | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_texts(hostname=self.hostname)
        if self.family is Family.UNKNOWN:
            _check(self.port is None and self.address is None, "UNKNOWN family has no address")
            return
        if self.port is None or self.address is None:
            raise LocalProtocolError(f"{self.family.name} connect needs a port and an address")
        _check(0 <= self.port <= 0xFFFF, f"port {self.port} out of range")
        _check_texts(address=self.address)

    def payload(self) -> bytes:
        head = cstring(self.hostname) + self.family.value.encode("ascii")
        if self.port is None or self.address is None:
            return head
        return head + UINT16.pack(self.port) + cstring(self.address)


@dataclass(frozen=True)
class Helo(Command):
    """SMFIC_HELO: the HELO/EHLO argument."""

    CODE: ClassVar[bytes] = b"H"
    NO_REPLY_FLAG: ClassVar[ProtocolFlag] = ProtocolFlag.NR_HELO
    helo: str

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_texts(helo=self.helo)

    def payload(self) -> bytes:
        return cstring(self.helo)


@dataclass(frozen=True)
class _Envelope(Command):
    """Shared shape of MAIL and RCPT: ``<address>`` then ESMTP parameters."""

    address: str
    esmtp_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "esmtp_args", tuple(self.esmtp_args))
        _check_texts(address=self.address, **{f"arg{i}": a for i, a in enumerate(self.esmtp_args)})

    @property
    def mailbox(self) -> str:
        """The address without its angle brackets."""
        text = self.address.strip()
        if text.startswith("<") and text.endswith(">"):
            return text[1:-1]
        return text

    def payload(self) -> bytes:
        return cstrings(self.address, *self.esmtp_args)


@dataclass(frozen=True)
class MailFrom(_Envelope):
    """SMFIC_MAIL: envelope sender (with angle brackets, as sent) and ESMTP args."""

    CODE: ClassVar[bytes] = b"M"
    NO_REPLY_FLAG: ClassVar[ProtocolFlag] = ProtocolFlag.NR_MAIL


@dataclass(frozen=True)
class Rcpt(_Envelope):
    """SMFIC_RCPT: one envelope recipient and its ESMTP args."""

    CODE: ClassVar[bytes] = b"R"
    NO_REPLY_FLAG: ClassVar[ProtocolFlag] = ProtocolFlag.NR_RCPT


@dataclass(frozen=True)
class Data(Command):
    """SMFIC_DATA: the client sent DATA (v4+)."""

    CODE: ClassVar[bytes] = b"T"
    NO_REPLY_FLAG: ClassVar[ProtocolFlag] = ProtocolFlag.NR_DATA


@dataclass(frozen=True)
class Header(Command):
    """SMFIC_HEADER: one header; folded values keep their ``\\n`` + WSP."""

    CODE: ClassVar[bytes] = b"L"
    NO_REPLY_FLAG: ClassVar[ProtocolFlag] = ProtocolFlag.NR_HDR
    name: str
    value: str

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_texts(name=self.name, value=self.value)

    def payload(self) -> bytes:
        return cstrings(self.name, self.value)


@dataclass(frozen=True)
class EndOfHeaders(Command):
    """SMFIC_EOH: all headers have been sent."""

    CODE: ClassVar[bytes] = b"N"
    NO_REPLY_FLAG: ClassVar[ProtocolFlag] = ProtocolFlag.NR_EOH


@dataclass(frozen=True)
class BodyChunk(Command):
    """SMFIC_BODY: a piece of the raw body (CRLF line ends, at most 65535 bytes from MTAs)."""

    CODE: ClassVar[bytes] = b"B"
    NO_REPLY_FLAG: ClassVar[ProtocolFlag] = ProtocolFlag.NR_BODY
    data: bytes

    def payload(self) -> bytes:
        return self.data


@dataclass(frozen=True)
class EndOfMessage(Command):
    """SMFIC_BODYEOB: end of the message; `data` is a final body piece (usually empty)."""

    CODE: ClassVar[bytes] = b"E"
    data: bytes = b""

    def payload(self) -> bytes:
        return self.data


@dataclass(frozen=True)
class Abort(Command):
    """SMFIC_ABORT: drop message state, keep connection state. Never replied to."""

    CODE: ClassVar[bytes] = b"A"
    EXPECTS_REPLY: ClassVar[bool] = False


@dataclass(frozen=True)
class Quit(Command):
    """SMFIC_QUIT: the MTA is done with this connection. Never replied to."""

    CODE: ClassVar[bytes] = b"Q"
    EXPECTS_REPLY: ClassVar[bool] = False


@dataclass(frozen=True)
class QuitNewConnection(Command):
    """SMFIC_QUIT_NC: drop connection state; a new CONNECT follows on this stream."""

    CODE: ClassVar[bytes] = b"K"
    EXPECTS_REPLY: ClassVar[bool] = False


@dataclass(frozen=True)
class Unknown(Command):
    """SMFIC_UNKNOWN: an SMTP command the MTA did not recognise (v3+)."""

    CODE: ClassVar[bytes] = b"U"
    NO_REPLY_FLAG: ClassVar[ProtocolFlag] = ProtocolFlag.NR_UNKN
    line: str

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_texts(line=self.line)

    def payload(self) -> bytes:
        return cstring(self.line)


@dataclass(frozen=True)
class ConnectionClosed:
    """Not a packet: the MTA closed the stream between packets."""
