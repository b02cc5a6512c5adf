"""Sessions kept with the next hop (`NextHopPool`): never handed on with a command still
in flight, and not kept where the next hop's own counters would punish later clients.

The next hop is aiosmtpd on loopback, answering each command itself; it can hold its
answer to a DATA or an RSET until more input arrives on that session (or it ends), so a
reply left behind is deterministic, not a race.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from milter.frontends.smtp.params import Params
from milter.frontends.smtp.relay import NextHop, NextHopConfig, NextHopPool, NextHopRefused
from tests.support.smtp_filter import asend, running_filter

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
HAM = (EXAMPLES / "legit-notice.eml").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
LIVENESS = 30.0  # seconds: only so a broken test ends; nothing is timed


@dataclass
class NextHopRecorder:
    """aiosmtpd's handler: counts sessions and RSETs, refuses ``unknown@`` recipients, and
    keeps the counters Postfix's smtpd keeps per session (errors; junk commands: EHLO,
    RSET, XFORWARD), both forgiven by a delivered message."""

    port: int = 0
    sessions: int = 0  # EHLOs
    ended: int = 0  # sessions closed (QUIT or hang-up)
    quits: int = 0
    rsets: int = 0
    datas: int = 0  # DATA transactions whose content arrived
    messages: list[list[str]] = field(default_factory=list)  # recipients per message
    carried: list[tuple[int, int]] = field(default_factory=list)  # (errors, junk) per MAIL
    most_junk: int = 0  # the highest junk count a session reached
    hold_data: bool = False  # the next final dot is answered after more input (or never)
    hold_rset: bool = False  # the next RSET is answered after more input (or never)
    rset_seen: asyncio.Event = field(default_factory=asyncio.Event)
    session_ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_EHLO(
        self, server: _HopSMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self.sessions += 1
        server.junk_command()
        return [*responses[:-1], "250-XFORWARD NAME ADDR PROTO HELO", responses[-1]]

    async def handle_MAIL(
        self, server: _HopSMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.carried.append((server.errors, server.junk))
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: _HopSMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("unknown@"):
            server.errors += 1
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return f"250 2.1.5 <{address}> Ok"

    async def handle_DATA(self, server: _HopSMTP, session: Any, envelope: Any) -> str:
        self.datas += 1
        if self.hold_data:
            self.hold_data = False
            await server.more_input()
        self.messages.append(list(envelope.rcpt_tos))
        server.errors = server.junk = 0
        return f"250 2.0.0 Ok: queued as Q{len(self.messages)}"


class _HopSMTP(SMTP):
    """aiosmtpd with XFORWARD, its smtpd-like counters, and a way to wait for the
    client's next bytes on this session."""

    def __init__(self, handler: NextHopRecorder, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._input = asyncio.Event()
        self.recorder = handler
        self.errors = 0
        self.junk = 0

    def junk_command(self) -> None:
        self.junk += 1
        self.recorder.most_junk = max(self.recorder.most_junk, self.junk)

    def data_received(self, data: bytes) -> None:
        self._input.set()
        super().data_received(data)

    def connection_lost(self, error: Exception | None) -> None:
        self.recorder.ended += 1
        self.recorder.session_ended.set()
        super().connection_lost(error)

    async def more_input(self) -> None:
        """Until the client sends anything more on this session (the session ending
        cancels the wait)."""
        self._input.clear()
        await self._input.wait()

    async def smtp_RSET(self, arg: str) -> None:
        self.recorder.rsets += 1
        self.recorder.rset_seen.set()
        self.junk_command()
        if self.recorder.hold_rset:
            self.recorder.hold_rset = False
            await self.more_input()
        await super().smtp_RSET(arg)

    async def smtp_XFORWARD(self, arg: str) -> None:
        self.junk_command()
        await self.push("250 2.0.0 Ok")

    async def smtp_QUIT(self, arg: str) -> None:
        self.recorder.quits += 1
        await super().smtp_QUIT(arg)


@asynccontextmanager
async def next_hop() -> AsyncIterator[NextHopRecorder]:
    recorder = NextHopRecorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _HopSMTP(recorder, hostname="hop.test"), "127.0.0.1", 0
    )
    recorder.port = server.sockets[0].getsockname()[1]
    try:
        yield recorder
    finally:
        server.close()
        await server.wait_closed()


