"""#17 faults and caps on both front-ends: the MTA disconnecting mid-message leaks no
connection, task, next-hop session or per-client count; one SMTP client cannot take every
connection (per-client caps, 421 + log line); a slow-loris SMTP client is cut; limit hits
are counted per limit. Real servers on loopback; no test measures time."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from milter.codec import Accept, BodyChunk, Data, EndOfHeaders, Header, MailFrom, Rcpt, ReplyCode
from milter.codec.mta import encode_command
from milter.dns.stub import DnsResolver
from milter.frontends.service import LARGE_MESSAGE_BYTES, MessageRequest, MessageService
from milter.mime.spool import SpoolConfig
from milter.model.envelope import Envelope
from milter.policy.loader import load_policy
from milter.policy.store import PolicyStore
from tests.hostile.shapes import header_flood
from tests.support.dnsserver import DnsTestServer
from tests.support.milter_client import MilterClient, one_message
from tests.support.smtp_filter import recording_sink, running_filter

Start = Callable[..., Any]
HAM = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hello\r\n\r\nHello.\r\n"
BRAND_MAIL = (
    b"From: Assurance Maladie <noreply@ameli.fr>\r\nTo: assure@example.net\r\n"
    b"Subject: Votre attestation\r\nMessage-ID: <1@ameli.fr>\r\n\r\n"
    b"Bonjour, votre attestation est disponible dans votre espace ameli.\r\n"
)
DNS_NAMES = ("ameli.fr", "_dmarc.ameli.fr", "fr", "_dmarc.fr", "mx.ameli.fr", "example.org")


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded by a count of turns, not a clock) until ``condition`` holds."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never: {what}")


def _spool_files(directory: Path) -> int:
    """Spool files this process holds open in ``directory`` (they are unlinked at once, so
    an open descriptor is the only trace a leaked one leaves)."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd).startswith(str(directory) + "/"):
                count += 1
    return count


def _spooling_service(tmp_path: Path) -> tuple[MessageService, Path]:
    """A service whose messages go to a spool file past 64 KiB."""
    spool = tmp_path / "spool"
    spool.mkdir()
    config = SpoolConfig(directory=spool, threshold_bytes=64 * 1024)
    return MessageService(PolicyStore(None, load_policy(None)), spool=config), spool


def _other_tasks(before: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t not in before and not t.done()}


# --- metrics per limit -------------------------------------------------------------


async def test_limit_hits_are_counted_per_limit() -> None:
    service = MessageService(PolicyStore(None, load_policy(None)))
    before = _sample("tocsin_limit_hits_total", limit="headers")
    raw = header_flood(1_500)
    outcome = await service.process(MessageRequest(raw, Envelope(), len(raw)), deadline_seconds=60)
    assert outcome.verdict is not None
    assert "LIMIT_EXCEEDED" in {f.code for f in outcome.verdict.findings}
    assert _sample("tocsin_limit_hits_total", limit="headers") == before + 1
    oversize = _sample("tocsin_limit_hits_total", limit="size")
    await service.process(MessageRequest(b"", Envelope(), 10**9), deadline_seconds=60)
    assert _sample("tocsin_limit_hits_total", limit="size") == oversize + 1


# --- milter front-end ----------------------------------------------------------------


async def _session(milter: Any, address: str) -> tuple[MilterClient, Any]:
    client = await MilterClient.open(port=milter.port)
    await client.negotiate()
    reply = await client.connect(address=address)
    return client, reply


async def test_milter_caps_sessions_per_smtp_client(
    start_milter: Start, caplog: pytest.LogCaptureFixture
) -> None:
    refused = _sample("tocsin_connections_refused_total", frontend="milter", reason="per_client")
    async with start_milter(max_connections_per_client=2) as milter:
        held = [await _session(milter, "192.0.2.7") for _ in range(2)]
        assert all(type(reply).__name__ == "Continue" for _, reply in held)
        extra, reply = await _session(milter, "192.0.2.7")
        assert isinstance(reply, ReplyCode)
        assert reply.code == 421  # Postfix says 421 to that client and disconnects it
        other, other_reply = await _session(milter, "198.51.100.1")  # others still served
        assert type(other_reply).__name__ == "Continue"
        assert milter.server.sessions_per_client == {"192.0.2.7": 2, "198.51.100.1": 1}
        for client in (extra, other, held[0][0]):
            await client.quit()
        await _until(lambda: milter.server.open_connections == 1, "sessions closed")
        again, again_reply = await _session(milter, "192.0.2.7")  # room again
        assert type(again_reply).__name__ == "Continue"
        await again.quit()
        await held[1][0].quit()
        await _until(lambda: not milter.server.sessions_per_client, "counts released")
    assert any("max_connections_per_client" in r.getMessage() for r in caplog.records)
    after = _sample("tocsin_connections_refused_total", frontend="milter", reason="per_client")
    assert after == refused + 1


