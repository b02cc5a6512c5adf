"""The SMTP filter on loopback between a real client and a real next hop.

Next hops: Postfix's own ``smtp-sink`` (a separate program: records MAIL/RCPT parameters,
offers DSN, can refuse, stall or hang up on a command) and a recording aiosmtpd server
(offers SMTPUTF8 and XFORWARD and records both).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

from milter.frontends.listen import ListenAddress, bind
from milter.frontends.service import MessageService
from milter.frontends.settings import SmtpSettings
from milter.frontends.smtp.server import SmtpFilterServer
from milter.policy.loader import load_policy
from milter.policy.store import PolicyStore
from milter.quarantine.store import QuarantineStore
from tests.support.sinkdump import settled


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class SmtpSink:
    """A running ``smtp-sink`` writing one file per message into ``directory``."""

    port: int
    directory: Path
    proc: subprocess.Popen[bytes]

    def messages(self, count: int = 1, timeout: float = 10) -> list[bytes]:
        """Wait for ``count`` dumps; return them oldest first (LF line ends, as written)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            files = sorted(self.directory.iterdir(), key=lambda p: p.stat().st_mtime_ns)
            if len(files) >= count:
                return [settled(p) for p in files]
            time.sleep(0.05)
        raise AssertionError(f"smtp-sink got {len(list(self.directory.iterdir()))}, not {count}")

    def count(self, settle: float = 3.0) -> int:
        """Messages delivered: dumps holding a DATA transaction.

        smtp-sink opens its dump file at MAIL and unlinks it when the transaction is
        aborted, a moment after the client hung up; only a completed DATA adds the
        ``Received:`` line. So an aborted transaction is not counted, and while a dump
        without DATA is still there the count waits (at most ``settle`` seconds) for the
        sink to finish with it."""
        deadline = time.monotonic() + settle
        while True:
            dumps = []
            for path in self.directory.iterdir():
                with contextlib.suppress(FileNotFoundError):  # unlinked while we look
                    dumps.append(path.read_bytes())
            delivered = sum(1 for d in dumps if b"\nReceived: " in b"\n" + d)
            if delivered == len(dumps) or time.monotonic() >= deadline:
                return delivered
            time.sleep(0.05)


def smtp_sink_missing() -> str | None:
    """Why smtp-sink cannot run here, or None."""
    if shutil.which("smtp-sink") is None:
        return "smtp-sink (Debian package postfix) is not installed"
    return None