async def test_a_transaction_cut_during_data_leaves_no_reply_for_the_next(
    tmp_path: Path,
) -> None:
    """The deadline passes while the next hop has not answered the final dot: that
    session still owes a reply, so it is closed, never kept. Kept, the next transaction
    on it would read the stale answers one command late: its RSET the old 250, its RCPTs
    each the answer to the command before (the valid recipient would hear the unknown
    one's 550), its DATA a 250 for a RCPT."""
    async with next_hop() as hop, running_filter(tmp_path, hop.port, deadline_seconds=2) as flt:
        hop.hold_data = True
        cut = await asend(flt.port, HAM, rcpts=("first@x.test",))
        assert hop.datas == 1  # the deadline passed at the dot, not during the scan
        second = await asend(flt.port, HAM, rcpts=("unknown@x.test", "friend@x.test"))
    assert cut.data is not None
    assert cut.data[0] == 451
    assert second.rcpts == [
        (550, b"5.1.1 <unknown@x.test>: Recipient address rejected"),
        (250, b"2.1.5 <friend@x.test> Ok"),
    ]
    assert second.data == (250, b"2.0.0 Ok: queued as Q1")
    assert hop.messages == [["friend@x.test"]]
    assert hop.sessions == 2  # the cut session was not used again
    assert hop.rsets == 0


async def test_a_cancelled_rset_on_a_kept_session_is_not_kept_again() -> None:
    """The RSET before a kept session's next MAIL is cancelled (our client hung up) while
    the next hop has not answered: the session is closed, not given back clean."""
    async with next_hop() as hop:
        pool = NextHopPool(4, 60)
        config = NextHopConfig("127.0.0.1", hop.port, "filter.test", timeout_seconds=LIVENESS)
        abandoned = NextHop(config, pool)
        await abandoned.open("a@x.test", Params(), {}, utf8=False)
        await abandoned.recipient("b@x.test", Params(), utf8=False)
        await abandoned.close()  # no DATA: kept, to be reset before its next MAIL
        assert pool.idle == 1

        hop.hold_rset = True
        cut = NextHop(config, pool)
        opening = asyncio.create_task(cut.open("c@x.test", Params(), {}, utf8=False))
        await asyncio.wait_for(hop.rset_seen.wait(), LIVENESS)
        opening.cancel()
        await asyncio.gather(opening, return_exceptions=True)
        await cut.close()
        assert pool.idle == 0
        await asyncio.wait_for(hop.session_ended.wait(), LIVENESS)

        fresh = NextHop(config, pool)
        await fresh.open("d@x.test", Params(), {}, utf8=False)
        with pytest.raises(NextHopRefused) as refused:
            await fresh.recipient("unknown@x.test", Params(), utf8=False)
        accepted = await fresh.recipient("e@x.test", Params(), utf8=False)
        sent = await fresh.send(HAM)
        await fresh.close()
        await pool.close()
    assert refused.value.reply == "550 5.1.1 <unknown@x.test>: Recipient address rejected"
    assert accepted == "250 2.1.5 <e@x.test> Ok"
    assert sent == "250 2.0.0 Ok: queued as Q1"
    assert hop.sessions == 2