async def test_milter_disconnect_mid_message_leaks_nothing(
    start_milter: Start, tmp_path: Path
) -> None:
    gauge = _sample("tocsin_connections_open", frontend="milter")
    service, spool = _spooling_service(tmp_path)
    async with start_milter(handler=service) as milter:
        before = set(asyncio.all_tasks())
        client = await MilterClient.open(port=milter.port)
        await client.negotiate()
        await client.connect(address="192.0.2.8")
        for command in (MailFrom("<a@example.org>"), Rcpt("<b@example.net>"), Data()):
            client.send_raw(encode_command(command))
        client.send_raw(encode_command(Header("Subject", " cut")))
        client.send_raw(encode_command(EndOfHeaders()))
        for _ in range(3):
            client.send_raw(encode_command(BodyChunk(b"x" * 60_000)))
        await client._writer.drain()
        await _until(lambda: _spool_files(spool) == 1, "the body is spooled")
        client._writer.transport.abort()  # the MTA vanishes mid-body (RST)
        await _until(lambda: milter.server.open_connections == 0, "connection dropped")
        await _until(lambda: not _other_tasks(before), "no task left")
        assert _spool_files(spool) == 0  # the spool file went with the connection
        assert milter.server.sessions_per_client == {}
        assert _sample("tocsin_connections_open", frontend="milter") == gauge
        assert type((await one_message(milter.port, HAM)).final) is Accept  # still serving


