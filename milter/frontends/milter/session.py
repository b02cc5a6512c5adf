"""Per-connection milter state: who connected, the envelope, the message being built.

Pure: fed the codec's commands, it answers what to negotiate and, at end of message,
hands over a `MessageRequest` for the engine. The server does the I/O around it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from milter.codec import (
    Abort,
    ActionFlag,
    BodyChunk,
    Command,
    Connect,
    Family,
    Header,
    Helo,
    MailFrom,
    NegotiationRequest,
    OptNeg,
    OptNegReply,
    ProtocolFlag,
    QuitNewConnection,
    Rcpt,
    negotiate,
)
from milter.frontends.milter.assemble import AssemblyLimits, MessageAssembler
from milter.frontends.service import MessageRequest
from milter.model.envelope import Envelope

# HDR_LEADSPC: header values arrive byte-exact. NOUNKNOWN: an event we never use.
# NR_HDR: no reply per header (~15 round trips fewer a message). Not NODATA: Postfix 3.7
# still sends the DATA macro packet, expects no reply, and the next packet then waits
# ~40 ms for our delayed ACK. Measured through a private Postfix at C=1 with the do-nothing
# milter (docs/performance.md): p10 84-101 ms with NODATA, 33-46 ms without, 25-28 ms
# without NODATA and with NR_HDR; the benchmark's stall check shows a return of it.
REQUESTED_PROTOCOL = ProtocolFlag.HDR_LEADSPC | ProtocolFlag.NOUNKNOWN | ProtocolFlag.NR_HDR
# When our side acknowledges at once (TCP_QUICKACK after each read, or a Unix socket, which
# has no delayed ACK), Postfix may stream every event up to the end of the message without
# waiting for a reply: Tocsin answers them all with "continue" anyway. Only CONNECT keeps
# its reply (the per-client cap answers 421 there). Through Postfix at C=1, session 5:
# NODATA stalls (p10 52-54 ms) without QUICKACK and not with it (10 ms); these bits with
# QUICKACK: p10 8.5-9.5 ms, as without them, with ~6 replies fewer per message.
NO_REPLY_PROTOCOL = (
    REQUESTED_PROTOCOL
    | ProtocolFlag.NR_HELO
    | ProtocolFlag.NR_MAIL
    | ProtocolFlag.NR_RCPT
    | ProtocolFlag.NR_DATA
    | ProtocolFlag.NR_EOH
    | ProtocolFlag.NR_BODY
)
LOGGED_MACROS = ("j", "_", "{daemon_name}", "{auth_authen}", "{auth_type}", "v")


class MilterSession:
    """State carried across connect → helo → mail → rcpt → headers → body → EOM."""

    def __init__(
        self, limits: AssemblyLimits, requested: ProtocolFlag = REQUESTED_PROTOCOL
    ) -> None:
        self._limits = limits
        self._requested = requested
        self._leading_space_kept = False
        self._assembler: MessageAssembler | None = None  # made by the first header or body
        self._reset_connection()

    def _reset_connection(self) -> None:
        self._client_ip: str | None = None
        self._client_name: str | None = None
        self._helo: str | None = None
        self._macros: dict[str, str] = {}
        self._reset_message()

    def _reset_message(self) -> None:
        self._mail_from: str | None = None
        # True between MAIL FROM and the end of that message (or its abort): a plain
        # attribute, as `_mail_from is not None`, read twice for every command
        self.in_message = False
        self._rcpts: list[str] = []
        if self._assembler is not None:
            self._assembler.discard()  # an unfinished message's spool file goes now
            self._assembler = None

    def _message(self) -> MessageAssembler:
        """The message being received (begun by its first header or body chunk)."""
        if self._assembler is None:
            self._assembler = MessageAssembler(
                self._limits, leading_space_kept=self._leading_space_kept
            )
        return self._assembler

    def negotiate(self, offer: OptNeg) -> OptNegReply:
        """Our OPTNEG reply: Tocsin's actions and protocol bits within the MTA's offer."""
        reply = _negotiated(offer.version, offer.actions, offer.protocol, self._requested)
        self._leading_space_kept = ProtocolFlag.HDR_LEADSPC in reply.protocol
        self._reset_message()
        return reply

    def close(self) -> None:
        """The connection is gone: drop the message in progress (and its spool file)."""
        self._reset_message()

    @property
    def client_ip(self) -> str | None:
        """The SMTP client's address from the last CONNECT (None for local submissions)."""
        return self._client_ip

    def observe(self, command: Command) -> None:
        """Record what ``command`` tells about the connection or the message."""
        if command.macros:
            self._macros.update({k: v for k, v in command.macros.items() if k in LOGGED_MACROS})
        record = _RECORD.get(type(command))
        if record is not None:
            record(self, command)
        elif not isinstance(command, _RECORD_KINDS):  # (the codec makes no subclasses)
            return
        else:  # a subclass of a recorded command
            for kind, method in _RECORD.items():
                if isinstance(command, kind):
                    method(self, command)
                    return

    def _connect(self, command: Connect) -> None:
        self._client_name = command.hostname
        self._client_ip = _client_ip(command)

    def _helo_(self, command: Helo) -> None:
        self._helo = command.helo

    def _mail(self, command: MailFrom) -> None:
        self._reset_message()
        self._mail_from = command.mailbox
        self.in_message = True

    def _rcpt(self, command: Rcpt) -> None:
        self._rcpts.append(command.mailbox)

    def _header(self, command: Header) -> None:
        self._message().add_header(command.name, command.value)

    def _body(self, command: BodyChunk) -> None:
        self._message().add_body(command.data)

    def _abort(self, command: Abort) -> None:
        self._reset_message()

    def _quit_nc(self, command: QuitNewConnection) -> None:
        self._reset_connection()

    def end_of_message(self, final_chunk: bytes, macros: dict[str, str]) -> MessageRequest:
        """Close the message: its bytes and envelope for the engine. Resets message state.

        The caller closes ``request.message`` once the MTA has its answer."""
        assembler = self._message()
        if final_chunk:
            assembler.add_body(final_chunk)
        client_name = self._client_name
        if client_name and client_name.startswith("["):
            client_name = "unknown"  # Postfix sends [ip] when reverse DNS found no name
        envelope = Envelope(
            client_ip=self._client_ip,
            client_name=client_name,
            helo=self._helo,
            mail_from=self._mail_from if self._mail_from is not None else "",
            rcpts=tuple(self._rcpts),
            queue_id=macros.get("i"),
            macros=self._macros,
        )
        message = assembler.finish()
        request = MessageRequest(
            message,
            envelope,
            message.received,
            header_names=tuple(assembler.header_names),
            unreadable=assembler.failure,
        )
        self._reset_message()
        return request


# what `observe` does per command class, in the order the isinstance tests used to go
_RECORD: dict[type[Command], Callable[[MilterSession, Any], None]] = {
    Connect: MilterSession._connect,
    Helo: MilterSession._helo_,
    MailFrom: MilterSession._mail,
    Rcpt: MilterSession._rcpt,
    Header: MilterSession._header,
    BodyChunk: MilterSession._body,
    Abort: MilterSession._abort,
    QuitNewConnection: MilterSession._quit_nc,
}
_RECORD_KINDS = tuple(_RECORD)


@functools.lru_cache(maxsize=64)
def _negotiated(
    version: int, actions: ActionFlag, protocol: ProtocolFlag, requested: ProtocolFlag
) -> OptNegReply:
    """Our reply to an offer: the same for every connection of an MTA, so worked out once
    (an `OptNegReply` is immutable)."""
    offer = OptNeg(version, actions, protocol)
    return negotiate(offer, NegotiationRequest(protocol=requested))


def _client_ip(connect: Connect) -> str | None:
    if connect.family not in (Family.INET, Family.INET6) or not connect.address:
        return None
    address = connect.address
    if address[:5].lower() == "ipv6:":  # Sendmail's form; Postfix sends the bare address
        address = address[5:]
    return address