def _raw_transaction(port: int, sender: bytes, *rcpts: bytes) -> list[bytes]:
    """EHLO, MAIL FROM ``sender`` and RCPT TO each of ``rcpts``, addresses as raw bytes
    (smtplib would refuse to send a non-ASCII address without SMTPUTF8); the answers to
    MAIL and to each RCPT."""
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=LIVENESS) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"EHLO client.test\r\n")
        while reader.readline()[3:4] == b"-":
            pass
        for command in (b"MAIL FROM:<" + sender, *(b"RCPT TO:<" + rcpt for rcpt in rcpts)):
            sock.sendall(command + b">\r\n")
            answers.append(reader.readline())
        sock.sendall(b"QUIT\r\n")
        reader.readline()
    return answers


async def test_a_unicode_sender_without_smtputf8_is_refused_before_the_next_hop(
    tmp_path: Path,
) -> None:
    """A non-ASCII sender without SMTPUTF8 cannot be written to the next hop: it gets
    553 5.6.7 (RFC 6531, as Postfix answers) before any session is opened. It got 451
    (an internal error), which the client retries until its queue lifetime ends."""
    async with next_hop() as hop, running_filter(tmp_path, hop.port) as flt:
        (answer,) = await asyncio.to_thread(
            _raw_transaction, flt.port, "expéditeur@x.test".encode()
        )
        assert flt.server.pool.idle == 0
    assert answer.startswith(b"553 5.6.7 ")
    assert hop.sessions == 0


async def test_a_unicode_recipient_without_smtputf8_is_refused_alone(tmp_path: Path) -> None:
    """Refused with 553 5.6.7 before the next hop, and the transaction goes on: the next
    recipient is passed on (it heard 503 'Need MAIL command', a bounce, after the
    encoding error had ended our side of the transaction; review Q2)."""
    async with next_hop() as hop, running_filter(tmp_path, hop.port) as flt:
        _, *answers = await asyncio.to_thread(
            _raw_transaction, flt.port, b"a@x.test", "désiré@exemple.fr".encode(), b"ami@exemple.fr"
        )
    assert answers[0].startswith(b"553 5.6.7 ")
    assert answers[1].startswith(b"250 ")


async def test_a_session_that_mirrored_a_refusal_is_not_kept(tmp_path: Path) -> None:
    """Postfix's smtpd counts every 4xx/5xx it gives in a session (past 10 it sleeps 1 s
    before each answer, past 20 it says 421): a session that mirrored one is closed, so
    no later client's transaction starts with another's errors counted against it."""
    async with next_hop() as hop, running_filter(tmp_path, hop.port) as flt:
        refused = await asend(flt.port, HAM, rcpts=("unknown@x.test",))
        assert flt.server.pool.idle == 0
        assert hop.quits == 1  # ended cleanly
        later = [await asend(flt.port, HAM, rcpts=(f"u{i}@x.test",)) for i in range(2)]
        assert flt.server.pool.idle == 1  # a session without a refusal is kept as before
    assert refused.rcpts == [(550, b"5.1.1 <unknown@x.test>: Recipient address rejected")]
    assert [s.data for s in later] == [
        (250, b"2.0.0 Ok: queued as Q1"),
        (250, b"2.0.0 Ok: queued as Q2"),
    ]
    assert [errors for errors, _ in hop.carried] == [0, 0, 0]
    assert hop.sessions == 2


def hop_transport(hop: NextHop) -> asyncio.WriteTransport:
    """The transport of ``hop``'s session with the next hop."""
    session = hop._session
    assert session is not None
    transport = session.smtp.transport
    assert isinstance(transport, asyncio.WriteTransport)
    return transport


def _config(port: int) -> NextHopConfig:
    return NextHopConfig("127.0.0.1", port, "filter.test", timeout_seconds=LIVENESS)


async def _transaction(hop: NextHop, rcpt: str, *, deliver: bool) -> None:
    await hop.open("a@x.test", Params(), {"ADDR": "192.0.2.1"}, utf8=False)
    await hop.recipient(rcpt, Params(), utf8=False)
    if deliver:
        await hop.send(HAM)
    await hop.close()


