"""The SMTP filter: receive with aiosmtpd, decide with the service, relay with aiosmtplib.

Never lose mail: the client hears 250 only once the next hop said 250 for the edited
message (or the message is durably in Tocsin's quarantine); the next hop's 4xx/5xx is
mirrored; anything else that goes wrong (internal error, deadline, next hop down) is a
451, so the MTA in front keeps the message and retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from dataclasses import replace
from typing import Any

from milter.actions.apply import apply_plan
from milter.frontends.caps import PerClient
from milter.frontends.listen import no_delay, parse_endpoint
from milter.frontends.pace import Pace, SlowClient
from milter.frontends.service import Action, MessageRequest, MessageService, Outcome
from milter.frontends.settings import SmtpSettings
from milter.frontends.smtp.params import Params, xforward_value, xtext_encode
from milter.frontends.smtp.protocol import FilterSMTP
from milter.frontends.smtp.relay import NextHop, NextHopConfig, NextHopPool, NextHopRefused
from milter.model.envelope import Envelope
from milter.model.plan import ActionPlan, HeaderOp, SmtpReply
from milter.ops.metrics import connection_closed, connection_opened, connection_refused

log = logging.getLogger("tocsin.smtp")

EXTRA_KEYWORDS = ("DSN", "XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE")
ACCEPTED = "250 2.0.0 Ok: message accepted"
INTERNAL_ERROR = "451 4.3.0 Internal filter error, try again later"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections, try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"
TRANSACTION_TOO_LONG = "421 4.4.2 Transaction took too long, closing"
TOO_SLOW = "421 4.7.1 Too slow, closing"
NEEDS_SMTPUTF8 = (
    "553 5.6.7 Must declare SMTPUTF8 to send unicode address"  # RFC 6531 3.5, as Postfix
)
TOO_MANY_FROM_CLIENT = "421 4.7.0 Too many connections from your address, try again later"


class SmtpFilterServer:
    """Serves the SMTP filter on a listening socket until asked to stop."""

    def __init__(self, settings: SmtpSettings, service: MessageService) -> None:
        self.settings = settings
        self.service = service
        self.hop_address = _host_port(settings.next_hop)
        self.hostname = settings.hostname or socket.getfqdn()
        self._connections: set[FilterSMTP] = set()
        self._per_client = PerClient(settings.max_connections_per_client)
        self._trusted = [ipaddress.ip_network(n, strict=False) for n in settings.trusted_clients]
        self._stop = asyncio.Event()
        self._drained = asyncio.Event()
        self.pool = NextHopPool(
            settings.next_hop_sessions,
            settings.next_hop_idle_seconds,
            max_transactions=settings.next_hop_session_transactions,
            max_age_seconds=settings.next_hop_session_seconds,
        )
        host, port = self.hop_address
        self._hop_config = NextHopConfig(
            host,
            port,
            self.hostname,
            timeout_seconds=settings.next_hop_timeout_seconds,
            starttls=settings.next_hop_starttls,
            xforward=settings.xforward,
        )

    @property
    def stopping(self) -> bool:
        """True once `request_stop` was called."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Stop accepting; finish the transactions in progress, then return from `serve`."""
        self._stop.set()

    async def serve(self, sock: socket.socket) -> None:
        """Accept connections on ``sock`` until `request_stop`, then drain."""
        loop = asyncio.get_running_loop()
        if sock.family == socket.AF_UNIX:
            server = await loop.create_unix_server(self._protocol, sock=sock)
        else:
            server = await loop.create_server(self._protocol, sock=sock)
        async with server:
            await self._stop.wait()
            server.close()
            await self._drain()
            await self.pool.close()

    async def _drain(self) -> None:
        for conn in list(self._connections):
            if not conn.in_transaction:
                conn.abort(SHUTTING_DOWN)
        if self._connections:
            log.info(
                "draining %d SMTP connection(s), up to %gs",
                len(self._connections),
                self.settings.drain_seconds,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), self.settings.drain_seconds)
        for conn in list(self._connections):
            conn.abort(SHUTTING_DOWN)
        await asyncio.sleep(0)  # let the closed transports report connection_lost

    def _protocol(self) -> asyncio.Protocol:
        return _Door(self)

    def open(self, peer: str | None) -> FilterSMTP | str:
        """A new connection from ``peer``: its protocol, or the 421 refusing it."""
        if len(self._connections) >= self.settings.max_connections or self.stopping:
            log.warning("refused a connection: %d open (max_connections)", len(self._connections))
            connection_refused("smtp", "shutting_down" if self.stopping else "max_connections")
            return SHUTTING_DOWN if self.stopping else TOO_MANY_CONNECTIONS
        key = None if peer is None or self.trusted(peer) else peer
        if key is not None and not self.claim(key):
            return TOO_MANY_FROM_CLIENT
        settings = self.settings
        handler = ConnectionHandler(self, client_key=key)
        conn = _CountingSMTP(
            handler,
            max_line_bytes=settings.max_line_bytes,
            on_lost=self._lost,
            spool=self.service.spool,
            data_size_limit=settings.max_message_bytes,
            hostname=self.hostname,
            ident="Tocsin",
            timeout=settings.idle_timeout_seconds,
        )
        self._connections.add(conn)
        connection_opened("smtp")
        return conn

    def trusted(self, address: str) -> bool:
        """True for the MTA in front (``trusted_clients``): counted by the client it
        forwards, not by its own address."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def claim(self, client: str) -> bool:
        """Count a connection (or forwarded transaction) for ``client``; False, with a log
        line, when it already holds ``max_connections_per_client``."""
        if self._per_client.claim(client):
            return True
        log.warning(
            "refused %s, %d connections open for it (max_connections_per_client)",
            client,
            self._per_client.held(client),
        )
        connection_refused("smtp", "per_client")
        return False

    def release(self, client: str) -> None:
        """One connection (or forwarded transaction) of ``client`` ended."""
        self._per_client.release(client)

    @property
    def connections_per_client(self) -> dict[str, int]:
        """Open connections per client address (what max_connections_per_client caps)."""
        return self._per_client.snapshot()

    @property
    def open_connections(self) -> int:
        """SMTP connections open now."""
        return len(self._connections)

    def _lost(self, conn: FilterSMTP) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            connection_closed("smtp")
        conn.event_handler.lost()
        if self.stopping and not self._connections:
            self._drained.set()

    def next_hop(self) -> NextHop:
        """A transaction with the next hop (on a kept session when there is one)."""
        return NextHop(self._hop_config, self.pool)


class ConnectionHandler:
    """aiosmtpd's event handler for one connection: the transaction and its next hop."""

    def __init__(self, server: SmtpFilterServer, client_key: str | None = None) -> None:
        self.server = server
        self.hop: NextHop | None = None
        self.utf8 = False
        self.started = 0.0
        self.busy = False
        self._timer: asyncio.TimerHandle | None = None
        self._pacer: asyncio.TimerHandle | None = None
        self._client_key = client_key  # counted for the connection's peer, until lost
        self._forwarded_key: str | None = None  # counted for the XFORWARD client, per transaction

    async def handle_exception(self, error: Exception) -> str:
        """aiosmtpd answers 500 (permanent) to a handler's exception; we keep the mail."""
        log.error("SMTP filter internal error: %s: %s", type(error).__name__, error)
        await self._end()
        return INTERNAL_ERROR

    async def handle_EHLO(
        self, smtp: FilterSMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        """Offer DSN and XFORWARD besides aiosmtpd's SIZE, 8BITMIME and SMTPUTF8."""
        session.host_name = hostname
        await self._end()
        last = responses[-1].replace("250 ", "250-", 1)
        extra = [f"250-{k}" for k in EXTRA_KEYWORDS]
        return [*responses[:-1], last, *extra[:-1], "250 " + EXTRA_KEYWORDS[-1]]

    async def handle_RSET(self, smtp: FilterSMTP, session: Any, envelope: Any) -> str:
        """Abandon the transaction at the next hop too."""
        await self._end(smtp)
        return "250 2.0.0 Ok"

    async def handle_QUIT(self, smtp: FilterSMTP, session: Any, envelope: Any) -> str:
        """Abandon any transaction in progress."""
        await self._end(smtp)
        return "221 2.0.0 Bye"

    async def handle_MAIL(
        self, smtp: FilterSMTP, session: Any, envelope: Any, address: str, params: Params
    ) -> str:
        """Open the next hop's transaction with the same sender and parameters."""
        if self.server.stopping:  # the next transaction goes elsewhere, or waits
            asyncio.get_running_loop().call_soon(smtp.close_after_reply)
            return SHUTTING_DOWN
        if "SMTPUTF8" not in params and not address.isascii():
            return NEEDS_SMTPUTF8  # (could not be written to the next hop: a retry forever)
        if not self._claim_forwarded(smtp):
            asyncio.get_running_loop().call_soon(smtp.close_after_reply)
            return TOO_MANY_FROM_CLIENT
        self.utf8 = "SMTPUTF8" in params
        hop = self.server.next_hop()
        sender = "" if address == "<>" else address  # aiosmtpd gives the null sender as <>
        try:
            await hop.open(sender, params, self._xforward(smtp, session), utf8=self.utf8)
        except NextHopRefused as exc:
            self._stop_timers()  # no transaction: the forwarded client's count goes back
            await hop.close()
            return exc.reply
        except BaseException:  # not ours yet (lost() cannot drop it): a bug, or cancelled
            self._stop_timers()
            hop.drop()
            raise
        self.hop = hop
        envelope.mail_from = address
        envelope.mail_options = [str(p) for p in params.items]
        envelope.smtp_utf8 = self.utf8
        self.started = time.monotonic()
        limit = self.server.settings.transaction_seconds
        self._timer = asyncio.get_running_loop().call_later(limit, self._expire, smtp)
        self._start_pace(smtp)
        return "250 2.1.0 Ok"

    def _claim_forwarded(self, smtp: FilterSMTP) -> bool:
        """A transaction from the MTA in front counts for the client it forwards."""
        forwarded = xforward_value(smtp.xforward, "ADDR")
        if self._client_key is not None or not forwarded:
            return True
        if not self.server.claim(forwarded):
            return False
        self._forwarded_key = forwarded
        return True

    def _start_pace(self, smtp: FilterSMTP) -> None:
        """From MAIL FROM to the final dot, the client must keep a minimum data rate."""
        settings = self.server.settings
        if settings.min_bytes_per_second <= 0 or not isinstance(smtp, _CountingSMTP):
            return
        loop = asyncio.get_running_loop()
        pace = Pace(
            settings.transaction_seconds, settings.min_bytes_per_second, settings.slow_grace_seconds
        )
        pace.start(loop.time())
        base = smtp.received
        interval = min(1.0, max(0.05, settings.slow_grace_seconds / 4))

        def check() -> None:
            self._pacer = None
            if self.busy or self.hop is None:  # past the dot, or the transaction ended
                return
            pace.bytes = smtp.received - base
            try:
                pace.read_timeout(interval, loop.time())
            except SlowClient as exc:
                log.warning("slow client, transaction cut: %s", exc)
                smtp.abort(TOO_SLOW)
                return
            self._pacer = loop.call_later(interval, check)

        self._pacer = loop.call_later(interval, check)

    async def handle_RCPT(
        self, smtp: FilterSMTP, session: Any, envelope: Any, address: str, params: Params
    ) -> str:
        """Pass the recipient on; mirror the next hop's answer."""
        if len(envelope.rcpt_tos) >= self.server.settings.max_recipients:
            return "452 4.5.3 Too many recipients"
        if self.hop is None:
            return "503 5.5.1 Need MAIL command"
        if not self.utf8 and not address.isascii():
            return NEEDS_SMTPUTF8
        try:
            answer = await self.hop.recipient(address, params, utf8=self.utf8)
        except NextHopRefused as exc:
            return exc.reply
        envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, smtp: FilterSMTP, session: Any, envelope: Any) -> str:
        """Decide, then relay (or quarantine, reject, tempfail): the answer after the dot."""
        self.busy = True
        try:
            return await self._data(smtp, session, envelope)
        finally:
            self.busy = False
            await self._end(smtp)

    async def _data(self, smtp: FilterSMTP, session: Any, envelope: Any) -> str:
        settings = self.server.settings
        raw = smtp.message  # spooled when large; closed by smtp once DATA is answered
        assert raw is not None
        request = MessageRequest(raw, self._envelope(smtp, session, envelope), raw.received)
        remaining = settings.transaction_seconds - (time.monotonic() - self.started)
        outcome = await self.server.service.process(
            request,
            deadline_seconds=max(0.001, min(settings.deadline_seconds, remaining)),
            on_failure=settings.on_failure,
            can_hold=False,
            deliver=self._deliver,
        )
        if outcome.action is Action.DELIVER:
            if outcome.next_hop is None:  # on_failure: accept, and the deadline passed
                return await self._send_unchanged(raw.to_bytes())
            return outcome.next_hop
        if outcome.action is Action.QUARANTINE:
            return ACCEPTED
        return str(outcome.reply) if outcome.reply else INTERNAL_ERROR

    async def _deliver(self, outcome: Outcome) -> Outcome:
        """Send the edited message; its answer becomes the outcome's."""
        if self.hop is None:
            return outcome.failed("next hop session lost")
        data = apply_plan(outcome.request.raw, _below_mta_received(outcome))
        try:
            answer = await self.hop.send(data)
        except NextHopRefused as exc:
            reply = parse_reply(exc.reply)
            if exc.permanent:
                return replace(outcome, action=Action.REJECT, reply=reply, next_hop=exc.reply)
            return replace(outcome.failed("next hop: " + exc.reply, reply), next_hop=exc.reply)
        return replace(outcome, next_hop=answer)

    async def _send_unchanged(self, raw: bytes) -> str:
        if self.hop is None:
            return INTERNAL_ERROR
        try:
            return await self.hop.send(raw)
        except NextHopRefused as exc:
            return exc.reply

    def _xforward(self, smtp: FilterSMTP, session: Any) -> dict[str, str]:
        """What the next hop should log as the client: the XFORWARD we were given, or
        our own client when nobody forwarded one."""
        if smtp.xforward:
            return dict(smtp.xforward)
        peer = session.peer
        attributes = {"PROTO": "ESMTP" if session.extended_smtp else "SMTP"}
        if isinstance(peer, tuple) and peer:
            attributes["ADDR"] = xtext_encode(str(peer[0]))
        if session.host_name:
            attributes["HELO"] = xtext_encode(str(session.host_name))
        return attributes

    def _envelope(self, smtp: FilterSMTP, session: Any, envelope: Any) -> Envelope:
        forwarded = smtp.xforward
        peer = session.peer
        peer_ip = str(peer[0]) if isinstance(peer, tuple) and peer else None
        sender = envelope.mail_from
        return Envelope(
            client_ip=xforward_value(forwarded, "ADDR") or peer_ip,
            client_name=xforward_value(forwarded, "NAME"),
            helo=xforward_value(forwarded, "HELO") or session.host_name,
            mail_from="" if sender == "<>" else sender,
            rcpts=tuple(envelope.rcpt_tos),
            queue_id=xforward_value(forwarded, "IDENT"),
        )

    def _expire(self, smtp: FilterSMTP) -> None:
        self._timer = None
        if not self.busy:  # after the dot, the deadline (within this limit) applies
            log.warning("transaction over %gs, closing", self.server.settings.transaction_seconds)
            smtp.abort(TRANSACTION_TOO_LONG)

    def lost(self) -> None:
        """The client went away: drop the next hop's transaction (nothing is delivered)."""
        self._stop_timers()
        if self._client_key is not None:
            self.server.release(self._client_key)
            self._client_key = None
        hop, self.hop = self.hop, None
        if hop is not None:
            hop.drop()

    def _stop_timers(self) -> None:
        for timer in (self._timer, self._pacer):
            if timer is not None:
                timer.cancel()
        self._timer = self._pacer = None
        if self._forwarded_key is not None:
            self.server.release(self._forwarded_key)
            self._forwarded_key = None

    @property
    def transaction_open(self) -> bool:
        """A next hop session or a timer is still held (for tests after a disconnect)."""
        return self.hop is not None or self._timer is not None or self._pacer is not None

    async def _end(self, smtp: FilterSMTP | None = None) -> None:
        """End of a transaction: abandon the next hop's if not delivered, reset XFORWARD."""
        self._stop_timers()
        hop, self.hop = self.hop, None
        if hop is not None:
            await hop.close()
        if smtp is not None:
            smtp.xforward = {}


