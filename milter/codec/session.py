"""`MilterConnection`: the sans-IO milter protocol state machine (milter role).

All protocol state lives here: the stage, the MTA's offer and what was agreed,
which command still awaits our reply, pending macros and body-replacement order.
The caller moves bytes: ``receive_data()`` in, ``next_event()`` out, and
``send(reply)`` to get the bytes to write.

Replies and NR_* flags: `send()` raises `LocalProtocolError` whenever no reply is
due, in particular for a command whose NR_* bit was negotiated; check
`pending_reply` before answering. A `LocalProtocolError` from `send()` leaves the
connection unchanged; a `RemoteProtocolError` moves it to `Stage.ERROR` for good.
"""

import enum
import functools

from .commands import (
    Abort,
    BodyChunk,
    Command,
    Connect,
    ConnectionClosed,
    Data,
    EndOfHeaders,
    EndOfMessage,
    Header,
    Helo,
    Macro,
    MailFrom,
    OptNeg,
    QuitNewConnection,
    Rcpt,
    Unknown,
)
from .errors import LocalProtocolError, RemoteProtocolError
from .flags import ActionFlag, ProtocolFlag, missing_actions
from .frames import DEFAULT_MAX_FRAME_SIZE, FrameBuffer
from .macros import MacroStore
from .negotiation import check_offer
from .readers import decode_packet
from .replies import Discard, OptNegReply, ReplaceBodyChunk, Reply, Skip
from .stages import MESSAGE_STAGES, Stage, after_final_reply, step


class NeedData(enum.Enum):
    """Sentinel type of `NEED_DATA`."""

    NEED_DATA = "NEED_DATA"


NEED_DATA = NeedData.NEED_DATA
"""Returned by `next_event()` when a whole packet has not arrived yet."""

Event = Command | ConnectionClosed


class _BodyEdit(enum.Enum):
    NONE = "none"
    ACTIVE = "active"  # REPLBODY chunks are being sent
    DONE = "done"  # another modification followed: Postfix refuses more REPLBODY


_NO_REPLY_FLAGS = {
    kind.CODE: kind.NO_REPLY_FLAG
    for kind in (Connect, Helo, MailFrom, Rcpt, Data, Header, EndOfHeaders, BodyChunk, Unknown)
}


_SPECIAL = frozenset({OptNeg, Abort, EndOfMessage, QuitNewConnection})
"""Commands whose receipt changes more than the stage and the reply owed."""


@functools.lru_cache(maxsize=64)
def silent_codes(protocol: ProtocolFlag) -> frozenset[bytes]:
    """Codes of the commands that get no reply under ``protocol`` (their NR_* bit is in
    it): `expects_reply` worked out once per connection instead of once per command."""
    return frozenset(code for code, flag in _NO_REPLY_FLAGS.items() if flag in protocol)