async def test_abandoned_transactions_do_not_pile_up_junk_commands() -> None:
    """Each transaction sends XFORWARD, each abandoned one (quarantined, refused by the
    policy, the client gone) an RSET before the next: Postfix counts both, with EHLO,
    against smtpd_junk_command_limit (100), forgiven only by a delivered message. A run
    of abandoned transactions moves to a new session before a session reaches it; a run
    of delivered ones stays on one."""
    async with next_hop() as hop:
        pool = NextHopPool(4, 60)
        for i in range(60):
            await _transaction(NextHop(_config(hop.port), pool), f"d{i}@x.test", deliver=True)
        assert hop.sessions == 1
        for i in range(60):
            await _transaction(NextHop(_config(hop.port), pool), f"q{i}@x.test", deliver=False)
        await pool.close()
    assert len(hop.messages) == 60
    assert hop.most_junk <= 100
    assert hop.sessions > 1


async def test_a_session_is_retired_after_its_transactions(tmp_path: Path) -> None:
    async with (
        next_hop() as hop,
        running_filter(tmp_path, hop.port, next_hop_session_transactions=2) as flt,
    ):
        sent = [await asend(flt.port, HAM, rcpts=(f"u{i}@x.test",)) for i in range(5)]
    assert [s.data[0] if s.data else None for s in sent] == [250] * 5
    assert hop.sessions == 3
    assert hop.quits == 3


async def test_no_transaction_starts_on_a_session_past_its_age(tmp_path: Path) -> None:
    """Postfix's smtp_connection_reuse_time_limit: a session is used for 300 s from its
    connect, however busy (the pool's clock is a stand-in the test moves)."""
    now = [1000.0]
    async with (
        next_hop() as hop,
        running_filter(tmp_path, hop.port, next_hop_idle_seconds=3600) as flt,
    ):
        flt.server.pool.clock = lambda: now[0]
        for step in (0, 200, 99):
            now[0] += step
            await asend(flt.port, HAM)
        assert hop.sessions == 1  # 299 s after its connect: still used
        now[0] += 2
        await asend(flt.port, HAM)
        assert hop.sessions == 2
    assert len(hop.messages) == 4


async def test_an_idle_session_is_closed_by_the_timer(tmp_path: Path) -> None:
    """Nothing takes the kept session again: it is closed (QUIT) once idle for
    next_hop_idle_seconds, not left holding one of the next hop's smtpd processes."""
    async with (
        next_hop() as hop,
        running_filter(tmp_path, hop.port, next_hop_idle_seconds=0.2) as flt,
    ):
        await asend(flt.port, HAM)
        await asyncio.wait_for(hop.session_ended.wait(), LIVENESS)
        assert flt.server.pool.idle == 0
    assert hop.quits == 1
    assert len(hop.messages) == 1


