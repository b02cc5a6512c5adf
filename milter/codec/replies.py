"""Milter responses (SMFIR_*): validated at construction, so an invalid reply cannot exist.

Class attributes describe the protocol rules the session enforces:
`FINAL` ends the handling of a command, `EOM_ONLY` replies may only be sent while
answering end-of-message, and `REQUIRES` names the action bit the MTA must grant.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar

from .errors import LocalProtocolError
from .flags import PROTOCOL_VERSION, ActionFlag, MacroStage, ProtocolFlag
from .frames import encode_frame
from .wire import UINT32, check_text, check_uint32, cstring, cstrings

MAX_BODY_CHUNK = 65535
"""Largest SMFIR_REPLBODY payload we send (libmilter's MILTER_CHUNK_SIZE)."""

_ENHANCED_STATUS = re.compile(r"([245])\.\d{1,3}\.\d{1,3}(?= |$)")
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII except ':' (RFC 5322 ftext)
_MACRO_NAME = re.compile(r"[^\s\0]+")
_UNFOLDED_NEWLINE = re.compile(r"\n(?![ \t])")


def _fail(message: str) -> LocalProtocolError:
    return LocalProtocolError(message)


def _text(what: str, text: str, *, single_line: bool = True) -> None:
    try:
        check_text(text, what)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if single_line and ("\r" in text or "\n" in text):
        raise _fail(f"{what} must be a single line: {text!r}")


def _header(name: str, value: str) -> None:
    if not _HEADER_NAME.fullmatch(name):
        raise _fail(f"invalid header name {name!r}")
    _text("header value", value, single_line=False)
    if "\r" in value:
        raise _fail("header values fold with \\n + WSP, never CR")
    if _UNFOLDED_NEWLINE.search(value):
        raise _fail(f"each newline in a header value must start a folded line: {value!r}")


def _index(index: int) -> None:
    try:
        check_uint32(index, "header index")
    except ValueError as exc:
        raise _fail(str(exc)) from None


@dataclass(frozen=True)
class Reply:
    """Base of every milter response."""

    CODE: ClassVar[bytes]
    FINAL: ClassVar[bool] = False
    EOM_ONLY: ClassVar[bool] = False
    REQUIRES: ClassVar[ActionFlag] = ActionFlag.NONE

    def payload(self) -> bytes:
        """Wire payload after the code byte."""
        return b""

    def encode(self) -> bytes:
        """The whole packet, length prefix included."""
        return encode_frame(self.CODE, self.payload())


@dataclass(frozen=True)
class Continue(Reply):
    """SMFIR_CONTINUE: go on (acts as accept at end-of-message)."""

    CODE: ClassVar[bytes] = b"c"
    FINAL: ClassVar[bool] = True


@dataclass(frozen=True)
class Accept(Reply):
    """SMFIR_ACCEPT: accept the message (or the whole session at CONNECT/HELO); no more events."""

    CODE: ClassVar[bytes] = b"a"
    FINAL: ClassVar[bool] = True


@dataclass(frozen=True)
class Reject(Reply):
    """SMFIR_REJECT: 5xx; at RCPT only that recipient."""

    CODE: ClassVar[bytes] = b"r"
    FINAL: ClassVar[bool] = True


@dataclass(frozen=True)
class TempFail(Reply):
    """SMFIR_TEMPFAIL: 4xx; at RCPT only that recipient."""

    CODE: ClassVar[bytes] = b"t"
    FINAL: ClassVar[bool] = True


@dataclass(frozen=True)
class Discard(Reply):
    """SMFIR_DISCARD: accept, then silently drop the message (message stages only)."""

    CODE: ClassVar[bytes] = b"d"
    FINAL: ClassVar[bool] = True


@dataclass(frozen=True)
class Skip(Reply):
    """SMFIR_SKIP: no more body chunks, please (only if the MTA offered SMFIP_SKIP)."""

    CODE: ClassVar[bytes] = b"s"
    FINAL: ClassVar[bool] = True


@dataclass(frozen=True)
class ReplyCode(Reply):
    """SMFIR_REPLYCODE: a custom single-line SMTP reply, e.g. ``ReplyCode(550, "5.7.1 No")``.

    `code` must be 4xx or 5xx; an enhanced status code at the start of `text` must
    have the same class. `text` is printable ASCII; ``%`` is doubled on the wire.
    """

    CODE: ClassVar[bytes] = b"y"
    FINAL: ClassVar[bool] = True
    code: int
    text: str

    def __post_init__(self) -> None:
        if not 400 <= self.code <= 599:
            raise _fail(f"reply code {self.code} is not 4xx or 5xx")
        if not self.text or not all(" " <= ch <= "~" for ch in self.text):
            raise _fail(f"reply text must be non-empty printable ASCII: {self.text!r}")
        enhanced = _ENHANCED_STATUS.match(self.text)
        if enhanced and enhanced.group(1) != str(self.code)[0]:
            raise _fail(f"enhanced status {enhanced.group(0)} does not match {self.code}")

    def payload(self) -> bytes:
        return cstring(f"{self.code} {self.text}".replace("%", "%%"))


@dataclass(frozen=True)
class Progress(Reply):
    """SMFIR_PROGRESS: keep-alive while working on end-of-message (Sendmail-safe)."""

    CODE: ClassVar[bytes] = b"p"
    EOM_ONLY: ClassVar[bool] = True


@dataclass(frozen=True)
class Quarantine(Reply):
    """SMFIR_QUARANTINE: put the message on hold; a final reply must still follow."""

    CODE: ClassVar[bytes] = b"q"
    EOM_ONLY: ClassVar[bool] = True
    REQUIRES: ClassVar[ActionFlag] = ActionFlag.QUARANTINE
    reason: str

    def __post_init__(self) -> None:
        _text("quarantine reason", self.reason)
        if not self.reason:
            raise _fail("quarantine reason must not be empty")

    def payload(self) -> bytes:
        return cstring(self.reason)


@dataclass(frozen=True)
class AddHeader(Reply):
    """SMFIR_ADDHEADER: append a header at the end of the header block."""

    CODE: ClassVar[bytes] = b"h"
    EOM_ONLY: ClassVar[bool] = True
    REQUIRES: ClassVar[ActionFlag] = ActionFlag.ADDHDRS
    name: str
    value: str

    def __post_init__(self) -> None:
        _header(self.name, self.value)

    def payload(self) -> bytes:
        return cstrings(self.name, self.value)


@dataclass(frozen=True)
class InsertHeader(Reply):
    """SMFIR_INSHEADER: insert at `index` (0 = very top; counts the MTA's hidden Received)."""

    CODE: ClassVar[bytes] = b"i"
    EOM_ONLY: ClassVar[bool] = True
    REQUIRES: ClassVar[ActionFlag] = ActionFlag.ADDHDRS
    index: int
    name: str
    value: str

    def __post_init__(self) -> None:
        _index(self.index)
        _header(self.name, self.value)

    def payload(self) -> bytes:
        return UINT32.pack(self.index) + cstrings(self.name, self.value)


@dataclass(frozen=True)
class ChangeHeader(Reply):
    """SMFIR_CHGHEADER: change the `index`-th (1-based, per name) header; empty value deletes."""

    CODE: ClassVar[bytes] = b"m"
    EOM_ONLY: ClassVar[bool] = True
    REQUIRES: ClassVar[ActionFlag] = ActionFlag.CHGHDRS
    index: int
    name: str
    value: str

    def __post_init__(self) -> None:
        _index(self.index)
        _header(self.name, self.value)

    def payload(self) -> bytes:
        return UINT32.pack(self.index) + cstrings(self.name, self.value)


@dataclass(frozen=True)
class ReplaceBodyChunk(Reply):
    """SMFIR_REPLBODY: one piece (<= 65535 bytes) of a new body; see `replace_body()`."""

    CODE: ClassVar[bytes] = b"b"
    EOM_ONLY: ClassVar[bool] = True
    REQUIRES: ClassVar[ActionFlag] = ActionFlag.CHGBODY
    data: bytes

    def __post_init__(self) -> None:
        if len(self.data) > MAX_BODY_CHUNK:
            raise _fail(f"body chunk of {len(self.data)} bytes exceeds {MAX_BODY_CHUNK}")

    def payload(self) -> bytes:
        return self.data


def replace_body(body: bytes, chunk_size: int = MAX_BODY_CHUNK) -> list[ReplaceBodyChunk]:
    """Split a whole new body into REPLBODY chunks; an empty body gives one empty chunk."""
    if not 0 < chunk_size <= MAX_BODY_CHUNK:
        raise _fail(f"chunk_size must be in 1..{MAX_BODY_CHUNK}")
    if not body:
        return [ReplaceBodyChunk(b"")]
    return [ReplaceBodyChunk(body[i : i + chunk_size]) for i in range(0, len(body), chunk_size)]


@dataclass(frozen=True)
class _RcptReply(Reply):
    rcpt: str

    def __post_init__(self) -> None:
        _text("recipient", self.rcpt)

    def payload(self) -> bytes:
        return cstring(self.rcpt)


@dataclass(frozen=True)
class AddRcpt(_RcptReply):
    """SMFIR_ADDRCPT: add an envelope recipient."""

    CODE: ClassVar[bytes] = b"+"
    EOM_ONLY: ClassVar[bool] = True
    REQUIRES: ClassVar[ActionFlag] = ActionFlag.ADDRCPT


@dataclass(frozen=True)
class DelRcpt(_RcptReply):
    """SMFIR_DELRCPT: remove a recipient (the string must match the RCPT argument)."""

    CODE: ClassVar[bytes] = b"-"
    EOM_ONLY: ClassVar[bool] = True
    REQUIRES: ClassVar[ActionFlag] = ActionFlag.DELRCPT


@dataclass(frozen=True)
class AddRcptPar(_RcptReply):
    """SMFIR_ADDRCPT_PAR: add a recipient with ESMTP args (Postfix honours NOTIFY, ORCPT)."""

    CODE: ClassVar[bytes] = b"2"
    EOM_ONLY: ClassVar[bool] = True
    REQUIRES: ClassVar[ActionFlag] = ActionFlag.ADDRCPT_PAR
    esmtp_args: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        _text("ESMTP args", self.esmtp_args)

    def payload(self) -> bytes:
        return cstrings(self.rcpt, self.esmtp_args) if self.esmtp_args else cstring(self.rcpt)


@dataclass(frozen=True)
class ChangeFrom(Reply):
    """SMFIR_CHGFROM: replace the envelope sender (Postfix honours RET, ENVID)."""

    CODE: ClassVar[bytes] = b"e"
    EOM_ONLY: ClassVar[bool] = True
    REQUIRES: ClassVar[ActionFlag] = ActionFlag.CHGFROM
    sender: str
    esmtp_args: str = ""

    def __post_init__(self) -> None:
        _text("sender", self.sender)
        _text("ESMTP args", self.esmtp_args)

    def payload(self) -> bytes:
        if self.esmtp_args:
            return cstrings(self.sender, self.esmtp_args)
        return cstring(self.sender)


MacroLists = Mapping[MacroStage, tuple[str, ...]]
"""Macro names requested per stage (SETSYMLIST)."""


def _macro_lists(macros: MacroLists) -> MacroLists:
    frozen: dict[MacroStage, tuple[str, ...]] = {}
    for stage, names in macros.items():
        if not isinstance(stage, MacroStage):
            raise _fail(f"macro list key must be a MacroStage, not {stage!r}")
        frozen[stage] = tuple(names)
        for name in frozen[stage]:
            if not _MACRO_NAME.fullmatch(name):
                raise _fail(f"invalid macro name {name!r}")
    return MappingProxyType(frozen)


@dataclass(frozen=True)
class OptNegReply(Reply):
    """SMFIC_OPTNEG answer: version, actions we use, protocol bits, optional macro lists."""

    CODE: ClassVar[bytes] = b"O"
    version: int
    actions: ActionFlag
    protocol: ProtocolFlag
    macros: MacroLists = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not 2 <= self.version <= PROTOCOL_VERSION:
            raise _fail(f"version {self.version} is not in 2..{PROTOCOL_VERSION}")
        for what, value in (("actions", int(self.actions)), ("protocol", int(self.protocol))):
            if not 0 <= value <= 0xFFFFFFFF:
                raise _fail(f"{what} {value:#x} does not fit in 32 bits")
        object.__setattr__(self, "actions", ActionFlag(self.actions))
        object.__setattr__(self, "protocol", ProtocolFlag(self.protocol))
        object.__setattr__(self, "macros", _macro_lists(self.macros))
        if self.macros and ActionFlag.SETSYMLIST not in self.actions:
            raise _fail("macro lists need the SETSYMLIST action")

    def payload(self) -> bytes:
        head = b"".join(UINT32.pack(v) for v in (self.version, self.actions, self.protocol))
        lists = (
            UINT32.pack(stage) + cstring(" ".join(names))
            for stage, names in sorted(self.macros.items())
        )
        return head + b"".join(lists)
