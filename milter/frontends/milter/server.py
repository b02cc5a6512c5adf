"""The asyncio milter server: listens, admits connections, and answers ends of message.

Each accepted connection is a `MilterProtocol` (milter/frontends/milter/connection.py),
which drives the sans-IO codec and a `MilterSession` and answers every event. At end
of message it calls `MilterServer.answer`: the engine runs under a deadline (the
connection sends progress packets meanwhile). Anything that goes wrong with a message
becomes the configured failure reply (tempfail by default); anything that goes wrong
with the protocol closes the connection, and the MTA applies its default action.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from milter.codec import (
    Accept,
    EndOfMessage,
    LocalProtocolError,
    MilterConnection,
    Reply,
    ReplyCode,
)
from milter.frontends.caps import PerClient
from milter.frontends.milter.assemble import AssemblyLimits
from milter.frontends.milter.connection import MilterProtocol
from milter.frontends.milter.replies import final_reply, outcome_replies, wire_options
from milter.frontends.milter.session import MilterSession
from milter.frontends.service import Action, MessageRequest, MessageService
from milter.frontends.settings import MilterSettings
from milter.model.plan import CANNOT_CHECK
from milter.ops.metrics import connection_refused

log = logging.getLogger("tocsin.milter")
# Over max_connections_per_client: Postfix answers the SMTP client 421 and disconnects it.
TOO_MANY_FROM_CLIENT = ReplyCode(421, "4.7.0 Too many connections from your address, try later")


class MilterServer:
    """Serves the milter protocol on a listening socket until asked to stop."""

    too_many_from_client = TOO_MANY_FROM_CLIENT

    def __init__(self, settings: MilterSettings, service: MessageService) -> None:
        self.settings = settings
        self.service = service
        self._clients: set[MilterProtocol] = set()
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
        loop = asyncio.get_running_loop()
        if sock.family == socket.AF_UNIX:
            server = await loop.create_unix_server(lambda: MilterProtocol(self), sock=sock)
        else:
            server = await loop.create_server(lambda: MilterProtocol(self), sock=sock)
        async with server:
            await self._stop.wait()
            server.close()
            await self._drain()

    async def _drain(self) -> None:
        for client in list(self._clients):
            client.close_if_idle()
        waiting = [client.closed for client in self._clients]
        if waiting:
            log.info(
                "draining %d connection(s), up to %gs", len(waiting), self.settings.drain_seconds
            )
            _, pending = await asyncio.wait(waiting, timeout=self.settings.drain_seconds)
            for client in list(self._clients):
                if not client.closed.done():
                    client.abort()
            if pending:
                await asyncio.wait(pending)

    def admit(self, client: MilterProtocol) -> bool:
        """A new connection: counted, or refused (False) past max_connections or when
        stopping."""
        if len(self._clients) >= self.settings.max_connections or self._stop.is_set():
            log.warning(
                "%s: refused, %d connections open (max_connections)",
                client.peer,
                len(self._clients),
            )
            connection_refused(
                "milter", "shutting_down" if self._stop.is_set() else "max_connections"
            )
            return False
        self._clients.add(client)
        return True

    def claim(self, client: MilterProtocol, smtp_client: str | None) -> bool:
        """Count this MTA session for its SMTP client; False when that client already
        holds ``max_connections_per_client`` sessions (this one is then not counted)."""
        self._release_client(client)  # a connection reused for a new SMTP session
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

    def release(self, client: MilterProtocol) -> None:
        """The connection is gone: forget it and what it counted for."""
        self._release_client(client)
        self._clients.discard(client)

    def _release_client(self, client: MilterProtocol) -> None:
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

    def assembly_limits(self) -> AssemblyLimits:
        """How much of one message a new connection keeps, and where large ones go."""
        settings = self.settings
        return AssemblyLimits(
            max_headers=settings.max_headers,
            max_header_bytes=settings.max_header_bytes,
            max_message_bytes=self.service.policies.current.document.limits.max_message_bytes,
            spool=self.service.spool,
        )

    async def answer(
        self, conn: MilterConnection, session: MilterSession, event: EndOfMessage
    ) -> bytes:
        """The bytes of every reply to this end of message, the final one last."""
        request = session.end_of_message(event.data, conn.macros)
        try:
            return await self._answer(conn, request)
        finally:
            request.message.close()  # the spool file goes once the answer is built

    async def _answer(self, conn: MilterConnection, request: MessageRequest) -> bytes:
        outcome = await self.service.process(
            request,
            deadline_seconds=self.settings.eom_deadline_seconds,
            on_failure=self.settings.on_failure,
        )
        wire = wire_options(conn.actions, conn.protocol, self.settings.mta_hides_received)
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