def _below_mta_received(outcome: Outcome) -> ActionPlan:
    """Header insertions go below the MTA's own Received: header, as a milter's do.

    The engine counts the headers it saw; in front of a milter the MTA hides its newest
    Received: (and shifts insert positions past it); here that header is in the bytes.
    Shifting the same way keeps both front-ends' output identical.
    """
    plan = outcome.plan
    if outcome.request.message.header_block[:9].lower() != b"received:":
        return plan
    edits = tuple(
        replace(e, index=e.index + 1) if e.op is HeaderOp.INSERT else e for e in plan.header_edits
    )
    return replace(plan, header_edits=edits)


def parse_reply(text: str) -> SmtpReply:
    """``"550 5.1.1 text"`` (or without the enhanced code) as an SmtpReply."""
    code_text, _, rest = text.partition(" ")
    code = int(code_text) if code_text.isdigit() and 400 <= int(code_text) <= 599 else 451
    enhanced, _, message = rest.partition(" ")
    if not (enhanced[:1] == str(code)[0] and enhanced.count(".") == 2):
        enhanced, message = f"{str(code)[0]}.0.0", rest
    return SmtpReply(code, enhanced, message.strip() or "(no text)")


def _host_port(spec: str) -> tuple[str, int]:
    address = parse_endpoint(spec)
    if address.host is None or address.port is None:
        raise ValueError(f"{spec}: the next hop must be HOST:PORT")
    return address.host, address.port


class _CountingSMTP(FilterSMTP):
    """FilterSMTP counting the bytes it receives (for the minimum data rate)."""

    received = 0

    def data_received(self, data: bytes) -> None:
        """Count, then let aiosmtpd read it."""
        self.received += len(data)
        super().data_received(data)


class _Door(asyncio.Protocol):
    """Sees who connects before any SMTP is spoken: hands the connection to its
    `FilterSMTP`, or answers 421 and closes (max_connections, per client, stopping)."""

    def __init__(self, server: SmtpFilterServer) -> None:
        self.server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        no_delay(transport)  # else a reply in several writes waits for the client's ACK
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else None
        opened = self.server.open(address)
        if isinstance(opened, str):
            transport.write(opened.encode("ascii") + b"\r\n")
            transport.close()
            return
        transport.set_protocol(opened)
        opened.connection_made(transport)
