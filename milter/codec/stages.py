"""The stage table: which command may follow which (h11's "Rule 1": transitions live here).

Modelled on libmilter's state table, and as tolerant: HELO, DATA, headers, EOH and
body are optional; CONNECT, MAIL and RCPT may only be skipped when the milter
negotiated SMFIP_NOCONNECT / NOMAIL / NORCPT. ABORT, QUIT and QUIT_NC are valid in
any negotiated stage.
"""

import enum
import functools
from collections.abc import Callable
from typing import cast

from .commands import (
    Abort,
    BodyChunk,
    Command,
    Connect,
    Data,
    EndOfHeaders,
    EndOfMessage,
    Header,
    Helo,
    MailFrom,
    OptNeg,
    Quit,
    QuitNewConnection,
    Rcpt,
    Unknown,
)
from .errors import RemoteProtocolError
from .flags import ProtocolFlag
from .replies import Accept, Discard, Reject, Reply, ReplyCode, TempFail


class Stage(enum.Enum):
    """Where the conversation is; `MilterConnection.stage`."""

    NEGOTIATE = "negotiate"  # waiting for OPTNEG, or for our answer to it
    CONNECT = "connect"  # negotiated; waiting for CONNECT (again after QUIT_NC)
    CONNECTED = "connected"  # after CONNECT/HELO; no message transaction open
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    HEADER = "header"
    EOH = "eoh"
    BODY = "body"
    EOM = "eom"  # end-of-message received; back to CONNECTED after the final reply
    CLOSED = "closed"  # QUIT received or the stream ended
    ERROR = "error"  # the peer broke the protocol; the connection is unusable

    # Members are singletons compared by identity: hash them by identity too, in C
    # (Enum's own __hash__ is a Python call, and `step` hashes a stage for every command).
    __hash__ = object.__hash__


MESSAGE_STAGES = (
    Stage.MAIL,
    Stage.RCPT,
    Stage.DATA,
    Stage.HEADER,
    Stage.EOH,
    Stage.BODY,
    Stage.EOM,
)
_STAGE_OF: dict[type[Command], Stage] = {
    MailFrom: Stage.MAIL,
    Rcpt: Stage.RCPT,
    Data: Stage.DATA,
    Header: Stage.HEADER,
    EndOfHeaders: Stage.EOH,
    BodyChunk: Stage.BODY,
    EndOfMessage: Stage.EOM,
}
_REPEATABLE = frozenset({Stage.RCPT, Stage.HEADER, Stage.BODY})
_ALWAYS_OPTIONAL = frozenset({Stage.DATA, Stage.HEADER, Stage.EOH, Stage.BODY})
_SKIP_FLAGS = {
    Stage.CONNECT: ProtocolFlag.NOCONNECT,
    Stage.MAIL: ProtocolFlag.NOMAIL,
    Stage.RCPT: ProtocolFlag.NORCPT,
}
_UNKNOWN_OK = frozenset({Stage.CONNECT, Stage.CONNECTED, Stage.MAIL, Stage.RCPT})


def _skippable(stage: Stage, protocol: ProtocolFlag) -> bool:
    if stage in _ALWAYS_OPTIONAL:
        return True
    flag = _SKIP_FLAGS.get(stage)
    return flag is not None and flag in protocol


def _out_of_order(kind: type[Command], stage: Stage) -> RemoteProtocolError:
    return RemoteProtocolError(f"{kind.__name__} is not allowed in stage {stage.name}")


@functools.lru_cache(maxsize=1024)
def _message_step(current: Stage, target: Stage, protocol: ProtocolFlag) -> bool:
    """Whether a message command of stage `target` may follow `current`."""
    if current in (Stage.CONNECT, Stage.CONNECTED):
        if current is Stage.CONNECT and not _skippable(Stage.CONNECT, protocol):
            return False
        start = -1
    elif current in MESSAGE_STAGES and current is not Stage.EOM:
        start = MESSAGE_STAGES.index(current)
        if current is target:
            return target in _REPEATABLE
    else:
        return False
    end = MESSAGE_STAGES.index(target)
    return end > start and all(_skippable(s, protocol) for s in MESSAGE_STAGES[start + 1 : end])


def advance(current: Stage, command: Command, protocol: ProtocolFlag) -> Stage:
    """Return the stage after receiving `command`, or raise `RemoteProtocolError`."""
    return step(current, type(command), protocol)


def _step(current: Stage, kind: type[Command], protocol: ProtocolFlag) -> Stage:
    if current in (Stage.CLOSED, Stage.ERROR):
        raise _out_of_order(kind, current)
    if issubclass(kind, Quit):
        return Stage.CLOSED
    if current is Stage.NEGOTIATE:
        if issubclass(kind, OptNeg):
            return Stage.NEGOTIATE
        raise _out_of_order(kind, current)
    return _advance_negotiated(current, kind, protocol)


# (a class is hashable, which typeshed's Hashable protocol does not see in type[Command])
step = cast(
    Callable[[Stage, type[Command], ProtocolFlag], Stage], functools.lru_cache(maxsize=4096)(_step)
)
"""`advance` for a command of class ``kind``: the answer depends on nothing else, so it is
worked out once per (stage, class, protocol) and then looked up (a refusal raises every
time: exceptions are not cached)."""


def _advance_negotiated(current: Stage, kind: type[Command], protocol: ProtocolFlag) -> Stage:
    if issubclass(kind, Abort):
        return Stage.CONNECTED if current in MESSAGE_STAGES else current
    if issubclass(kind, QuitNewConnection):
        return Stage.CONNECT
    if issubclass(kind, Connect) and current is Stage.CONNECT:
        return Stage.CONNECTED
    if issubclass(kind, Helo) and (
        current is Stage.CONNECTED
        or (current is Stage.CONNECT and _skippable(Stage.CONNECT, protocol))
    ):
        return Stage.CONNECTED
    if issubclass(kind, Unknown) and current in _UNKNOWN_OK:
        return current
    target = _STAGE_OF.get(kind)
    if target is not None and _message_step(current, target, protocol):
        return target
    raise _out_of_order(kind, current)


def after_final_reply(stage: Stage, command: Command, reply: Reply) -> Stage:
    """Stage after our final `reply` to `command`.

    End-of-message always closes the transaction. Accept and discard end it at any
    message stage; reject, tempfail and reply codes end it too, except at RCPT,
    where they refuse only that recipient.
    """
    if stage is Stage.EOM:
        return Stage.CONNECTED
    if stage not in MESSAGE_STAGES or isinstance(command, Unknown):
        return stage
    if isinstance(reply, _ENDS_MESSAGE):
        return Stage.CONNECTED
    if isinstance(reply, _REFUSES) and not isinstance(command, Rcpt):
        return Stage.CONNECTED
    return stage


_ENDS_MESSAGE = (Accept, Discard)
_REFUSES = (Reject, TempFail, ReplyCode)