@pytest.mark.parametrize("lines", [1_000, 40_000], ids=["1MB-in-kernel", "40MB"])
async def test_a_message_cut_while_sending_does_not_reach_the_next_hop_whole(lines: int) -> None:
    """The deadline passes (or our client leaves) while a message is still going out to a
    next hop that reads slowly: what was not sent yet, the final dot with it, is dropped
    with the session, so the next hop never takes a message whose sender heard 451 (and
    sends it again). A plain close would send all of it first; an abort alone drops only
    asyncio's buffer, not the kernel's, which holds all of a 1 MB message (review Q1)."""
    received = bytearray()
    paused = asyncio.Event()
    ended = asyncio.Event()
    readers: list[asyncio.Transport] = []

    class SlowReader(asyncio.Protocol):
        """Answers every command 250 (DATA 354); after the first bytes of the message
        it stops reading (the kernel's buffers fill, then aiosmtplib's)."""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport
            self.in_data = False
            readers.append(transport)
            transport.write(b"220 slow.test\r\n")

        def data_received(self, data: bytes) -> None:
            if self.in_data:
                received.extend(data)
                if not paused.is_set():
                    self.transport.pause_reading()
                    paused.set()
                return
            for line in data.split(b"\r\n"):
                if line.upper().startswith(b"DATA"):
                    self.in_data = True
                    self.transport.write(b"354 go on\r\n")
                elif line:
                    self.transport.write(b"250 ok\r\n")

        def connection_lost(self, exc: Exception | None) -> None:
            ended.set()

    loop = asyncio.get_running_loop()
    server = await loop.create_server(SlowReader, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    message = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * lines
    try:
        hop = NextHop(_config(port), NextHopPool(4, 60))
        await hop.open("a@x.test", Params(), {}, utf8=False)
        await hop.recipient("b@x.test", Params(), utf8=False)
        sending = asyncio.create_task(hop.send(message))
        await asyncio.wait_for(paused.wait(), LIVENESS)
        transport = hop_transport(hop)
        for _ in range(int(LIVENESS / 0.01)):  # until asyncio handed what it can to the kernel
            if transport.get_write_buffer_size() == 0 or lines > 1_000:
                break
            await asyncio.sleep(0.01)
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        await hop.close()
        for transport in readers:
            transport.resume_reading()
        await asyncio.wait_for(ended.wait(), LIVENESS)
    finally:
        server.close()
        await server.wait_closed()
    assert 0 < len(received) < len(message)
    assert not received.endswith(b"\r\n.\r\n")


async def test_a_cut_session_is_not_used_again_by_its_own_transaction(tmp_path: Path) -> None:
    """With ``on_failure: accept`` the deadline cutting the next hop's answer to the dot
    makes the filter pass the message on unchanged: never on the cut session, which
    still owes that answer. There, our DATA would release the stale 250 (the next hop
    queues the message) and be read as DATA's answer: the client hears 451 for a message
    that was queued, and sends it again. (Review of 12fde71.)"""
    async with (
        next_hop() as hop,
        running_filter(tmp_path, hop.port, deadline_seconds=2, on_failure="accept") as flt,
    ):
        hop.hold_data = True
        sent = await asend(flt.port, HAM, rcpts=("first@x.test",))
        await asyncio.wait_for(hop.session_ended.wait(), LIVENESS)
    assert sent.data is not None
    assert sent.data[0] == 451
    assert hop.datas == 1  # no second DATA on that session
    assert hop.messages == []  # nothing queued for a sender told to try again


def _refused_then_accepted(port: int) -> list[tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mta.test", timeout=LIVENESS) as smtp:
        smtp.ehlo()
        assert smtp.docmd("XFORWARD", "ADDR=192.0.2.7 NAME=x.example HELO=x.example")[0] == 250
        answers = [smtp.mail("refused@x.test"), smtp.mail("ok@x.test")]
        smtp.rset()
        return answers


async def test_a_refused_mail_gives_back_the_forwarded_clients_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A MAIL the next hop refuses opens no transaction: the count taken for the client
    XFORWARD names goes back at once (a second MAIL on the connection took another and
    the first was never released: after 20 such sequences that client heard 421 until a
    restart). Review R6."""
    accept_mail = NextHopRecorder.handle_MAIL

    async def handle_mail(self: NextHopRecorder, *args: Any) -> str:
        if args[3].startswith("refused@"):
            return "550 5.1.0 <refused@x.test>: Sender address rejected"
        return await accept_mail(self, *args)

    monkeypatch.setattr(NextHopRecorder, "handle_MAIL", handle_mail)
    async with next_hop() as hop, running_filter(tmp_path, hop.port) as flt:
        answers = await asyncio.to_thread(_refused_then_accepted, flt.port)
        for _ in range(100):  # the filter sees the connection end
            if not flt.server.connections_per_client:
                break
            await asyncio.sleep(0.05)
        held = dict(flt.server.connections_per_client)
    assert [code for code, _ in answers] == [550, 250]
    assert held == {}
