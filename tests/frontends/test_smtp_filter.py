"""The SMTP filter on loopback: smtplib client → filter → real next hop (smtp-sink, aiosmtpd)."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from milter.frontends.service import MessageRequest, MessageService
from milter.policy.loader import load_policy
from milter.policy.store import PolicyStore
from tests.support.smtp_filter import (
    asend,
    free_port,
    recording_sink,
    running_filter,
    self_signed_tls,
    smtp_sink,
    smtp_sink_missing,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
LURE = (EXAMPLES / "cpf-lure.eml").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
HAM = (EXAMPLES / "legit-notice.eml").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
needs_sink = pytest.mark.skipif(smtp_sink_missing() is not None, reason=str(smtp_sink_missing()))


def _args(dump: bytes, name: bytes) -> list[bytes]:
    return [ln.split(b": ", 1)[1] for ln in dump.split(b"\n") if ln.startswith(name + b": ")]


@needs_sink
async def test_null_sender_and_dsn_parameters_pass_through_unchanged(tmp_path: Path) -> None:
    with smtp_sink() as sink:
        async with running_filter(tmp_path, sink.port) as flt:
            sent = await asend(
                flt.port,
                HAM,
                mail_from="",
                rcpts=("a@x.test", "b@x.test"),
                mail_options=("RET=HDRS", "ENVID=Qx+2Bcase"),
                rcpt_options=("NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Mixed.Case@x.test"),
            )
        dump = sink.messages()[0]
    assert sent.data is not None
    assert sent.data[0] == 250
    assert _args(dump, b"X-Mail-Args") == [b"<> RET=HDRS ENVID=Qx+2Bcase"]
    assert _args(dump, b"X-Rcpt-Args") == [
        b"<a@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Mixed.Case@x.test",
        b"<b@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Mixed.Case@x.test",
    ]
    assert b"\nX-Tocsin-Verdict: v=1; verdict=accept" in dump


@needs_sink
async def test_a_1500_byte_line_and_200_recipients(tmp_path: Path) -> None:
    line = b"x" * 1500
    raw = HAM.replace(b"\r\n\r\n", b"\r\n\r\n" + line + b"\r\n", 1)
    rcpts = tuple(f"user{i}@x.test" for i in range(200))
    with smtp_sink() as sink:
        async with running_filter(tmp_path, sink.port) as flt:
            sent = await asend(flt.port, raw, rcpts=rcpts)
        dump = sink.messages()[0]
    assert sent.data is not None
    assert sent.data[0] == 250
    assert all(code == 250 for code, _ in sent.rcpts)
    assert len(_args(dump, b"X-Rcpt-Args")) == 200
    assert b"\n" + line + b"\n" in dump  # unfolded, unbroken


@needs_sink
async def test_recipients_past_the_limit_get_452(tmp_path: Path) -> None:
    with smtp_sink() as sink:
        async with running_filter(tmp_path, sink.port, max_recipients=3) as flt:
            sent = await asend(flt.port, HAM, rcpts=tuple(f"u{i}@x.test" for i in range(5)))
        dump = sink.messages()[0]
    assert [code for code, _ in sent.rcpts] == [250, 250, 250, 452, 452]
    assert len(_args(dump, b"X-Rcpt-Args")) == 3  # the MTA sends the others again


async def test_8bit_smtputf8_and_xforward_reach_the_next_hop(tmp_path: Path) -> None:
    raw = HAM.replace(b"\r\n\r\n", "\r\n\r\nÉté, naïve café\r\n".encode(), 1)
    async with recording_sink() as sink, running_filter(tmp_path, sink.port) as flt:
        sent = await asend(
            flt.port,
            raw,
            mail_from="expéditeur@exemple.fr",
            rcpts=("destinataire@exemple.fr",),
            mail_options=("SMTPUTF8", "BODY=8BITMIME"),
            xforward="NAME=mx.client.test ADDR=192.0.2.44 PROTO=ESMTP HELO=helo.client.test",
        )
    assert sent.data == (250, b"2.0.0 Ok: queued as SINK1")  # the next hop's own answer
    got = sink.messages[0]
    assert got.smtp_utf8
    assert "BODY=8BITMIME" in got.mail_options
    assert got.mail_from == "expéditeur@exemple.fr"
    assert got.rcpts == ["destinataire@exemple.fr"]
    assert "Été, naïve café".encode() in got.content
    assert got.xforward == {
        "NAME": "mx.client.test",
        "ADDR": "192.0.2.44",
        "PROTO": "ESMTP",
        "HELO": "helo.client.test",
    }


async def test_without_xforward_the_next_hop_learns_our_client(tmp_path: Path) -> None:
    async with recording_sink() as sink, running_filter(tmp_path, sink.port) as flt:
        await asend(flt.port, HAM)
    assert sink.messages[0].xforward["ADDR"] == "127.0.0.1"
    assert sink.messages[0].xforward["HELO"] == "client.test"


async def test_next_hop_down_is_451_and_nothing_is_lost(tmp_path: Path) -> None:
    async with running_filter(tmp_path, free_port()) as flt:
        sent = await asend(flt.port, HAM)
    assert sent.mail[0] == 451
    assert sent.data is None


@needs_sink
async def test_next_hop_hanging_up_at_data_is_451(tmp_path: Path) -> None:
    with smtp_sink("-q", "data") as sink:
        async with running_filter(tmp_path, sink.port) as flt:
            sent = await asend(flt.port, HAM)
        assert sink.count() == 0
    assert sent.data is not None
    assert sent.data[0] == 451


@needs_sink
@pytest.mark.parametrize(("command", "code"), [("rcpt", 5), ("data", 5), ("rcpt", 4)])
async def test_next_hop_refusals_are_mirrored(tmp_path: Path, command: str, code: int) -> None:
    flag = "-f" if code == 5 else "-r"
    with smtp_sink(flag, command) as sink:
        async with running_filter(tmp_path, sink.port) as flt:
            sent = await asend(flt.port, HAM)
        delivered = sink.count()
    answer = sent.rcpts[0] if command == "rcpt" else sent.data
    assert answer is not None
    assert answer[0] // 100 == code
    assert delivered == 0


@needs_sink
async def test_next_hop_slow_past_the_deadline_is_451(tmp_path: Path) -> None:
    with smtp_sink("-w", "3") as sink:
        async with running_filter(tmp_path, sink.port, deadline_seconds=1) as flt:
            sent = await asend(flt.port, HAM)
    assert sent.data is not None
    assert sent.data[0] == 451
    assert b"4.7.1" in sent.data[1]


@needs_sink
async def test_quarantine_is_stored_and_not_relayed(tmp_path: Path) -> None:
    with smtp_sink() as sink:
        async with running_filter(tmp_path, sink.port) as flt:
            sent = await asend(flt.port, LURE)
            records = flt.store.list()
        assert sink.count() == 0
    assert sent.data is not None
    assert sent.data[0] == 250
    assert len(records) == 1
    assert flt.store.read_message(records[0].id) == LURE


@needs_sink
async def test_hold_mode_stores_too_there_is_no_hold_queue_here(tmp_path: Path) -> None:
    policy = "actions:\n  quarantine_store: hold\n"
    with smtp_sink() as sink:
        async with running_filter(tmp_path, sink.port, policy=policy) as flt:
            sent = await asend(flt.port, LURE)
            assert len(flt.store.list()) == 1
        assert sink.count() == 0
    assert sent.data is not None
    assert sent.data[0] == 250


@needs_sink
async def test_reject_uses_the_policys_reply(tmp_path: Path) -> None:
    policy = (
        "rules:\n  - name: refuse\n    before: brand-impersonation\n"
        "    when: {brand_claimed: true, min_severity: high}\n"
        "    verdict: reject\nactions:\n  replies:\n"
        "    reject: 550 5.7.1 Usurpation refusée / impersonation refused\n"
    )
    with smtp_sink() as sink:
        async with running_filter(tmp_path, sink.port, policy=policy) as flt:
            sent = await asend(flt.port, LURE)
        assert sink.count() == 0
    assert sent.data == (550, "5.7.1 Usurpation refusée / impersonation refused".encode())


class _Failing(MessageService):
    async def handle(self, request: MessageRequest, *, can_hold: bool = True) -> Any:
        raise RuntimeError("boom")


@needs_sink
@pytest.mark.parametrize("on_failure", ["tempfail", "accept"])
async def test_internal_error_follows_on_failure(tmp_path: Path, on_failure: str) -> None:
    service = _Failing(PolicyStore(None, load_policy(None)))
    with smtp_sink() as sink:
        async with running_filter(
            tmp_path, sink.port, service=service, on_failure=on_failure
        ) as flt:
            sent = await asend(flt.port, HAM)
        delivered = sink.count()
    assert sent.data is not None
    if on_failure == "tempfail":
        assert sent.data[0] == 451
        assert delivered == 0
    else:
        assert sent.data[0] == 250
        assert delivered == 1


@needs_sink
async def test_connections_past_the_limit_get_421(tmp_path: Path) -> None:
    with smtp_sink() as sink:
        async with running_filter(tmp_path, sink.port, max_connections=1) as flt:
            first = await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", flt.port)
            try:
                with pytest.raises(smtplib.SMTPConnectError) as refused:
                    await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", flt.port)
            finally:
                first.close()
    assert refused.value.smtp_code == 421


@needs_sink
async def test_a_transaction_past_its_time_is_closed_with_421(tmp_path: Path) -> None:
    def slow_client(port: int) -> tuple[int, bytes]:
        smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
        smtp.ehlo("client.test")
        smtp.mail("a@example.org")
        smtp.rcpt("b@x.test")
        reply = smtp.getreply()  # nothing more sent: the filter speaks first
        smtp.close()
        return reply

    with smtp_sink() as sink:
        async with running_filter(tmp_path, sink.port, transaction_seconds=0.5) as flt:
            code, text = await asyncio.to_thread(slow_client, flt.port)
        assert sink.count() == 0
    assert code == 421
    assert b"4.4.2" in text


@needs_sink
async def test_dsn_is_dropped_for_a_next_hop_without_it(tmp_path: Path) -> None:
    async with recording_sink() as sink, running_filter(tmp_path, sink.port) as flt:
        sent = await asend(
            flt.port, HAM, mail_options=("RET=FULL",), rcpt_options=("NOTIFY=NEVER",)
        )
    assert sent.data is not None
    assert sent.data[0] == 250
    assert sink.messages[0].mail_options == []  # as Postfix does (RFC 3461 §4)


async def test_unknown_parameters_are_refused_clearly(tmp_path: Path) -> None:
    async with recording_sink() as sink, running_filter(tmp_path, sink.port) as flt:
        sent = await asend(flt.port, HAM, mail_options=("FOO=bar",))
    assert sent.mail == (555, b"5.5.4 FOO parameter not supported")


@pytest.mark.parametrize(
    ("starttls", "code", "over_tls"),
    [
        ("no", 250, False),
        ("opportunistic", 250, True),
        ("required", 451, None),  # a self-signed certificate fails verification: mail kept
    ],
)
async def test_starttls_to_the_next_hop(
    tmp_path: Path, starttls: str, code: int, over_tls: bool | None
) -> None:
    tls = self_signed_tls(tmp_path)
    async with (
        recording_sink(tls) as sink,
        running_filter(tmp_path, sink.port, next_hop_starttls=starttls) as flt,
    ):
        sent = await asend(flt.port, HAM)
    first = sent.data or sent.mail
    assert first[0] == code
    assert sink.tls == ([] if over_tls is None else [over_tls])


class _Gate(MessageService):
    entered: asyncio.Event

    async def handle(self, request: MessageRequest, *, can_hold: bool = True) -> Any:
        self.entered.set()
        await asyncio.sleep(0.5)
        return await super().handle(request, can_hold=can_hold)


@needs_sink
async def test_stop_finishes_the_transaction_in_progress(tmp_path: Path) -> None:
    service = _Gate(PolicyStore(None, load_policy(None)))
    service.entered = asyncio.Event()
    with smtp_sink() as sink:
        async with running_filter(tmp_path, sink.port, service=service) as flt:
            idle = await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", flt.port)
            pending = asyncio.create_task(asend(flt.port, HAM))
            await service.entered.wait()
            flt.server.request_stop()
            sent = await pending
            code, text = await asyncio.to_thread(idle.getreply)  # told, then closed
            idle.close()
        delivered = sink.count()
    assert sent.data is not None
    assert sent.data[0] == 250
    assert delivered == 1
    assert code == 421
    assert b"4.3.2" in text


@needs_sink
async def test_an_idle_connection_is_closed(tmp_path: Path) -> None:
    def idle_client(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            greeting = conn.recv(1000)
            assert greeting.startswith(b"220 ")
            return conn.recv(1000)  # b"" once the filter hung up

    with smtp_sink() as sink:
        async with running_filter(tmp_path, sink.port, idle_timeout_seconds=0.5) as flt:
            assert await asyncio.to_thread(idle_client, flt.port) == b""


@needs_sink
async def test_accepted_connections_have_nagle_off(tmp_path: Path) -> None:
    """Without TCP_NODELAY on the accepted socket, a reply written in pieces waits for the
    client's delayed ACK (~40 ms a message at C=1: the benchmark's SMTP stall check); the
    listening socket (milter.frontends.listen.bind) does not give it to asyncio by itself."""

    def ehlo(port: int, ready: threading.Event, done: threading.Event) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            reader = conn.makefile("rb")
            assert reader.readline().startswith(b"220 ")
            conn.sendall(b"EHLO client.test\r\n")
            lines = [reader.readline()]
            while lines[-1][3:4] == b"-":
                lines.append(reader.readline())
            ready.set()
            done.wait(10)
            return b"".join(lines)

    ready, done = threading.Event(), threading.Event()
    with smtp_sink() as sink:
        async with running_filter(tmp_path, sink.port) as flt:
            client = asyncio.create_task(asyncio.to_thread(ehlo, flt.port, ready, done))
            try:
                await asyncio.to_thread(ready.wait, 10)
                (conn,) = flt.server._connections
                assert conn.transport is not None
                sock = conn.transport.get_extra_info("socket")
                nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            finally:
                done.set()
                reply = await client
    assert nodelay != 0
    assert reply.startswith(b"250-filter.test\r\n")
    assert b"\r\n250-DSN\r\n250 XFORWARD " in reply  # the whole answer, in order


async def test_next_hop_sessions_are_kept_between_messages(tmp_path: Path) -> None:
    """Three clients one after the other: one session with the next hop (no connect,
    EHLO, QUIT per message), each message with its own envelope and client."""
    async with recording_sink() as sink, running_filter(tmp_path, sink.port) as flt:
        for i in range(3):
            sent = await asend(
                flt.port, HAM, rcpts=(f"u{i}@x.test",), xforward=f"ADDR=192.0.2.{i + 1}"
            )
            assert sent.data is not None
            assert sent.data[0] == 250
        assert flt.server.pool.idle == 1
    assert sink.sessions == 1
    assert [m.rcpts for m in sink.messages] == [["u0@x.test"], ["u1@x.test"], ["u2@x.test"]]
    assert [m.xforward["ADDR"] for m in sink.messages] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]


async def test_without_kept_sessions_each_message_has_its_own(tmp_path: Path) -> None:
    async with (
        recording_sink() as sink,
        running_filter(tmp_path, sink.port, next_hop_sessions=0) as flt,
    ):
        for _ in range(2):
            await asend(flt.port, HAM)
        assert flt.server.pool.idle == 0
    assert sink.sessions == 2
    assert len(sink.messages) == 2


async def test_an_abandoned_transaction_is_reset_before_the_next(tmp_path: Path) -> None:
    """A quarantined message leaves its transaction open at the next hop (MAIL, RCPT, no
    DATA): the kept session gets RSET before the next MAIL, and the next message reaches
    the next hop with its own recipients only."""
    async with recording_sink() as sink, running_filter(tmp_path, sink.port) as flt:
        lure = await asend(flt.port, LURE, rcpts=("victim@x.test",))
        ham = await asend(flt.port, HAM, rcpts=("friend@x.test",))
        assert len(flt.store.list()) == 1
    assert lure.data is not None
    assert lure.data[0] == 250
    assert ham.data == (250, b"2.0.0 Ok: queued as SINK1")
    assert sink.sessions == 1
    assert sink.rsets == 1
    assert [m.rcpts for m in sink.messages] == [["friend@x.test"]]


async def test_a_kept_session_the_next_hop_closed_is_replaced(tmp_path: Path) -> None:
    """The next hop hangs up on a kept session at MAIL (before accepting anything): the
    transaction starts again on a new session; every message arrives exactly once."""
    async with recording_sink() as sink, running_filter(tmp_path, sink.port) as flt:
        sink.hang_up_on_reuse = True
        sent = [await asend(flt.port, HAM, rcpts=(f"u{i}@x.test",)) for i in range(3)]
    assert [s.data[0] if s.data else None for s in sent] == [250, 250, 250]
    assert sink.sessions == 3
    assert [m.rcpts for m in sink.messages] == [["u0@x.test"], ["u1@x.test"], ["u2@x.test"]]
