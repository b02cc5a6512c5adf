"""One MTA connection as an asyncio `Protocol`: bytes in, codec events, replies out.

Every event but the end of a message is answered inside ``data_received``: the codec
(sans-IO) cuts the bytes into commands, `MilterSession` records them, and the replies
of one read go out in one write. The end of a message starts a task (the scan awaits
DNS), which writes the final replies and then goes on with what the MTA sent meanwhile.

Why not a coroutine per connection over asyncio streams: each read there is a future, a
task wake-up and (for the timeout) another task from ``wait_for``, some 20 times per
message; that plumbing cost more CPU than the protocol itself (docs/performance.md,
"Server and codec"). Timeouts here are one timer per connection that looks at the clock
when it fires instead of being re-armed for every read.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from milter.codec import (
    NEED_DATA,
    Abort,
    BodyChunk,
    Connect,
    ConnectionClosed,
    Continue,
    Data,
    EndOfHeaders,
    EndOfMessage,
    Header,
    Helo,
    MailFrom,
    MilterConnection,
    OptNeg,
    Progress,
    ProtocolError,
    Quit,
    QuitNewConnection,
    Rcpt,
    Reply,
    Unknown,
)
from milter.frontends.listen import no_delay
from milter.frontends.milter.assemble import AssemblyLimits
from milter.frontends.milter.replies import final_reply
from milter.frontends.milter.session import (
    NO_REPLY_PROTOCOL,
    REQUESTED_PROTOCOL,
    MilterSession,
)
from milter.frontends.pace import Pace, SlowClient
from milter.frontends.service import Action
from milter.model.plan import CANNOT_CHECK
from milter.ops.metrics import connection_closed, connection_opened

if TYPE_CHECKING:
    from milter.frontends.milter.server import MilterServer

log = logging.getLogger("tocsin.milter")
# Linux: acknowledge what we read at once instead of up to 40 ms later (delayed ACK), so
# an MTA that sends several packets without waiting for a reply never waits on our ACK
# (Nagle on its side). Set again after every read: the kernel leaves quick-ack mode by
# itself. Elsewhere the NR_* bits that invite that pattern are not requested.
QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
# The events `_pump` only records and maybe answers "continue" (the codec decodes commands
# of these very classes): looked up first, before the few that need more.
_RECORDED = frozenset(
    {
        Connect,
        Helo,
        MailFrom,
        Rcpt,
        Data,
        Header,
        EndOfHeaders,
        BodyChunk,
        Abort,
        QuitNewConnection,
        Unknown,
    }
)


# The session of a connection not made yet, or refused: never fed, so shared.
_NOT_CONNECTED = MilterSession(AssemblyLimits())


class MilterProtocol(asyncio.Protocol):
    """The milter side of one MTA connection (made by `MilterServer` for each accept)."""

    def __init__(self, server: MilterServer) -> None:
        self.server = server
        settings = server.settings
        self._idle = settings.idle_timeout_seconds
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self.peer = "unix"
        self.conn = MilterConnection(max_frame_size=settings.max_frame_bytes)
        self.session = _NOT_CONNECTED  # replaced once connected (and admitted)
        self._pace = Pace(
            settings.message_seconds, settings.min_bytes_per_second, settings.slow_grace_seconds
        )
        self.smtp_client: str | None = None  # the SMTP client address this session counts for
        self.busy = False  # an end of message is being worked on
        self.closing = False  # the server is stopping: close once idle
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.scan: asyncio.Task[None] | None = None
        self._last_data = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._progress: asyncio.TimerHandle | None = None
        self._discard_left: int | None = None  # set after a protocol error mid-message
        self._counted = False  # accepted and counted in the server's connections
        # sets TCP_QUICKACK again on a TCP socket (a C call: no TransportSocket method)
        self._quickack: Callable[[], None] | None = None
        # the loop's clock, as a C call when it is the default loop's (time.monotonic)
        self._clock: Callable[[], float] = (
            time.monotonic
            if type(self._loop).time is asyncio.BaseEventLoop.time
            else self._loop.time
        )

    @property
    def idle(self) -> bool:
        """Between messages: safe to close without cutting a message in half."""
        return not self.busy and not self.session.in_message

    # --- asyncio callbacks -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self.peer = _peer_name(transport)
        if not self.server.admit(self):
            transport.close()
            self.closed.set_result(None)
            return
        self._counted = True
        sock = no_delay(transport)
        requested = NO_REPLY_PROTOCOL
        if sock is not None:
            if QUICKACK is None:
                requested = REQUESTED_PROTOCOL
            else:
                sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
                raw = getattr(sock, "_sock", sock)  # asyncio's TransportSocket wraps it
                self._quickack = functools.partial(raw.setsockopt, socket.IPPROTO_TCP, QUICKACK, 1)
        self.session = MilterSession(self.server.assembly_limits(), requested)
        connection_opened("milter")
        self._arm_timer(self._last_data + self._idle)

    def data_received(self, data: bytes) -> None:
        if self._discard_left is not None:  # dropping the rest of a refused message
            self._discard_left -= len(data)
            if self._discard_left <= 0:
                self.close()
            return
        if self._quickack is not None:
            self._quickack()
        self._last_data = self._clock()
        self._pace.bytes += len(data)  # Pace.received, inline
        self.conn.receive_data(data)
        if self.busy:  # nothing is due before our reply: read no further meanwhile
            if self._transport is not None:
                self._transport.pause_reading()
            return
        self._pump()

    def eof_received(self) -> bool:
        if self._discard_left is not None:
            return False  # asyncio closes the transport
        self.conn.receive_data(b"")
        if not self.busy:
            self._pump()
        return True  # we close once the codec has seen the end (after a reply in flight)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._counted:
            return
        self._counted = False
        for timer in (self._timer, self._progress):
            if timer is not None:
                timer.cancel()
        if self.scan is not None and not self.scan.done():
            self.scan.cancel()  # the MTA went away mid-scan: nobody waits for the answer
        if exc is not None:
            # a health check's bare connect/close is not news; a cut message is
            level = logging.INFO if not self.idle else logging.DEBUG
            log.log(level, "%s: connection lost: %s", self.peer, exc)
        self.server.release(self)
        self.session.close()  # a message cut by a disconnect: its spool goes
        connection_closed("milter")
        if not self.closed.done():
            self.closed.set_result(None)

    # --- the conversation ------------------------------------------------------------

    def _pump(self) -> None:
        """Answer every complete command buffered; start the scan at end of message."""
        out: list[bytes] = []
        conn, session, pace = self.conn, self.session, self._pace
        try:
            while not (self.closing and self.idle):
                event = conn.next_event()
                if event is NEED_DATA:
                    if session.in_message:
                        # Pace.read_timeout raises only past the budget or the grace
                        # period: before both, it is not called
                        now = time.monotonic()
                        elapsed = now - pace.started
                        if elapsed >= pace.budget or elapsed > pace.grace:
                            pace.read_timeout(self._idle, now)  # may raise
                    break
                if not session.in_message:
                    pace.start(time.monotonic())  # the clock runs from MAIL FROM to EOM
                if type(event) not in _RECORDED:
                    if isinstance(event, (ConnectionClosed, Quit)):
                        self._write(out)
                        self.close()
                        return
                    if isinstance(event, OptNeg):
                        out.append(conn.send(session.negotiate(event)))
                        continue
                    if isinstance(event, EndOfMessage):
                        self._write(out)
                        self._start_scan(event)
                        return
                session.observe(event)  # type: ignore[arg-type]  # (not ConnectionClosed)
                if conn.pending_reply is not None:
                    reply: Reply = Continue()
                    if isinstance(event, Connect) and not self.server.claim(
                        self, session.client_ip
                    ):
                        reply = self.server.too_many_from_client
                    out.append(conn.send(reply))
            else:
                self._write(out)
                self.close()  # the server is stopping and this connection is idle
                return
        except ProtocolError as exc:
            self._write(out)
            self._protocol_error(exc)
            return
        except SlowClient as exc:
            self._write(out)
            self._slow(exc)
            return
        except Exception:
            log.exception(
                "%s: internal error, closing (the MTA applies its default action)", self.peer
            )
            self.close()
            return
        self._write(out)

    def _start_scan(self, event: EndOfMessage) -> None:
        self.busy = True
        self.scan = self._loop.create_task(self._end_of_message(event))
        interval = self.server.settings.progress_interval_seconds
        due = self._loop.time() + interval
        self._progress = self._loop.call_at(due, self._send_progress, due, interval)

    def _send_progress(self, due: float, interval: float) -> None:
        """Tell the MTA we are still working (it resets its own timeout), every interval
        (on a fixed schedule: a late callback does not push the next ones back)."""
        if not self.busy or self._transport is None or self._transport.is_closing():
            return
        self._transport.write(self.conn.send(Progress()))
        due = max(due + interval, self._loop.time())
        self._progress = self._loop.call_at(due, self._send_progress, due, interval)

    async def _end_of_message(self, event: EndOfMessage) -> None:
        try:
            out = await self.server.answer(self.conn, self.session, event)
        except Exception:
            log.exception(
                "%s: internal error, closing (the MTA applies its default action)", self.peer
            )
            self.close()
            return
        finally:
            self.busy = False
            if self._progress is not None:
                self._progress.cancel()
                self._progress = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(out)
        self._last_data = self._loop.time()  # idleness counts from our reply
        transport.resume_reading()
        self._pump()  # what the MTA sent meanwhile: the next message, QUIT, or a drain

    # --- endings ---------------------------------------------------------------------

    def _protocol_error(self, exc: ProtocolError) -> None:
        log.warning("%s: milter protocol error, closing: %s", self.peer, exc)
        if self.session.in_message and self._transport is not None:
            # e.g. a header line past max_frame_bytes: the message gets a 4xx, not a
            # reset left to the MTA's default action (#17). What the MTA still sends is
            # read and dropped (bounded), so it reads our reply instead of a reset.
            self._transport.write(final_reply(Action.TEMPFAIL, CANNOT_CHECK).encode())
            limits = self.server.service.policies.current.document.limits
            self._discard_left = limits.max_message_bytes
            self._arm_timer(self._loop.time() + self._idle)
            return
        self.close()

    def _slow(self, exc: SlowClient) -> None:
        log.warning("%s: slow client, message tempfailed and connection closed: %s", self.peer, exc)
        if self._transport is not None:
            self._transport.write(final_reply(Action.TEMPFAIL, CANNOT_CHECK).encode())
        self.close()

    def close(self) -> None:
        """Close after what is written has gone out (`connection_lost` cleans up)."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def abort(self) -> None:
        """Close at once, dropping what is not written yet (shutdown past its drain)."""
        if self._transport is not None:
            self._transport.abort()

    def close_if_idle(self) -> None:
        """The server is stopping: close now when between messages (else after it)."""
        self.closing = True
        if self.idle:
            log.debug("%s: closed for shutdown", self.peer)
            self.close()

    # --- timeouts --------------------------------------------------------------------

    def _write(self, out: list[bytes]) -> None:
        if out and self._transport is not None:
            self._transport.write(b"".join(out) if len(out) > 1 else out[0])

    def _arm_timer(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        """Idle timeout and the message's pace, checked when the last deadline comes due.

        Reads do not re-arm the timer; it fires at the deadline computed when it was
        armed, looks at when data last came, and re-arms itself if that moved it."""
        self._timer = None
        now = self._loop.time()
        if self._discard_left is not None:
            self.close()
            return
        if self.busy:  # the scan has its own deadline; idleness counts from the reply
            self._arm_timer(now + self._idle)
            return
        deadline = self._last_data + self._idle
        if self.session.in_message:
            deadline = min(deadline, self._pace.started + self._pace.budget)
        if now < deadline:
            self._arm_timer(deadline)
            return
        if self.session.in_message:
            try:
                self._pace.read_timeout(self._idle, time.monotonic())
            except SlowClient as exc:
                self._slow(exc)
                return
        log.info("%s: idle for %gs, closing", self.peer, self._idle)
        self.close()


def _peer_name(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "unix")