@pytest.mark.parametrize("size", ["small", "large"])
async def test_milter_disconnect_while_scanning_cancels_the_scan(
    start_milter: Start, tmp_path: Path, size: str
) -> None:
    """ "large" goes through the service's one-large-scan-at-a-time semaphore, which must
    be free again after the cancelled scan."""
    raw = BRAND_MAIL
    if size == "large":
        raw += b"Bonjour, votre attestation est disponible.\r\n" * (LARGE_MESSAGE_BYTES // 40)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "local.yaml").write_text("limits:\n  dns_budget_seconds: 30\n")
    policy = load_policy(tmp_path / "p")
    with DnsTestServer() as dns:
        for name in DNS_NAMES:
            dns.fault(name, "timeout")  # silent: the scan waits on DNS
        resolver = DnsResolver([dns.address], timeout=10)
        service = MessageService(PolicyStore(tmp_path / "p", policy), resolver=resolver)
        async with start_milter(handler=service, progress_interval_seconds=0.05) as milter:
            before = set(asyncio.all_tasks())
            client = await MilterClient.open(port=milter.port)
            await client.negotiate()
            await client.connect(address="192.0.2.9")
            await client.helo("mx.ameli.fr")
            task = asyncio.create_task(client.message(raw, mail_from="noreply@ameli.fr"))
            await _until(lambda: len(dns.queries) > 0, "the scan asks DNS")
            await _until(lambda: milter.server.busy_connections == 1, "scan running")
            assert service._large_scan.locked() is (size == "large")
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            client._writer.transport.abort()  # the MTA gives up mid-scan
            await _until(lambda: milter.server.open_connections == 0, "connection dropped")
            await _until(lambda: not _other_tasks(before), "scan cancelled, no task left")
            assert service.messages == 0  # the cancelled scan was never answered/counted
            assert not service._large_scan.locked()  # the semaphore was given back


# --- SMTP front-end ----------------------------------------------------------------


class _Smtp:
    """A raw SMTP client (line by line), to stop at any point of a transaction."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> tuple[_Smtp, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        return client, await client.reply()

    async def reply(self) -> bytes:
        lines = b""
        while True:
            line = await self.reader.readline()
            lines += line
            if len(line) < 4 or line[3:4] != b"-":
                return lines

    async def cmd(self, line: str) -> bytes:
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()
        return await self.reply()

    def close(self) -> None:
        self.writer.transport.abort()


async def test_smtp_caps_connections_per_client_and_per_forwarded_client(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with recording_sink() as sink:
        # the peer itself is the client (no trusted MTA in front)
        async with running_filter(
            tmp_path, sink.port, max_connections_per_client=2, trusted_clients=()
        ) as flt:
            held = [await _Smtp.open(flt.port) for _ in range(2)]
            assert all(greeting.startswith(b"220") for _, greeting in held)
            extra, refused = await _Smtp.open(flt.port)
            assert refused.startswith(b"421 4.7.0 Too many connections from your address")
            assert flt.server.connections_per_client == {"127.0.0.1": 2}
            for client, _ in held:
                client.close()
            extra.close()
            await _until(lambda: flt.server.open_connections == 0, "closed")
            assert flt.server.connections_per_client == {}
        # the MTA in front (trusted loopback): each transaction counts for its XFORWARD ADDR
        async with running_filter(tmp_path, sink.port, max_connections_per_client=1) as flt:
            first, _ = await _Smtp.open(flt.port)
            second, _ = await _Smtp.open(flt.port)  # the MTA itself is never refused
            for client in (first, second):
                assert (await client.cmd("EHLO mta.test")).startswith(b"250")
                assert (await client.cmd("XFORWARD ADDR=192.0.2.50")).startswith(b"250")
            assert (await first.cmd("MAIL FROM:<a@example.org>")).startswith(b"250")
            answer = await second.cmd("MAIL FROM:<a@example.org>")
            assert answer.startswith(b"421 4.7.0"), answer
            assert flt.server.connections_per_client == {"192.0.2.50": 1}
            assert (await first.cmd("RSET")).startswith(b"250")
            assert flt.server.connections_per_client == {}  # released with the transaction
            first.close()
            second.close()
            await _until(lambda: flt.server.open_connections == 0, "closed")
    messages = [r.getMessage() for r in caplog.records]
    assert any("refused 127.0.0.1" in m and "max_connections_per_client" in m for m in messages)
    assert any("refused 192.0.2.50" in m for m in messages)


async def test_smtp_disconnect_mid_data_leaks_nothing(tmp_path: Path) -> None:
    gauge = _sample("tocsin_connections_open", frontend="smtp")
    service, spool = _spooling_service(tmp_path)
    async with (
        recording_sink() as sink,
        running_filter(tmp_path, sink.port, service=service) as flt,
    ):
        before = set(asyncio.all_tasks())
        client, _ = await _Smtp.open(flt.port)
        await client.cmd("EHLO mta.test")
        assert (await client.cmd("MAIL FROM:<a@example.org>")).startswith(b"250")
        assert (await client.cmd("RCPT TO:<b@example.net>")).startswith(b"250")
        assert (await client.cmd("DATA")).startswith(b"354")
        # past the reader's 1 MiB limit: the filter reads DATA in blocks up to the dot or
        # that limit (milter/frontends/smtp/data.py), so this much is spooled mid-DATA
        client.writer.write(b"Subject: cut\r\n\r\n" + (b"x" * 70 + b"\r\n") * 40_000)
        await client.writer.drain()
        await _until(lambda: _spool_files(spool) == 1, "the message is spooled")
        handlers = [conn.event_handler for conn in flt.server._connections]
        client.close()  # the MTA vanishes mid-DATA
        await _until(lambda: flt.server.open_connections == 0, "connection dropped")
        await _until(lambda: not _other_tasks(before), "no task left")
        assert not any(h.transaction_open for h in handlers)  # next hop session dropped
        assert _sample("tocsin_connections_open", frontend="smtp") == gauge
        assert sink.messages == []  # nothing half-sent was delivered
        assert _spool_files(spool) == 0
        assert flt.server.service.messages == 0


async def test_smtp_slow_client_is_cut_and_others_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {"min_bytes_per_second": 200, "slow_grace_seconds": 0.3, "max_connections": 4}
    async with recording_sink() as sink, running_filter(tmp_path, sink.port, **settings) as flt:

        async def slow() -> bytes:
            client, _ = await _Smtp.open(flt.port)
            await client.cmd("EHLO slow.test")
            await client.cmd("MAIL FROM:<slow@example.org>")
            await client.cmd("RCPT TO:<b@example.net>")
            await client.cmd("DATA")
            heard = b""
            with contextlib.suppress(ConnectionError, OSError):
                for byte in b"Subject: slow\r\n" * 100:  # a byte, then wait for an answer
                    client.writer.write(bytes([byte]))
                    await client.writer.drain()
                    with contextlib.suppress(TimeoutError):
                        heard = await asyncio.wait_for(client.reader.read(100), 0.05)
                        break
            with contextlib.suppress(ConnectionError, OSError, TimeoutError):
                heard += await asyncio.wait_for(client.reader.read(), 5)
            client.close()
            return heard

        answers = await asyncio.gather(*(slow() for _ in range(4)))
        await _until(lambda: flt.server.open_connections == 0, "slow clients cut")
        from tests.support.smtp_filter import asend

        sent = await asend(flt.port, HAM)
    cut = [r for r in caplog.records if "slow client" in r.getMessage()]
    assert len(cut) == 4  # every slow client was cut, none left open
    # each heard 421 4.7.1 before the close, unless our next byte met a reset first
    assert all(a.startswith(b"421 4.7.1") or a == b"" for a in answers), answers
    assert any(a.startswith(b"421 4.7.1") for a in answers), answers
    assert sent.data is not None
    assert sent.data[0] == 250
    assert len(sink.messages) == 1


def test_a_bad_trusted_network_is_a_settings_error() -> None:
    from milter.frontends.settings import SmtpSettings

    with pytest.raises(ValueError, match="trusted_clients"):
        SmtpSettings(trusted_clients=("not-a-network",))
