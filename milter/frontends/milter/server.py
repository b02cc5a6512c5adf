"""The asyncio milter server: one task per MTA connection driving the sans-IO codec.

Each connection reads bytes, feeds `MilterConnection`, keeps envelope and message in a
`MilterSession`, answers every event, and at end of message runs the engine under a
deadline while sending progress packets. Anything that goes wrong with a message
becomes the configured failure reply (tempfail by default); anything that goes wrong
with the protocol closes the connection, and the MTA applies its default action.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from dataclasses import dataclass, field

from milter.codec import (
    NEED_DATA,
    Accept,
    Connect,
    ConnectionClosed,
    Continue,
    EndOfMessage,
    LocalProtocolError,
    MilterConnection,
    OptNeg,
    Progress,
    ProtocolError,
    ProtocolFlag,
    Quit,
    Reply,
    ReplyCode,
)
from milter.frontends.caps import PerClient
from milter.frontends.milter.assemble import AssemblyLimits
from milter.frontends.milter.replies import WireOptions, final_reply, outcome_replies
from milter.frontends.milter.session import MilterSession
from milter.frontends.pace import Pace, SlowClient
from milter.frontends.service import Action, MessageRequest, MessageService
from milter.frontends.settings import MilterSettings
from milter.model.plan import CANNOT_CHECK
from milter.ops.metrics import connection_closed, connection_opened, connection_refused

log = logging.getLogger("tocsin.milter")
READ_SIZE = 256 * 1024
# Over max_connections_per_client: Postfix answers the SMTP client 421 and disconnects it.
TOO_MANY_FROM_CLIENT = ReplyCode(421, "4.7.0 Too many connections from your address, try later")


@dataclass(eq=False)
class _Client:
    """Bookkeeping for one live connection (for draining on shutdown)."""

    peer: str
    session: MilterSession | None = None
    smtp_client: str | None = None  # the SMTP client address this session counts for
    busy: bool = False  # an end-of-message is being worked on
    closing: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def idle(self) -> bool:
        """Between messages: safe to close without cutting a message in half."""
        return not self.busy and (self.session is None or not self.session.in_message)


class MilterServer:
    """Serves the milter protocol on a listening socket until asked to stop."""

    def __init__(self, settings: MilterSettings, service: MessageService) -> None:
        self.settings = settings
        self.service = service
        self._clients: set[_Client] = set()
        self._per_client = PerClient(settings.max_connections_per_client)  # SMTP clients
        self._stop = asyncio.Event()

    @property
    def messages(self) -> int:
        """Messages finished by this server's service."""
        return self.service.messages

    def request_stop(self) -> None:
        """Stop accepting; finish the messages in progress, then return from `serve`."""
        self._stop.set()

    async def serve(self, sock: socket.socket) -> None:
        """Accept connections on ``sock`` until `request_stop`, then drain."""
        if sock.family == socket.AF_UNIX:
            server = await asyncio.start_unix_server(self._accept, sock=sock, limit=READ_SIZE)
        else:
            server = await asyncio.start_server(self._accept, sock=sock, limit=READ_SIZE)
        async with server:
            await self._stop.wait()
            server.close()
            await self._drain()

    async def _drain(self) -> None:
        for client in list(self._clients):
            client.closing = True
            if client.idle and client.task is not None:
                client.task.cancel()
        tasks = [c.task for c in self._clients if c.task is not None]
        if tasks:
            log.info(
                "draining %d connection(s), up to %gs", len(tasks), self.settings.drain_seconds
            )
            _, pending = await asyncio.wait(tasks, timeout=self.settings.drain_seconds)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer_name(writer)
        if len(self._clients) >= self.settings.max_connections or self._stop.is_set():
            log.warning(
                "%s: refused, %d connections open (max_connections)", peer, len(self._clients)
            )
            connection_refused(
                "milter", "shutting_down" if self._stop.is_set() else "max_connections"
            )
            writer.close()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = _Client(peer, task=asyncio.current_task())
        self._clients.add(client)
        connection_opened("milter")
        try:
            await self._converse(client, reader, writer)
        except ProtocolError as exc:
            log.warning("%s: milter protocol error, closing: %s", peer, exc)
            if client.session is not None and client.session.in_message:
                # e.g. a header line past max_frame_bytes: the message gets a 4xx, not a
                # reset left to the MTA's default action (#17)
                with contextlib.suppress(Exception):
                    writer.write(final_reply(Action.TEMPFAIL, CANNOT_CHECK).encode())
                    await writer.drain()
                    await self._discard(reader)
        except SlowClient as exc:
            log.warning("%s: slow client, message tempfailed and connection closed: %s", peer, exc)
            with contextlib.suppress(Exception):
                writer.write(final_reply(Action.TEMPFAIL, CANNOT_CHECK).encode())
                await writer.drain()
        except TimeoutError:
            log.info("%s: idle for %gs, closing", peer, self.settings.idle_timeout_seconds)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            # a health check's bare connect/close is not news; a cut message is
            level = logging.INFO if not client.idle else logging.DEBUG
            log.log(level, "%s: connection lost: %s", peer, exc)
        except asyncio.CancelledError:
            log.debug("%s: closed for shutdown", peer)
        except Exception:
            log.exception("%s: internal error, closing (the MTA applies its default action)", peer)
        finally:
            self._release(client)
            if client.session is not None:
                client.session.close()  # a message cut by a disconnect: its spool goes
            self._clients.discard(client)
            connection_closed("milter")
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _discard(self, reader: asyncio.StreamReader) -> None:
        """Read and drop what the MTA is still sending (bounded), so it reads our reply
        instead of a connection reset."""
        budget = self.service.policies.current.document.limits.max_message_bytes
        while budget > 0:
            data = await asyncio.wait_for(
                reader.read(READ_SIZE), self.settings.idle_timeout_seconds
            )
            if not data:
                return
            budget -= len(data)

    async def _converse(
        self, client: _Client, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        conn = MilterConnection(max_frame_size=self.settings.max_frame_bytes)
        session = MilterSession(self._limits())
        client.session = session
        settings = self.settings
        pace = Pace(
            settings.message_seconds, settings.min_bytes_per_second, settings.slow_grace_seconds
        )
        while not (client.closing and client.idle):
            event = conn.next_event()
            if event is NEED_DATA:
                timeout = settings.idle_timeout_seconds
                if session.in_message:
                    timeout = pace.read_timeout(timeout, time.monotonic())
                try:
                    data = await asyncio.wait_for(reader.read(READ_SIZE), timeout)
                except TimeoutError:
                    if session.in_message:
                        pace.read_timeout(timeout, time.monotonic())  # raises when too slow
                    raise
                pace.received(len(data))
                conn.receive_data(data)
                continue
            if not session.in_message:
                pace.start(time.monotonic())  # the clock runs from MAIL FROM to EOM
            if isinstance(event, ConnectionClosed | Quit):
                return
            if isinstance(event, OptNeg):
                out = conn.send(session.negotiate(event))
            elif isinstance(event, EndOfMessage):
                client.busy = True
                try:
                    out = await self._end_of_message(conn, session, event, writer)
                finally:
                    client.busy = False
            else:
                session.observe(event)
                reply: Reply = Continue()
                if isinstance(event, Connect) and not self._claim(client, session.client_ip):
                    reply = TOO_MANY_FROM_CLIENT
                out = conn.send(reply) if conn.pending_reply is not None else b""
            if out:
                writer.write(out)
                await writer.drain()

    def _claim(self, client: _Client, smtp_client: str | None) -> bool:
        """Count this MTA session for its SMTP client; False when that client already
        holds ``max_connections_per_client`` sessions (this one is then not counted)."""
        self._release(client)  # a connection reused for a new SMTP session
        if smtp_client is None:
            return True
        if not self._per_client.claim(smtp_client):
            log.warning(
                "%s: refused %s, %d sessions open for it (max_connections_per_client)",
                client.peer,
                smtp_client,
                self._per_client.held(smtp_client),
            )
            connection_refused("milter", "per_client")
            return False
        client.smtp_client = smtp_client
        return True

    def _release(self, client: _Client) -> None:
        if client.smtp_client is not None:
            self._per_client.release(client.smtp_client)
            client.smtp_client = None

    @property
    def sessions_per_client(self) -> dict[str, int]:
        """Open MTA sessions per SMTP client address (what max_connections_per_client caps)."""
        return self._per_client.snapshot()

    @property
    def open_connections(self) -> int:
        """MTA connections open now."""
        return len(self._clients)

    @property
    def busy_connections(self) -> int:
        """Connections whose message is being checked now."""
        return sum(1 for client in self._clients if client.busy)

    def _limits(self) -> AssemblyLimits:
        settings = self.settings
        return AssemblyLimits(
            max_headers=settings.max_headers,
            max_header_bytes=settings.max_header_bytes,
            max_message_bytes=self.service.policies.current.document.limits.max_message_bytes,
            spool=self.service.spool,
        )

    async def _end_of_message(
        self,
        conn: MilterConnection,
        session: MilterSession,
        event: EndOfMessage,
        writer: asyncio.StreamWriter,
    ) -> bytes:
        request = session.end_of_message(event.data, conn.macros)
        try:
            return await self._answer(conn, request, writer)
        finally:
            request.message.close()  # the spool file goes once the answer is built

    async def _answer(
        self, conn: MilterConnection, request: MessageRequest, writer: asyncio.StreamWriter
    ) -> bytes:
        work = asyncio.ensure_future(
            self.service.process(
                request,
                deadline_seconds=self.settings.eom_deadline_seconds,
                on_failure=self.settings.on_failure,
            )
        )
        try:
            while not work.done():
                done, _ = await asyncio.wait(
                    {work}, timeout=self.settings.progress_interval_seconds
                )
                if not done:
                    writer.write(conn.send(Progress()))
                    await writer.drain()
        finally:
            if not work.done():  # the MTA went away mid-scan: nobody waits for the answer
                work.cancel()
                await asyncio.wait({work})
        outcome = work.result()
        wire = WireOptions(
            conn.actions,
            leading_space=ProtocolFlag.HDR_LEADSPC in conn.protocol,
            hides_received=self.settings.mta_hides_received,
        )
        qid = request.envelope.queue_id or "NOQUEUE"
        try:
            replies, skipped = outcome_replies(outcome, wire)
            if skipped:
                log.warning("%s: the MTA did not allow: %s", qid, ", ".join(skipped))
            return b"".join(conn.send(reply) for reply in replies)
        except LocalProtocolError as exc:
            log.error("%s: plan cannot be expressed as milter replies (%s)", qid, exc)
            return self._failure(conn)

    def _failure(self, conn: MilterConnection) -> bytes:
        reply: Reply = (
            Accept()
            if self.settings.on_failure == "accept"
            else final_reply(Action.TEMPFAIL, CANNOT_CHECK)
        )
        return conn.send(reply)


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "unix")
