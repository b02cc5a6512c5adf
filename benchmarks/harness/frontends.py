"""How the load client hands one message to the system under test: the pluggable piece.

A front-end is anything with a ``label`` and ``async deliver(message)`` that performs one
whole transaction (one connection per message, as Postfix opens one milter connection
per SMTP session) and raises on a transport failure. Two exist:

- ``MilterFront``: speaks the milter protocol straight to a milter, as Postfix 3.7 would
  (the test client ``tests/support/milter_client.py``);
- ``SmtpFront``: sends the message over SMTP (aiosmtplib) to a port — a private Postfix
  with ``smtpd_milters`` pointing at a milter, or any SMTP front-end such as an SMTP proxy.

To benchmark another front-end, write a class like these and add a ``Setup`` for it in
``benchmarks/milter_load.py`` (what to start, which server's CPU to count).
"""

from __future__ import annotations

from typing import Protocol

import aiosmtplib

from benchmarks.harness.corpus import BenchMessage
from tests.support.milter_client import MilterClient


class Front(Protocol):
    """One way of delivering a message."""

    label: str

    async def deliver(self, message: BenchMessage) -> None:
        """Run one full transaction for ``message``; raise on failure."""
        ...


class MilterFront:
    """Milter protocol straight to 127.0.0.1:``port``."""

    def __init__(self, label: str, port: int) -> None:
        self.label = label
        self.port = port

    async def deliver(self, message: BenchMessage) -> None:
        client = await MilterClient.open(port=self.port)
        try:
            await client.negotiate()
            await client.connect(message.helo, message.client_ip)
            await client.helo(message.helo)
            await client.message(message.raw, mail_from=message.mail_from, rcpts=(message.rcpt,))
        finally:
            await client.quit()


class SmtpFront:
    """SMTP to 127.0.0.1:``port``; a 4xx/5xx final reply is fine (the filter said so)."""

    def __init__(self, label: str, port: int) -> None:
        self.label = label
        self.port = port

    async def deliver(self, message: BenchMessage) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=self.port, timeout=60)
        await smtp.connect(local_hostname=message.helo)
        try:
            await smtp.sendmail(message.mail_from, [message.rcpt], message.raw)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code < 400:
                raise
        finally:
            try:
                await smtp.quit()
            except aiosmtplib.SMTPException:
                smtp.close()


class SmtpFilterFront:
    """SMTP straight to Tocsin's SMTP filter, naming the message's client with XFORWARD
    (as Postfix does), so SPF and the verdicts are the milter run's."""

    def __init__(self, label: str, port: int) -> None:
        self.label = label
        self.port = port

    async def deliver(self, message: BenchMessage) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=self.port, timeout=60)
        await smtp.connect(local_hostname="mx.bench.test")
        try:
            forward = f"ADDR={message.client_ip} HELO={message.helo} PROTO=ESMTP"
            await smtp.execute_command(b"XFORWARD", forward.encode())
            await smtp.sendmail(message.mail_from, [message.rcpt], message.raw)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code < 400:
                raise
        finally:
            try:
                await smtp.quit()
            except aiosmtplib.SMTPException:
                smtp.close()