class MilterConnection:
    """One milter connection with an MTA, seen from the milter."""

    def __init__(self, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self._frames = FrameBuffer(max_frame_size)
        self._stage = Stage.NEGOTIATE
        self._offer: OptNeg | None = None
        self._agreed: OptNegReply | None = None
        self._owed: Command | None = None
        self._macros = MacroStore()
        self._body_edit = _BodyEdit.NONE
        self._silent: frozenset[bytes] = frozenset()  # codes whose NR_* bit was agreed
        self._protocol = ProtocolFlag.NONE  # `protocol`, read for every command

    @property
    def stage(self) -> Stage:
        """The current stage of the conversation."""
        return self._stage

    @property
    def offer(self) -> OptNeg | None:
        """The MTA's OPTNEG offer, once received."""
        return self._offer

    @property
    def negotiated(self) -> OptNegReply | None:
        """The OPTNEG reply we sent, i.e. what was agreed."""
        return self._agreed

    @property
    def actions(self) -> ActionFlag:
        """Negotiated actions (none before negotiation)."""
        return self._agreed.actions if self._agreed else ActionFlag.NONE

    @property
    def protocol(self) -> ProtocolFlag:
        """Negotiated protocol bits (none before negotiation)."""
        return self._protocol

    @property
    def pending_reply(self) -> Command | None:
        """The command that awaits our final reply, or None if no reply is due."""
        return self._owed

    @property
    def macros(self) -> dict[str, str]:
        """All macro values in scope (connection-level plus the current message)."""
        return self._macros.merged()

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the MTA; ``b""`` means the MTA closed the stream."""
        self._frames.feed(data)

    def next_event(self) -> Event | NeedData:
        """Return the next command, `ConnectionClosed`, or `NEED_DATA`.

        Raises `RemoteProtocolError` (and only that) if the MTA misbehaved.
        """
        if self._stage is Stage.ERROR:
            raise RemoteProtocolError("the connection already failed")
        frames, macros = self._frames, self._macros
        try:
            while True:
                packet = frames.next_packet()
                if packet is None:
                    return self._closed() if frames.eof else NEED_DATA
                code, payload = packet
                event = decode_packet(code, payload, macros.pending(code))
                if self._owed is not None:
                    name = type(event).__name__
                    raise RemoteProtocolError(f"{name} received before our reply to {self._owed!r}")
                if not isinstance(event, Macro):
                    return self._receive_command(event)
                self._receive_macro(event)
        except RemoteProtocolError:
            self._stage = Stage.ERROR
            raise

    def send(self, reply: Reply) -> bytes:
        """Validate `reply` against the state, record it and return its bytes."""
        self._check_reply(reply)
        self._apply_reply(reply)
        return reply.encode()

    def _closed(self) -> ConnectionClosed:
        self._stage = Stage.CLOSED
        self._owed = None
        return ConnectionClosed()

    def _receive_macro(self, macro: Macro) -> None:
        if self._stage in (Stage.NEGOTIATE, Stage.CLOSED):
            raise RemoteProtocolError(f"macro packet in stage {self._stage.name}")
        self._macros.store(macro)

    def _receive_command(self, command: Command) -> Command:
        kind = type(command)
        stage = step(self._stage, kind, self._protocol)
        if kind in _SPECIAL:  # decoded commands are of these very classes, never subclasses
            return self._receive_special(command, stage)
        self._macros.take(command.CODE)  # decode_packet attached them already
        self._stage = stage
        if command.EXPECTS_REPLY and command.CODE not in self._silent:
            self._owed = command
        return command

    def _receive_special(self, command: Command, stage: Stage) -> Command:
        """`_receive_command` for OPTNEG, ABORT, QUIT_NC and the end of message."""
        if isinstance(command, OptNeg):
            check_offer(command)
            self._offer = command
        self._macros.take(command.CODE)
        self._stage = stage
        if isinstance(command, (Abort, EndOfMessage)):
            self._body_edit = _BodyEdit.NONE
        if isinstance(command, Abort):
            self._macros.abort()
        elif isinstance(command, QuitNewConnection):
            self._macros.reset()
        if command.EXPECTS_REPLY and command.CODE not in self._silent:
            self._owed = command
        return command

    def _check_reply(self, reply: Reply) -> None:
        owed = self._owed
        name = type(reply).__name__
        if owed is None:
            raise LocalProtocolError(f"no reply is due in stage {self._stage.name}: {name}")
        if isinstance(owed, OptNeg) or isinstance(reply, OptNegReply):
            self._check_optneg(owed, reply)
            return
        if reply.EOM_ONLY and not isinstance(owed, EndOfMessage):
            raise LocalProtocolError(f"{name} is only allowed at end of message, not {owed!r}")
        if reply.REQUIRES:  # (Continue, Accept… require nothing: no flag arithmetic)
            missing = missing_actions(reply.REQUIRES, self.actions)
            if missing:
                raise LocalProtocolError(f"{name} needs {missing!r}, which was not negotiated")
        if isinstance(reply, ReplaceBodyChunk) and self._body_edit is _BodyEdit.DONE:
            raise LocalProtocolError("body chunks must be contiguous (Postfix refuses a mix)")
        if isinstance(reply, Skip):
            self._check_skip(owed)
        if isinstance(reply, Discard) and self._stage not in MESSAGE_STAGES:
            raise LocalProtocolError(f"Discard is only meaningful for a message, not {owed!r}")

    def _check_optneg(self, owed: Command, reply: Reply) -> None:
        if not isinstance(owed, OptNeg) or not isinstance(reply, OptNegReply):
            raise LocalProtocolError(f"OPTNEG must be answered by OptNegReply, got {reply!r}")
        if reply.version > owed.version:
            raise LocalProtocolError(f"version {reply.version} above the offered {owed.version}")
        extra_actions = reply.actions & ~owed.actions
        extra_protocol = reply.protocol & ~owed.protocol
        if extra_actions or extra_protocol:
            raise LocalProtocolError(
                f"asking for bits the MTA did not offer: actions {extra_actions!r}, "
                f"protocol {extra_protocol!r} (use negotiate())"
            )

    def _check_skip(self, owed: Command) -> None:
        if not isinstance(owed, BodyChunk):
            raise LocalProtocolError(f"Skip answers a body chunk, not {owed!r}")
        if self._offer is None or ProtocolFlag.SKIP not in self._offer.protocol:
            raise LocalProtocolError("the MTA did not offer SMFIP_SKIP")

    def _apply_reply(self, reply: Reply) -> None:
        owed = self._owed
        if isinstance(reply, OptNegReply):
            self._agreed = reply
            self._protocol = reply.protocol
            self._silent = silent_codes(reply.protocol)
            self._stage = Stage.CONNECT
            self._owed = None
            return
        if isinstance(reply, ReplaceBodyChunk):
            self._body_edit = _BodyEdit.ACTIVE
        elif reply.REQUIRES and self._body_edit is _BodyEdit.ACTIVE:
            self._body_edit = _BodyEdit.DONE
        if reply.FINAL and owed is not None:
            self._stage = after_final_reply(self._stage, owed, reply)
            self._owed = None
