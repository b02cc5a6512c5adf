"""The MTA role: encode commands to bytes and decode milter replies.

Used by tests, the integration harness and the load benchmark to play Postfix.
`ReplyReader` is the incremental reply decoder; it keeps no stage, so the caller
decides which commands expect a reply (see `commands.expects_reply`).
"""

from collections.abc import Callable

from .commands import Command, Macro
from .errors import LocalProtocolError, RemoteProtocolError
from .flags import ActionFlag, MacroStage, ProtocolFlag
from .frames import DEFAULT_MAX_FRAME_SIZE, Frame, FrameBuffer, encode_frame
from .readers import OPTNEG_SIZE
from .replies import (
    Accept,
    AddHeader,
    AddRcpt,
    AddRcptPar,
    ChangeFrom,
    ChangeHeader,
    Continue,
    DelRcpt,
    Discard,
    InsertHeader,
    OptNegReply,
    Progress,
    Quarantine,
    Reject,
    ReplaceBodyChunk,
    Reply,
    ReplyCode,
    Skip,
    TempFail,
)
from .session import NEED_DATA, NeedData
from .wire import UINT32, exact_cstrings, split_cstrings, to_text


def encode_command(command: Command | Macro) -> bytes:
    """Serialise a command; its `macros` go first, in an SMFIC_MACRO packet."""
    head = b""
    if isinstance(command, Command) and command.macros:
        head = encode_frame(Macro.CODE, Macro(command.CODE, command.macros).payload())
    return head + encode_frame(command.CODE, command.payload())


def _empty(kind: type[Reply]) -> Callable[[bytes], Reply]:
    def read(payload: bytes) -> Reply:
        if payload:
            raise ValueError(f"unexpected {len(payload)} payload bytes")
        return kind()

    return read


def _read_replycode(payload: bytes) -> ReplyCode:
    (text,) = exact_cstrings(payload, 1)
    code, sep, rest = text.partition(" ")
    if not sep or not (code.isascii() and code.isdigit()) or len(code) != 3:
        raise ValueError(f"malformed reply code {text!r}")
    parts = rest.split("%%")
    if any("%" in part for part in parts):
        raise ValueError(f"single '%' in reply {text!r}")
    return ReplyCode(int(code), "%".join(parts))


def _read_indexed(kind: type[InsertHeader] | type[ChangeHeader]) -> Callable[[bytes], Reply]:
    def read(payload: bytes) -> Reply:
        if len(payload) < UINT32.size:
            raise ValueError("missing header index")
        (index,) = UINT32.unpack_from(payload)
        name, value = exact_cstrings(payload[UINT32.size :], 2)
        return kind(index, name, value)

    return read


def _read_optneg(payload: bytes) -> OptNegReply:
    if len(payload) < OPTNEG_SIZE:
        raise ValueError("OPTNEG reply shorter than 12 bytes")
    version, actions, protocol = (UINT32.unpack_from(payload, i)[0] for i in (0, 4, 8))
    macros: dict[MacroStage, tuple[str, ...]] = {}
    rest = payload[OPTNEG_SIZE:]
    while rest:
        if len(rest) < UINT32.size + 1:
            raise ValueError("truncated macro list")
        stage = MacroStage(UINT32.unpack_from(rest)[0])
        names, sep, rest = rest[UINT32.size :].partition(b"\0")
        if not sep:
            raise ValueError("macro list is not NUL-terminated")
        macros[stage] = tuple(to_text(names).split())
    return OptNegReply(version, ActionFlag(actions), ProtocolFlag(protocol), macros)


def _read_optional_args(kind: type[AddRcptPar] | type[ChangeFrom]) -> Callable[[bytes], Reply]:
    def read(payload: bytes) -> Reply:
        texts = split_cstrings(payload)
        if len(texts) not in (1, 2):
            raise ValueError(f"expected 1 or 2 strings, got {len(texts)}")
        return kind(*texts)

    return read


_READERS: dict[bytes, Callable[[bytes], Reply]] = {
    Continue.CODE: _empty(Continue),
    Accept.CODE: _empty(Accept),
    Reject.CODE: _empty(Reject),
    TempFail.CODE: _empty(TempFail),
    Discard.CODE: _empty(Discard),
    Skip.CODE: _empty(Skip),
    Progress.CODE: _empty(Progress),
    ReplyCode.CODE: _read_replycode,
    Quarantine.CODE: lambda p: Quarantine(*exact_cstrings(p, 1)),
    AddHeader.CODE: lambda p: AddHeader(*exact_cstrings(p, 2)),
    InsertHeader.CODE: _read_indexed(InsertHeader),
    ChangeHeader.CODE: _read_indexed(ChangeHeader),
    ReplaceBodyChunk.CODE: ReplaceBodyChunk,
    AddRcpt.CODE: lambda p: AddRcpt(*exact_cstrings(p, 1)),
    DelRcpt.CODE: lambda p: DelRcpt(*exact_cstrings(p, 1)),
    AddRcptPar.CODE: _read_optional_args(AddRcptPar),
    ChangeFrom.CODE: _read_optional_args(ChangeFrom),
    OptNegReply.CODE: _read_optneg,
}


def decode_reply(frame: Frame) -> Reply:
    """Turn one milter packet into a reply; raises `RemoteProtocolError` if malformed."""
    reader = _READERS.get(frame.code)
    if reader is None:
        raise RemoteProtocolError(f"unknown reply code {frame.code!r}")
    try:
        return reader(frame.payload)
    except (ValueError, LocalProtocolError) as exc:
        raise RemoteProtocolError(f"malformed {frame.code!r} reply: {exc}") from exc


class ReplyReader:
    """Incremental decoder for the milter → MTA direction."""

    def __init__(self, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self._frames = FrameBuffer(max_frame_size)

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the milter; ``b""`` means it closed the stream."""
        self._frames.feed(data)

    def next_reply(self) -> Reply | NeedData:
        """Return the next reply or `NEED_DATA`; at a clean EOF, also `NEED_DATA`."""
        frame = self._frames.next_frame()
        if frame is None:
            return NEED_DATA
        return decode_reply(frame)

    @property
    def closed(self) -> bool:
        """True once the milter closed its side and every whole packet was read."""
        return self._frames.eof and not len(self._frames)
