"""The auth check runs SPF, DKIM and ARC concurrently (their DNS queries in flight
together, in the order SPF, DKIM, ARC) and leaves no task behind when it is cancelled."""

from __future__ import annotations

import asyncio

from milter.checks.auth import AuthCheck
from milter.checks.base import CheckContext
from milter.checks.claim import find_claim
from milter.dns.fake import FakeResolver
from milter.dns.resolver import DnsAnswer
from milter.mime.parse import parse_message
from milter.model.auth import AuthResult, AuthStatus
from milter.model.envelope import Envelope
from milter.policy.model import Policy
from tests.auth.test_dkimpy_fast import DOMAIN, SEALER, _sealed

ENVELOPE = Envelope(
    client_ip="192.0.2.10",
    helo="mail.example.net",
    mail_from="bounce@example.net",
    rcpts=("assure@example.org",),
)


class SlowResolver:
    """FakeResolver's answers, each after a few turns of the event loop; records the
    queries in the order they were asked and how many were in flight at once."""

    def __init__(self, records: dict[str, str], *, hold: bool = False) -> None:
        self.hold = asyncio.Event() if hold else None  # answers wait for it when set
        self.fake = FakeResolver({(name, "TXT"): text for name, text in records.items()})
        self.fake.add("example.net", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
        self.fake.add("mail.example.net", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
        self.asked: list[str] = []
        self.in_flight = 0
        self.most = 0

    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        self.asked.append(name)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            for _ in range(3):
                await asyncio.sleep(0)
            if self.hold is not None:
                await self.hold.wait()
            return await self.fake.query(name, rdtype)
        finally:
            self.in_flight -= 1


def _context(resolver: SlowResolver, policy: Policy) -> CheckContext:
    sealed, _ = _sealed(1, b"relaxed")
    mime = parse_message(sealed)
    return CheckContext(ENVELOPE, mime, policy, find_claim(mime, policy), resolver)


async def test_spf_dkim_and_arc_queries_are_concurrent_and_in_order(policy: Policy) -> None:
    _, records = _sealed(1, b"relaxed")
    resolver = SlowResolver(records)
    outcomes = await AuthCheck().run(_context(resolver, policy))
    results = [(r.method, r.result) for r in outcomes if isinstance(r, AuthResult)]
    assert results == [
        ("spf", AuthStatus.PASS),
        ("spf", AuthStatus.PASS),
        ("dkim", AuthStatus.PASS),
        ("arc", AuthStatus.PASS),
        ("dmarc", AuthStatus.NONE),  # no DMARC record for ameli.fr here
    ]
    assert resolver.asked[:3] == [
        "mail.example.net",  # SPF's first: HELO
        f"sel._domainkey.{DOMAIN}",
        f"arc._domainkey.{SEALER}",
    ]
    assert resolver.most == 3  # all three waiting for DNS at once


async def test_cancelled_check_leaves_no_task_running(policy: Policy) -> None:
    _, records = _sealed(1, b"relaxed")
    resolver = SlowResolver(records, hold=True)  # no answer comes
    check = asyncio.ensure_future(AuthCheck().run(_context(resolver, policy)))
    for _ in range(50):
        await asyncio.sleep(0)
    assert resolver.in_flight == 3
    check.cancel()
    for _ in range(10):
        await asyncio.sleep(0)
    assert check.cancelled()
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert resolver.in_flight == 0