@contextmanager
def smtp_sink(*options: str) -> Iterator[SmtpSink]:
    """Start ``smtp-sink OPTIONS`` on a free loopback port; always stopped."""
    directory = Path(tempfile.mkdtemp(prefix="tocsin-sink-"))
    directory.chmod(0o777)  # smtp-sink writes as nobody
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen(
        ["smtp-sink", *user, *options, "-d", f"{directory}/%H%M%S.", f"127.0.0.1:{port}", "50"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield SmtpSink(port, directory, proc)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Received:
    """One message as the recording aiosmtpd next hop got it."""

    mail_from: str
    mail_options: list[str]
    rcpts: list[str]
    content: bytes
    smtp_utf8: bool
    xforward: dict[str, str]


@dataclass
class RecordingSink:
    """aiosmtpd as next hop: offers SMTPUTF8, 8BITMIME and XFORWARD, records everything."""

    port: int = 0
    messages: list[Received] = field(default_factory=list)
    xforward: dict[str, str] = field(default_factory=dict)
    tls: list[bool] = field(default_factory=list)  # per message: did it come over TLS
    sessions: int = 0  # EHLOs: sessions the filter opened
    rsets: int = 0
    hang_up_on_reuse: bool = False  # close, without a word, at a session's second MAIL

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self.sessions += 1
        return [*responses[:-1], "250-XFORWARD NAME ADDR PROTO HELO", responses[-1]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.tls.append(session.ssl is not None)
        self.messages.append(
            Received(
                envelope.mail_from,
                list(envelope.mail_options),
                list(envelope.rcpt_tos),
                envelope.original_content,
                envelope.smtp_utf8,
                dict(self.xforward),
            )
        )
        self.xforward.clear()
        return "250 2.0.0 Ok: queued as SINK1"


class _XforwardSMTP(SMTP):
    transactions = 0

    async def smtp_MAIL(self, arg: str) -> None:
        self.transactions += 1
        if self.event_handler.hang_up_on_reuse and self.transactions > 1:
            assert self.transport is not None
            self.transport.close()
            return
        await super().smtp_MAIL(arg)

    async def smtp_RSET(self, arg: str) -> None:
        self.event_handler.rsets += 1
        await super().smtp_RSET(arg)

    async def smtp_XFORWARD(self, arg: str) -> None:
        handler = self.event_handler
        for word in (arg or "").split():
            key, _, value = word.partition("=")
            handler.xforward[key.upper()] = value
        await self.push("250 2.0.0 Ok")


@asynccontextmanager
async def recording_sink(tls: ssl.SSLContext | None = None) -> AsyncIterator[RecordingSink]:
    """A recording aiosmtpd next hop on a free loopback port (offering STARTTLS with
    ``tls``); always stopped."""
    sink = RecordingSink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _XforwardSMTP(sink, enable_SMTPUTF8=True, hostname="sink.test", tls_context=tls),
        "127.0.0.1",
        0,
    )
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class RunningFilter:
    """The filter's server task, its port and quarantine."""

    server: SmtpFilterServer
    port: int
    store: QuarantineStore


@asynccontextmanager
async def running_filter(
    tmp_path: Path,
    next_hop_port: int,
    *,
    policy: str = "",
    service: MessageService | None = None,
    **settings: Any,
) -> AsyncIterator[RunningFilter]:
    """The SMTP filter in this event loop on a free loopback port; always stopped."""
    store = QuarantineStore(tmp_path / "quarantine")
    if service is None:
        directory = None
        if policy:
            directory = tmp_path / "policies"
            directory.mkdir(exist_ok=True)
            (directory / "local.yaml").write_text(policy)
        service = MessageService(PolicyStore(directory, load_policy(directory)), quarantine=store)
    sock = bind(ListenAddress("127.0.0.1", 0))
    config = SmtpSettings(
        enabled=True, next_hop=f"127.0.0.1:{next_hop_port}", hostname="filter.test", **settings
    )
    server = SmtpFilterServer(config, service)
    task = asyncio.create_task(server.serve(sock))
    try:
        yield RunningFilter(server, sock.getsockname()[1], store)
    finally:
        server.request_stop()
        await asyncio.wait_for(task, 30)
        sock.close()


@dataclass
class Sent:
    """What the client heard at each step."""

    mail: tuple[int, bytes]
    rcpts: list[tuple[int, bytes]]
    data: tuple[int, bytes] | None


def send(
    port: int,
    raw: bytes,
    *,
    mail_from: str = "sender@example.org",
    rcpts: tuple[str, ...] = ("user@example.net",),
    mail_options: tuple[str, ...] = (),
    rcpt_options: tuple[str, ...] = (),
    xforward: str | None = None,
) -> Sent:
    """One transaction with Python's smtplib (a client independent of the filter's code)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=60) as smtp:
        smtp.ehlo()
        if xforward:
            assert smtp.docmd("XFORWARD", xforward)[0] == 250
        mail = smtp.mail(mail_from, list(mail_options))
        if mail[0] >= 400:
            return Sent(mail, [], None)
        answers = [smtp.rcpt(rcpt, list(rcpt_options)) for rcpt in rcpts]
        if not any(code < 300 for code, _ in answers):
            return Sent(mail, answers, None)
        try:
            data = smtp.data(raw)
        except smtplib.SMTPDataError as exc:
            data = (exc.smtp_code, exc.smtp_error)
        return Sent(mail, answers, data)


async def asend(port: int, raw: bytes, **kwargs: Any) -> Sent:
    """`send` off the event loop the filter runs on."""
    return await asyncio.to_thread(send, port, raw, **kwargs)


def self_signed_tls(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate (openssl, loopback only)."""
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=sink.test", "-keyout", str(key), "-out", str(cert),
        ],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
